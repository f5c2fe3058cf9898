"""A TorchText-style vocabulary: token <-> index, specials, a default index for unknowns."""

from __future__ import annotations

from collections import Counter, OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path


class Vocab:
    """Maps tokens to indices and back, as ``torchtext.vocab.Vocab``.

    ``vocab[token]`` is the token's index; an unknown token gives the default index when one
    was set (``set_default_index``), and raises ``RuntimeError`` otherwise, as TorchText does.
    ``vocab(tokens)`` numericalizes a list of tokens.

    Args:
        tokens: the tokens in index order; no duplicates.
        default_index: the index returned for unknown tokens; ``None`` to raise.

    Raises:
        ValueError: a duplicated token.
    """

    def __init__(self, tokens: Iterable[str] = (), default_index: int | None = None) -> None:
        self._itos: list[str] = []
        self._stoi: dict[str, int] = {}
        for tok in tokens:
            if tok in self._stoi:
                raise ValueError(f"duplicate token {tok!r} in the vocabulary")
            self.append_token(tok)
        self._default: int | None = None
        if default_index is not None:
            self.set_default_index(default_index)

    def __len__(self) -> int:
        return len(self._itos)

    def __contains__(self, token: object) -> bool:
        return token in self._stoi

    def __iter__(self):
        return iter(self._itos)

    def __getitem__(self, token: str) -> int:
        idx = self._stoi.get(token)
        if idx is not None:
            return idx
        if self._default is None:
            raise RuntimeError(
                f"token {token!r} not found and default index is not set; "
                "call vocab.set_default_index(vocab['<unk>'])"
            )
        return self._default

    def __call__(self, tokens: Sequence[str]) -> list[int]:
        """The indices of ``tokens`` (numericalization); same as ``lookup_indices``."""
        return self.lookup_indices(tokens)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return self._itos == other._itos and self._default == other._default

    def __repr__(self) -> str:
        head = ", ".join(repr(t) for t in self._itos[:5])
        more = ", ..." if len(self) > 5 else ""
        return f"Vocab(size={len(self)}, default_index={self._default}, tokens=[{head}{more}])"

    def set_default_index(self, index: int | None) -> None:
        """Index returned for unknown tokens; ``None`` makes unknown tokens raise.

        Raises:
            IndexError: ``index`` is outside the vocabulary.
        """
        if index is not None and not 0 <= index < len(self):
            raise IndexError(f"default index {index} is outside a vocabulary of {len(self)}")
        self._default = index

    def get_default_index(self) -> int | None:
        """The index for unknown tokens, or ``None`` when unknown tokens raise."""
        return self._default

    def append_token(self, token: str) -> None:
        """Add ``token`` at the end.

        Raises:
            RuntimeError: the token is already in the vocabulary.
        """
        if token in self._stoi:
            raise RuntimeError(f"token {token!r} already exists in the vocab at {self[token]}")
        self._stoi[token] = len(self._itos)
        self._itos.append(token)

    def insert_token(self, token: str, index: int) -> None:
        """Insert ``token`` at ``index``, shifting the tokens at and after it by one.

        Raises:
            RuntimeError: the token is already in the vocabulary.
            IndexError: ``index`` is not in ``[0, len(vocab)]``.
        """
        if token in self._stoi:
            raise RuntimeError(f"token {token!r} already exists in the vocab at {self[token]}")
        if not 0 <= index <= len(self):
            raise IndexError(f"index {index} is not in [0, {len(self)}]")
        self._itos.insert(index, token)
        self._stoi = {t: i for i, t in enumerate(self._itos)}
        if self._default is not None and self._default >= index:
            self._default += 1  # the default keeps pointing at the same token

    def lookup_token(self, index: int) -> str:
        """The token at ``index``.

        Raises:
            IndexError: ``index`` is outside the vocabulary.
        """
        if not 0 <= int(index) < len(self):
            raise IndexError(f"index {index} is outside a vocabulary of {len(self)}")
        return self._itos[int(index)]

    def lookup_tokens(self, indices: Iterable[int]) -> list[str]:
        """The tokens at ``indices`` (ints, or a 1-D array or tensor of them)."""
        return [self.lookup_token(i) for i in _as_ints(indices)]

    def lookup_indices(self, tokens: Iterable[str]) -> list[int]:
        """The indices of ``tokens``, unknown ones mapped to the default index."""
        return [self[t] for t in tokens]

    def get_stoi(self) -> dict[str, int]:
        """A copy of the token -> index mapping."""
        return dict(self._stoi)

    def get_itos(self) -> list[str]:
        """A copy of the index -> token list."""
        return list(self._itos)

    def save(self, path: str | Path) -> None:
        """Write one token per line (UTF-8); the default index goes in a ``.default`` file."""
        path = Path(path)
        for tok in self._itos:
            if "\n" in tok or "\r" in tok:
                raise ValueError(f"token {tok!r} contains a newline and cannot be saved")
        path.write_text("".join(t + "\n" for t in self._itos), encoding="utf-8")
        default_file = path.with_name(path.name + ".default")
        if self._default is not None:
            default_file.write_text(str(self._default), encoding="utf-8")
        elif default_file.exists():
            default_file.unlink()

    @classmethod
    def load(cls, path: str | Path) -> Vocab:
        """Read a vocabulary written by :meth:`save` (or any one-token-per-line file)."""
        path = Path(path)
        with open(path, encoding="utf-8") as f:
            tokens = [line.rstrip("\r\n") for line in f]
        default_file = path.with_name(path.name + ".default")
        default = int(default_file.read_text()) if default_file.exists() else None
        return cls(tokens, default)


def _as_ints(indices: Iterable[int]) -> list[int]:
    if hasattr(indices, "tolist"):  # NumPy arrays and tracer tensors
        return list(indices.tolist())
    return [int(i) for i in indices]


def vocab(
    ordered_dict: Mapping[str, int],
    min_freq: int = 1,
    specials: Sequence[str] | None = None,
    special_first: bool = True,
) -> Vocab:
    """A :class:`Vocab` from token -> frequency pairs, in their order, as ``torchtext.vocab.vocab``.

    Tokens seen fewer than ``min_freq`` times are dropped; ``specials`` go first (or last
    with ``special_first=False``) and are never dropped.
    """
    specials = list(specials or [])
    kept = [t for t, n in ordered_dict.items() if n >= min_freq and t not in set(specials)]
    tokens = specials + kept if special_first else kept + specials
    return Vocab(tokens)


def build_vocab_from_iterator(
    iterator: Iterable[Iterable[str]],
    min_freq: int = 1,
    specials: Sequence[str] | None = None,
    special_first: bool = True,
    max_tokens: int | None = None,
) -> Vocab:
    """Count the tokens of every sequence and build a :class:`Vocab`, as TorchText does.

    Tokens are ordered by descending frequency, ties broken alphabetically. As in TorchText,
    ``max_tokens`` (the vocabulary's largest size, specials included) cuts that ordered list
    to ``max_tokens - len(specials)`` before specials and rare tokens are removed from it.

    Args:
        iterator: yields lists of tokens.
        min_freq: the fewest occurrences a token needs.
        specials: tokens such as ``"<unk>"``, ``"<pad>"`` always present.
        special_first: put ``specials`` at the start (else at the end).
        max_tokens: the largest vocabulary, specials included; ``None`` for no limit.

    Raises:
        ValueError: ``max_tokens`` is not larger than the number of specials.
    """
    counter: Counter[str] = Counter()
    for tokens in iterator:
        counter.update(tokens)
    specials = list(specials or [])
    ordered = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))
    if max_tokens is not None:
        if len(specials) >= max_tokens:
            raise ValueError(
                f"max_tokens={max_tokens} leaves no room beyond the {len(specials)} specials"
            )
        ordered = ordered[: max_tokens - len(specials)]
    return vocab(OrderedDict(ordered), min_freq, specials, special_first)
