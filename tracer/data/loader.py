"""Datasets, samplers, collation, padding and ``DataLoader``, with PyTorch's names and semantics.

Single-process: batches are built in the calling thread. Shuffling is deterministic: a
``seed`` gives a generator owned by the sampler, so the sequence of epochs is reproducible;
without one, the shuffle draws from the generator ``tracer.manual_seed`` seeds.
"""

from __future__ import annotations

import collections.abc as cabc
import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

import tracer
from tracer._creation import default_generator

# ------------------------------------------------------------------------------ datasets


class Dataset:
    """A map-style dataset: subclasses define ``__getitem__`` (and ``__len__``)."""

    def __getitem__(self, index: int) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")


class IterableDataset(Dataset):
    """A dataset read as a stream: subclasses define ``__iter__``; there is no indexing."""

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")


class TensorDataset(Dataset):
    """Samples ``(t[i] for t in tensors)`` over tensors or arrays sharing their first dimension.

    Raises:
        ValueError: no tensors, or first dimensions that differ.
    """

    def __init__(self, *tensors: Any) -> None:
        if not tensors:
            raise ValueError("TensorDataset needs at least one tensor")
        sizes = [len(t) for t in tensors]
        if len(set(sizes)) != 1:
            raise ValueError(f"size mismatch between tensors: first dimensions {sizes}")
        self.tensors = tensors

    def __getitem__(self, index: int) -> tuple[Any, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset, self.indices = dataset, list(indices)

    def __getitem__(self, index: int) -> Any:
        return self.dataset[self.indices[index]]

    def __len__(self) -> int:
        return len(self.indices)


def random_split(
    dataset: Any, lengths: Sequence[int | float], seed: int | None = None
) -> list[Subset]:
    """Split ``dataset`` at random into subsets of the given lengths (or fractions summing to 1).

    With fractions, the remainder of the rounding goes to the subsets in turn, as PyTorch does.

    Raises:
        ValueError: lengths that do not add up to ``len(dataset)`` (or fractions to 1).
    """
    n = len(dataset)
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [math.floor(n * f) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
    else:
        counts = [int(x) for x in lengths]
    if sum(counts) != n:
        raise ValueError(f"lengths {list(lengths)} do not add up to the dataset's {n} samples")
    order = _generator(seed).permutation(n).tolist()
    out, start = [], 0
    for c in counts:
        out.append(Subset(dataset, order[start : start + c]))
        start += c
    return out


def _generator(seed: int | None) -> np.random.Generator:
    return default_generator() if seed is None else np.random.default_rng(seed)


# ------------------------------------------------------------------------------ samplers


class Sampler:
    """Yields dataset indices (or, for batch samplers, lists of them)."""

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class SequentialSampler(Sampler):
    """``0, 1, ..., len(data_source) - 1``."""

    def __init__(self, data_source: Any) -> None:
        self.data_source = data_source

    def __iter__(self) -> Iterator[int]:
        return iter(range(len(self.data_source)))

    def __len__(self) -> int:
        return len(self.data_source)


class RandomSampler(Sampler):
    """A fresh random permutation of the indices each epoch.

    Args:
        data_source: the dataset (only its length is used).
        seed: seeds a generator owned by the sampler; ``None`` uses ``tracer``'s global one.
        generator: a NumPy generator to draw from instead.
    """

    def __init__(
        self,
        data_source: Any,
        seed: int | None = None,
        generator: np.random.Generator | None = None,
    ) -> None:
        self.data_source = data_source
        self._rng = (
            generator
            if generator is not None
            else (None if seed is None else np.random.default_rng(seed))
        )

    def __iter__(self) -> Iterator[int]:
        rng = self._rng if self._rng is not None else default_generator()
        return iter(rng.permutation(len(self.data_source)).tolist())

    def __len__(self) -> int:
        return len(self.data_source)


class BatchSampler(Sampler):
    """Groups a sampler's indices into lists of ``batch_size``; the last may be short.

    Raises:
        ValueError: ``batch_size`` is not a positive integer.
    """

    def __init__(self, sampler: Iterable[int], batch_size: int, drop_last: bool) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
            raise ValueError(f"batch_size should be a positive integer, got {batch_size!r}")
        self.sampler, self.batch_size, self.drop_last = sampler, batch_size, drop_last

    def __iter__(self) -> Iterator[list[int]]:
        batch: list[int] = []
        for idx in self.sampler:
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []
        if batch and not self.drop_last:
            yield batch

    def __len__(self) -> int:
        n = len(self.sampler)  # type: ignore[arg-type]
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)


class BucketBatchSampler(Sampler):
    """Batches of similar lengths, so little padding is needed.

    Each epoch: shuffle the indices (when ``shuffle``), cut them into buckets of
    ``bucket_size``, sort each bucket by length, cut the buckets into batches, and shuffle the
    order of the batches. The sort is stable, so equal lengths keep their shuffled order.

    Args:
        lengths: the length of every sample.
        batch_size: samples per batch.
        bucket_size: samples per bucket; defaults to ``100 * batch_size``.
        shuffle: shuffle samples and batches; without it the buckets are taken in order.
        drop_last: drop each bucket's last batch when it is short.
        seed: seeds the sampler's own generator; ``None`` uses ``tracer``'s global one.

    Raises:
        ValueError: a non-positive ``batch_size`` or ``bucket_size``.
    """

    def __init__(
        self,
        lengths: Sequence[int],
        batch_size: int,
        bucket_size: int | None = None,
        shuffle: bool = True,
        drop_last: bool = False,
        seed: int | None = None,
    ) -> None:
        bucket_size = 100 * batch_size if bucket_size is None else bucket_size
        if batch_size <= 0 or bucket_size <= 0:
            raise ValueError(
                f"batch_size and bucket_size must be positive, got {batch_size}, {bucket_size}"
            )
        self.lengths = np.asarray(lengths, dtype=np.int64)
        self.batch_size, self.bucket_size = batch_size, bucket_size
        self.shuffle, self.drop_last = shuffle, drop_last
        self._rng = None if seed is None else np.random.default_rng(seed)

    def _batches(self) -> list[list[int]]:
        rng = self._rng if self._rng is not None else default_generator()
        n = len(self.lengths)
        order = rng.permutation(n) if self.shuffle else np.arange(n)
        batches = []
        for start in range(0, n, self.bucket_size):
            bucket = order[start : start + self.bucket_size]
            bucket = bucket[np.argsort(self.lengths[bucket], kind="stable")]
            for b in range(0, len(bucket), self.batch_size):
                batch = bucket[b : b + self.batch_size].tolist()
                if len(batch) == self.batch_size or not self.drop_last:
                    batches.append(batch)
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())

    def __len__(self) -> int:
        n, total = len(self.lengths), 0
        for start in range(0, n, self.bucket_size):
            size = min(self.bucket_size, n - start)
            total += size // self.batch_size if self.drop_last else -(-size // self.batch_size)
        return total


# ----------------------------------------------------------------------------- collation


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch, as PyTorch's ``default_collate``.

    Tensors are stacked; NumPy arrays and scalars become stacked tensors; Python floats give a
    float64 tensor, ints an int64 one, bools a bool one; strings stay a list; dicts, named
    tuples and sequences are collated field by field (tuples and lists give lists).

    Raises:
        RuntimeError: sequences or tensors of different sizes.
        TypeError: an element of another type.
    """
    elem = batch[0]
    if isinstance(elem, tracer.Tensor):
        shapes = {tuple(t.shape) for t in batch}
        if len(shapes) > 1:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, got shapes {sorted(shapes)}"
            )
        return tracer.stack(list(batch))
    if isinstance(elem, np.ndarray | np.generic) and elem.dtype.kind not in "USOa":
        return tracer.as_tensor(np.stack([np.asarray(b) for b in batch]))
    if isinstance(elem, float):
        return tracer.tensor(list(batch), dtype=tracer.float64)
    if isinstance(elem, int):
        return tracer.tensor(list(batch))
    if isinstance(elem, str | bytes):
        return list(batch)
    if isinstance(elem, cabc.Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch, strict=True)))
    if isinstance(elem, cabc.Sequence):
        if len({len(e) for e in batch}) != 1:
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(list(s)) for s in zip(*batch, strict=True)]
    raise TypeError(
        "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        f"found {type(elem)}"
    )


def default_convert(data: Any) -> Any:
    """One sample with its NumPy arrays turned into tensors (no batching), as PyTorch's."""
    if isinstance(data, np.ndarray) and data.dtype.kind not in "USOa":
        return tracer.as_tensor(data)
    if isinstance(data, cabc.Mapping):
        return {k: default_convert(v) for k, v in data.items()}
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, list):
        return [default_convert(d) for d in data]
    return data


def _as_sequence_tensor(seq: Any) -> tracer.Tensor:
    return seq if isinstance(seq, tracer.Tensor) else tracer.as_tensor(np.asarray(seq))


def pad_sequence(
    sequences: Sequence[Any],
    batch_first: bool = False,
    padding_value: float = 0.0,
    padding_side: str = "right",
) -> tracer.Tensor:
    """Pad tensors of shapes ``(L_i, *)`` to the longest and stack them, as PyTorch's.

    The result is ``(max_L, B, *)``, or ``(B, max_L, *)`` with ``batch_first``. Gradients
    flow to the input tensors. Lists and arrays are accepted and converted.

    Raises:
        ValueError: no sequences, a bad ``padding_side``, or trailing shapes that differ.
    """
    if not sequences:
        raise ValueError("pad_sequence needs at least one sequence")
    if padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right', got {padding_side!r}")
    seqs = [_as_sequence_tensor(s) for s in sequences]
    trailing = {tuple(s.shape[1:]) for s in seqs}
    if len(trailing) > 1 or any(len(s.shape) == 0 for s in seqs):
        raise ValueError(f"sequences must share their trailing shape, got {sorted(trailing)}")
    width = max(s.shape[0] for s in seqs)
    padded = []
    for s in seqs:
        gap = width - s.shape[0]
        if gap:
            fill = tracer.full((gap, *s.shape[1:]), padding_value, dtype=s.dtype)
            s = tracer.cat([s, fill] if padding_side == "right" else [fill, s])
        padded.append(s)
    return tracer.stack(padded, dim=0 if batch_first else 1)


def pad_collate(
    padding_value: int = 0, max_length: int | None = None, batch_first: bool = True
) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A ``collate_fn`` for samples ``(sequence, *rest)``: ``(padded, lengths, *rest)``.

    Each sequence is cut to ``max_length`` (when given), then padded with ``pad_sequence``;
    ``lengths`` is an int64 tensor of the lengths after the cut; the other fields are
    collated with :func:`default_collate`.
    """

    def collate(batch: Sequence[Any]) -> tuple[Any, ...]:
        samples = [b if isinstance(b, tuple | list) else (b,) for b in batch]
        seqs = [_as_sequence_tensor(s[0]) for s in samples]
        if max_length is not None:
            seqs = [s[:max_length] for s in seqs]
        lengths = tracer.tensor([s.shape[0] for s in seqs], dtype=tracer.int64)
        padded = pad_sequence(seqs, batch_first, padding_value)
        rest = [default_collate(list(f)) for f in zip(*(s[1:] for s in samples), strict=True)]
        return (padded, lengths, *rest)

    return collate


# ---------------------------------------------------------------------------- DataLoader


class DataLoader:
    """Iterates over batches of a dataset, as ``torch.utils.data.DataLoader`` (one process).

    Args:
        dataset: a map-style dataset (``__getitem__`` and ``__len__``, e.g. a list) or an
            :class:`IterableDataset`.
        batch_size: samples per batch; ``None`` yields single samples without collation.
        shuffle: a new random order each epoch (map-style datasets only).
        sampler: yields indices; excludes ``shuffle``.
        batch_sampler: yields lists of indices; excludes ``batch_size``, ``shuffle``,
            ``sampler`` and ``drop_last``.
        collate_fn: merges a list of samples; defaults to :func:`default_collate`.
        drop_last: drop the last batch when it is short (so a dataset smaller than
            ``batch_size`` gives no batch at all).
        seed: makes ``shuffle`` reproducible (the loader owns its generator).
        num_workers: must be 0; graphcap loads in the calling process.

    Raises:
        ValueError: incompatible options.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool = False,
        sampler: Iterable[int] | None = None,
        batch_sampler: Iterable[list[int]] | None = None,
        collate_fn: Callable[[Any], Any] | None = None,
        drop_last: bool = False,
        seed: int | None = None,
        num_workers: int = 0,
    ) -> None:
        if num_workers != 0:
            raise ValueError("graphcap's DataLoader is single-process; use num_workers=0")
        self.dataset = dataset
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable and (shuffle or sampler is not None or batch_sampler is not None):
            raise ValueError("an IterableDataset takes no shuffle, sampler or batch_sampler")
        if sampler is not None and shuffle:
            raise ValueError("sampler option is mutually exclusive with shuffle")
        if batch_sampler is not None:
            if batch_size != 1 or shuffle or sampler is not None or drop_last:
                raise ValueError(
                    "batch_sampler option is mutually exclusive with batch_size, shuffle, "
                    "sampler, and drop_last"
                )
            batch_size = None
        elif batch_size is None and drop_last:
            raise ValueError(
                "batch_size=None option disables auto-batching and is mutually "
                "exclusive with drop_last"
            )
        if sampler is None and not self._iterable:
            sampler = RandomSampler(dataset, seed=seed) if shuffle else SequentialSampler(dataset)
        if batch_size is not None and batch_sampler is None and not self._iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)  # type: ignore[arg-type]
        self.batch_size, self.drop_last, self.sampler = batch_size, drop_last, sampler
        self.batch_sampler = batch_sampler
        self._auto_collation = batch_sampler is not None or (self._iterable and batch_size)
        default = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn or default

    def __iter__(self) -> Iterator[Any]:
        if self._iterable:
            yield from self._iter_stream()
        elif self.batch_sampler is not None:
            for indices in self.batch_sampler:
                yield self.collate_fn([self.dataset[i] for i in indices])
        else:
            for i in self.sampler:  # type: ignore[union-attr]
                yield self.collate_fn(self.dataset[i])

    def _iter_stream(self) -> Iterator[Any]:
        if not self.batch_size:
            for sample in self.dataset:
                yield self.collate_fn(sample)
            return
        batch: list[Any] = []
        for sample in self.dataset:
            batch.append(sample)
            if len(batch) == self.batch_size:
                yield self.collate_fn(batch)
                batch = []
        if batch and not self.drop_last:
            yield self.collate_fn(batch)

    def __len__(self) -> int:
        if self._iterable:
            raise TypeError("an IterableDataset's DataLoader has no length")
        if self.batch_sampler is not None:
            return len(self.batch_sampler)  # type: ignore[arg-type]
        return len(self.sampler)  # type: ignore[arg-type]
