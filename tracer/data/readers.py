"""Readers for text data sets and pretrained word vectors.

- :func:`read_csv`: ``(text, label)`` rows from CSV/TSV files, plain or ``.gz``/``.bz2``/``.xz``.
- :func:`read_conll`: ``(tokens, tags)`` sentences from CoNLL/BIO column files.
- :func:`read_word_vectors`: GloVe or word2vec text vectors.
- :func:`load_npy_embeddings`: a ``.npy`` matrix plus a vocabulary (list, text, JSON or
  Parquet file).
- :func:`build_embedding_matrix`: an embedding matrix for a :class:`Vocab`.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import json
import lzma
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO, Any

import numpy as np

import tracer
from tracer.data.vocab import Vocab

_OPENERS = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def open_text(path: str | Path, encoding: str = "utf-8") -> IO[str]:
    """Open a text file for reading, decompressing ``.gz``, ``.bz2`` and ``.xz`` on the fly."""
    path = Path(path)
    opener = _OPENERS.get(path.suffix.lower())
    if opener is not None:
        return opener(path, "rt", encoding=encoding, newline="")  # type: ignore[operator]
    return open(path, encoding=encoding, newline="")


def _plain_suffix(path: Path) -> str:
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in _OPENERS:
        suffixes = suffixes[:-1]
    return suffixes[-1] if suffixes else ""


# -------------------------------------------------------------------------------- CSV/TSV


def read_csv(
    path: str | Path,
    text_field: str | int,
    label_field: str | int | None = None,
    delimiter: str | None = None,
    has_header: bool | None = None,
    encoding: str = "utf-8",
) -> list[tuple[str, str]] | list[str]:
    """Rows of a CSV or TSV file as ``(text, label)`` pairs (just texts when no label field).

    Args:
        path: the file; ``.gz``, ``.bz2`` and ``.xz`` are decompressed.
        text_field: the text column, by header name or by position.
        label_field: the label column, by name or position; ``None`` returns texts only.
        delimiter: the separator; ``None`` picks a tab for ``.tsv`` files, else a comma.
        has_header: whether the first row names the columns; ``None`` means yes when the
            fields are given by name, no when by position.
        encoding: the text encoding.

    Raises:
        KeyError: a field name that is not in the header (the message lists the columns).
        ValueError: a row too short for a positional field (the message gives its line).
    """
    path = Path(path)
    if delimiter is None:
        delimiter = "\t" if _plain_suffix(path) in (".tsv", ".tab") else ","
    fields = [text_field] if label_field is None else [text_field, label_field]
    if has_header is None:
        has_header = any(isinstance(f, str) for f in fields)
    with open_text(path, encoding) as f:
        rows = csv.reader(f, delimiter=delimiter)
        header = next(rows, None) if has_header else None
        cols = [_column(field, header, path) for field in fields]
        out: list[Any] = []
        for row in rows:
            if not row:
                continue  # blank line
            if max(cols) >= len(row):
                raise ValueError(
                    f"{path}:{rows.line_num}: row has {len(row)} fields, column {max(cols)} needed"
                )
            values = [row[c] for c in cols]
            out.append(values[0] if label_field is None else (values[0], values[1]))
    return out


def _column(field: str | int, header: list[str] | None, path: Path) -> int:
    if isinstance(field, int):
        return field
    if header is None:
        raise KeyError(f"field {field!r} given by name, but {path} is read without a header")
    if field not in header:
        raise KeyError(f"no column {field!r} in {path}; columns are {header}")
    return header.index(field)


# ---------------------------------------------------------------------------------- CoNLL


def read_conll(
    path: str | Path, token_column: int = 0, tag_column: int = -1, encoding: str = "utf-8"
) -> list[tuple[list[str], list[str]]]:
    """Sentences of a CoNLL-style column file (one token per line, blank lines between).

    Columns are split on tabs when the line has one, else on runs of spaces. Lines that are
    empty or hold only whitespace end a sentence; several in a row, and trailing spaces,
    are tolerated. ``-DOCSTART-`` lines (CoNLL-2003) are skipped.

    Args:
        path: the file; ``.gz``, ``.bz2`` and ``.xz`` are decompressed.
        token_column: the column holding the word.
        tag_column: the column holding the tag (the last one by default).
        encoding: the text encoding.

    Returns:
        ``[(tokens, tags), ...]``, one pair per sentence.

    Raises:
        ValueError: a token line without the tag column (the message gives its line).
    """
    sentences: list[tuple[list[str], list[str]]] = []
    tokens: list[str] = []
    tags: list[str] = []
    with open_text(path, encoding) as f:
        for lineno, raw in enumerate(f, 1):
            line = raw.rstrip()
            if not line.strip():
                if tokens:
                    sentences.append((tokens, tags))
                    tokens, tags = [], []
                continue
            cols = line.split("\t") if "\t" in line else line.split()
            if cols[0].startswith("-DOCSTART-"):
                continue
            try:
                token, tag = cols[token_column], cols[tag_column]
            except IndexError:
                raise ValueError(
                    f"{path}:{lineno}: expected columns {token_column} and {tag_column}, "
                    f"got {len(cols)}: {line!r}"
                ) from None
            if len(cols) < 2:
                raise ValueError(f"{path}:{lineno}: a token without a tag: {line!r}")
            tokens.append(token.strip())
            tags.append(tag.strip())
    if tokens:
        sentences.append((tokens, tags))
    return sentences


# --------------------------------------------------------------------------- word vectors


class Vectors:
    """Pretrained word vectors: ``itos`` (tokens), ``stoi`` and a ``(n, dim)`` NumPy matrix.

    Raises:
        ValueError: the matrix is not 2-D or has a row count that differs from the tokens'.
    """

    def __init__(self, itos: Sequence[str], vectors: np.ndarray) -> None:
        if vectors.ndim != 2 or vectors.shape[0] != len(itos):
            raise ValueError(
                f"{len(itos)} tokens need a ({len(itos)}, dim) matrix, got {vectors.shape}"
            )
        self.itos = list(itos)
        self.stoi: dict[str, int] = {}
        for i, tok in enumerate(self.itos):
            self.stoi.setdefault(tok, i)  # the first vector of a repeated token wins
        self.vectors = vectors

    @property
    def dim(self) -> int:
        """The vectors' dimension."""
        return int(self.vectors.shape[1])

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __getitem__(self, token: str) -> np.ndarray:
        """The token's vector; zeros for an unknown token, as TorchText."""
        idx = self.stoi.get(token)
        return np.zeros(self.dim, self.vectors.dtype) if idx is None else self.vectors[idx]

    def get_vecs_by_tokens(
        self, tokens: Iterable[str], lower_case_backup: bool = False
    ) -> tracer.Tensor:
        """A ``(len(tokens), dim)`` tensor of vectors (zeros for unknown tokens).

        With ``lower_case_backup``, a token not found is looked up again lowercased.
        """
        rows = []
        for tok in tokens:
            if lower_case_backup and tok not in self.stoi:
                tok = tok.lower()
            rows.append(self[tok])
        return tracer.as_tensor(np.stack(rows) if rows else np.zeros((0, self.dim), np.float32))


def read_word_vectors(
    path: str | Path,
    max_vectors: int | None = None,
    encoding: str = "utf-8",
    dtype: Any = np.float32,
) -> Vectors:
    """GloVe or word2vec vectors from a text file (``token v1 v2 ...`` per line).

    A word2vec header (``count dim`` on the first line) is recognised and skipped. Tokens
    may hold spaces (GloVe 840B): the last ``dim`` fields of a line are the vector.

    Args:
        path: the file; ``.gz``, ``.bz2`` and ``.xz`` are decompressed.
        max_vectors: read only the first this many vectors.
        encoding: the text encoding.
        dtype: the matrix's dtype.

    Raises:
        ValueError: a line with too few numbers or a non-numeric value (with its line).
    """
    itos: list[str] = []
    rows: list[np.ndarray] = []
    dim: int | None = None
    with open_text(path, encoding) as f:
        for lineno, raw in enumerate(f, 1):
            if max_vectors is not None and len(rows) >= max_vectors:
                break
            parts = raw.rstrip("\r\n ").split(" ")
            if parts == [""]:
                continue
            if lineno == 1 and len(parts) == 2 and all(p.isdigit() for p in parts):
                dim = int(parts[1])  # word2vec's "count dim" header
                continue
            if dim is None:
                dim = len(parts) - 1
            if len(parts) <= dim or dim < 1:
                raise ValueError(f"{path}:{lineno}: expected a token and {dim} numbers")
            try:
                rows.append(np.array(parts[-dim:], dtype=dtype))
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: {e}") from None
            itos.append(" ".join(parts[:-dim]))
    matrix = np.stack(rows) if rows else np.zeros((0, dim or 0), dtype)
    return Vectors(itos, matrix)


def _read_token_list(path: Path) -> list[str]:
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise ImportError(f"reading {path} needs pyarrow: pip install pyarrow") from None
        table = pq.read_table(path)
        names = [n for n in table.column_names if not n.startswith("__")]
        for preferred in ("token", "word", "vocab", "index"):
            if preferred in names:
                return [str(t) for t in table.column(preferred).to_pylist()]
        if len(names) == 1:
            return [str(t) for t in table.column(names[0]).to_pylist()]
        raise ValueError(f"{path}: cannot tell which of the columns {names} holds the tokens")
    if suffix == ".json":
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, dict):  # token -> index
            return [t for t, _ in sorted(data.items(), key=lambda kv: kv[1])]
        return [str(t) for t in data]
    with open_text(path) as f:
        return [line.rstrip("\r\n") for line in f]


def load_npy_embeddings(
    npy_path: str | Path, vocab: str | Path | Sequence[str], mmap: bool = False
) -> Vectors:
    """Vectors from a ``.npy`` matrix whose row ``i`` belongs to the vocabulary's token ``i``.

    Args:
        npy_path: the ``(n, dim)`` matrix.
        vocab: the ``n`` tokens, as a list, or a file: ``.txt`` (one per line), ``.json``
            (a list, or token -> row), or ``.parquet`` (its token column; needs pyarrow).
        mmap: memory-map the matrix instead of reading it.

    Raises:
        ValueError: the matrix and vocabulary sizes differ.
    """
    tokens = list(vocab) if not isinstance(vocab, str | Path) else _read_token_list(Path(vocab))
    matrix = np.load(npy_path, mmap_mode="r" if mmap else None, allow_pickle=False)
    if matrix.ndim != 2 or matrix.shape[0] != len(tokens):
        raise ValueError(
            f"{npy_path} holds a {matrix.shape} matrix but the vocabulary has {len(tokens)} tokens"
        )
    return Vectors(tokens, matrix)


def build_embedding_matrix(
    vocab: Vocab | Sequence[str],
    vectors: Vectors,
    std: float = 0.1,
    seed: int = 0,
    lower_case_backup: bool = True,
    padding_idx: int | None = None,
) -> tracer.Tensor:
    """A float32 ``(len(vocab), dim)`` embedding matrix initialised from pretrained vectors.

    Row ``i`` is the vector of the vocabulary's token ``i``; tokens without one (after a
    lowercased retry when ``lower_case_backup``) get ``N(0, std^2)`` values from a generator
    seeded with ``seed``; the ``padding_idx`` row, when given, is zeros. Pass the result to
    ``nn.Embedding.from_pretrained``.
    """
    itos = vocab.get_itos() if isinstance(vocab, Vocab) else list(vocab)
    rng = np.random.default_rng(seed)
    out = rng.normal(0.0, std, size=(len(itos), vectors.dim)).astype(np.float32)
    for i, tok in enumerate(itos):
        idx = vectors.stoi.get(tok)
        if idx is None and lower_case_backup:
            idx = vectors.stoi.get(tok.lower())
        if idx is not None:
            out[i] = vectors.vectors[idx]
    if padding_idx is not None:
        out[padding_idx] = 0.0
    return tracer.from_numpy(out)
