"""``tracer.nn.parallel``: ``torch.nn.parallel``'s ``DistributedDataParallel``, on MPI."""

from tracer.nn.parallel.distributed import DistributedDataParallel

__all__ = ["DistributedDataParallel"]
