"""Word tokenizers: TorchText's ``basic_english``, regular-expression tokens, n-grams.

``get_tokenizer("basic_english")`` behaves as TorchText's: lowercase, then a fixed list of
regular-expression rewrites around punctuation, then split on whitespace.

:class:`RegexTokenizer` takes the matches of one pattern as the tokens, after an optional
per-character mapping and lowercasing; it is fully described by its :meth:`~RegexTokenizer.config`,
so a pipeline file can rebuild it, and it reports each token's character span in the
original text.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

_BASIC_ENGLISH_RULES = [
    (re.compile(p), r)
    for p, r in [
        (r"\'", " '  "),
        (r"\"", ""),
        (r"\.", " . "),
        (r"<br \/>", " "),
        (r",", " , "),
        (r"\(", " ( "),
        (r"\)", " ) "),
        (r"\!", " ! "),
        (r"\?", " ? "),
        (r"\;", " "),
        (r"\:", " "),
        (r"\s+", " "),
    ]
]


def basic_english(text: str) -> list[str]:
    """TorchText's ``basic_english`` tokenizer.

    Lowercases, puts spaces around ``' . , ( ) ! ?``, removes ``"``, turns ``<br />``, ``;``
    and ``:`` into spaces, and splits on whitespace: ``"Don't stop!"`` gives
    ``["don", "'", "t", "stop", "!"]``.
    """
    text = text.lower()
    for pattern, replacement in _BASIC_ENGLISH_RULES:
        text = pattern.sub(replacement, text)
    return text.split()


def get_tokenizer(name: str | Callable[[str], list[str]] | None) -> Callable[[str], list[str]]:
    """A tokenizer by name, as ``torchtext.data.utils.get_tokenizer``.

    Args:
        name: ``"basic_english"``; ``None`` or ``"split"`` for ``str.split``; or a callable,
            returned as it is.

    Raises:
        ValueError: an unknown name.
    """
    if callable(name):
        return name
    if name is None or name == "split":
        return str.split
    if name == "basic_english":
        return basic_english
    raise ValueError(f"unknown tokenizer {name!r}; expected 'basic_english', 'split' or None")


class RegexTokenizer:
    """Tokens are the matches of ``pattern`` in the text, mapped and lowercased first.

    Each character is first replaced through ``replace`` (a one-character key, any string as
    value, as ``str.translate``), then lowercased when ``lowercase``; the matches of
    ``pattern`` in the result are the tokens.

    Args:
        pattern: a Python regular expression; each match (group 0) is a token.
        lowercase: lowercase each character before matching.
        replace: character -> replacement, applied before lowercasing.

    Raises:
        ValueError: an invalid pattern, or a ``replace`` key that is not one character.
    """

    def __init__(
        self, pattern: str, lowercase: bool = True, replace: Mapping[str, str] | None = None
    ) -> None:
        try:
            self._regex = re.compile(pattern)
        except re.error as err:
            raise ValueError(f"invalid regular expression {pattern!r}: {err}") from None
        self.pattern = pattern
        self.lowercase = bool(lowercase)
        self.replace = dict(replace or {})
        for key, value in self.replace.items():
            if not isinstance(key, str) or len(key) != 1 or not isinstance(value, str):
                raise ValueError(
                    f"replace: {key!r} -> {value!r}: keys must be single characters and "
                    "values strings"
                )
        self._table = str.maketrans(self.replace)

    def __call__(self, text: str) -> list[str]:
        """The tokens of ``text``."""
        return [m.group(0) for m in self._regex.finditer(self._mapped(text)) if m.end() > m.start()]

    def tokenize_with_offsets(self, text: str) -> tuple[list[str], list[tuple[int, int]]]:
        """The tokens and, for each, its ``(start, end)`` character span in ``text``."""
        mapped = self._mapped(text)
        origin = self._origin(text) if len(mapped) != len(text) else None
        tokens, spans = [], []
        for match in self._regex.finditer(mapped):
            start, end = match.span()
            if start == end:
                continue  # an empty match is no token
            tokens.append(match.group(0))
            spans.append((start, end) if origin is None else (origin[start], origin[end - 1] + 1))
        return tokens, spans

    def _mapped(self, text: str) -> str:
        """``text`` mapped through ``replace``, then lowercased character by character."""
        if self.replace:
            text = text.translate(self._table)
        if not self.lowercase:
            return text
        return text.lower() if text.isascii() else "".join(ch.lower() for ch in text)

    def _origin(self, text: str) -> list[int]:
        """For each character of the mapped text, the index in ``text`` it comes from."""
        origin: list[int] = []
        for i, ch in enumerate(text):
            piece = self.replace.get(ch, ch)
            origin.extend([i] * len(piece.lower() if self.lowercase else piece))
        return origin

    def config(self) -> dict[str, Any]:
        """The arguments that rebuild this tokenizer (JSON-serialisable)."""
        return {"pattern": self.pattern, "lowercase": self.lowercase, "replace": self.replace}

    def __repr__(self) -> str:
        return f"RegexTokenizer({self.pattern!r}, lowercase={self.lowercase})"


def ngrams(tokens: Sequence[str], n: int = 2, sep: str = " ") -> list[str]:
    """The tokens, then every run of 2, ..., ``n`` adjacent tokens joined by ``sep``.

    ``ngrams(["a", "b", "c"], 2)`` is ``["a", "b", "c", "a b", "b c"]``.

    Raises:
        ValueError: ``n < 1``.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    out = list(tokens)
    for size in range(2, n + 1):
        windows = zip(*(itertools.islice(tokens, k, None) for k in range(size)), strict=False)
        out.extend(sep.join(w) for w in windows)
    return out
