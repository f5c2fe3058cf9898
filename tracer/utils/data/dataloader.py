"""``DataLoader``, with ``torch.utils.data.DataLoader``'s arguments and semantics.

Batches come from a sampler of indices (or a stream, for an ``IterableDataset``) and are
merged by ``collate_fn``. With ``num_workers=0`` they are built in the calling process;
with more, in worker processes (``tracer.utils.data._worker``). Shuffling draws from
``generator`` (a ``tracer.Generator``) or the global generator ``tracer.manual_seed``
seeds; graphcap's ``seed=`` is shorthand for a generator owned by the loader.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from tracer._creation import Generator, _gen
from tracer.utils.data._collate import default_collate, default_convert
from tracer.utils.data._worker import MultiProcessIterator
from tracer.utils.data.dataset import IterableDataset
from tracer.utils.data.sampler import BatchSampler, RandomSampler, SequentialSampler


class DataLoader:
    """Iterates over batches of a dataset.

    Args:
        dataset: a map-style dataset (``__getitem__`` and ``__len__``, e.g. a list) or an
            ``IterableDataset``.
        batch_size: samples per batch; ``None`` yields single samples without collation.
        shuffle: a new random order each epoch (map-style datasets only).
        sampler: yields indices; excludes ``shuffle``.
        batch_sampler: yields lists of indices; excludes ``batch_size``, ``shuffle``,
            ``sampler`` and ``drop_last``.
        num_workers: worker processes that build the batches (0: the calling process).
        collate_fn: merges a list of samples; defaults to ``default_collate``.
        pin_memory: accepted; it has no effect, since eager tensors never go to a GPU.
        drop_last: drop the last batch when it is short.
        timeout: seconds to wait for a worker's batch (0: no limit).
        worker_init_fn: called as ``worker_init_fn(worker_id)`` in each worker first.
        multiprocessing_context: a start method name or context (default: Python's).
        generator: the ``tracer.Generator`` behind shuffling and the workers' seeds.
        prefetch_factor: batches in flight per worker (default 2; workers only).
        persistent_workers: keep the workers between epochs.
        seed: graphcap's shorthand for ``generator=tracer.Generator().manual_seed(seed)``.

    Raises:
        ValueError: incompatible options, as PyTorch's.
    """

    def __init__(
        self,
        dataset: Any,
        batch_size: int | None = 1,
        shuffle: bool | None = None,
        sampler: Iterable[int] | None = None,
        batch_sampler: Iterable[list[int]] | None = None,
        num_workers: int = 0,
        collate_fn: Callable[[Any], Any] | None = None,
        pin_memory: bool = False,
        drop_last: bool = False,
        timeout: float = 0,
        worker_init_fn: Callable[[int], Any] | None = None,
        multiprocessing_context: Any = None,
        generator: Generator | None = None,
        *,
        prefetch_factor: int | None = None,
        persistent_workers: bool = False,
        pin_memory_device: str = "",
        in_order: bool = True,
        seed: int | None = None,
    ) -> None:
        _check_workers(num_workers, timeout, prefetch_factor, persistent_workers)
        if pin_memory:
            warnings.warn(
                "DataLoader: 'pin_memory' has no effect here: eager tensors live on the CPU "
                "and are never copied to a GPU",
                UserWarning,
                stacklevel=2,
            )
        if seed is not None:
            generator = Generator().manual_seed(seed)
        self.dataset, self.num_workers, self.timeout = dataset, num_workers, timeout
        self.pin_memory, self.worker_init_fn, self.generator = pin_memory, worker_init_fn, generator
        self.multiprocessing_context = multiprocessing_context
        self.prefetch_factor = (
            (2 if prefetch_factor is None else prefetch_factor) if num_workers else None
        )
        self.persistent_workers, self.in_order = persistent_workers, in_order
        self._iterable = isinstance(dataset, IterableDataset)
        if self._iterable:
            for name, value in (("shuffle", shuffle), ("sampler", sampler)):
                if value not in (None, False):
                    raise ValueError(
                        f"DataLoader with IterableDataset: expected unspecified {name} option, "
                        f"but got {name}={value!r}"
                    )
            if batch_sampler is not None:
                raise ValueError(
                    "DataLoader with IterableDataset: expected unspecified batch_sampler option"
                )
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
            sampler = (
                RandomSampler(dataset, generator=generator)
                if shuffle
                else SequentialSampler(dataset)
            )
        if batch_size is not None and batch_sampler is None and not self._iterable:
            batch_sampler = BatchSampler(sampler, batch_size, drop_last)  # type: ignore[arg-type]
        self.batch_size, self.drop_last, self.sampler = batch_size, drop_last, sampler
        self.batch_sampler = batch_sampler
        self._auto_collation = batch_sampler is not None or bool(self._iterable and batch_size)
        default = default_collate if self._auto_collation else default_convert
        self.collate_fn = collate_fn or default
        self._workers: MultiProcessIterator | None = None

    def _base_seed(self) -> int:
        """The workers' base seed: drawn from the loader's generator (or the global one)."""
        return int(_gen(self.generator).integers(0, 2**31))

    def __iter__(self) -> Iterator[Any]:
        if self.num_workers == 0:
            # Every pass draws the workers' base seed first, as PyTorch's does, so that a
            # shuffle is the same with and without workers.
            self._base_seed()
            return self._single_process()
        if self.persistent_workers and self._workers is not None:
            self._workers._reset()
            return self._workers
        self._workers = MultiProcessIterator(self)  # draws the base seed first
        return self._workers

    def _single_process(self) -> Iterator[Any]:
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
            if not hasattr(self.dataset, "__len__"):
                raise TypeError("this DataLoader's IterableDataset has no length")
            n = len(self.dataset)
            if self.batch_size is None:
                return n
            return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        if self.batch_sampler is not None:
            return len(self.batch_sampler)  # type: ignore[arg-type]
        return len(self.sampler)  # type: ignore[arg-type]

    def __del__(self) -> None:
        if getattr(self, "_workers", None) is not None:
            self._workers.shutdown()  # type: ignore[union-attr]


def _check_workers(
    num_workers: int, timeout: float, prefetch_factor: int | None, persistent: bool
) -> None:
    if not isinstance(num_workers, int) or num_workers < 0:
        raise ValueError(
            "num_workers option should be non-negative; use num_workers=0 to disable "
            "multiprocessing."
        )
    if timeout < 0:
        raise ValueError("timeout option should be non-negative")
    if num_workers == 0 and prefetch_factor is not None:
        raise ValueError(
            "prefetch_factor option could only be specified in multiprocessing. Let "
            "num_workers > 0 to enable multiprocessing, otherwise set prefetch_factor to None."
        )
    if prefetch_factor is not None and prefetch_factor < 1:
        raise ValueError(f"prefetch_factor option should be positive, got {prefetch_factor}")
    if persistent and num_workers == 0:
        raise ValueError("persistent_workers option needs num_workers > 0")
