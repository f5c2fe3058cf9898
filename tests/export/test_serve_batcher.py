"""The dynamic batcher of ``graphcap serve`` on its own (no HTTP, no Starlette needed).

A fake model records the batches it is given; the checks are on what ran together, in what
order, and what each request got back.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from export.serve.batcher import Batcher, Work
from export.serve.metrics import Metrics


class Recorder:
    """A model whose answer to each payload is the payload doubled; it records its batches."""

    def __init__(self, seconds: float = 0.0, fail_on: Any = None) -> None:
        self.batches: list[list[Any]] = []
        self.seconds, self.fail_on = seconds, fail_on
        self.lock = threading.Lock()

    def run_batch(self, payloads: list[Any]) -> list[Any]:
        with self.lock:
            self.batches.append(list(payloads))
        time.sleep(self.seconds)
        if self.fail_on in payloads:
            raise ValueError(f"cannot take {self.fail_on!r}")
        return [2 * p for p in payloads]


async def _submit_all(batcher: Batcher, works: list[Work], timeout: float | None = None) -> list:
    return await asyncio.gather(
        *(batcher.submit(w, timeout) for w in works), return_exceptions=True
    )


def _run(coro_fn) -> Any:
    return asyncio.run(coro_fn())


def test_concurrent_requests_form_batches_up_to_the_limit() -> None:
    model = Recorder(seconds=0.05)

    async def main() -> list:
        b = Batcher("m", max_batch_size=4, max_queue_delay=0.0, metrics=Metrics())
        b.start()
        first = asyncio.ensure_future(b.submit(Work(model, 1, 100)))
        await asyncio.sleep(0.01)  # the first batch is running: the next ten wait together
        rest = await _submit_all(b, [Work(model, 1, i) for i in range(10)])
        await b.stop()
        return [await first, *rest]

    answers = _run(main)
    assert answers == [200, *[2 * i for i in range(10)]]
    sizes = [len(batch) for batch in model.batches]
    assert sizes == [1, 4, 4, 2], sizes  # in arrival order, never more than 4 rows


def test_a_request_larger_than_the_limit_runs_as_its_own_batch() -> None:
    model = Recorder(seconds=0.02)

    async def main() -> list:
        b = Batcher("m", max_batch_size=4, max_queue_delay=0.0, metrics=Metrics())
        b.start()
        out = await _submit_all(b, [Work(model, 3, 1), Work(model, 9, 2), Work(model, 1, 3)])
        await b.stop()
        return out

    assert _run(main) == [2, 4, 6]
    assert [2] in model.batches  # the 9-row request alone


def test_the_queue_delay_holds_a_batch_for_more_requests() -> None:
    model = Recorder()

    async def main() -> float:
        b = Batcher("m", max_batch_size=8, max_queue_delay=0.15, metrics=Metrics())
        b.start()
        start = time.perf_counter()
        first = asyncio.ensure_future(b.submit(Work(model, 1, 1)))
        await asyncio.sleep(0.05)
        second = asyncio.ensure_future(b.submit(Work(model, 1, 2)))
        assert await first == 2 and await second == 4
        await b.stop()
        return time.perf_counter() - start

    elapsed = _run(main)
    assert model.batches == [[1, 2]]  # held together
    assert 0.14 <= elapsed < 1.0


def test_a_timed_out_request_is_dropped_before_it_runs() -> None:
    model = Recorder(seconds=0.2)

    async def main() -> list:
        b = Batcher("m", max_batch_size=1, max_queue_delay=0.0, metrics=Metrics())
        b.start()
        busy = asyncio.ensure_future(b.submit(Work(model, 1, 1)))
        await asyncio.sleep(0.02)
        late = await _submit_all(b, [Work(model, 1, 2)], timeout=0.05)
        await busy
        await asyncio.sleep(0.05)
        await b.stop()
        return late

    (late,) = _run(main)
    assert isinstance(late, TimeoutError)
    assert model.batches == [[1]]  # payload 2 never ran


def test_one_bad_request_does_not_fail_its_batch() -> None:
    model = Recorder(seconds=0.02, fail_on=3)

    async def main() -> list:
        b = Batcher("m", max_batch_size=8, max_queue_delay=0.05, metrics=Metrics())
        b.start()
        out = await _submit_all(b, [Work(model, 1, i) for i in range(1, 6)])
        await b.stop()
        return out

    out = _run(main)
    assert out[:2] == [2, 4] and out[3:] == [8, 10]
    assert isinstance(out[2], ValueError) and "cannot take 3" in str(out[2])
    assert model.batches[0] == [1, 2, 3, 4, 5]  # tried together first, then one by one


def test_two_model_versions_never_share_a_batch() -> None:
    old, new = Recorder(seconds=0.02), Recorder(seconds=0.02)

    async def main() -> list:
        b = Batcher("m", max_batch_size=8, max_queue_delay=0.05, metrics=Metrics())
        b.start()
        works = [Work(old, 1, 1), Work(old, 1, 2), Work(new, 1, 3), Work(old, 1, 4)]
        out = await _submit_all(b, works)
        await b.stop()
        return out

    assert _run(main) == [2, 4, 6, 8]
    assert old.batches == [[1, 2], [4]] and new.batches == [[3]]


@pytest.mark.parametrize("rows", [1, 5])
def test_metrics_count_every_row_once(rows: int) -> None:
    model, metrics = Recorder(), Metrics()

    async def main() -> None:
        b = Batcher("m", max_batch_size=8, max_queue_delay=0.0, metrics=metrics)
        b.start()
        await _submit_all(b, [Work(model, rows, i) for i in range(6)])
        await b.stop()

    _run(main)
    text = metrics.render()
    assert f'graphcap_batch_size_sum{{model="m"}} {6 * rows}' in text
    assert 'graphcap_queue_duration_seconds_count{model="m"} 6' in text


def test_a_fast_model_runs_on_the_event_loop_a_slow_one_on_its_thread() -> None:
    threads: dict[str, set[str]] = {"fast": set(), "slow": set()}

    class Named(Recorder):
        def __init__(self, kind: str, seconds: float) -> None:
            super().__init__(seconds)
            self.kind = kind

        def run_batch(self, payloads: list[Any]) -> list[Any]:
            threads[self.kind].add(threading.current_thread().name)
            end = time.thread_time() + self.seconds  # CPU time, as the batcher measures
            while time.thread_time() < end:
                pass
            return [2 * p for p in payloads]

    async def main(model: Named) -> list:
        b = Batcher("m", max_batch_size=1, max_queue_delay=0.0, metrics=Metrics())
        b.start()
        out = await _submit_all(b, [Work(model, 1, i) for i in range(4)])
        await b.stop()
        return out

    assert asyncio.run(main(Named("fast", 0.0))) == [0, 2, 4, 6]
    assert asyncio.run(main(Named("slow", 0.01))) == [0, 2, 4, 6]
    assert "MainThread" in threads["fast"] and len(threads["fast"]) == 2  # the first measures
    assert threads["slow"] == {"graphcap-m_0"}
