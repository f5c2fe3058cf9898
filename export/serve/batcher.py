"""Dynamic batching: requests that wait together run as one batch, on one worker thread.

Each model has a :class:`Batcher`: request handlers ``await batcher.submit(work)``; a worker
coroutine takes the waiting work (up to ``max_batch_size`` rows; a request larger than that
runs as its own batch), runs it on the model's thread and hands every request its own
share of the answers. While a batch runs, new requests queue, so under load batches form
by themselves; ``max_queue_delay`` additionally holds a batch that is not full for up to that
long after its first request arrived, for more to join (0: run what is there at once).

A model whose batches take less than ``INLINE_BELOW`` seconds of CPU time (a running average)
runs them on the event loop itself: handing such a batch to a thread and its answers back costs more
than the batch. Slower models keep the loop free for other requests while they run.

A request whose client gave up (a timeout cancels its future) is dropped before it runs. If a
batch of several requests fails, each request is run again alone, so one bad request cannot
fail the others.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from export.serve.metrics import Metrics

INLINE_BELOW = 0.001
"""Seconds: batches of a model faster than this (on average) run on the event loop."""


@dataclass
class Work:
    """One request's share of a batch.

    Attributes:
        model: the model version that parsed the request (and must run it).
        rows: how many rows (texts, tensor rows) it adds to a batch.
        payload: what the model's ``run_batch`` takes for it.
    """

    model: Any
    rows: int
    payload: Any
    future: asyncio.Future[Any] | None = None
    queued_at: float = field(default_factory=time.perf_counter)


class Batcher:
    """Queues work for one model and runs it in batches on a dedicated thread.

    Args:
        name: the model's name (for metrics and the thread's name).
        max_batch_size: the most rows in one batch (1: no batching).
        max_queue_delay: seconds a batch that is not full waits for more requests.
        metrics: where batch sizes and queue and batch times are recorded.
    """

    def __init__(
        self, name: str, max_batch_size: int, max_queue_delay: float, metrics: Metrics
    ) -> None:
        self.name = name
        self.max_batch_size = max(1, max_batch_size)
        self.max_queue_delay = max(0.0, max_queue_delay)
        self.metrics = metrics
        self._queue: collections.deque[Work] = collections.deque()
        self._rows = 0
        self._wake = asyncio.Event()
        self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"graphcap-{name}")
        self._task: asyncio.Task[None] | None = None
        self._seconds: float | None = None  # running average of the batches' durations

    def start(self) -> None:
        """Start the worker coroutine on the running event loop."""
        self._task = asyncio.get_running_loop().create_task(self._worker())

    async def stop(self, drain: float = 30.0) -> None:
        """Stop the worker once the queue is empty (waiting up to ``drain`` s), then the thread."""
        deadline = time.perf_counter() + drain
        while self._queue and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=True)

    async def submit(self, work: Work, timeout: float | None = None) -> Any:
        """Queue ``work`` and wait for its answer.

        Raises:
            TimeoutError: no answer within ``timeout`` seconds (the work is dropped if it
                has not started).
            Exception: whatever the model raised for this request.
        """
        work.future = asyncio.get_running_loop().create_future()
        self._queue.append(work)
        self._rows += work.rows
        self._wake.set()
        if timeout is None:
            return await work.future
        return await asyncio.wait_for(work.future, timeout)

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._queue:
                await self._hold()
                batch = self._take()
                if not batch:
                    continue
                try:
                    if self._seconds is not None and self._seconds < INLINE_BELOW:
                        self._run(batch, loop)
                        await asyncio.sleep(0)  # let the handlers answer and read new requests
                    else:
                        await loop.run_in_executor(self._executor, self._run, batch, loop)
                except Exception as err:  # a bug here must not leave requests waiting forever
                    _deliver(batch, [err] * len(batch))

    async def _hold(self) -> None:
        """Wait (up to ``max_queue_delay`` after the oldest request) for a full batch."""
        if self.max_queue_delay <= 0:
            return
        deadline = self._queue[0].queued_at + self.max_queue_delay
        while self._rows < self.max_batch_size:
            left = deadline - time.perf_counter()
            if left <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), left)
            except TimeoutError:
                return

    def _take(self) -> list[Work]:
        """The next batch: waiting work of one model version, up to the row limit."""
        batch: list[Work] = []
        rows = 0
        while self._queue:
            work = self._queue[0]
            if work.future is not None and work.future.done():  # timed out or cancelled
                self._queue.popleft()
                self._rows -= work.rows
                continue
            fits = rows + work.rows <= self.max_batch_size or not batch
            if not fits or (batch and work.model is not batch[0].model):
                break
            self._queue.popleft()
            self._rows -= work.rows
            batch.append(work)
            rows += work.rows
        return batch

    def _run(self, batch: list[Work], loop: asyncio.AbstractEventLoop) -> None:
        """Run one batch (on the worker thread, or inline); answers go back to the loop."""
        start, cpu = time.perf_counter(), time.thread_time()
        m = self.metrics
        for work in batch:
            m.queue.observe(m.lock, (self.name,), start - work.queued_at)
        m.batch.observe(m.lock, (self.name,), sum(w.rows for w in batch))
        results = _run_isolated(batch[0].model.run_batch, batch)
        m.compute.observe(m.lock, (self.name,), time.perf_counter() - start)
        # This thread's CPU time, not the wall clock: a busy machine must not make a fast
        # model look slow (onnxruntime's own threads are not counted: slow models use them).
        seconds = time.thread_time() - cpu
        self._seconds = seconds if self._seconds is None else 0.8 * self._seconds + 0.2 * seconds
        loop.call_soon_threadsafe(_deliver, batch, results)


def _run_isolated(run: Callable[[list[Any]], list[Any]], batch: Sequence[Work]) -> list[Any]:
    """``run`` on the whole batch; if that fails, on each request alone."""
    try:
        return run([w.payload for w in batch])
    except Exception as err:
        if len(batch) == 1:
            return [err]
    out = []
    for w in batch:
        try:
            out.append(run([w.payload])[0])
        except Exception as err:
            out.append(err)
    return out


def _deliver(batch: Sequence[Work], results: Sequence[Any]) -> None:
    for work, result in zip(batch, results, strict=True):
        fut = work.future
        if fut is None or fut.done():
            continue  # the client gave up meanwhile
        if isinstance(result, Exception):
            fut.set_exception(result)
        else:
            fut.set_result(result)
