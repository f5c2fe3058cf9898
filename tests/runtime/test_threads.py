"""``set_num_threads``: NumPy's BLAS, onnxruntime sessions, compile and compile_step."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from threadpoolctl import threadpool_info

import runtime
import tracer
from runtime import threads
from tracer import nn


@pytest.fixture(autouse=True)
def _restore() -> Iterator[None]:
    before = tracer.get_num_threads()
    yield
    tracer.set_num_threads(before)


def _blas_threads() -> set[int]:
    return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}


def _intra_op(session: Any) -> int:
    return int(session.get_session_options().intra_op_num_threads)


def test_set_num_threads_limits_blas_and_new_sessions() -> None:
    assert tracer.set_num_threads is runtime.set_num_threads
    graph = tracer.trace(lambda x: x * 2.0, (tracer.tensor(np.ones(3, np.float32)),))
    for n in (1, 2):
        tracer.set_num_threads(n)
        assert tracer.get_num_threads() == n
        assert _blas_threads() <= {n}
        session = runtime.Session(graph, backend="onnxruntime")
        assert _intra_op(session._ort.session) == n
    explicit = runtime.Session(graph, backend="onnxruntime", intra_op_threads=1)
    assert _intra_op(explicit._ort.session) == 1


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "2", None])
def test_bad_thread_counts_are_refused(bad: Any) -> None:
    with pytest.raises(ValueError, match="positive int"):
        tracer.set_num_threads(bad)
    if bad is not None:
        with pytest.raises(ValueError, match="num_threads: expected a positive int"):
            tracer.compile(lambda x: x, num_threads=bad)


def test_compile_and_compile_step_take_the_knob() -> None:
    tracer.set_num_threads(2)
    compiled = tracer.compile(lambda x: x * 2.0, num_threads=1)
    compiled(tracer.ones(3))
    (entry,) = compiled._entries.values()
    assert _intra_op(entry.session._ort.session) == 1
    model = nn.Linear(3, 1)
    optimizer = tracer.optim.SGD(model.parameters(), lr=0.1)
    step = tracer.compile_step(lambda x: model(x).sum(), optimizer, model=model, num_threads=1)
    step(tracer.ones(2, 3))
    ((_, runner),) = step._graphs.values()
    assert _intra_op(runner.backend.session) == 1


def test_default_is_one_thread_on_a_busy_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(threads, "_cpus", lambda: 8)
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert threads.default_num_threads() == 4
    monkeypatch.setattr(threads, "_cpus", lambda: 2)
    assert threads.default_num_threads() == 2
    monkeypatch.setattr(threads.os, "getloadavg", lambda: (2.0, 0.5, 0.5))
    assert threads.default_num_threads() == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert threads.default_num_threads() == 3
