"""Batching for text: length-bucketed batches, ``pad_sequence`` and a padding ``collate_fn``.

The generic pieces (datasets, samplers, collation, ``DataLoader``) are PyTorch's, in
``tracer.utils.data``; they are re-exported here so ``tracer.data`` keeps offering them.
Shuffling is deterministic: a ``seed`` gives a generator owned by the sampler, so the
sequence of epochs is reproducible; without one, the shuffle draws from the generator
``tracer.manual_seed`` seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

import tracer
from tracer._creation import default_generator
from tracer.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    Subset,
    TensorDataset,
    default_collate,
    default_convert,
    random_split,
)

__all__ = [
    "BatchSampler",
    "BucketBatchSampler",
    "DataLoader",
    "Dataset",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "TensorDataset",
    "default_collate",
    "default_convert",
    "pad_collate",
    "pad_sequence",
    "random_split",
]


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


# ------------------------------------------------------------------------------- padding


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
