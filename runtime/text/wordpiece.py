"""BERT's WordPiece tokenizer (pure Python, with an optional fast path).

:class:`WordPieceTokenizer` reproduces BERT's tokenization from a ``vocab.txt``: text cleanup
(control characters dropped, whitespace unified), spaces around CJK ideographs, accent
stripping and lowercasing per ``do_lower_case``, splitting on whitespace and punctuation, then
greedy longest-match-first WordPiece with the ``##`` continuation prefix. When the
``tokenizers`` package is installed, ``backend="auto"`` hands the same pipeline to its Rust
implementation; both backends give identical ids (the tests check it on real text).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

# ------------------------------------------------------------------ BERT basic tokenization


_CJK_RANGES = (
    (0x4E00, 0x9FFF),
    (0x3400, 0x4DBF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2B73F),
    (0x2B740, 0x2B81F),
    (0x2B820, 0x2CEAF),
    (0xF900, 0xFAFF),
    (0x2F800, 0x2FA1F),
)


def _is_cjk(cp: int) -> bool:
    return cp >= 0x3400 and any(lo <= cp <= hi for lo, hi in _CJK_RANGES)


def _is_whitespace(ch: str) -> bool:
    return ch in " \t\n\r" or ch.isspace() or unicodedata.category(ch) == "Zs"


def _is_control(ch: str) -> bool:
    return ch not in "\t\n\r" and unicodedata.category(ch).startswith("C")


def _is_punctuation(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def _normalize(text: str, lowercase: bool, strip_accents: bool, cjk: bool) -> str:
    """BERT's normalizer: clean, space CJK, strip accents, lowercase (in that order)."""
    out = []
    for ch in text:
        cp = ord(ch)
        if cp == 0 or cp == 0xFFFD or _is_control(ch):
            continue
        if _is_whitespace(ch):
            out.append(" ")
        elif cjk and _is_cjk(cp):
            out.append(f" {ch} ")
        else:
            out.append(ch)
    text = "".join(out)
    if strip_accents:
        text = unicodedata.normalize("NFD", text)
        text = "".join(ch for ch in text if unicodedata.category(ch) != "Mn")
    if lowercase:  # char by char, as the Rust normalizer (no final-sigma rule)
        text = "".join(ch.lower() for ch in text)
    return text


def _split_words(text: str) -> list[str]:
    """Split on whitespace, then isolate every punctuation character."""
    words: list[str] = []
    for chunk in text.split():
        start = 0
        for i, ch in enumerate(chunk):
            if _is_punctuation(ch):
                if i > start:
                    words.append(chunk[start:i])
                words.append(ch)
                start = i + 1
        if start < len(chunk):
            words.append(chunk[start:])
    return words


# ---------------------------------------------------------------------------- WordPiece


@dataclass
class Encoding:
    """One encoded text: ``input_ids``, ``attention_mask``, ``token_type_ids`` and ``tokens``."""

    input_ids: list[int]
    tokens: list[str]
    attention_mask: list[int] = field(default_factory=list)
    token_type_ids: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.attention_mask:
            self.attention_mask = [1] * len(self.input_ids)
        if not self.token_type_ids:
            self.token_type_ids = [0] * len(self.input_ids)


def load_vocab_file(path: str | Path) -> dict[str, int]:
    """A ``vocab.txt`` (one token per line; the line number is the id) as token -> id."""
    with open(path, encoding="utf-8") as f:
        tokens = [line.rstrip("\r\n") for line in f]
    return {tok: i for i, tok in enumerate(tokens)}


class WordPieceTokenizer:
    """BERT's uncased/cased WordPiece tokenizer from a vocabulary.

    Args:
        vocab: a path to ``vocab.txt`` or a token -> id mapping.
        do_lower_case: lowercase the text (BERT "uncased").
        strip_accents: remove combining marks after NFD; ``None`` follows ``do_lower_case``.
        tokenize_chinese_chars: put spaces around CJK ideographs, so each is a word.
        max_input_chars_per_word: longer words become ``unk_token``.
        backend: ``"python"``, ``"tokenizers"`` (the Rust package; ImportError when absent)
            or ``"auto"`` (the Rust package when installed).

    Raises:
        ValueError: a special token is missing from the vocabulary, or an unknown backend.
    """

    def __init__(
        self,
        vocab: str | Path | dict[str, int],
        do_lower_case: bool = True,
        strip_accents: bool | None = None,
        tokenize_chinese_chars: bool = True,
        unk_token: str = "[UNK]",
        cls_token: str = "[CLS]",
        sep_token: str = "[SEP]",
        pad_token: str = "[PAD]",
        max_input_chars_per_word: int = 100,
        backend: str = "auto",
    ) -> None:
        self.vocab = dict(vocab) if isinstance(vocab, dict) else load_vocab_file(vocab)
        self.ids_to_tokens = {i: t for t, i in self.vocab.items()}
        for tok in (unk_token, cls_token, sep_token, pad_token):
            if tok not in self.vocab:
                raise ValueError(f"special token {tok!r} is not in the vocabulary")
        self.do_lower_case = do_lower_case
        self.strip_accents = do_lower_case if strip_accents is None else strip_accents
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.unk_token, self.cls_token, self.sep_token = unk_token, cls_token, sep_token
        self.pad_token = pad_token
        self.pad_token_id = self.vocab[pad_token]
        self.max_input_chars_per_word = max_input_chars_per_word
        if backend not in ("auto", "python", "tokenizers"):
            raise ValueError(f"backend must be 'auto', 'python' or 'tokenizers', got {backend!r}")
        self._fast = None if backend == "python" else self._build_fast(backend == "tokenizers")
        self.backend = "python" if self._fast is None else "tokenizers"

    def __len__(self) -> int:
        return len(self.vocab)

    # -- the pure Python pipeline

    def basic_tokenize(self, text: str) -> list[str]:
        """Words and punctuation after BERT's normalization, before WordPiece."""
        norm = _normalize(text, self.do_lower_case, self.strip_accents, self.tokenize_chinese_chars)
        return _split_words(norm)

    def wordpiece(self, word: str) -> list[str]:
        """Greedy longest-match-first pieces of one word; ``[unk_token]`` when none fits."""
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces, start = [], 0
        while start < len(word):
            end = len(word)
            while end > start:
                piece = word[start:end] if start == 0 else "##" + word[start:end]
                if piece in self.vocab:
                    break
                end -= 1
            else:
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces

    def tokenize(self, text: str) -> list[str]:
        """WordPiece tokens of ``text`` (no special tokens)."""
        if self._fast is not None:
            return self._fast.encode(text, add_special_tokens=False).tokens
        return [p for w in self.basic_tokenize(text) for p in self.wordpiece(w)]

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int]:
        """Ids of ``tokens``; unknown tokens map to the id of ``unk_token``."""
        unk = self.vocab[self.unk_token]
        return [self.vocab.get(t, unk) for t in tokens]

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str]:
        """Tokens of ``ids``.

        Raises:
            KeyError: an id outside the vocabulary.
        """
        return [self.ids_to_tokens[int(i)] for i in ids]

    def encode(self, text: str, max_length: int | None = None, truncation: bool = True) -> Encoding:
        """``[CLS] tokens [SEP]`` ids with an all-ones attention mask.

        Args:
            text: the text.
            max_length: the most ids, special tokens included; ``None`` for no limit.
            truncation: cut the word pieces to fit ``max_length``; when False an over-long
                text raises.

        Raises:
            ValueError: ``max_length < 2``, or the text is too long and ``truncation=False``.
        """
        if max_length is not None and max_length < 2:
            raise ValueError(f"max_length must be at least 2 ([CLS] and [SEP]), got {max_length}")
        tokens = self.tokenize(text)
        if max_length is not None and len(tokens) + 2 > max_length:
            if not truncation:
                raise ValueError(
                    f"text has {len(tokens) + 2} tokens with [CLS]/[SEP], more than "
                    f"max_length={max_length}; pass truncation=True to cut it"
                )
            tokens = tokens[: max_length - 2]
        tokens = [self.cls_token, *tokens, self.sep_token]
        return Encoding(self.convert_tokens_to_ids(tokens), tokens)

    def __call__(
        self,
        texts: str | Sequence[str],
        max_length: int | None = None,
        truncation: bool = True,
        padding: bool = True,
    ) -> dict[str, np.ndarray]:
        """Encode a batch into int64 arrays ``input_ids``, ``attention_mask``, ``token_type_ids``.

        Shorter texts are padded on the right with ``pad_token`` (mask 0) to the longest one.

        Raises:
            ValueError: texts of different lengths with ``padding=False``.
        """
        batch = [texts] if isinstance(texts, str) else list(texts)
        encs = [self.encode(t, max_length, truncation) for t in batch]
        width = max((len(e.input_ids) for e in encs), default=0)
        if not padding and any(len(e.input_ids) != width for e in encs):
            raise ValueError("texts encode to different lengths; pass padding=True")
        out = {
            k: np.zeros((len(encs), width), np.int64) for k in ("attention_mask", "token_type_ids")
        }
        out["input_ids"] = np.full((len(encs), width), self.pad_token_id, np.int64)
        for i, e in enumerate(encs):
            n = len(e.input_ids)
            out["input_ids"][i, :n] = e.input_ids
            out["attention_mask"][i, :n] = 1
        return out

    def decode(self, ids: Sequence[int], skip_special_tokens: bool = True) -> str:
        """Tokens joined by spaces with ``##`` continuations glued back on."""
        specials = {self.cls_token, self.sep_token, self.pad_token}
        toks = [
            t
            for t in self.convert_ids_to_tokens(ids)
            if not skip_special_tokens or t not in specials
        ]
        return " ".join(toks).replace(" ##", "")

    # -- the optional Rust pipeline

    def _build_fast(self, required: bool) -> Any:
        try:
            from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
        except ImportError:
            if required:
                raise ImportError(
                    "backend='tokenizers' needs the tokenizers package: pip install tokenizers"
                ) from None
            return None
        model = models.WordPiece(
            self.vocab,
            unk_token=self.unk_token,
            max_input_chars_per_word=self.max_input_chars_per_word,
        )
        fast = Tokenizer(model)
        fast.normalizer = normalizers.BertNormalizer(
            clean_text=True,
            handle_chinese_chars=self.tokenize_chinese_chars,
            strip_accents=self.strip_accents,
            lowercase=self.do_lower_case,
        )
        fast.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        return fast
