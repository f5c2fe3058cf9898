"""``DistributedDataParallel``: one model replica per process, gradients averaged in backward.

Each process (``mpirun -n N python train.py``) holds the whole model and trains on its own
share of every global batch (``tracer.utils.data.DistributedSampler``). Wrapping the model
broadcasts rank 0's parameters and buffers, so every replica starts equal; each
``backward()`` then leaves in every ``.grad`` the average of the ranks' gradients (see
``tracer.nn.parallel._reducer``), so the optimizers take the same step everywhere and the
replicas stay equal. With equal shares and a mean loss, that is the gradient of the mean
loss over the global batch: the step single-process training takes on that batch.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from tracer import _state
from tracer import distributed as dist
from tracer.autograd import is_grad_enabled
from tracer.nn.module import Module
from tracer.nn.parallel._reducer import Reducer, average_arrays


class DistributedDataParallel(Module):
    """Data-parallel training of ``module`` across the processes of a process group.

    ``torch.nn.parallel.DistributedDataParallel``'s names: ``ddp.module`` is the wrapped
    model, ``ddp.state_dict()`` has its keys under ``module.`` (save
    ``ddp.module.state_dict()`` for a checkpoint that loads without the wrapper), and
    ``with ddp.no_sync():`` runs forward and backward without communication, to
    accumulate gradients locally over several micro-batches; the first forward and
    backward outside it then averages everything accumulated.

    Gradients travel in buckets of ``bucket_cap_mb`` MiB, each all-reduced (non-blocking)
    as soon as backward has finished its gradients, while the rest of backward runs; the
    end of ``backward()`` waits for the last ones. ``tracer.compile_step(loss_fn,
    optimizer, model=ddp)`` averages the gradients between its backward graph and its
    update instead (see :meth:`reduce_gradients`).

    Parameters no rank used in a backward keep ``.grad`` None; one used by some ranks
    only gets the average with zeros from the others (``find_unused_parameters`` is
    accepted and needs no setting). ``device_ids`` and ``output_device`` must be None
    or CPU (eager tensors live on the CPU); ``dim``, ``check_reduction``,
    ``gradient_as_bucket_view`` and ``static_graph`` are accepted for torch's signature
    and change nothing.

    Args:
        module: the model; every rank must build it with the same parameter shapes.
        broadcast_buffers: broadcast rank 0's buffers (e.g. BatchNorm statistics) at the
            start of each forward, so every replica computes with the same ones.
        process_group: the group (default: the one ``init_process_group`` started).
        bucket_cap_mb: a bucket's size limit in MiB (the first bucket: at most 1 MiB).

    Raises:
        ValueError: no process group; or the ranks' parameters differ in name, shape or
            dtype (the message names the first difference).
    """

    def __init__(
        self,
        module: Module,
        device_ids: Sequence[Any] | None = None,
        output_device: Any = None,
        dim: int = 0,
        broadcast_buffers: bool = True,
        process_group: dist.ProcessGroup | None = None,
        bucket_cap_mb: float | None = None,
        find_unused_parameters: bool = False,
        check_reduction: bool = False,
        gradient_as_bucket_view: bool = False,
        static_graph: bool = False,
    ) -> None:
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel wraps a Module, got {type(module).__name__}")
        for name, value in (("device_ids", device_ids), ("output_device", output_device)):
            if value is not None and value not in ("cpu", [], ["cpu"]):
                raise ValueError(
                    f"DistributedDataParallel({name}={value!r}): eager tensors live on the "
                    f"CPU; leave {name} out"
                )
        self.module = module
        self.dim = dim
        self.broadcast_buffers = broadcast_buffers
        self.find_unused_parameters = find_unused_parameters
        self.process_group = process_group if process_group is not None else _world()
        self.bucket_cap_mb = 25.0 if bucket_cap_mb is None else float(bucket_cap_mb)
        self.require_backward_grad_sync = True
        _check_same_everywhere(module, self.process_group)
        _sync_module_states(module, self.process_group)
        params = [p for p in module.parameters() if p.requires_grad]
        self.reducer = Reducer(params, self.process_group, self.bucket_cap_mb)

    def forward(self, *inputs: Any, **kwargs: Any) -> Any:
        """Run the module; with grad on (outside ``no_sync``), arm the next backward's sync."""
        if _state.tracer is None:  # a capture records the module alone (see compile_step)
            if self.broadcast_buffers:
                _broadcast_buffers(self.module, self.process_group)
            if is_grad_enabled() and self.require_backward_grad_sync:
                self.reducer.prepare_for_backward()
        return self.module(*inputs, **kwargs)

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Forwards inside the block skip gradient sync in their backward (accumulate)."""
        before = self.require_backward_grad_sync
        self.require_backward_grad_sync = False
        try:
            yield
        finally:
            self.require_backward_grad_sync = before

    def reduce_gradients(self, grads: Sequence[np.ndarray]) -> None:
        """Average ``grads`` (arrays) over the ranks, in place, in flat buckets.

        ``tracer.compile_step`` calls it between its backward graph and its update; every
        rank passes the same shapes in the same order.
        """
        average_arrays(grads, self.process_group, int(self.bucket_cap_mb * 1024 * 1024))

    def __del__(self) -> None:
        reducer = self.__dict__.get("reducer")
        if reducer is not None:  # the hooks would otherwise outlive the wrapper
            reducer.remove()


def _world() -> dist.ProcessGroup:
    if not dist.is_initialized():
        raise ValueError(
            "DistributedDataParallel needs a process group: call "
            "tracer.distributed.init_process_group('mpi') first (launch with mpirun -n N)"
        )
    return dist.group.WORLD  # type: ignore[return-value]


def _check_same_everywhere(module: Module, group: dist.ProcessGroup) -> None:
    """Raise when some rank's parameters differ from rank 0's in name, shape or dtype."""
    mine = [(n, tuple(p.shape), str(p.dtype)) for n, p in module.named_parameters()]
    everyone: list[Any] = [None] * group.size()
    dist.all_gather_object(everyone, mine, group=group)
    for rank, theirs in enumerate(everyone):
        if theirs == everyone[0]:
            continue
        diff = next(
            ((a, b) for a, b in zip(everyone[0], theirs, strict=False) if a != b),
            (f"{len(everyone[0])} parameters", f"{len(theirs)}"),
        )
        raise ValueError(
            f"DistributedDataParallel: rank {rank}'s model differs from rank 0's: "
            f"{diff[1]} where rank 0 has {diff[0]}; every rank must build the same model"
        )


def _sync_module_states(module: Module, group: dist.ProcessGroup) -> None:
    """Copy rank 0's parameters and buffers into every rank's, in place."""
    for t in [*module.parameters(), *module.buffers()]:
        dist.broadcast(t, 0, group=group)


def _broadcast_buffers(module: Module, group: dist.ProcessGroup) -> None:
    for b in module.buffers():
        dist.broadcast(b, 0, group=group)
