"""The tokenizer stored next to a model: ``AutoTokenizer.from_pretrained(folder)``.

- A WordPiece folder (BERT: ``vocab.txt``, or a ``tokenizer.json`` whose model is
  WordPiece) gives graphcap's own :class:`~tracer.data.WordPieceTokenizer`, configured from
  ``tokenizer_config.json`` (lowercasing, accents, special tokens).
- Any other ``tokenizer.json`` (GPT-2's byte-level BPE, T5's SentencePiece unigram, ...)
  gives a :class:`FastTokenizer` around the ``tokenizers`` package, which must be installed.

Both return int64 NumPy batches (``input_ids``, ``attention_mask``, and BERT's
``token_type_ids``) with the ids ``transformers``' tokenizer gives for the same folder.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tracer.data import WordPieceTokenizer

_SPECIALS = ("bos", "eos", "unk", "sep", "pad", "cls", "mask")
_TOKENIZERS_HINT = "pip install tokenizers"


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{os.fspath(path)!r} holds a {type(data).__name__}, not an object")
    return data


def _token(value: Any) -> str | None:
    """A special token as written in ``tokenizer_config.json``: a string or AddedToken dict."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def _settings(folder: Path) -> dict[str, Any]:
    """``special_tokens_map.json`` overlaid by ``tokenizer_config.json``."""
    return {
        **_read_json(folder / "special_tokens_map.json"),
        **_read_json(folder / "tokenizer_config.json"),
    }


class AutoTokenizer:
    """Loads the tokenizer of a Hugging Face model folder (no network, nothing unpickled)."""

    @staticmethod
    def from_pretrained(folder: str | os.PathLike[str]) -> WordPieceTokenizer | FastTokenizer:
        """The folder's tokenizer; see the module docstring for which class.

        Raises:
            FileNotFoundError: no ``tokenizer.json`` and no ``vocab.txt`` (a SentencePiece
                ``spiece.model`` alone is not read; the message says how to convert it).
            ImportError: a non-WordPiece ``tokenizer.json`` without the ``tokenizers``
                package.
        """
        folder = Path(folder)
        settings = _settings(folder)
        spec = _read_json(folder / "tokenizer.json")
        model = spec.get("model", {})
        if (folder / "vocab.txt").is_file() or model.get("type") == "WordPiece":
            vocab = folder / "vocab.txt" if (folder / "vocab.txt").is_file() else model["vocab"]
            return _wordpiece(vocab, settings, spec)
        if spec:
            return FastTokenizer(folder / "tokenizer.json", settings)
        raise FileNotFoundError(
            f"{os.fspath(folder)!r} has no tokenizer.json or vocab.txt; for a SentencePiece "
            "or vocab.json/merges.txt folder, write tokenizer.json once with transformers: "
            "AutoTokenizer.from_pretrained(folder).save_pretrained(folder)"
        )


def _wordpiece(vocab: Any, settings: dict[str, Any], spec: dict[str, Any]) -> WordPieceTokenizer:
    norm = spec.get("normalizer") or {}
    lower = settings.get("do_lower_case", norm.get("lowercase", True))
    accents = settings.get("strip_accents", norm.get("strip_accents"))

    def special(kind: str, default: str) -> str:
        return _token(settings.get(f"{kind}_token")) or default

    return WordPieceTokenizer(
        vocab,
        do_lower_case=bool(lower),
        strip_accents=accents,
        tokenize_chinese_chars=bool(settings.get("tokenize_chinese_chars", True)),
        unk_token=special("unk", "[UNK]"),
        cls_token=special("cls", "[CLS]"),
        sep_token=special("sep", "[SEP]"),
        pad_token=special("pad", "[PAD]"),
    )


class FastTokenizer:
    """A ``tokenizer.json`` pipeline run by the ``tokenizers`` package.

    Attributes:
        bos_token, eos_token, unk_token, sep_token, pad_token, cls_token, mask_token: the
            special tokens from ``tokenizer_config.json`` (None when absent); assign
            ``pad_token`` (e.g. ``tokenizer.pad_token = tokenizer.eos_token``) to pad
            GPT-2 batches, as with ``transformers``.
        padding_side: "right" or "left" (for batched generation with decoder-only models).
        model_input_names: the arrays ``__call__`` returns.

    Raises:
        ImportError: ``tokenizers`` is not installed.
    """

    def __init__(
        self, path: str | os.PathLike[str], settings: dict[str, Any] | None = None
    ) -> None:
        try:
            from tokenizers import Tokenizer
        except ImportError:
            raise ImportError(
                f"this tokenizer.json needs the tokenizers package: {_TOKENIZERS_HINT}"
            ) from None
        settings = settings or {}
        self._tok = Tokenizer.from_file(os.fspath(path))
        self._tok.no_padding()
        self._tok.no_truncation()
        for kind in _SPECIALS:
            setattr(self, f"{kind}_token", _token(settings.get(f"{kind}_token")))
        self.padding_side: str = settings.get("padding_side", "right")
        self.model_max_length = settings.get("model_max_length")
        bert = str(settings.get("tokenizer_class", "")).startswith("Bert")
        default = (
            ["input_ids", "token_type_ids", "attention_mask"]
            if bert
            else ["input_ids", "attention_mask"]
        )
        self.model_input_names: list[str] = settings.get("model_input_names", default)

    def __getattr__(self, name: str) -> Any:
        # bos_token_id, eos_token_id, ...: the id of the matching special token.
        if name.endswith("_token_id") and name[: -len("_token_id")] in _SPECIALS:
            token = getattr(self, name[: -len("_id")])
            return None if token is None else self._tok.token_to_id(token)
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def __len__(self) -> int:
        return int(self._tok.get_vocab_size(with_added_tokens=True))

    def tokenize(self, text: str) -> list[str]:
        """The tokens of ``text`` without special tokens."""
        return list(self._tok.encode(text, add_special_tokens=False).tokens)

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]:
        """The ids of one text."""
        return list(self._tok.encode(text, add_special_tokens=add_special_tokens).ids)

    def convert_tokens_to_ids(self, tokens: Sequence[str]) -> list[int | None]:
        """Each token's id (None for tokens outside the vocabulary)."""
        return [self._tok.token_to_id(t) for t in tokens]

    def convert_ids_to_tokens(self, ids: Sequence[int]) -> list[str | None]:
        """Each id's token."""
        return [self._tok.id_to_token(int(i)) for i in ids]

    def decode(self, ids: Any, skip_special_tokens: bool = False) -> str:
        """The text of one sequence of ids."""
        return str(
            self._tok.decode(
                [int(i) for i in np.asarray(ids).ravel()], skip_special_tokens=skip_special_tokens
            )
        )

    def batch_decode(self, batch: Any, skip_special_tokens: bool = False) -> list[str]:
        """The text of each row of ids."""
        return [self.decode(row, skip_special_tokens) for row in np.asarray(batch)]

    def __call__(
        self,
        texts: str | Sequence[str],
        padding: bool = True,
        truncation: bool = False,
        max_length: int | None = None,
        add_special_tokens: bool = True,
        padding_side: str | None = None,
    ) -> dict[str, np.ndarray]:
        """Encode a batch into int64 ``[B, L]`` arrays padded to the longest text.

        Raises:
            ValueError: padding without a pad token, texts of different lengths with
                ``padding=False``, or truncation without ``max_length``.
        """
        batch = [texts] if isinstance(texts, str) else list(texts)
        if truncation and max_length is None:
            max_length = self.model_max_length
            if max_length is None:
                raise ValueError("truncation=True needs max_length (the config gives none)")
        if truncation:
            self._tok.enable_truncation(int(max_length))  # type: ignore[arg-type]
        try:
            encs = self._tok.encode_batch(batch, add_special_tokens=add_special_tokens)
        finally:
            self._tok.no_truncation()
        width = max((len(e.ids) for e in encs), default=0)
        ragged = any(len(e.ids) != width for e in encs)
        if ragged and not padding:
            raise ValueError("texts encode to different lengths; pass padding=True")
        pad_id = self.pad_token_id
        if ragged and pad_id is None:
            raise ValueError(
                "padding needs a pad token, and this tokenizer has none; set one, e.g. "
                "tokenizer.pad_token = tokenizer.eos_token"
            )
        return self._pad(encs, width, pad_id or 0, padding_side or self.padding_side)

    def _pad(self, encs: list[Any], width: int, pad_id: int, side: str) -> dict[str, np.ndarray]:
        if side not in ("left", "right"):
            raise ValueError(f"padding_side must be 'left' or 'right', got {side!r}")
        out = {
            "input_ids": np.full((len(encs), width), pad_id, np.int64),
            "attention_mask": np.zeros((len(encs), width), np.int64),
            "token_type_ids": np.zeros((len(encs), width), np.int64),
        }
        for i, e in enumerate(encs):
            n = len(e.ids)
            cols = slice(width - n, width) if side == "left" else slice(0, n)
            out["input_ids"][i, cols] = e.ids
            out["attention_mask"][i, cols] = 1
            out["token_type_ids"][i, cols] = e.type_ids
        return {k: v for k, v in out.items() if k in self.model_input_names}
