"""A save killed at any step leaves the previous state or the new one, never a mix.

A forked child replaces ``os.fsync``, ``os.replace`` and ``os.unlink`` with counters that
``os._exit`` at step N; the parent then loads what is on disk. N runs from 0 until the child
completes, so every step of the save is a kill point. The next save removes what a killed
one left (temporary files, orphaned data files).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import export
import tracer
from export.onnx import writer
from ir.graph import Graph
from ir.ops.registry import op
from tracer.serialization import load, save

KILLED = 17


def _killed_at(step: int, save_new: Callable[[], None]) -> bool:
    """Run ``save_new`` in a forked child killed before its ``step``-th file operation.

    Returns:
        Whether the child completed (the save had fewer steps).
    """
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        try:
            count = [0]

            def counted(real: Callable[..., Any]) -> Callable[..., Any]:
                def run(*args: Any, **kwargs: Any) -> Any:
                    if count[0] == step:
                        os._exit(KILLED)
                    count[0] += 1
                    return real(*args, **kwargs)

                return run

            os.fsync = counted(os.fsync)  # type: ignore[assignment]
            os.replace = counted(os.replace)  # type: ignore[assignment]
            os.unlink = counted(os.unlink)  # type: ignore[assignment]
            save_new()
            os._exit(0)
        except BaseException:
            os._exit(1)
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    assert code in (0, KILLED), f"the child failed (status {code}) at step {step}"
    return code == 0


def _graph(value: float) -> Graph:
    """Two weights that go to external data and one that stays inline, all ``value``."""
    g = Graph("g")
    x = g.add_input("x", np.float32, ("batch", 300))
    w1 = g.add_initializer("w1", np.full((300, 4), value, np.float32))
    w2 = g.add_initializer("w2", np.full((300, 4), value, np.float32))
    b = g.add_initializer("b", np.full(4, value, np.float32))
    y = op.Add(op.Add(op.MatMul(x, w1), op.MatMul(x, w2)), b)
    g.set_outputs([y])
    return g


def _state(path: Path) -> float:
    """The one value every weight of the model at ``path`` holds (a mix fails)."""
    graph = export.load(path)
    values = {float(np.unique(v.const)[0]) for v in graph.initializers.values()}
    assert len(values) == 1, f"weights of two saves mixed: {values}"
    return values.pop()


def test_export_save_with_external_data_killed_at_every_step(tmp_path: Path) -> None:
    seen = []
    for step in range(100):
        folder = tmp_path / str(step)
        folder.mkdir()
        path = folder / "m.onnx"
        writer.save(_graph(1.0), path, external_data=True)
        new = functools.partial(writer.save, _graph(2.0), path, external_data=True)
        completed = _killed_at(step, new)
        seen.append(_state(path))
        assert seen[-1] in ((2.0,) if completed else (1.0, 2.0))
        writer.save(_graph(3.0), path, external_data=True)  # sweeps what the kill left
        (data,) = writer.data_files(path)
        assert sorted(os.listdir(folder)) == ["m.onnx", data.name]
        assert _state(path) == 3.0
        if completed:
            break
    # fsyncs and renames of the data and the model, removal of the old data: kill points,
    # the early ones leaving the old model, the late ones the new
    assert len(seen) >= 6 and seen[0] == 1.0 and seen[-2] == 2.0, seen


def test_export_save_over_an_inline_model_killed_at_every_step(tmp_path: Path) -> None:
    for step in range(100):
        folder = tmp_path / str(step)
        folder.mkdir()
        path = folder / "m.onnx"
        writer.save(_graph(1.0), path, external_data=True)
        new = functools.partial(writer.save, _graph(2.0), path, external_data=False)
        completed = _killed_at(step, new)
        assert _state(path) in ((2.0,) if completed else (1.0, 2.0))
        if completed:  # the old data file went with the old model
            assert os.listdir(folder) == ["m.onnx"]
            break


def _old_and_new() -> tuple[dict[str, Any], dict[str, Any]]:
    old = {"w": tracer.ones(3), "epoch": 1, "nested": [tracer.zeros(2), {"lr": 0.1}]}
    new = {"w": tracer.full((3,), 2.0), "epoch": 2, "nested": [tracer.ones(2), {"lr": 0.2}]}
    return old, new


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, tracer.Tensor):
        return isinstance(b, tracer.Tensor) and np.array_equal(a.numpy(), b.numpy())
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(map(_same, a, b))
    return bool(a == b)


@pytest.mark.parametrize("legacy", [False, True], ids=["checkpoint", "checkpoint-with-sidecar"])
def test_tracer_save_killed_at_every_step(tmp_path: Path, legacy: bool) -> None:
    old, new = _old_and_new()
    seen = []
    for step in range(100):
        folder = tmp_path / str(step)
        folder.mkdir()
        path = folder / "ckpt.safetensors"
        save(old, path)
        if legacy:  # an earlier graphcap's sidecar beside it, describing nothing now
            (folder / "ckpt.safetensors.json").write_text(
                '{"format": "graphcap-checkpoint", "version": 1, "checkpoint_id": "x", '
                '"object": {}}'
            )
        completed = _killed_at(step, functools.partial(save, new, path))
        loaded = load(path)
        seen.append("new" if _same(loaded, new) else "old" if _same(loaded, old) else "mix")
        assert seen[-1] == "new" if completed else seen[-1] in ("old", "new")
        save(new, path)  # sweeps what the kill left
        assert os.listdir(folder) == ["ckpt.safetensors"]
        if completed:
            break
    # fsync, rename (and the old sidecar's removal, then the folder's fsync): kill points
    assert seen[0] == "old" and seen[-2] == "new" and len(seen) >= 3, seen
