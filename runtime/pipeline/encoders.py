"""Text encoders of a pipeline: one text -> token ids (and tokens, specials, character spans).

Built from a :class:`~runtime.pipeline.spec.TokenizerSpec` and the bytes of its file:
``"vocab"`` (a ``Vocab`` with a word splitter and n-grams), ``"wordpiece"`` (BERT's
``vocab.txt``) and ``"tokenizers"`` (a Hugging Face ``tokenizer.json``, run by the
``tokenizers`` package, or by graphcap's WordPiece when it describes BERT's tokenizer and the
package is missing). Each returns an :class:`Encoded`; a text too long for ``max_length``
with truncation off raises :class:`~runtime.pipeline.spec.PipelineInputError`.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from runtime.pipeline.spec import PipelineError, PipelineInputError, TokenizerSpec
from runtime.text.basic import RegexTokenizer, basic_english, ngrams
from runtime.text.vocab import Vocab
from runtime.text.wordpiece import WordPieceTokenizer

Span = tuple[int, int] | None


@dataclass(frozen=True)
class Encoded:
    """One encoded text.

    Attributes:
        ids: the token ids, special tokens included.
        tokens: the token strings, aligned with ``ids``.
        special: True where the token is a special one ([CLS], [SEP]): no tag is read there.
        spans: each token's ``(start, end)`` characters in the text, None where unknown.
        text: the text.
    """

    ids: tuple[int, ...]
    tokens: tuple[str, ...]
    special: tuple[bool, ...]
    spans: tuple[Span, ...]
    text: str


class TextEncoder(Protocol):
    """What a pipeline needs of a tokenizer."""

    pad_id: int
    vocab_size: int

    def encode(self, text: str, max_length: int | None, truncation: bool) -> Encoded:
        """Encode one text (see :class:`Encoded`)."""
        ...


def build_encoder(spec: TokenizerSpec, data: bytes, spans: bool = False) -> TextEncoder:
    """The encoder ``spec`` describes, from the bytes of its file.

    ``spans``: find each token's characters in the text (token classification needs them;
    without, ``Encoded.spans`` is all None except where the tokenizer reports them anyway).

    Raises:
        PipelineError: the file does not fit the spec (not UTF-8, a bad vocabulary, a
            ``tokenizer.json`` that needs the missing ``tokenizers`` package).
    """
    where = f"tokenizer file {spec.file!r}"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise PipelineError(f"{where} is not UTF-8 text: {err}") from None
    try:
        if spec.type == "vocab":
            return VocabEncoder(spec, _lines(text), spans)
        if spec.type == "wordpiece":
            vocab = {tok: i for i, tok in enumerate(_lines(text))}
            return WordPieceEncoder(WordPieceTokenizer(vocab, **dict(spec.options)), spans)
        return _tokenizers_encoder(spec, text, spans)
    except (ValueError, IndexError, KeyError, RuntimeError) as err:
        if isinstance(err, PipelineError):
            raise
        raise PipelineError(f"{where}: {err}") from None


def _lines(text: str) -> list[str]:
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line.rstrip("\r") for line in lines]


def _too_long(count: int, max_length: int) -> PipelineInputError:
    return PipelineInputError(
        f"the text has {count} tokens, more than max_length={max_length}, and this pipeline "
        "does not truncate (truncation: false)"
    )


class VocabEncoder:
    """Words (basic_english, whitespace or a regex), optionally n-grams, looked up in a Vocab."""

    def __init__(self, spec: TokenizerSpec, tokens: list[str], spans: bool = False) -> None:
        self.want_spans = spans
        split = dict(spec.split or {})
        self.vocab = Vocab(tokens, default_index=spec.unk_index)
        self.vocab_size = len(self.vocab)
        self.pad_id = spec.pad_index or 0
        self.unk = spec.unk_index
        for name, index in (("pad_index", self.pad_id), ("unk_index", self.unk)):
            if index is not None and index >= len(self.vocab):
                raise PipelineError(
                    f"tokenizer.{name}: {index} is outside the vocabulary of {len(self.vocab)}"
                )
        self.n = spec.ngrams
        self.regex: RegexTokenizer | None = None
        if split["type"] == "regex":
            self.regex = RegexTokenizer(split["pattern"], split["lowercase"], split["replace"])
        self.words = self.regex or (
            basic_english if split["type"] == "basic_english" else str.split
        )

    def encode(self, text: str, max_length: int | None, truncation: bool) -> Encoded:
        """Words, their n-grams, then ids; an empty text is ``[unk_index]`` (or the pad id)."""
        spans: list[Span]
        if self.regex is not None and self.want_spans:
            words, found = self.regex.tokenize_with_offsets(text)
            spans = list(found)
        elif self.regex is not None:
            words = self.regex(text)
            spans = [None] * len(words)
        else:
            words = self.words(text)
            spans = align(text, words, True) if self.want_spans else [None] * len(words)
        grams = ngrams(words, self.n) if self.n > 1 else words
        try:
            ids = self.vocab.lookup_indices(grams)
        except RuntimeError:
            unknown = next(g for g in grams if g not in self.vocab)
            raise PipelineInputError(
                f"token {unknown!r} is not in the vocabulary, and the pipeline has no "
                "unk_index for unknown tokens"
            ) from None
        if not ids:
            fill = self.pad_id if self.unk is None else self.unk
            ids, grams, spans = [fill], [self.vocab.lookup_token(fill)], [None]
        if max_length is not None and len(ids) > max_length:
            if not truncation:
                raise _too_long(len(ids), max_length)
            ids, grams = ids[:max_length], grams[:max_length]
        spans = (list(spans) + [None] * len(grams))[: len(grams)]  # n-grams have no one span
        return Encoded(tuple(ids), tuple(grams), (False,) * len(ids), tuple(spans), text)


class WordPieceEncoder:
    """BERT's WordPiece: ``[CLS] pieces [SEP]``."""

    def __init__(self, tokenizer: WordPieceTokenizer, spans: bool = False) -> None:
        self.tokenizer = tokenizer
        self.want_spans = spans
        self.pad_id = tokenizer.pad_token_id
        self.vocab_size = len(tokenizer)

    def encode(self, text: str, max_length: int | None, truncation: bool) -> Encoded:
        """``[CLS] pieces [SEP]``, the pieces cut (or refused) to fit ``max_length``."""
        tok = self.tokenizer
        if max_length is not None and max_length < 2:
            raise PipelineError(f"max_length={max_length} leaves no room for [CLS] and [SEP]")
        try:
            enc = tok.encode(text, max_length, truncation)
        except ValueError:
            raise _too_long(len(tok.tokenize(text)) + 2, max_length or 0) from None
        pieces = enc.tokens[1:-1]
        spans: list[Span] = [None] * len(pieces)
        if self.want_spans:
            spans = align(text, [p.removeprefix("##") for p in pieces], tok.do_lower_case)
        special = (True, *([False] * len(pieces)), True)
        return Encoded(tuple(enc.input_ids), tuple(enc.tokens), special, (None, *spans, None), text)


class TokenizersEncoder:
    """A Hugging Face ``tokenizer.json`` run by the ``tokenizers`` package."""

    def __init__(self, tokenizer: Any, pad_id: int) -> None:
        tokenizer.no_padding()
        tokenizer.no_truncation()
        self.tokenizer = tokenizer
        self.pad_id = pad_id
        self.vocab_size = int(tokenizer.get_vocab_size(with_added_tokens=True))
        self._cut: dict[int, Any] = {}

    def encode(self, text: str, max_length: int | None, truncation: bool) -> Encoded:
        """The tokenizer's encoding, special tokens included, with its character offsets."""
        enc = self.tokenizer.encode(text)
        if max_length is not None and len(enc.ids) > max_length:
            if not truncation:
                raise _too_long(len(enc.ids), max_length)
            enc = self._truncating(max_length).encode(text)
        special = tuple(bool(s) for s in enc.special_tokens_mask)
        spans = tuple(
            None if s else (int(a), int(b)) for (a, b), s in zip(enc.offsets, special, strict=True)
        )
        return Encoded(tuple(enc.ids), tuple(enc.tokens), special, spans, text)

    def _truncating(self, max_length: int) -> Any:
        cut = self._cut.get(max_length)
        if cut is None:
            cut = type(self.tokenizer).from_str(self.tokenizer.to_str())
            cut.no_padding()
            cut.enable_truncation(max_length)
            self._cut[max_length] = cut
        return cut


def _tokenizers_encoder(spec: TokenizerSpec, text: str, spans: bool) -> TextEncoder:
    try:
        config = json.loads(text)
    except json.JSONDecodeError as err:
        raise PipelineError(f"tokenizer file {spec.file!r} is not valid JSON: {err}") from None
    padding = config.get("padding") if isinstance(config, dict) else None
    pad_id = spec.pad_index
    if pad_id is None:
        pad_id = int(padding.get("pad_id", 0)) if isinstance(padding, dict) else 0
    try:
        from tokenizers import Tokenizer
    except ImportError:
        fallback = _bert_wordpiece(config)
        if fallback is None:
            raise PipelineError(
                f"tokenizer file {spec.file!r} needs the tokenizers package (pip install "
                "tokenizers); graphcap runs only BERT WordPiece tokenizer.json files without it"
            ) from None
        return WordPieceEncoder(fallback, spans)
    try:
        return TokenizersEncoder(Tokenizer.from_str(text), pad_id)
    except Exception as err:
        raise PipelineError(f"tokenizers cannot read {spec.file!r}: {err}") from None


def _bert_wordpiece(config: Any) -> WordPieceTokenizer | None:
    """Build graphcap's WordPiece for a ``tokenizer.json`` that describes BERT's, else None."""
    if not isinstance(config, dict):
        return None
    model, norm = config.get("model") or {}, config.get("normalizer") or {}
    pre, post = config.get("pre_tokenizer") or {}, config.get("post_processor") or {}
    if (model.get("type"), norm.get("type"), pre.get("type")) != (
        "WordPiece",
        "BertNormalizer",
        "BertPreTokenizer",
    ) or post.get("type") not in ("BertProcessing", "TemplateProcessing"):
        return None
    if model.get("continuing_subword_prefix", "##") != "##":
        return None
    lower = bool(norm.get("lowercase", True))
    return WordPieceTokenizer(
        dict(model["vocab"]),
        do_lower_case=lower,
        strip_accents=norm.get("strip_accents"),
        tokenize_chinese_chars=bool(norm.get("handle_chinese_chars", True)),
        unk_token=model.get("unk_token", "[UNK]"),
        max_input_chars_per_word=int(model.get("max_input_chars_per_word", 100)),
        backend="python",
    )


def align(text: str, pieces: Sequence[str], lowercase: bool) -> list[Span]:
    """Best-effort character spans of ``pieces`` found in order in ``text``.

    The text is folded character by character (lowercased, accents dropped) so that indices
    stay those of ``text``; a piece not found after the previous one gets None.
    """
    folded = "".join(_fold(ch, lowercase) for ch in text)
    spans: list[Span] = []
    cursor = 0
    for piece in pieces:
        at = folded.find(_fold_text(piece, lowercase), cursor) if piece else -1
        if at < 0:
            spans.append(None)
            continue
        spans.append((at, at + len(piece)))
        cursor = at + len(piece)
    return spans


def _fold(ch: str, lowercase: bool) -> str:
    base = unicodedata.normalize("NFD", ch)[:1] or ch
    low = base.lower() if lowercase else base
    return low if len(low) == 1 else base


def _fold_text(text: str, lowercase: bool) -> str:
    return "".join(_fold(ch, lowercase) for ch in text)
