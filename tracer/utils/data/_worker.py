"""``DataLoader(num_workers=n)``: batches built in ``n`` worker processes, delivered in order.

The main process sends each batch's indices to the workers in turn (at most
``prefetch_factor`` batches per worker in flight) and yields the collated batches in the
sampler's order. Each worker seeds Python's ``random`` and ``tracer.manual_seed`` with
``base_seed + worker_id`` and runs ``worker_init_fn(worker_id)`` first, as PyTorch's do; an
error in a worker is raised in the main process with the worker's traceback. With an
``IterableDataset`` every worker iterates its own copy (shard it with
:func:`get_worker_info`), and batches are taken from the workers in turn until all are done.
"""

from __future__ import annotations

import contextlib
import dataclasses
import multiprocessing
import os
import queue
import random
import traceback
from collections.abc import Callable, Iterator
from typing import Any

import tracer

_POLL_S = 1.0  # how often a waiting side checks that the other is still alive


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    """What :func:`get_worker_info` tells code running in a ``DataLoader`` worker."""

    id: int
    num_workers: int
    seed: int
    dataset: Any


_info: WorkerInfo | None = None


def get_worker_info() -> WorkerInfo | None:
    """The current worker's id, count, seed and dataset copy; None in the main process."""
    return _info


@dataclasses.dataclass
class _Failure:
    worker_id: int
    kind: type[BaseException]
    text: str

    def reraise(self) -> None:
        message = f"Caught {self.kind.__name__} in DataLoader worker process {self.worker_id}.\n"
        message += f"Original {self.text}"
        try:
            err = self.kind(message)
        except Exception:  # an exception type that takes other arguments
            err = RuntimeError(message)
        raise err


@dataclasses.dataclass
class _StreamEnd:
    worker_id: int


@dataclasses.dataclass(frozen=True)
class _Job:
    """What a worker needs: the dataset and how to fetch and collate a batch from it."""

    dataset: Any
    collate_fn: Callable[[Any], Any]
    auto_collation: bool
    iterable: bool
    batch_size: int | None
    drop_last: bool
    worker_init_fn: Callable[[int], Any] | None


def _fetch(job: _Job, stream: Iterator[Any] | None, indices: Any) -> Any:
    if not job.iterable:
        if job.auto_collation:
            return job.collate_fn([job.dataset[i] for i in indices])
        return job.collate_fn(job.dataset[indices])
    assert stream is not None
    if not job.auto_collation:
        return job.collate_fn(next(stream))
    batch = []
    for sample in stream:
        batch.append(sample)
        if len(batch) == job.batch_size:
            break
    if not batch or (job.drop_last and len(batch) < (job.batch_size or 0)):
        raise StopIteration
    return job.collate_fn(batch)


def _worker_loop(
    job: _Job, tasks: Any, results: Any, seed: int, worker_id: int, num_workers: int
) -> None:
    global _info
    parent = os.getppid()
    random.seed(seed)
    tracer.manual_seed(seed)
    _info = WorkerInfo(worker_id, num_workers, seed, job.dataset)
    init_error = None
    try:
        if job.worker_init_fn is not None:
            job.worker_init_fn(worker_id)
    except Exception as err:
        init_error = _Failure(worker_id, type(err), traceback.format_exc())
    stream = iter(job.dataset) if job.iterable and init_error is None else None
    while True:
        try:
            task = tasks.get(timeout=_POLL_S)
        except queue.Empty:
            if os.getppid() != parent:
                return  # the main process is gone
            continue
        if task is None:
            return
        if task == "reset":
            stream = iter(job.dataset) if job.iterable and init_error is None else None
            continue
        idx, indices = task
        if init_error is not None:
            results.put((idx, init_error))
            continue
        try:
            data: Any = _fetch(job, stream, indices)
        except StopIteration:
            data = _StreamEnd(worker_id)
        except Exception as err:
            data = _Failure(worker_id, type(err), traceback.format_exc())
        results.put((idx, data))


class MultiProcessIterator:
    """One pass over a ``DataLoader`` with worker processes (kept between passes if persistent)."""

    def __init__(self, loader: Any) -> None:
        ctx = loader.multiprocessing_context
        if ctx is None or isinstance(ctx, str):
            ctx = multiprocessing.get_context(ctx)
        self._loader = loader
        self._n = loader.num_workers
        self._prefetch = loader.prefetch_factor
        self._timeout = loader.timeout
        job = _Job(
            loader.dataset,
            loader.collate_fn,
            loader._auto_collation,
            loader._iterable,
            loader.batch_size,
            loader.drop_last,
            loader.worker_init_fn,
        )
        base_seed = loader._base_seed()
        self._results = ctx.Queue()
        self._tasks = [ctx.Queue() for _ in range(self._n)]
        self._workers = []
        for wid in range(self._n):
            args = (job, self._tasks[wid], self._results, base_seed + wid, wid, self._n)
            p = ctx.Process(target=_worker_loop, args=args, daemon=True)
            p.start()
            self._workers.append(p)
        self._reset(first=True)

    def _reset(self, first: bool = False) -> None:
        loader = self._loader
        if loader._iterable:
            self._plan: Iterator[Any] = iter(lambda: None, object())  # endless "next batch"
        elif loader.batch_sampler is not None:
            self._plan = iter(loader.batch_sampler)
        else:
            self._plan = iter(loader.sampler)
        if not first and loader._iterable:
            for q in self._tasks:
                q.put("reset")
        self._active = [True] * self._n
        self._next_worker = 0
        self._sent = self._received = 0
        self._owner: dict[int, int] = {}
        self._buffer: dict[int, Any] = {}
        self._exhausted = False
        for _ in range(self._prefetch * self._n):
            self._send()

    def _send(self) -> None:
        if self._exhausted or not any(self._active):
            return
        try:
            indices = next(self._plan)
        except StopIteration:
            self._exhausted = True
            return
        while not self._active[self._next_worker]:
            self._next_worker = (self._next_worker + 1) % self._n
        wid = self._next_worker
        self._next_worker = (wid + 1) % self._n
        self._tasks[wid].put((self._sent, indices))
        self._owner[self._sent] = wid
        self._sent += 1

    def _get(self) -> tuple[int, Any]:
        waited = 0.0
        while True:
            try:
                return self._results.get(timeout=_POLL_S)
            except queue.Empty:
                waited += _POLL_S
                dead = [p.pid for p in self._workers if not p.is_alive()]
                if dead:
                    self.shutdown()
                    raise RuntimeError(
                        f"DataLoader worker (pid(s) {dead}) exited unexpectedly"
                    ) from None
                if self._timeout and waited >= self._timeout:
                    self.shutdown()
                    raise RuntimeError(
                        f"DataLoader timed out after {self._timeout} seconds"
                    ) from None

    def __iter__(self) -> MultiProcessIterator:
        return self

    def __next__(self) -> Any:
        while True:
            if self._received == self._sent:
                if not self._loader.persistent_workers:
                    self.shutdown()
                raise StopIteration
            while self._received not in self._buffer:
                idx, data = self._get()
                self._buffer[idx] = data
            data = self._buffer.pop(self._received)
            self._received += 1
            if isinstance(data, _StreamEnd):
                self._active[data.worker_id] = False
                self._send()
                continue
            self._send()
            if isinstance(data, _Failure):
                self.shutdown()
                data.reraise()
            return data

    def __len__(self) -> int:
        return len(self._loader)

    def shutdown(self) -> None:
        """Stop the workers (idempotent)."""
        for q, p in zip(self._tasks, self._workers, strict=True):
            with contextlib.suppress(OSError, ValueError):  # a queue closed at interpreter exit
                if p.is_alive():
                    q.put(None)
        for p in self._workers:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        self._workers = []
        self._tasks = []

    def __del__(self) -> None:
        if getattr(self, "_workers", None):
            self.shutdown()
