"""The fusion passes: Gemm, LayerNormalization, Gelu and attention.

For each pass: golden tests that it fires on its pattern, built by hand, traced from graphcap
code, and exported by ``torch.onnx.export`` (``dynamo=False``) and read back with
``export.load`` (skipped without torch); and that it does not fire where the rewrite would
be wrong (wrong axis, a multi-use intermediate, non-2-D Gemm operands, wrong constants).
Numerics: the fused graph, on the interpreter and on onnxruntime, gives what onnxruntime
computes on the unfused graph (and what torch computes, for torch's models); every graph
verifies after the pass, and a second run changes nothing. The last test runs
``bench/attention_forms.py --quick``.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import export
import tracer
from ir.graph import Graph, Value
from ir.ops.registry import op
from ir.passes.additive_mask import AdditiveMaskPass
from ir.passes.base import Pass
from ir.passes.fuse_attention import FuseAttentionPass
from ir.passes.fuse_gelu import FuseGeluPass
from ir.passes.fuse_gemm import FuseGemmPass
from ir.passes.fuse_layer_norm import FuseLayerNormPass
from runtime import Session

F32 = np.float32
RNG = np.random.default_rng(0)
BACKENDS = ("interpreter", "onnxruntime")


@pytest.fixture(autouse=True)
def _seed() -> None:
    """The same data for a test whichever worker runs it, in whatever order."""
    global RNG
    RNG = np.random.default_rng(0)


def randn(*shape: int) -> np.ndarray:
    return RNG.standard_normal(shape).astype(F32)


def build(fn: Callable[..., Any], **inputs: tuple[Any, ...]) -> Graph:
    """A graph with ``inputs`` (name -> shape, float32) whose outputs ``fn`` returns."""
    g = Graph("g")
    outs = fn(*[g.add_input(name, F32, shape) for name, shape in inputs.items()])
    g.set_outputs(outs if isinstance(outs, list) else [outs])
    g.verify()
    return g


def ops(g: Graph) -> list[str]:
    return [n.op.op_type for n in g.nodes]


def fuse(
    g: Graph,
    p: Pass,
    feeds: dict[str, np.ndarray],
    fires: bool = True,
    want: dict[str, np.ndarray] | None = None,
    atol: float = 2e-5,
) -> Graph:
    """Run ``p`` on ``g``; check it fired (or left ``g`` as it was) and kept the numbers.

    ``want`` defaults to onnxruntime's outputs on the graph before the pass.
    """
    before = str(g)
    if want is None and fires:
        want = Session(g.copy(), backend="onnxruntime").run(feeds)
    assert p(g).changed is fires
    g.verify()
    if not fires or want is None:
        assert str(g) == before
        return g
    assert not p(g).changed  # a fixed point
    for backend in BACKENDS:
        got = Session(g, backend=backend).run(feeds)
        assert list(got) == list(want)  # output names kept
        for name, w in want.items():
            np.testing.assert_allclose(got[name], w, rtol=1e-4, atol=atol, err_msg=backend)
    return g


def torch_model(tmp_path: Path, module: Any, *args: np.ndarray, opset: int = 14) -> Graph:
    """``module`` exported by ``torch.onnx.export(dynamo=False)`` and read by ``export.load``."""
    torch: Any = pytest.importorskip("torch")
    path = tmp_path / "m.onnx"
    tensors = tuple(torch.from_numpy(a) for a in args)
    with warnings.catch_warnings():  # the TorchScript exporter's deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(module.eval(), tensors, str(path), opset_version=opset, dynamo=False)
    return export.load(str(path))


def torch_run(module: Any, *args: np.ndarray) -> np.ndarray:
    import torch

    with torch.no_grad():
        return module(*(torch.from_numpy(a) for a in args)).numpy()


def feeds_for(g: Graph, *arrays: np.ndarray) -> dict[str, np.ndarray]:
    return {v.name: a for v, a in zip(g.inputs, arrays, strict=True)}


# ---------------------------------------------------------------- Gemm


def linear_graph(x_shape: tuple[Any, ...]) -> Graph:
    """``x @ w.T + b`` as ``nn.Linear`` traces it."""
    w, b = randn(3, 4), randn(3)

    def fn(x: Value) -> Value:
        wt = op.Transpose(x.graph.constant(w, "w"), perm=[1, 0])
        return op.Add(op.MatMul(x, wt), x.graph.constant(b, "b"))

    return build(fn, x=x_shape)


def test_gemm_fires_on_hand_built_linear_and_absorbs_the_transpose() -> None:
    g = fuse(linear_graph(("m", 4)), FuseGemmPass(), {"x": randn(5, 4)})
    assert str(g) == (
        "graph g(%x: f32[m, 4]) {\n"
        "  %w = initializer f32[3, 4]\n"
        "  %b = initializer f32[3]\n"
        "  %3 = Gemm(%x, %w, %b, transB=1) : f32[m, 3]\n"
        "  return %3\n"
        "}"
    )


def test_gemm_absorbs_a_transposed_a_and_a_transposed_gemm_operand() -> None:
    def fn(x: Value, y: Value, w: Value) -> list[Value]:
        a = op.Add(op.MatMul(op.Transpose(x, perm=[1, 0]), y), np.ones((1, 3), F32))
        return [op.Gemm(a, op.Transpose(w, perm=[1, 0]), transB=1)]

    feeds = {"x": randn(4, 5), "y": randn(4, 3), "w": randn(3, 2)}
    g = fuse(build(fn, x=(4, 5), y=(4, 3), w=(3, 2)), FuseGemmPass(), feeds)
    assert ops(g) == ["Gemm", "Gemm"]
    assert [n.attrs for n in g.nodes] == [{"transA": 1}, {}]  # transB=1 twice undone


def test_gemm_fires_on_traced_nn_linear() -> None:
    tracer.manual_seed(0)
    lin = tracer.nn.Linear(4, 3)
    x = randn(5, 4)
    g = tracer.trace(lin, (tracer.tensor(x),), dynamic_axes={"input": {0: "batch"}})
    g = fuse(g, FuseGemmPass(), {"input": x})
    assert ops(g) == ["Gemm"]


def test_gemm_fires_on_torch_export_of_a_2d_matmul_plus_bias(tmp_path: Path) -> None:
    torch: Any = pytest.importorskip("torch")

    class M(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.w = torch.nn.Parameter(torch.from_numpy(randn(4, 3)))
            self.b = torch.nn.Parameter(torch.from_numpy(randn(3)))

        def forward(self, x: Any) -> Any:
            return x @ self.w + self.b

    x, m = randn(5, 4), M()
    g = torch_model(tmp_path, m, x)
    assert ops(g) == ["MatMul", "Add"]
    g = fuse(g, FuseGemmPass(), feeds_for(g, x), want={g.outputs[0].name: torch_run(m, x)})
    assert ops(g) == ["Gemm"]


def test_gemm_leaves_torch_export_of_a_3d_linear(tmp_path: Path) -> None:
    x = randn(2, 5, 4)
    g = torch_model(tmp_path, pytest.importorskip("torch").nn.Linear(4, 3), x)
    fuse(g, FuseGemmPass(), feeds_for(g, x), fires=False)


@pytest.mark.parametrize(
    "case",
    ["3d_input", "matmul_used_twice", "bias_broadcasts_up", "bias_wrong_dim", "int64"],
)
def test_gemm_does_not_fire(case: str) -> None:
    if case == "3d_input":
        g, feeds = linear_graph((2, 5, 4)), {"x": randn(2, 5, 4)}
    elif case == "matmul_used_twice":

        def fn(x: Value) -> list[Value]:
            mm = op.MatMul(x, randn(4, 3))
            return [op.Add(mm, randn(3)), mm]

        g, feeds = build(fn, x=(5, 4)), {"x": randn(5, 4)}
    elif case in ("bias_broadcasts_up", "bias_wrong_dim"):
        bias = randn(2, 5, 3) if case == "bias_broadcasts_up" else randn(5, 1)
        shape = (5, 4) if case == "bias_broadcasts_up" else ("m", 4)
        g = build(lambda x: op.Add(op.MatMul(x, randn(4, 3)), bias), x=shape)
        feeds = {"x": randn(5, 4)}
    else:
        g = Graph("g")
        x = g.add_input("x", np.int64, (5, 4))
        g.set_outputs([op.Add(op.MatMul(x, np.ones((4, 3), np.int64)), np.ones(3, np.int64))])
        feeds = {"x": np.arange(20).reshape(5, 4)}
    fuse(g, FuseGemmPass(), feeds, fires=False)


def test_gemm_keeps_a_shared_transpose() -> None:
    def fn(x: Value) -> list[Value]:
        t = op.Transpose(x, perm=[1, 0])
        return [op.Add(op.MatMul(t, randn(5, 3)), randn(3)), t]

    g = fuse(build(fn, x=(5, 4)), FuseGemmPass(), {"x": randn(5, 4)})
    assert ops(g) == ["Transpose", "Gemm"]
    assert g.nodes[1].attrs == {}


# ---------------------------------------------------------------- LayerNormalization


def layer_norm_graph(
    axes: list[int], square: str = "pow", n: float | None = None, mean_out: bool = False
) -> Graph:
    """The torch.onnx.export form of layer norm; ``n`` set: ReduceSum / n as the variance."""
    gamma, beta = randn(8), randn(8)

    def fn(x: Value) -> Value | list[Value]:
        mean = op.ReduceMean(x, np.array(axes))
        d = op.Sub(x, mean)
        sq = op.Pow(d, F32(2)) if square == "pow" else op.Mul(d, d)
        if n is None:
            var = op.ReduceMean(sq, np.array(axes))
        else:
            var = op.Div(op.ReduceSum(sq, np.array(axes)), F32(n))
        y = op.Div(d, op.Sqrt(op.Add(var, F32(1e-5))))
        y = op.Add(op.Mul(y, gamma), beta)
        return [y, mean] if mean_out else y

    return build(fn, x=("batch", 5, 8))


def test_layer_norm_fires_on_hand_built_pattern() -> None:
    g = fuse(layer_norm_graph([-1]), FuseLayerNormPass(), {"x": randn(2, 5, 8)})
    assert str(g) == (
        "graph g(%x: f32[batch, 5, 8]) {\n"
        "  %const_11 = initializer f32[8]\n"
        "  %const_13 = initializer f32[8]\n"
        "  %14, %16, %17 = LayerNormalization(%x, %const_11, %const_13, axis=-1, "
        "epsilon=1e-05) : f32[batch, 5, 8], f32[batch, 5, 1], f32[batch, 5, 1]\n"
        "  return %14\n"
        "}"
    )


@pytest.mark.parametrize(("square", "n"), [("mul", None), ("pow", 8.0), ("mul", 8.0)])
def test_layer_norm_fires_on_variance_forms(square: str, n: float | None) -> None:
    g = fuse(layer_norm_graph([2], square, n), FuseLayerNormPass(), {"x": randn(2, 5, 8)})
    assert ops(g) == ["LayerNormalization"]


def test_layer_norm_over_two_trailing_axes() -> None:
    def fn(x: Value) -> Value:
        d = op.Sub(x, op.ReduceMean(x, np.array([-2, -1])))
        var = op.ReduceMean(op.Mul(d, d), np.array([1, 2]))
        return op.Mul(d, op.Reciprocal(op.Sqrt(op.Add(F32(1e-6), var))))

    g = fuse(build(fn, x=(2, 5, 8)), FuseLayerNormPass(), {"x": randn(2, 5, 8)})
    assert ops(g) == ["LayerNormalization"]
    assert g.nodes[0].attrs["axis"] == -2
    assert g.nodes[0].inputs[1] is not None and g.nodes[0].inputs[1].shape == (5, 8)


def traced_layer_norm(rsqrt: bool, unbiased: bool = False) -> tuple[Graph, np.ndarray]:
    x = randn(2, 5, 8)
    w, b = tracer.tensor(randn(8)), tracer.tensor(randn(8))

    def fn(x: Any) -> Any:
        var = x.var(-1, keepdim=True, unbiased=unbiased) + 1e-5
        d = x - x.mean(-1, keepdim=True)
        return (d * var.rsqrt() if rsqrt else d / var.sqrt()) * w + b

    g = tracer.trace(fn, (tracer.tensor(x),), dynamic_axes={"x": {0: "batch"}})
    return g, x


@pytest.mark.parametrize("rsqrt", [False, True])
def test_layer_norm_fires_on_traced_code(rsqrt: bool) -> None:
    g, x = traced_layer_norm(rsqrt)
    assert ops(g).count("ReduceMean") == 2  # the mean is computed twice, var recomputes it
    g = fuse(g, FuseLayerNormPass(), {"x": x})
    assert ops(g) == ["LayerNormalization"]
    assert set(g.initializers) == {v.name for v in g.nodes[0].inputs[1:] if v is not None}


@pytest.mark.parametrize("opset", [14, 16])
def test_layer_norm_fires_on_torch_export(tmp_path: Path, opset: int) -> None:
    torch: Any = pytest.importorskip("torch")
    torch.manual_seed(0)
    ln = torch.nn.LayerNorm(8)
    with torch.no_grad():
        ln.weight.normal_()
        ln.bias.normal_()
    x = randn(2, 5, 8)
    g = torch_model(tmp_path, ln, x, opset=opset)
    assert "LayerNormalization" not in ops(g)
    g = fuse(g, FuseLayerNormPass(), feeds_for(g, x), want={g.outputs[0].name: torch_run(ln, x)})
    assert ops(g) == ["LayerNormalization"]


@pytest.mark.parametrize(
    "case", ["middle_axis", "unbiased", "mean_is_output", "eps_input", "eps_outside_sqrt"]
)
def test_layer_norm_does_not_fire(case: str) -> None:
    feeds = {"x": randn(2, 5, 8)}
    if case == "middle_axis":  # normalized over axis 1 of 3: LayerNormalization can't say so
        g = build(lambda x: _plain_norm(x, [1]), x=(2, 5, 8))
    elif case == "eps_outside_sqrt":  # (x - mean) / (std + eps) is another function
        g = tracer.trace(_eps_outside_sqrt, (tracer.tensor(feeds["x"]),))
    elif case == "unbiased":
        g, feeds["x"] = traced_layer_norm(False, unbiased=True)
    elif case == "mean_is_output":
        g = layer_norm_graph([-1], mean_out=True)
    else:
        g = build(lambda x, e: _plain_norm(x, [-1], e), x=(2, 5, 8), e=(1,))
        feeds["e"] = np.array([1e-5], F32)
    fuse(g, FuseLayerNormPass(), feeds, fires=False)


def _eps_outside_sqrt(x: Any) -> Any:
    return (x - x.mean(-1, keepdim=True)) / (x.std(-1, keepdim=True, unbiased=False) + 1e-5)


def _plain_norm(x: Value, axes: list[int], eps: Any = None) -> Value:
    d = op.Sub(x, op.ReduceMean(x, np.array(axes)))
    var = op.ReduceMean(op.Mul(d, d), np.array(axes))
    return op.Div(d, op.Sqrt(op.Add(var, F32(1e-5) if eps is None else eps)))


def test_layer_norm_leaves_a_gamma_that_broadcasts_out_of_the_fusion() -> None:
    g = build(lambda x: op.Mul(_plain_norm(x, [-1]), randn(5, 1)), x=(2, 5, 8))
    g = fuse(g, FuseLayerNormPass(), {"x": randn(2, 5, 8)})
    assert ops(g) == ["LayerNormalization", "Mul"]


# ---------------------------------------------------------------- Gelu

SQRT_2_PI = math.sqrt(2 / math.pi)
GELU_FORMS: dict[str, Callable[[Any], Any]] = {
    "erf_div": lambda x: x * 0.5 * (1 + tracer.erf(x / math.sqrt(2))),
    "erf_mul": lambda x: 0.5 * x * (tracer.erf(x * (1 / math.sqrt(2))) + 1.0),
    "erf_div2": lambda x: (x * (1 + tracer.erf(x / math.sqrt(2)))) / 2,
    "tanh_pow": lambda x: 0.5 * x * (1 + tracer.tanh(SQRT_2_PI * (x + 0.044715 * x.pow(3)))),
    "tanh_cube": lambda x: x * (tracer.tanh((x + 0.044715 * x * x * x) * SQRT_2_PI) + 1) * 0.5,
    "tanh_factored": lambda x: 0.5 * x * (1 + tracer.tanh(SQRT_2_PI * x * (1 + 0.044715 * x * x))),
}


@pytest.mark.parametrize("form", list(GELU_FORMS))
def test_gelu_fires_on_traced_forms(form: str) -> None:
    x = randn(3, 7)
    g = fuse(tracer.trace(GELU_FORMS[form], (tracer.tensor(x),)), FuseGeluPass(), {"x": x})
    approximate = "tanh" if form.startswith("tanh") else None
    assert str(g).splitlines()[1].split("  #")[0] == (
        "  %output = Gelu(%x) : f32[3, 7]"
        if approximate is None
        else "  %output = Gelu(%x, approximate='tanh') : f32[3, 7]"
    )
    assert ops(g) == ["Gelu"] and not g.initializers


@pytest.mark.parametrize("approximate", ["none", "tanh"])
def test_gelu_fires_on_torch_export(tmp_path: Path, approximate: str) -> None:
    torch: Any = pytest.importorskip("torch")
    gelu = torch.nn.GELU(approximate=approximate)
    x = randn(2, 5, 8)
    g = torch_model(tmp_path, gelu, x)
    assert "Gelu" not in ops(g)
    g = fuse(g, FuseGeluPass(), feeds_for(g, x), want={g.outputs[0].name: torch_run(gelu, x)})
    assert ops(g) == ["Gelu"]
    assert g.nodes[0].full_attrs["approximate"] == approximate


def test_gelu_fuses_inside_a_larger_graph() -> None:
    x = randn(3, 7)
    g = tracer.trace(lambda x: 2 * GELU_FORMS["erf_div"](x + 1) - x, (tracer.tensor(x),))
    g = fuse(g, FuseGeluPass(), {"x": x})
    assert ops(g) == ["Add", "Gelu", "Mul", "Sub"]


@pytest.mark.parametrize(
    "form",
    ["sqrt2_wrong", "half_wrong", "cubic_wrong", "sigmoid_approx", "other_x", "erf_is_output"],
)
def test_gelu_does_not_fire(form: str) -> None:
    fns: dict[str, Callable[..., Any]] = {
        "sqrt2_wrong": lambda x, y: x * 0.5 * (1 + tracer.erf(x / 1.414)),
        "half_wrong": lambda x, y: x * 0.6 * (1 + tracer.erf(x / math.sqrt(2))),
        "cubic_wrong": lambda x, y: 0.5 * x * (1 + tracer.tanh(SQRT_2_PI * (x + 0.05 * x**3))),
        "sigmoid_approx": lambda x, y: x * (1.702 * x).sigmoid(),
        "other_x": lambda x, y: y * 0.5 * (1 + tracer.erf(x / math.sqrt(2))),
        "erf_is_output": lambda x, y: _gelu_and_erf(x),
    }
    x, y = randn(3, 7), randn(3, 7)
    g = tracer.trace(fns[form], (tracer.tensor(x), tracer.tensor(y)))
    fuse(g, FuseGeluPass(), {k: v for k, v in {"x": x, "y": y}.items() if k in _names(g)}, False)


def _gelu_and_erf(x: Any) -> tuple[Any, Any]:
    e = tracer.erf(x / math.sqrt(2))
    return x * 0.5 * (1 + e), e


def _names(g: Graph) -> set[str]:
    return {v.name for v in g.inputs}


# ---------------------------------------------------------------- attention

B, H, S, D = 2, 3, 6, 4


def qkv() -> dict[str, np.ndarray]:
    return {"q": randn(B, H, S, D), "k": randn(B, H, S, D), "v": randn(B, H, S, D)}


def attention_graph(mask: tuple[Any, ...] | None = None, axis: int = -1) -> Graph:
    """Hand-written ``softmax(q @ k^T / sqrt(d) + mask) @ v`` as the IR holds it."""

    def fn(q: Value, k: Value, v: Value, *m: Value) -> Value:
        s = op.Div(op.MatMul(q, op.Transpose(k, perm=[0, 1, 3, 2])), F32(math.sqrt(D)))
        s = op.Add(s, m[0]) if m else s
        return op.MatMul(op.Softmax(s, axis=axis), v)

    shapes: dict[str, tuple[Any, ...]] = {n: ("b", H, "s", D) for n in "qkv"}
    return build(fn, **shapes, **({"m": mask} if mask else {}))


def test_attention_rewrites_to_the_canonical_form() -> None:
    g = fuse(attention_graph(), FuseAttentionPass(), qkv())
    assert str(g) == (
        "graph g(%q: f32[b, 3, s, 4], %k: f32[b, 3, s, 4], %v: f32[b, 3, s, 4]) {\n"
        "  %const_6 = initializer f32[]\n"
        "  %1 = Transpose(%k, perm=[0, 1, 3, 2]) : f32[b, 3, 4, s]\n"
        "  %7 = Mul(%q, %const_6) : f32[b, 3, s, 4]\n"
        "  %8 = MatMul(%7, %1) : f32[b, 3, s, s]\n"
        "  %9 = Softmax(%8, axis=-1) : f32[b, 3, s, s]\n"
        "  %5 = MatMul(%9, %v) : f32[b, 3, s, 4]\n"
        "  return %5\n"
        "}"
    )
    assert g.initializers["const_6"].const == F32(0.5)  # 1 / sqrt(4)


def symbolic(shape: tuple[int, ...]) -> tuple[Any, ...]:
    """``shape`` with the batch and sequence dims named as in ``attention_graph``."""
    lead = ("b",) if len(shape) == 4 and shape[0] == B else shape[:1]
    return (*lead[: len(shape) - 2], *shape[1:-2], *("s" if d == S else d for d in shape[-2:]))


@pytest.mark.parametrize("mask", [(B, 1, 1, S), (1, 1, S, S), (S,), (B, H, S, S)])
@pytest.mark.parametrize("target", ["decomposed", "attention"])
def test_attention_with_masks(mask: tuple[int, ...], target: str) -> None:
    feeds = {**qkv(), "m": np.where(RNG.random(mask) < 0.3, -1e4, 0).astype(F32)}
    g = fuse(attention_graph(symbolic(mask)), FuseAttentionPass(target), feeds)
    if target == "attention":
        assert ops(g)[-1] == "Attention" and "Softmax" not in ops(g)
        # onnxruntime wants the mask as [.., q_len, keys]
        assert ("Expand" in ops(g)) is (len(mask) < 2 or mask[-2] != S)
    else:
        assert ops(g) == ["Transpose", "Mul", "MatMul", "Add", "Softmax", "MatMul"]


def test_attention_target_absorbs_any_key_transpose() -> None:
    # K^T straight from a [batch, seq, heads, dim] tensor: K is that tensor re-permuted.
    def fn(q: Value, k: Value, v: Value) -> Value:
        kt = op.Transpose(k, perm=[0, 2, 3, 1])
        return op.MatMul(op.Softmax(op.Mul(op.MatMul(q, kt), F32(0.3)), axis=-1), v)

    shapes = {"q": (B, H, S, D), "k": (B, S, H, D), "v": (B, H, S, D)}
    feeds = {**qkv(), "k": randn(B, S, H, D)}
    g = fuse(build(fn, **shapes), FuseAttentionPass("attention"), feeds)
    assert ops(g) == ["Transpose", "Attention"]
    assert g.nodes[0].attrs["perm"] == [0, 2, 1, 3]


def test_attention_on_traced_sdpa_and_hand_written_code() -> None:
    f = tracer.nn.functional
    q, k, v = (tracer.tensor(a) for a in qkv().values())
    sdpa = tracer.trace(lambda q, k, v: f.scaled_dot_product_attention(q, k, v), (q, k, v))
    fuse(sdpa, FuseAttentionPass(), qkv(), fires=False)  # graphcap's own form is canonical
    fuse(sdpa, FuseAttentionPass("attention"), qkv())
    assert ops(sdpa) == ["Attention"]

    def hand(q: Any, k: Any, v: Any) -> Any:
        return (q.matmul(k.transpose(-2, -1)) * D**-0.5).softmax(-1).matmul(v)

    g = tracer.trace(hand, (q, k, v), dynamic_axes={n: {0: "b"} for n in "qkv"})
    fuse(g, FuseAttentionPass(), qkv())
    assert ops(g) == ["Transpose", "Mul", "MatMul", "Softmax", "MatMul"]


def test_attention_on_three_dim_single_head() -> None:
    def fn(q: Value, k: Value, v: Value) -> Value:
        s = op.MatMul(op.Mul(q, F32(0.5)), op.Mul(op.Transpose(k, perm=[0, 2, 1]), F32(0.5)))
        return op.MatMul(op.Softmax(s, axis=2), v)

    feeds = {n: randn(B, S, D) for n in "qkv"}
    g = fuse(build(fn, q=(B, S, D), k=(B, S, D), v=(B, S, D)), FuseAttentionPass(), feeds)
    assert ops(g) == ["Transpose", "Mul", "MatMul", "Softmax", "MatMul"]
    fuse(g, FuseAttentionPass("attention"), feeds, fires=False)  # Attention: 4-D here


@pytest.mark.parametrize("target", ["decomposed", "attention"])
def test_attention_on_torch_export(tmp_path: Path, target: str) -> None:
    torch: Any = pytest.importorskip("torch")

    class Hand(torch.nn.Module):
        def forward(self, q: Any, k: Any, v: Any, m: Any) -> Any:
            s = q @ k.transpose(-2, -1) / math.sqrt(D) + m
            return torch.softmax(s, -1) @ v

    arrays = [*qkv().values(), np.where(RNG.random((B, 1, S, S)) < 0.3, -1e4, 0).astype(F32)]
    g = torch_model(tmp_path, Hand(), *arrays)
    want = {g.outputs[0].name: torch_run(Hand(), *arrays)}
    g = fuse(g, FuseAttentionPass(target), feeds_for(g, *arrays), want=want)
    assert ops(g)[-1] == ("Attention" if target == "attention" else "MatMul")


def test_attention_on_torch_sdpa_export_after_constant_folding(tmp_path: Path) -> None:
    torch: Any = pytest.importorskip("torch")
    from ir.passes.constant_folding import ConstantFoldingPass

    class Sdpa(torch.nn.Module):
        def forward(self, q: Any, k: Any, v: Any) -> Any:
            return torch.nn.functional.scaled_dot_product_attention(q, k, v)

    arrays = list(qkv().values())
    g = torch_model(tmp_path, Sdpa(), *arrays)
    assert ConstantFoldingPass()(g).changed  # its scale is computed from Shape
    want = {g.outputs[0].name: torch_run(Sdpa(), *arrays)}
    g = fuse(g, FuseAttentionPass("attention"), feeds_for(g, *arrays), want=want)
    assert "Attention" in ops(g) and "Softmax" not in ops(g)


@pytest.mark.parametrize(
    "case", ["softmax_axis", "probs_returned", "mask_broadcasts_keys", "scale_input", "k_batch"]
)
@pytest.mark.parametrize("target", ["decomposed", "attention"])
def test_attention_does_not_fire(case: str, target: str) -> None:
    feeds = qkv()
    if case == "softmax_axis":
        g = attention_graph(axis=-2)
    elif case == "mask_broadcasts_keys":  # [.., 1] keys: Attention would pad it, not broadcast
        g, feeds["m"] = attention_graph(("b", 1, "s", 1)), randn(B, 1, S, 1)
    else:

        def fn(q: Value, k: Value, v: Value, c: Value) -> Value | list[Value]:
            s = op.MatMul(q, op.Transpose(k, perm=[0, 1, 3, 2]))
            p = op.Softmax(op.Mul(s, c if case == "scale_input" else F32(0.5)), axis=-1)
            return [op.MatMul(p, v), p] if case == "probs_returned" else op.MatMul(p, v)

        kshape = (1, H, S, D) if case == "k_batch" else (B, H, S, D)
        g = build(fn, q=(B, H, S, D), k=kshape, v=(B, H, S, D), c=())
        feeds = {**feeds, "k": randn(*kshape), "c": np.asarray(0.5, F32)}
    fuse(g, FuseAttentionPass(target), feeds, fires=False)


def test_attention_rejects_an_unknown_target() -> None:
    with pytest.raises(ValueError, match="target='flash'"):
        FuseAttentionPass("flash")


@pytest.mark.slow
def test_attention_forms_bench_quick_reports_one_json_line() -> None:
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(root / "bench" / "attention_forms.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    report = json.loads(lines[0])
    assert report["bench"] == "attention_forms" and len(report["results"]) == 2
    forms = {"decomposed", "decomposed_q", "attention", "attention_y", "mha", "mha_bnsh"}
    assert forms <= set(report["results"][0]["median_ms"])  # each checked against NumPy


# ---------------------------------------------------------------- additive mask


def masked_softmax_graph(fill: float, mask_first: bool = True, extra_use: bool = False) -> Graph:
    def fn(scores: Value, keep: Value) -> Any:
        mask = op.Not(op.Cast(keep, to=9))  # a bool [batch, 1, 1, k] mask from a float input
        value = np.asarray(fill, F32)
        where = (
            op.Where(mask, value, scores) if mask_first else op.Where(op.Not(mask), scores, value)
        )
        out = op.Softmax(where, axis=-1)
        return [out, where] if extra_use else out

    return build(fn, scores=("b", 4, 6, 6), keep=("b", 1, 1, 6))


def _mask_feeds(g: Graph) -> dict[str, np.ndarray]:
    keep = (RNG.random((3, 1, 1, 6)) > 0.3).astype(F32)
    keep[0, ..., 0] = 0.0
    return {"scores": randn(3, 4, 6, 6), "keep": keep}


@pytest.mark.parametrize("mask_first", [True, False])
def test_additive_mask_replaces_the_where_before_softmax(mask_first: bool) -> None:
    g = masked_softmax_graph(-math.inf, mask_first)
    fuse(g, AdditiveMaskPass(), _mask_feeds(g))
    assert "Add" in ops(g)
    big = [n for n in g.nodes if n.op.op_type == "Where"]
    assert len(big) == 1 and big[0].outputs[0].type.shape == ("b", 1, 1, 6)  # the small mask


def test_additive_mask_keeps_rows_with_every_key_masked() -> None:
    g = masked_softmax_graph(-math.inf)
    feeds = _mask_feeds(g)
    feeds["keep"][1] = 0.0  # every key masked: NaN rows in both forms
    want = Session(g.copy(), backend="interpreter").run(feeds)
    AdditiveMaskPass()(g)
    got = Session(g, backend="interpreter").run(feeds)
    (name,) = want
    assert np.isnan(want[name][1]).all()
    np.testing.assert_array_equal(np.isnan(got[name]), np.isnan(want[name]))
    np.testing.assert_allclose(got[name], want[name], rtol=1e-6)


@pytest.mark.parametrize("case", ["finite_fill", "where_used_elsewhere"])
def test_additive_mask_does_not_fire(case: str) -> None:
    g = masked_softmax_graph(
        -1e4 if case == "finite_fill" else -math.inf, extra_use=case != "finite_fill"
    )
    fuse(g, AdditiveMaskPass(), _mask_feeds(g), fires=False)
