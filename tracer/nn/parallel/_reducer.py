"""The gradient reducer of ``DistributedDataParallel``: buckets, all-reduced during backward.

Parameters are grouped into buckets of at most ``bucket_cap_mb`` (the first one smaller, so
that communication starts early), in the reverse of their registration order: roughly the
order in which backward finishes their gradients. Each parameter's post-accumulate-grad
hook copies its ``.grad`` into its bucket's flat buffer; once a bucket is full, a
non-blocking all-reduce (MPI ``Iallreduce``) starts on it while backward goes on. Buckets
start in index order on every rank, so all ranks issue the same collectives in the same
order, as MPI requires. When backward ends (a final callback), the buckets still waiting
start, all are waited for, and each ``.grad`` becomes the average over the ranks.

A parameter this backward did not reach contributes its ``.grad`` (or zeros without one);
each bucket carries one extra slot per parameter counting the ranks that had a gradient,
so a parameter no rank used keeps ``.grad`` None, as in single-process training.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tracer import distributed as dist
from tracer._hooks import RemovableHandle, queue_callback
from tracer._tensor_base import wrap

FIRST_BUCKET_BYTES = 1024 * 1024
"""The first bucket's size limit (PyTorch's ``dist._DEFAULT_FIRST_BUCKET_BYTES``)."""


class Bucket:
    """Parameters whose gradients travel in one flat buffer (one dtype).

    Attributes:
        params: the parameters, in the order their slices sit in ``buffer``.
        offsets: each parameter's ``(start, stop)`` in ``buffer``.
        buffer: the gradients, then one "had a gradient" count per parameter.
    """

    def __init__(self, params: list[Any]) -> None:
        self.params = params
        self.offsets: list[tuple[int, int]] = []
        start = 0
        for p in params:
            self.offsets.append((start, start + p._data.size))
            start += p._data.size
        self.numel = start
        self.buffer = np.zeros(start + len(params), dtype=params[0]._data.dtype)
        self.ready = [False] * len(params)
        self.missing = len(params)
        self.work: dist.Work | None = None

    def reset(self) -> None:
        """Ready for the next backward: no gradient copied in, nothing in flight."""
        self.ready = [False] * len(self.params)
        self.missing = len(self.params)
        self.work = None

    def put(self, i: int) -> None:
        """Copy parameter ``i``'s ``.grad`` (or zeros) into the buffer, once per backward."""
        if self.ready[i]:
            return
        p, (start, stop) = self.params[i], self.offsets[i]
        has = p.grad is not None
        if has:
            self.buffer[start:stop] = p.grad._data.reshape(-1)
        else:
            self.buffer[start:stop] = 0
        self.buffer[self.numel + i] = 1 if has else 0
        self.ready[i] = True
        self.missing -= 1

    def write_back(self, world: int) -> None:
        """Set each ``.grad`` to the average; a parameter no rank had a gradient for skips."""
        sums = self.buffer[: self.numel]
        np.divide(sums, sums.dtype.type(world), out=sums)
        for i, (p, (start, stop)) in enumerate(zip(self.params, self.offsets, strict=True)):
            if self.buffer[self.numel + i] == 0:
                continue
            avg = sums[start:stop].reshape(p._data.shape)
            if p.grad is None:
                p.grad = wrap(avg.copy())
            else:
                np.copyto(p.grad._data, avg)
                p.grad._bump_version()


def assign_buckets(params: Sequence[Any], cap_bytes: int, first_bytes: int) -> list[list[int]]:
    """Indices into ``params`` per bucket, last parameter first, one dtype per bucket.

    Args:
        params: the parameters, in registration order.
        cap_bytes: a bucket's size limit (a larger parameter gets a bucket of its own).
        first_bytes: the first bucket's limit.
    """
    buckets: list[list[int]] = []
    open_: dict[np.dtype, tuple[list[int], int]] = {}  # dtype -> (bucket, bytes so far)
    for i in reversed(range(len(params))):
        data = params[i]._data
        members, size = open_.get(data.dtype, ([], 0))
        members.append(i)
        size += data.nbytes
        limit = first_bytes if not buckets else cap_bytes
        if size >= limit:
            buckets.append(members)
            members, size = [], 0
        open_[data.dtype] = (members, size)
    buckets += [members for members, _ in open_.values() if members]
    return buckets


class Reducer:
    """All-reduces the gradients of ``params`` across ``group`` during backward.

    Args:
        params: the parameters that require grad, in registration order.
        group: the process group.
        bucket_cap_mb: a bucket's size limit in MiB.
    """

    def __init__(self, params: Sequence[Any], group: dist.ProcessGroup, bucket_cap_mb: float):
        self.group = group
        cap = int(bucket_cap_mb * 1024 * 1024)
        assignment = assign_buckets(params, cap, min(cap, FIRST_BUCKET_BYTES))
        self.buckets = [Bucket([params[i] for i in members]) for members in assignment]
        self.armed = False  # set by a forward that will sync; cleared when backward ends
        self._queued = False
        self._next = 0  # the next bucket to start; buckets start in index order
        # Per bucket of the last backward: how many gradients were still to come as it started.
        self.still_to_come: list[int] = []
        self.handles: list[RemovableHandle] = []
        for b, bucket in enumerate(self.buckets):
            for i, p in enumerate(bucket.params):
                hook = self._hook(b, i)
                self.handles.append(p.register_post_accumulate_grad_hook(hook))

    def prepare_for_backward(self) -> None:
        """Arm the hooks for the next backward (called by each forward that syncs)."""
        if self._queued:  # a forward inside a backward (rare): leave that backward alone
            return
        for bucket in self.buckets:
            bucket.reset()
        self._next = 0
        self.still_to_come = []
        self.armed = True

    def _hook(self, b: int, i: int) -> Any:
        def hook(_: Any) -> None:
            if not self.armed:
                return
            if not self._queued:
                queue_callback(self._finish)
                self._queued = True
            self.buckets[b].put(i)
            self._launch_ready()
            for bucket in self.buckets[: self._next]:  # let MPI progress what is in flight
                if bucket.work is not None:
                    bucket.work.is_completed()

        return hook

    def _launch_ready(self) -> None:
        while self._next < len(self.buckets) and self.buckets[self._next].missing == 0:
            self._launch(self.buckets[self._next])
            self._next += 1

    def _launch(self, bucket: Bucket) -> None:
        self.still_to_come.append(sum(b.missing for b in self.buckets))
        bucket.work = dist.all_reduce(wrap(bucket.buffer), group=self.group, async_op=True)

    def _finish(self) -> None:
        """End of backward: start what is left, wait for everything, write the averages."""
        self._queued = False
        self.armed = False
        for bucket in self.buckets[self._next :]:
            for i in range(len(bucket.params)):
                bucket.put(i)
        self._launch_ready()
        world = self.group.size()
        for bucket in self.buckets:
            assert bucket.work is not None
            bucket.work.wait()
            bucket.write_back(world)

    def remove(self) -> None:
        """Unregister every hook."""
        for handle in self.handles:
            handle.remove()
        self.handles.clear()


def average_arrays(arrays: Sequence[np.ndarray], group: dist.ProcessGroup, cap_bytes: int) -> None:
    """Average ``arrays`` over the ranks of ``group``, in place, in flat buckets.

    Every rank must pass arrays of the same shapes and dtypes in the same order. All
    buckets are started before the first is waited for.
    """
    world = group.size()
    pending = []
    for members in assign_buckets([wrap(a) for a in arrays], cap_bytes, cap_bytes):
        flat = np.concatenate([arrays[i].reshape(-1) for i in members])
        work = dist.all_reduce(wrap(flat), group=group, async_op=True)
        pending.append((members, flat, work))
    for members, flat, work in pending:
        assert work is not None
        work.wait()
        flat /= world
        start = 0
        for i in members:
            a = arrays[i]
            np.copyto(a, flat[start : start + a.size].reshape(a.shape))
            start += a.size
