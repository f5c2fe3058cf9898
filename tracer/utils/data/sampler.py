"""Samplers with ``torch.utils.data.sampler``'s names and semantics.

Random samplers draw from ``generator`` (a ``tracer.Generator``), or from the global
generator ``tracer.manual_seed`` seeds; graphcap's ``seed=`` is shorthand for a generator
of the sampler's own, so its sequence of epochs is reproducible.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np

import tracer
from tracer._creation import Generator


def _own_generator(generator: Generator | None, seed: int | None) -> Generator | None:
    return Generator().manual_seed(seed) if seed is not None else generator


class Sampler:
    """Yields dataset indices (or, for batch samplers, lists of them)."""

    def __init__(self, data_source: Any = None) -> None:
        pass

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
    """A fresh random order of the indices each epoch (or draws with ``replacement``).

    Args:
        data_source: the dataset (only its length is used).
        replacement: draw ``num_samples`` indices independently instead of permuting.
        num_samples: how many indices per epoch (default ``len(data_source)``).
        generator: the ``tracer.Generator`` to draw from (default: the global one).
        seed: graphcap's shorthand for a generator owned by the sampler.

    Raises:
        ValueError: a non-positive ``num_samples``.
    """

    def __init__(
        self,
        data_source: Any,
        replacement: bool = False,
        num_samples: int | None = None,
        generator: Generator | None = None,
        *,
        seed: int | None = None,
    ) -> None:
        self.data_source, self.replacement = data_source, replacement
        self._num_samples = num_samples
        self.generator = _own_generator(generator, seed)
        if not isinstance(self.num_samples, int) or self.num_samples <= 0:
            raise ValueError(
                f"num_samples should be a positive integer value, but got {self.num_samples}"
            )

    @property
    def num_samples(self) -> int:
        """Indices per epoch."""
        return len(self.data_source) if self._num_samples is None else self._num_samples

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        if self.replacement:
            draws = tracer.randint(n, (self.num_samples,), generator=self.generator)
            yield from draws.tolist()
            return
        # tracer.randperm looked up at call time, so the port harness can replay draws.
        for _ in range(self.num_samples // n):
            yield from tracer.randperm(n, generator=self.generator).tolist()
        yield from tracer.randperm(n, generator=self.generator).tolist()[: self.num_samples % n]

    def __len__(self) -> int:
        return self.num_samples


class SubsetRandomSampler(Sampler):
    """The given indices, in a fresh random order each epoch."""

    def __init__(self, indices: Sequence[int], generator: Generator | None = None) -> None:
        self.indices, self.generator = list(indices), generator

    def __iter__(self) -> Iterator[int]:
        for i in tracer.randperm(len(self.indices), generator=self.generator).tolist():
            yield self.indices[i]

    def __len__(self) -> int:
        return len(self.indices)


class WeightedRandomSampler(Sampler):
    """``num_samples`` indices drawn with probabilities proportional to ``weights``.

    Raises:
        ValueError: a non-positive ``num_samples``, or ``weights`` that are not 1-d.
    """

    def __init__(
        self,
        weights: Any,
        num_samples: int,
        replacement: bool = True,
        generator: Generator | None = None,
    ) -> None:
        if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples <= 0:
            raise ValueError(f"num_samples should be a positive integer, got {num_samples!r}")
        w = np.asarray(weights.numpy() if isinstance(weights, tracer.Tensor) else weights)
        if w.ndim != 1:
            raise ValueError(f"weights should be a 1d sequence, got shape {list(w.shape)}")
        self.weights = tracer.as_tensor(w.astype(np.float64))
        self.num_samples, self.replacement, self.generator = num_samples, replacement, generator

    def __iter__(self) -> Iterator[int]:
        drawn = tracer.multinomial(
            self.weights, self.num_samples, self.replacement, generator=self.generator
        )
        yield from drawn.tolist()

    def __len__(self) -> int:
        return self.num_samples


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
