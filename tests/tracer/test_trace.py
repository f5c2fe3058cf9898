"""tracer.trace: captured graphs match eager at several sizes; what cannot be kept is refused."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tracer as gc
from ir.graph import Graph
from tracer import TraceError


def run_graph(graph: Graph, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Evaluate a graph with the registry kernels (an oracle independent of the runtime)."""
    env: dict[str, Any] = {v.name: v.const for v in graph.initializers.values()}
    env.update(feeds)
    for node in graph.nodes:
        outs = node.op.kernel(
            *[None if v is None else env[v.name] for v in node.inputs], **node.attrs
        )
        for v, o in zip(node.outputs, outs if isinstance(outs, tuple) else (outs,), strict=True):
            env[v.name] = np.asarray(o)
    return {v.name: env[v.name] for v in graph.outputs}


def _weights(*shape: int) -> gc.Tensor:
    return gc.randn(*shape) * 0.3


def test_mlp_is_dynamic_in_batch_and_seq() -> None:
    gc.manual_seed(0)
    w1, b1, w2 = _weights(8, 16), _weights(16), _weights(16, 4)

    def mlp(x: gc.Tensor) -> gc.Tensor:
        h = (x @ w1 + b1).relu()
        b, t, d = h.shape
        return (h.reshape(b * t, d) @ w2).reshape(b, t, 4).softmax(-1)

    graph = gc.trace(mlp, (gc.randn(2, 3, 8),), dynamic_axes={"x": {0: "batch", 1: "seq"}})
    assert str(graph.outputs[0].type) == "f32[batch, seq, 4]"
    for shape in [(2, 3, 8), (5, 7, 8), (1, 1, 8)]:
        x = gc.randn(*shape)
        got = run_graph(graph, {"x": x.numpy()})["output"]
        np.testing.assert_allclose(got, mlp(x).numpy(), rtol=1e-6, atol=1e-6)


def _attention(x: gc.Tensor, wq: gc.Tensor, heads: int) -> gc.Tensor:
    b, t, d = x.shape
    q = (x @ wq).view(b, t, heads, d // heads).transpose(1, 2)
    scores = q @ q.transpose(-1, -2) / (d // heads) ** 0.5
    pos = gc.arange(t)
    causal = pos.unsqueeze(0) > pos.unsqueeze(1)
    scores = scores.masked_fill(causal, float("-inf"))
    out = scores.softmax(-1) @ q
    return out.transpose(1, 2).reshape(b, t, d) + gc.zeros_like(x)


def test_attention_reshapes_by_shape_and_arange_stay_dynamic() -> None:
    gc.manual_seed(1)
    wq = _weights(8, 8)
    graph = gc.trace(
        lambda x: _attention(x, wq, 2), (gc.randn(2, 5, 8),), dynamic_axes={"x": [0, 1]}
    )
    assert str(graph.outputs[0].type) == "f32[x_0, x_1, 8]"
    for shape in [(3, 4, 8), (1, 9, 8)]:
        x = gc.randn(*shape)
        got = run_graph(graph, {"x": x.numpy()})["output"]
        np.testing.assert_allclose(got, _attention(x, wq, 2).numpy(), rtol=1e-5, atol=1e-6)


def test_static_trace_has_no_symbols_and_text_is_deterministic() -> None:
    w = _weights(4, 3)

    def f(x: gc.Tensor) -> gc.Tensor:
        return (x @ w).tanh().sum(-1)

    x = gc.randn(2, 4)
    first, second = gc.trace(f, (x,)), gc.trace(f, (x,))
    assert str(first) == str(second)
    assert str(first.outputs[0].type) == "f32[2]"


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (lambda x: x * 2 if bool(x.sum() > 0) else x, "bool()"),
        (lambda x: x * x.sum().item(), "item()"),
        (lambda x: x * int(x[0, 0]), "depends on the traced inputs"),
        (lambda x: x if x.sum() > 0 else -x, "bool()"),
        (lambda x: x + x.tolist()[0][0], "tolist()"),
    ],
)
def test_reading_an_input_dependent_value_raises_naming_the_line(body: Any, what: str) -> None:
    with pytest.raises(TraceError, match=what) as info:
        gc.trace(body, (gc.randn(2, 3),))
    assert "test_trace.py:" in str(info.value)


def test_parameters_may_be_read_into_python() -> None:
    scale = gc.tensor(2.0)

    def f(x: gc.Tensor) -> gc.Tensor:
        return x * scale.item()  # a constant: baking it is what the user asked for

    graph = gc.trace(f, (gc.randn(3),))
    np.testing.assert_allclose(run_graph(graph, {"x": np.ones(3, np.float32)})["output"], 2.0)


def test_a_dynamic_dim_turned_into_a_python_int_raises() -> None:
    with pytest.raises(TraceError, match="dynamic dimension 'batch'"):
        gc.trace(
            lambda x: x.reshape(int(x.shape[0]), -1),
            (gc.randn(2, 3),),
            dynamic_axes={"x": {0: "batch"}},
        )
    with pytest.raises(TraceError, match="dynamic dimension 'batch'"):
        gc.trace(
            lambda x: gc.stack([x[i] for i in range(x.shape[0])]),
            (gc.randn(2, 3),),
            dynamic_axes={"x": {0: "batch"}},
        )
    with pytest.raises(TraceError, match="dynamic dimension"):
        gc.trace(lambda x: gc.stack([r for r in x]), (gc.randn(2, 3),), dynamic_axes={"x": [0]})


def test_a_constant_shape_that_fixes_a_dynamic_dim_raises_naming_the_line() -> None:
    def f(x: gc.Tensor) -> gc.Tensor:
        return x.reshape(2, 3, 2)  # the example's batch written as a literal

    with pytest.raises(TraceError, match=r"fixing the dynamic dimension\(s\) batch") as info:
        gc.trace(f, (gc.randn(2, 6),), dynamic_axes={"x": {0: "batch"}})
    assert "test_trace.py:" in str(info.value)


def test_python_decisions_are_recorded_with_their_lines() -> None:
    def f(x: gc.Tensor, flag: bool) -> gc.Tensor:
        if x.shape[1] > 2:  # a branch on a dynamic size
            x = x * 2
        for _ in range(len(x)):  # a loop count from len() of a static dim
            x = x + 1
        return x if flag else -x

    graph = gc.trace(f, (gc.randn(2, 3), True), dynamic_axes={"x": {1: "seq"}})
    kinds = {(d["kind"], d["result"]) for d in graph.meta["baked"]}
    assert ("shape-branch", True) in kinds
    assert ("len", 2) in kinds
    assert ("argument", True) in kinds
    branch = next(d for d in graph.meta["baked"] if d["kind"] == "shape-branch")
    assert branch["what"] == "seq > 2"
    assert branch["source"].startswith("tests/tracer/test_trace.py:")


def test_source_locations_are_relative_to_the_project() -> None:
    graph = gc.trace(lambda x: x.exp() + 1, (gc.randn(2),))
    sources = [n.meta["source"] for n in graph.nodes]
    assert all(s.startswith("tests/tracer/test_trace.py:") for s in sources), sources
    assert "# tests/tracer/test_trace.py:" in str(graph)


class _Module:
    """Just enough of a module for trace to name its weights."""

    def __init__(self) -> None:
        self.weight = _weights(3, 2)
        self.bias = gc.zeros(2)

    def named_parameters(self) -> list[tuple[str, gc.Tensor]]:
        return [("linear.weight", self.weight), ("linear.bias", self.bias)]

    def forward(self, tokens: gc.Tensor) -> gc.Tensor:
        return tokens @ self.weight + self.bias

    __call__ = forward


def test_module_weights_become_named_initializers_and_inputs_take_parameter_names() -> None:
    graph = gc.trace(_Module(), (gc.randn(4, 3),))
    assert {"linear.weight", "linear.bias"} <= set(graph.initializers)
    assert [v.name for v in graph.inputs] == ["tokens"]


def test_in_place_updates_are_captured_functionally() -> None:
    def f(x: gc.Tensor) -> gc.Tensor:
        y = x * 2
        y.add_(1)
        y[0] = 0.0
        return y

    graph = gc.trace(f, (gc.randn(3, 2),))
    x = gc.randn(3, 2)
    np.testing.assert_allclose(run_graph(graph, {"x": x.numpy()})["output"], f(x).numpy())


def test_outputs_are_named_and_inputs_may_be_returned() -> None:
    graph = gc.trace(lambda x: {"same": x, "double": x * 2}, (gc.randn(2),))
    assert [v.name for v in graph.outputs] == ["same", "double"]
    got = run_graph(graph, {"x": np.ones(2, np.float32)})
    np.testing.assert_allclose(got["double"], 2.0)
    np.testing.assert_allclose(got["same"], 1.0)
    graph.verify()


def test_bad_dynamic_axes_name_is_rejected() -> None:
    with pytest.raises(ValueError, match="not tensor inputs"):
        gc.trace(lambda x: x, (gc.randn(2),), dynamic_axes={"y": [0]})


def test_nested_trace_is_rejected() -> None:
    def inner(x: gc.Tensor) -> gc.Tensor:
        gc.trace(lambda y: y, (x,))
        return x

    with pytest.raises(TraceError, match="another trace"):
        gc.trace(inner, (gc.randn(2),))
