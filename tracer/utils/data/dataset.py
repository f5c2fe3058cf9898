"""Datasets with ``torch.utils.data.dataset``'s names and semantics.

``Dataset`` (map-style: ``__getitem__`` / ``__len__``), ``IterableDataset`` (a stream),
``TensorDataset``, ``ConcatDataset`` (also ``a + b``), ``ChainDataset``, ``Subset`` and
``random_split``, which draws its permutation with ``tracer.randperm`` from ``generator``
(a ``tracer.Generator``) or the global generator ``tracer.manual_seed`` seeds.
"""

from __future__ import annotations

import bisect
import itertools
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from tracer._creation import Generator, randperm


class Dataset:
    """A map-style dataset: subclasses define ``__getitem__`` (and ``__len__``)."""

    def __getitem__(self, index: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} must define __getitem__")

    def __add__(self, other: Dataset) -> ConcatDataset:
        return ConcatDataset([self, other])


class IterableDataset(Dataset):
    """A dataset read as a stream: subclasses define ``__iter__``; there is no indexing.

    With ``DataLoader(num_workers=n)`` every worker iterates its own copy; shard the stream
    with ``get_worker_info()`` (as in PyTorch) or each sample arrives ``n`` times.
    """

    def __iter__(self) -> Iterator[Any]:
        raise NotImplementedError(f"{type(self).__name__} must define __iter__")

    def __add__(self, other: Dataset) -> ChainDataset:  # type: ignore[override]
        return ChainDataset([self, other])


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

    def __getitem__(self, index: Any) -> tuple[Any, ...]:
        return tuple(t[index] for t in self.tensors)

    def __len__(self) -> int:
        return len(self.tensors[0])


class ConcatDataset(Dataset):
    """Map-style datasets one after the other; index ``i`` finds its dataset by bisection.

    Raises:
        ValueError: no datasets.
        TypeError: an ``IterableDataset`` among them (use ``ChainDataset``).
    """

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)
        if not self.datasets:
            raise ValueError("datasets should not be an empty iterable")
        for d in self.datasets:
            if isinstance(d, IterableDataset):
                raise TypeError("ConcatDataset does not support IterableDataset; use ChainDataset")
        self.cumulative_sizes = list(itertools.accumulate(len(d) for d in self.datasets))

    def __len__(self) -> int:
        return self.cumulative_sizes[-1]

    def __getitem__(self, idx: int) -> Any:
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        which = bisect.bisect_right(self.cumulative_sizes, idx)
        if which == len(self.datasets):
            raise IndexError(f"index {idx} is out of range for a dataset of {len(self)} samples")
        start = 0 if which == 0 else self.cumulative_sizes[which - 1]
        return self.datasets[which][idx - start]


class ChainDataset(IterableDataset):
    """Iterable datasets read one after the other."""

    def __init__(self, datasets: Iterable[Any]) -> None:
        self.datasets = list(datasets)

    def __iter__(self) -> Iterator[Any]:
        for d in self.datasets:
            yield from d

    def __len__(self) -> int:
        return sum(len(d) for d in self.datasets)


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset: Any, indices: Sequence[int]) -> None:
        self.dataset, self.indices = dataset, list(indices)

    def __getitem__(self, idx: Any) -> Any:
        if isinstance(idx, list):
            return [self.dataset[self.indices[i]] for i in idx]
        return self.dataset[self.indices[idx]]

    def __len__(self) -> int:
        return len(self.indices)


def _counts(n: int, lengths: Sequence[int | float]) -> list[int]:
    """Lengths, or fractions turned into lengths with the rounding remainder dealt round-robin."""
    if math.isclose(sum(lengths), 1) and sum(lengths) <= 1:
        counts = [math.floor(n * f) for f in lengths]
        for i in range(n - sum(counts)):
            counts[i % len(counts)] += 1
        for i, c in enumerate(counts):
            if c == 0:
                warnings.warn(f"Length of split at index {i} is 0", UserWarning, stacklevel=3)
        return counts
    counts = [int(x) for x in lengths]
    if sum(counts) != n:
        raise ValueError(
            f"lengths {list(lengths)} do not add up to the dataset's {n} samples (nor are "
            "they fractions that add up to 1)"
        )
    return counts


def random_split(
    dataset: Any,
    lengths: Sequence[int | float],
    generator: Generator | None = None,
    *,
    seed: int | None = None,
) -> list[Subset]:
    """Split ``dataset`` at random into subsets of the given lengths (or fractions summing to 1).

    Args:
        dataset: a map-style dataset.
        lengths: sizes that add up to ``len(dataset)``, or fractions that add up to 1.
        generator: the ``tracer.Generator`` to draw the permutation from (default: the
            global one).
        seed: graphcap's shorthand for ``generator=tracer.Generator().manual_seed(seed)``.

    Raises:
        ValueError: lengths that do not add up to ``len(dataset)`` (or fractions to 1).
    """
    if seed is not None:
        generator = Generator().manual_seed(seed)
    counts = _counts(len(dataset), lengths)
    order = randperm(sum(counts), generator=generator).tolist()
    return [
        Subset(dataset, order[end - c : end])
        for c, end in zip(counts, itertools.accumulate(counts), strict=True)
    ]
