"""``DistributedSampler``: each process' share of a dataset (``torch.utils.data.distributed``)."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import tracer
from tracer._creation import Generator
from tracer.utils.data.sampler import Sampler


class DistributedSampler(Sampler):
    """The indices of rank ``rank`` out of ``num_replicas``: every ``num_replicas``-th one.

    Each epoch the indices are shuffled (with ``shuffle``) by a generator seeded with
    ``seed + epoch``, the same on every rank, so the ranks' shares are disjoint and cover
    the dataset. Without ``drop_last`` the list is padded with its own first indices to a
    multiple of ``num_replicas`` (some samples then appear twice in an epoch); with it, the
    tail is dropped instead. Call ``set_epoch(epoch)`` before each epoch for a new order.

    Args:
        dataset: anything with ``len()``.
        num_replicas: number of processes (default: the process group's world size).
        rank: this process' rank (default: the process group's).
        shuffle: shuffle the indices each epoch.
        seed: the shuffle's seed; must be the same on every rank.
        drop_last: drop the tail instead of padding.

    Raises:
        ValueError: ``rank`` is outside ``[0, num_replicas - 1]``; or no ``num_replicas`` /
            ``rank`` given and no process group initialised.
    """

    def __init__(
        self,
        dataset: Any,
        num_replicas: int | None = None,
        rank: int | None = None,
        shuffle: bool = True,
        seed: int = 0,
        drop_last: bool = False,
    ) -> None:
        if num_replicas is None or rank is None:
            from tracer import distributed as dist

            if not dist.is_initialized():
                raise ValueError(
                    "DistributedSampler: give num_replicas and rank, or call "
                    "tracer.distributed.init_process_group() first"
                )
            num_replicas = dist.get_world_size() if num_replicas is None else num_replicas
            rank = dist.get_rank() if rank is None else rank
        if rank >= num_replicas or rank < 0:
            raise ValueError(
                f"Invalid rank {rank}, rank should be in the interval [0, {num_replicas - 1}]"
            )
        self.dataset, self.num_replicas, self.rank = dataset, num_replicas, rank
        self.epoch, self.shuffle, self.seed, self.drop_last = 0, shuffle, seed, drop_last
        n = len(dataset)
        if drop_last and n % num_replicas != 0:
            self.num_samples = math.ceil((n - num_replicas) / num_replicas)
        else:
            self.num_samples = math.ceil(n / num_replicas)
        self.total_size = self.num_samples * num_replicas

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)
        if self.shuffle:
            g = Generator().manual_seed(self.seed + self.epoch)
            # tracer.randperm looked up at call time, so tests can replay torch's draws.
            indices = tracer.randperm(n, generator=g).tolist()
        else:
            indices = list(range(n))
        if not self.drop_last:
            padding = self.total_size - len(indices)
            if padding <= len(indices):
                indices += indices[:padding]
            else:
                indices += (indices * math.ceil(padding / len(indices)))[:padding]
        else:
            indices = indices[: self.total_size]
        return iter(indices[self.rank : self.total_size : self.num_replicas])

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        """Use ``epoch``'s order next (the same on every rank given the same ``seed``)."""
        self.epoch = epoch
