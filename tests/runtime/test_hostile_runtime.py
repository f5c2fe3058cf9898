"""Hostile models and feeds at run time: no crash of the process, no unbounded work.

The onnxruntime crashes run in a subprocess, so a regression shows as a failing test (a
negative return code: the signal) rather than a dead test worker.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import export
from ir.errors import GraphcapError, ShapeError
from ir.graph import Graph
from ir.ops.registry import op
from ir.types import TensorType
from runtime import Interpreter, Session
from runtime.errors import FeedError
from runtime.signature import Signature

ROOT = Path(__file__).resolve().parents[2]
F, I64 = TensorProto.FLOAT, TensorProto.INT64


def _save(path: Path, nodes: list[Any], inputs: list[Any], outputs: list[Any], opset: int) -> Path:
    graph = helper.make_graph(nodes, "g", inputs, outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    onnx.save(model, path)
    return path


def _stft_model(path: Path) -> Path:
    """A valid STFT model whose frame step and frame length are fed at run time."""
    node = helper.make_node("STFT", ["x", "step", "", "len"], ["y"], onesided=1)
    inputs = [
        helper.make_tensor_value_info("x", F, [1, "n", 1]),
        helper.make_tensor_value_info("step", I64, []),
        helper.make_tensor_value_info("len", I64, []),
    ]
    return _save(path, [node], inputs, [helper.make_tensor_value_info("y", F, None)], 17)


def _attention_model(path: Path) -> Path:
    """A valid Attention model whose past_value declares no shape."""
    node = helper.make_node("Attention", ["q", "k", "v", "", "pk", "pv"], ["y", "pko", "pvo"])
    inputs = [helper.make_tensor_value_info(n, F, [1, 2, 3, 4]) for n in "qkv"]
    inputs += [
        helper.make_tensor_value_info("pk", F, [1, 2, "past", 4]),
        helper.make_tensor_value_info("pv", F, None),
    ]
    outputs = [helper.make_tensor_value_info(n, F, None) for n in ("y", "pko", "pvo")]
    return _save(path, [node], inputs, outputs, 23)


_CHILD = """
import sys
sys.path.insert(0, {root!r})
import numpy as np
from runtime import Session
from runtime.errors import FeedError
session = Session({model!r}, backend="onnxruntime")
r = np.random.default_rng(0)
good, bad = {good}, {bad}
print("good", sorted(session.run(good)), flush=True)
try:
    session.run(bad)
except FeedError as err:
    print("refused:", err, flush=True)
print("good again", sorted(session.run(good)), flush=True)
"""

_STFT_FEEDS = (
    '{"x": np.zeros((1, 16, 1), np.float32), "step": np.array(4), "len": np.array(8)}',
    '{"x": np.zeros((1, 16, 1), np.float32), "step": np.array(4), "len": np.array(0)}',
)
_F = "r.standard_normal({}).astype(np.float32)"
_QKV = ", ".join(f'"{n}": {_F.format((1, 2, 3, 4))}' for n in "qkv")
_ATTENTION_FEEDS = (
    f'{{{_QKV}, "pk": {_F.format((1, 2, 5, 4))}, "pv": {_F.format((1, 2, 5, 4))}}}',
    f'{{{_QKV}, "pk": {_F.format((1, 2, 5, 4))}, "pv": {_F.format((1,))}}}',
)


@pytest.mark.parametrize(
    ("build", "feeds", "reason"),
    [
        (_stft_model, _STFT_FEEDS, "STFT: the frame length must be positive, got 0"),
        (_attention_model, _ATTENTION_FEEDS, "Attention: past_value must be 4-D"),
    ],
    ids=["stft-len-0-SIGFPE", "attention-1d-past-value-abort"],
)
def test_a_bad_request_does_not_kill_the_process(
    tmp_path: Path, build: Any, feeds: tuple[str, str], reason: str
) -> None:
    model = build(tmp_path / "m.onnx")
    script = _CHILD.format(root=str(ROOT), model=str(model), good=feeds[0], bad=feeds[1])
    res = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, f"the process died (status {res.returncode}): {res.stderr}"
    lines = res.stdout.splitlines()
    assert lines[0].startswith("good ") and lines[-1].startswith("good again ")
    refused = "\n".join(lines[1:-1])
    assert refused.startswith("refused: the feeds do not fit node") and reason in refused
    assert "onnxruntime was not asked to run them" in refused


def test_the_guard_checks_each_signature_once(tmp_path: Path, monkeypatch: Any) -> None:
    from runtime import guard

    calls: list[int] = []
    real = guard._problem
    monkeypatch.setattr(guard, "_problem", lambda g, f: calls.append(1) or real(g, f))
    session = Session(_stft_model(tmp_path / "m.onnx"), backend="onnxruntime")
    feeds = {"x": np.zeros((1, 16, 1), np.float32), "step": np.array(4), "len": np.array(8)}
    for _ in range(3):
        session.run(feeds)
    assert len(calls) == 1
    session.run({**feeds, "len": np.array(4)})  # a scalar's value is part of the signature
    assert len(calls) == 2
    with pytest.raises(FeedError, match="frames of 32 samples do not fit a signal of 16"):
        session.run({**feeds, "len": np.array(32)})
    unchecked = Session(tmp_path / "m.onnx", backend="onnxruntime", check_feeds=False)
    assert unchecked._guard is None


def test_feed_check_is_linear_in_the_number_of_inputs() -> None:
    n = 20_000
    f32 = np.dtype(np.float32)
    sig = Signature(tuple((f"x{i}", TensorType(f32, ("batch", 2))) for i in range(n)))
    feeds = {f"x{i}": np.zeros((3, 2), np.float32) for i in range(n)}
    start = time.perf_counter()
    sig.validate(feeds)
    with pytest.raises(FeedError) as info:
        sig.validate({f"y{i}": v for i, v in enumerate(feeds.values())})
    assert time.perf_counter() - start < 10  # quadratic: minutes
    text = str(info.value)
    assert text.startswith(f"{2 * n} problems") and "... and" in text and len(text) < 4000


def test_a_huge_pool_window_is_refused_before_it_allocates() -> None:
    """A 4-element input, a window of 6e8 and pads of 6e8 - 1: 2.4 GB of padding once."""
    g = Graph("g")
    x = g.add_input("x", np.float32, (1, 1, 4))
    y, _ = g.apply(op.MaxPool, [x], {"kernel_shape": [600_000_000], "pads": [599_999_999, 0]})
    g.set_outputs([y])
    assert y.type.shape == (1, 1, 4)  # the output is small: only the padding is huge
    start = time.perf_counter()
    with pytest.raises(ShapeError, match="graphcap pads an input at most 16 times"):
        Interpreter(g).run({"x": np.arange(4, dtype=np.float32).reshape(1, 1, 4)})
    assert time.perf_counter() - start < 5


def test_lrn_with_a_window_wider_than_the_channels() -> None:
    """LRN's size 10**9 over 5 channels reads every channel: no padding to 10**9 of them."""
    g = Graph("g")
    x = g.add_input("x", np.float32, (2, 5, 3))
    size, alpha, beta, bias = 10**9, 1e-4, 0.75, 1.0
    (y,) = g.apply(op.LRN, [x], {"size": size, "alpha": alpha, "beta": beta, "bias": bias})
    g.set_outputs([y])
    xv = np.random.default_rng(0).standard_normal((2, 5, 3)).astype(np.float32)
    got = Interpreter(g).run({"x": xv})[y.name]
    total = np.square(xv.astype(np.float64)).sum(axis=1, keepdims=True)  # every channel
    want = xv / (bias + alpha / size * total) ** beta
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_spilled_model_is_written_only_in_its_own_folder(tmp_path: Path, monkeypatch: Any) -> None:
    """A graph named like a path (names come from files) never decides where we write."""
    import runtime.session
    from export.onnx import writer

    written: list[Path] = []
    save = writer.save
    monkeypatch.setattr(
        writer, "save", lambda g, p, **kw: written.append(Path(p)) or save(g, p, **kw)
    )
    monkeypatch.setattr(runtime.session, "_INLINE_LIMIT", 1024)
    g = Graph(str(tmp_path / "victim" / "prod"))  # an absolute path as the graph's name
    (tmp_path / "victim").mkdir()
    x = g.add_input("x", np.float32, ("batch", 64))
    (y,) = g.apply(op.MatMul, [x, np.ones((64, 64), np.float32)], {})
    g.set_outputs([y])
    Session(g, backend="onnxruntime")
    (path,) = written
    assert path.name == "model.onnx" and tmp_path not in path.parents
    assert list((tmp_path / "victim").iterdir()) == []


def test_guard_reads_large_weights_of_a_file_as_stand_ins(tmp_path: Path) -> None:
    g = Graph("g")
    x = g.add_input("x", np.float32, ("batch", 64))
    (y,) = g.apply(op.MatMul, [x, np.ones((64, 64), np.float32)], {})
    g.set_outputs([y])
    export.save(g, tmp_path / "m.onnx", external_data=True)
    session = Session(tmp_path / "m.onnx", backend="onnxruntime")
    assert session._guard is not None
    (w,) = session._guard.graph.initializers.values()
    assert w.const is not None and w.const.shape == (64, 64) and w.const.strides == (0, 0)
    with pytest.raises(FeedError, match="input 'x' has size 32 in dim 1"):
        session.run({"x": np.ones((2, 32), np.float32)})


def test_a_huge_unpool_kernel_is_refused_before_it_allocates() -> None:
    """MaxUnpool's output size comes from its attributes: a kernel of 10**9 is refused."""
    g = Graph("g")
    x = g.add_input("x", np.float32, (1, 1, 2, 2))
    i = g.add_input("i", np.int64, (1, 1, 2, 2))
    (y,) = g.apply(op.MaxUnpool, [x, i], {"kernel_shape": [2, 10**9], "strides": [2, 2]})
    g.set_outputs([y])
    feeds = {
        "x": np.ones((1, 1, 2, 2), np.float32),
        "i": np.array([0, 2, 1, 2]).reshape(1, 1, 2, 2),
    }
    with pytest.raises(GraphcapError, match="graphcap's limit is 134,217,728 elements"):
        Interpreter(g).run(feeds)
