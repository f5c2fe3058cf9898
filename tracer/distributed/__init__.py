"""``tracer.distributed``: ``torch.distributed``'s process group and collectives, on MPI.

Launch one process per worker with MPI's launcher and start the group in each::

    mpirun -n 2 python train.py          # in train.py:
    import tracer.distributed as dist
    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()

``tracer.nn.parallel.DistributedDataParallel`` averages gradients across the processes,
and ``tracer.utils.data.DistributedSampler`` gives each its share of the data. MPI comes
from the optional extra ``pip install 'graphcap[distributed]'`` (mpi4py and Open MPI's
wheels), imported only when a group starts. See ``docs/distributed.md``.
"""

from tracer.distributed.distributed_c10d import (
    Backend,
    ProcessGroup,
    ReduceOp,
    Work,
    all_gather,
    all_gather_object,
    all_reduce,
    barrier,
    broadcast,
    broadcast_object_list,
    destroy_process_group,
    get_backend,
    get_rank,
    get_world_size,
    group,
    init_process_group,
    is_available,
    is_initialized,
    is_mpi_available,
)

__all__ = [
    "Backend",
    "ProcessGroup",
    "ReduceOp",
    "Work",
    "all_gather",
    "all_gather_object",
    "all_reduce",
    "barrier",
    "broadcast",
    "broadcast_object_list",
    "destroy_process_group",
    "get_backend",
    "get_rank",
    "get_world_size",
    "group",
    "init_process_group",
    "is_available",
    "is_initialized",
    "is_mpi_available",
]
