"""``ir.lower_recurrent``: *Grad nodes rewritten into standard ONNX ops (Scan), and Scan itself.

Oracles: the ``*Grad`` kernels (validated against torch and finite differences in
``test_recurrent.py``), onnxruntime, and onnx.reference for Scan models the writer makes.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

import ir
import runtime
from export.onnx import reader, writer
from ir.errors import GraphInvariantError, UnsupportedOpError
from ir.lower_recurrent import lower_recurrent_grads
from ir.ops import get, op, scalar
from ir.ops.recurrent import DOMAIN
from runtime.numpy_interpreter import Interpreter
from tests.op_specs import control
from tests.op_specs.common import F32, F64
from tests.op_specs.recurrent import layer_inputs

DIRECTIONS = ("forward", "reverse", "bidirectional")


def _configs() -> list[Any]:
    """Every direction x layout x lens (absent, or with a 0 and a full length), per cell.

    Biases, initial states and which output gradients are given are drawn at random.
    """
    cells = [("LSTM", 0), ("GRU", 0), ("GRU", 1), ("RNN", 0)]
    out = []
    for k, ((kind, lbr), direction, layout, lens) in enumerate(
        itertools.product(cells, DIRECTIONS, (0, 1), (None, [4, 0, 2]))
    ):
        lengths = "lens" if lens else "full"
        name = f"{kind}{'-lbr' if lbr else ''}-{direction}-layout{layout}-{lengths}"
        out.append(pytest.param(kind, lbr, direction, layout, lens, k, id=name))
    return out


def _problem(
    kind: str,
    lbr: int,
    direction: str,
    layout: int,
    lens: list[int] | None,
    seed: int,
    dtype: np.dtype,
) -> tuple[list[Any], list[Any], dict[str, Any]]:
    """The forward inputs (padded with None), output gradients and attributes of a case."""
    rng = np.random.default_rng(seed)
    nd = 2 if direction == "bidirectional" else 1
    flags = rng.random(2) < 0.5
    ins = layer_inputs(
        rng, dtype, kind, nd=nd, bias=flags[0], lens=lens, init=flags[1], layout=layout
    )
    n_in = 8 if kind == "LSTM" else 6
    ins = [*ins, *[None] * (n_in - len(ins))]
    attrs: dict[str, Any] = {"direction": direction, "layout": layout}
    if kind == "GRU":
        attrs["linear_before_reset"] = lbr
    outs = get(kind).kernel(*ins, **attrs)
    grads: list[Any] = [rng.standard_normal(o.shape).astype(dtype) for o in outs]
    drop = rng.integers(0, len(grads) + 1)  # drop one gradient, or none
    if drop < len(grads):
        grads[drop] = None
    return ins, grads, attrs


def _grad_graph(
    kind: str,
    ins: list[Any],
    grads: list[Any],
    attrs: dict[str, Any],
    symbolic: bool = False,
    const: tuple[int, ...] = (),
) -> tuple[ir.Graph, dict[str, np.ndarray]]:
    """A graph of one *Grad node whose outputs are every gradient but LSTM's P's.

    Inputs are graph inputs, but those at the positions ``const``, which are initializers.
    """
    g = ir.Graph("backward")
    values: list[ir.Value | None] = []
    for i, a in enumerate([*ins, *grads]):
        if a is None or i in const:
            values.append(None if a is None else g.add_initializer(f"in{i}", a))
            continue
        shape: tuple[Any, ...] = a.shape
        if symbolic:  # the sequence and batch axes of X, Y and their gradients
            shape = tuple(
                _dim(i, axis, d, attrs["layout"], len(ins)) for axis, d in enumerate(shape)
            )
        values.append(g.add_input(f"in{i}", a.dtype, shape))
    outs = g.apply(get(f"{kind}Grad", DOMAIN), values, attrs)
    g.set_outputs(outs[:6] if kind == "LSTM" else outs)
    feeds = {f"in{i}": a for i, a in enumerate([*ins, *grads]) if a is not None and i not in const}
    return g, feeds


def _dim(index: int, axis: int, size: int, layout: int, n_in: int) -> Any:
    if index == 0:  # X
        return {1 - layout: "batch", layout: "seq"}[axis] if axis < 2 else size
    if index == n_in:  # Y's gradient: [seq, nd, batch, n] or [batch, seq, nd, n]
        return {(0, 0): "seq", (0, 2): "batch", (1, 0): "batch", (1, 1): "seq"}.get(
            (layout, axis), size
        )
    if index == 4:
        return "batch"
    if index in (5, 6) or index > n_in:  # states and their gradients
        return "batch" if axis == (0 if layout else 1) else size
    return size


def _expected(kind: str, ins: list[Any], grads: list[Any], attrs: dict[str, Any]) -> list[Any]:
    result = get(f"{kind}Grad", DOMAIN).kernel(*ins, *grads, **attrs)
    return list(result[:6] if kind == "LSTM" else result)


def _lowered(g: ir.Graph) -> ir.Graph:
    count = lower_recurrent_grads(g)
    assert count == 1
    g.verify()
    assert {n.op.domain for n in g.nodes} == {""}, "only standard-domain ops remain"
    assert "Scan" in {n.op.op_type for n in g.nodes}
    return g


# ---------------------------------------------------------------- lowered vs the *Grad kernel


@pytest.mark.parametrize(("kind", "lbr", "direction", "layout", "lens", "seed"), _configs())
def test_lowered_float64_matches_kernel(
    kind: str, lbr: int, direction: str, layout: int, lens: list[int] | None, seed: int
) -> None:
    ins, grads, attrs = _problem(kind, lbr, direction, layout, lens, seed, F64)
    g, feeds = _grad_graph(kind, ins, grads, attrs)
    names = [v.name for v in g.outputs]
    got = Interpreter(_lowered(g)).run(feeds)
    assert list(got) == names, "outputs keep their names"
    for name, want in zip(names, _expected(kind, ins, grads, attrs), strict=True):
        np.testing.assert_allclose(got[name], want, rtol=1e-10, atol=1e-10, err_msg=name)


@pytest.mark.parametrize(("kind", "lbr", "direction", "layout", "lens", "seed"), _configs())
def test_lowered_float32_on_onnxruntime(
    kind: str, lbr: int, direction: str, layout: int, lens: list[int] | None, seed: int
) -> None:
    ins, grads, attrs = _problem(kind, lbr, direction, layout, lens, seed, F32)
    g, feeds = _grad_graph(kind, ins, grads, attrs)
    got = runtime.Session(_lowered(g), backend="onnxruntime").run(feeds)
    for v, want in zip(g.outputs, _expected(kind, ins, grads, attrs), strict=True):
        np.testing.assert_allclose(got[v.name], want, rtol=1e-4, atol=1e-5, err_msg=v.name)


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_symbolic_sequence_and_batch(kind: str) -> None:
    """One lowered graph with dims 'seq' and 'batch' runs on inputs of several sizes."""
    g = None
    for seq_len, lens in ((4, [4, 0, 2]), (7, [7, 3, 1])):
        rng = np.random.default_rng(seq_len)
        ins, grads, attrs = _problem(kind, 1, "bidirectional", 0, [4, 0, 2], 3, F32)
        ins[0] = rng.uniform(-2, 2, (seq_len, *ins[0].shape[1:])).astype(F32)
        ins[4] = np.asarray(lens, np.int32)
        outs = get(kind).kernel(*ins, **attrs)
        grads = [rng.standard_normal(o.shape).astype(F32) for o in outs]
        if g is None:
            g, _ = _grad_graph(kind, ins, grads, attrs, symbolic=True)
            _lowered(g)
            scans = [n for n in g.nodes if n.op.op_type == "Scan"]
            assert all(v.shape[0] == "seq" for n in scans for v in n.outputs[-1:])
            session = runtime.Session(g, backend="onnxruntime")
        feeds = {f"in{i}": a for i, a in enumerate([*ins, *grads]) if a is not None}
        got = session.run(feeds)
        for v, want in zip(g.outputs, _expected(kind, ins, grads, attrs), strict=True):
            np.testing.assert_allclose(got[v.name], want, rtol=1e-4, atol=1e-5, err_msg=v.name)


def test_unused_outputs_are_not_computed() -> None:
    ins, grads, attrs = _problem("LSTM", 0, "forward", 0, [4, 0, 2], 1, F64)
    full, feeds = _grad_graph("LSTM", ins, grads, attrs)
    part, _ = _grad_graph("LSTM", ins, grads, attrs)
    part.set_outputs([part.outputs[1]])  # only W's gradient
    n_full, n_part = len(_lowered(full).nodes), len(_lowered(part).nodes)
    assert n_part < n_full
    (got,) = Interpreter(part).run(feeds).values()
    np.testing.assert_allclose(got, _expected("LSTM", ins, grads, attrs)[1], rtol=1e-10)


def test_lowered_graph_round_trips_and_checks() -> None:
    ins, grads, attrs = _problem("GRU", 1, "bidirectional", 1, [4, 0, 2], 2, F32)
    g, feeds = _grad_graph("GRU", ins, grads, attrs, symbolic=True)
    _lowered(g)
    model = writer.to_model(g)
    onnx.checker.check_model(model, full_check=True)
    back = reader.from_model(model)
    back.verify()
    assert str(back) == str(g)
    assert str(writer.to_model(back)) == str(model)
    a = Interpreter(g).run(feeds)
    b = Interpreter(back).run(feeds)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])


def test_grad_of_a_traced_lstm_runs_on_onnxruntime() -> None:
    """``ir.grad`` lowers the recurrences: the same gradients as the *Grad kernels."""
    import tracer

    tracer.manual_seed(0)
    model = tracer.nn.LSTM(5, 4, batch_first=True, bidirectional=True)
    x = np.random.default_rng(0).standard_normal((3, 6, 5)).astype(F32)

    def loss(inp: Any) -> Any:
        y, (h, c) = model(inp)
        return (y * y).sum() + h.sum() + (c * c).mean()

    fwd = tracer.trace(loss, (tracer.tensor(x),), dynamic_axes={"inp": {0: "batch", 1: "seq"}})
    wrt = [name for name, v in fwd.initializers.items() if v.dtype == F32]  # the parameters
    standard = ir.grad(fwd, wrt)
    custom = ir.grad(fwd, wrt, standard_only=False)
    assert {n.op.domain for n in standard.nodes} == {""}
    assert DOMAIN in {n.op.domain for n in custom.nodes}
    feeds = {fwd.inputs[0].name: x}
    got = runtime.Session(standard, backend="onnxruntime").run(feeds)
    want = Interpreter(custom).run(feeds)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-4, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("bidirectional", [True, False])
def test_lowering_replaces_the_forward_lstm(batch_first: bool, bidirectional: bool) -> None:
    """Without lengths, the recomputing Scans also give the forward node's outputs.

    The forward ``LSTM`` node is gone from the standard graph; every output (the loss reads
    ``Y``, ``Y_h`` and ``Y_c`` of both layers) and gradient equals the kernels' graph.
    """
    import tracer

    tracer.manual_seed(0)
    model = tracer.nn.LSTM(
        5, 4, num_layers=2, batch_first=batch_first, bidirectional=bidirectional
    ).double()
    x = np.random.default_rng(0).standard_normal((3, 6, 5))

    def loss(inp: Any) -> Any:
        y, (h, c) = model(inp)
        return (y * y).sum() + (h * y.sum()).sum() + (c * c).mean()

    fwd = tracer.trace(loss, (tracer.tensor(x),))
    wrt = [name for name, v in fwd.initializers.items() if v.dtype == np.float64]
    standard = ir.grad(fwd, wrt)
    custom = ir.grad(fwd, wrt, standard_only=False)
    assert "LSTM" not in {n.op.op_type for n in standard.nodes}
    assert "LSTM" in {n.op.op_type for n in custom.nodes}
    feeds = {fwd.inputs[0].name: x}
    got, want = Interpreter(standard).run(feeds), Interpreter(custom).run(feeds)
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_allclose(got[name], want[name], rtol=1e-12, atol=1e-13, err_msg=name)


# ---------------------------------------------------------------- refusals


def _lstm_graph(attrs: dict[str, Any], peepholes: bool = False) -> ir.Graph:
    ins, grads, _ = _problem("LSTM", 0, "forward", 0, None, 0, F64)
    if peepholes:
        ins[7] = np.full((1, 9), 0.1)
    g, _ = _grad_graph("LSTM", ins, grads, attrs)
    return g


@pytest.mark.parametrize(
    ("attrs", "named"),
    [
        ({"clip": 2.0}, "clip"),
        ({"activations": ["Sigmoid", "Tanh", "Relu"]}, "activations"),
        ({"input_forget": 1}, "input_forget"),
    ],
)
def test_unsupported_attributes_are_named(attrs: dict[str, Any], named: str) -> None:
    g = _lstm_graph(attrs)
    with pytest.raises(UnsupportedOpError, match=named):
        lower_recurrent_grads(g)


def test_peepholes_are_refused_and_default_activations_accepted() -> None:
    with pytest.raises(UnsupportedOpError, match="peepholes"):
        lower_recurrent_grads(_lstm_graph({}, peepholes=True))
    g = _lstm_graph({"activations": ["sigmoid", "TANH", "Tanh"]})
    assert lower_recurrent_grads(g) == 1


def test_constant_zero_peepholes_are_accepted() -> None:
    """P = 0 as a constant, its gradient unused: the layer is P-less; both directions named."""
    ins, grads, _ = _problem("LSTM", 0, "bidirectional", 0, [4, 0, 2], 5, F64)
    ins[7] = np.zeros((2, 9))
    attrs = {"direction": "bidirectional", "activations": ["Sigmoid", "Tanh", "Tanh"] * 2}
    g, feeds = _grad_graph("LSTM", ins, grads, attrs, const=(7,))
    got = Interpreter(_lowered(g)).run(feeds)
    for v, want in zip(g.outputs, _expected("LSTM", ins, grads, attrs), strict=True):
        np.testing.assert_allclose(got[v.name], want, rtol=1e-10, atol=1e-10, err_msg=v.name)


# ---------------------------------------------------------------- Scan itself


def _scan_graph(sample: Any) -> ir.Graph:
    g = ir.Graph("scan")
    values = [g.add_input(f"x{i}", x.dtype, x.shape) for i, x in enumerate(sample.inputs)]
    g.set_outputs(g.apply(get("Scan"), values, sample.attrs))
    g.verify()
    return g


def _scan_samples(dtype: np.dtype) -> list[Any]:
    return list(control.SPECS[0].samples(np.random.default_rng(0), dtype))


@pytest.mark.parametrize("index", range(len(_scan_samples(F32))))
def test_scan_against_onnxruntime_and_reference(index: int) -> None:
    from onnx.reference import ReferenceEvaluator

    sample = _scan_samples(F32)[index]
    g = _scan_graph(sample)
    feeds = {f"x{i}": x for i, x in enumerate(sample.inputs)}
    want = get("Scan").kernel(*sample.inputs, **sample.attrs)
    got = runtime.Session(g, backend="onnxruntime").run(feeds)
    for v, w in zip(g.outputs, want, strict=True):
        np.testing.assert_allclose(got[v.name], w, rtol=1e-6, atol=1e-6)
    if any(sample.attrs.get(k) for k in ("scan_input_directions", "scan_output_directions")):
        return  # onnx.reference's Scan implements direction 0 only
    ref = ReferenceEvaluator(writer.to_model(g)).run(None, feeds)
    for r, w in zip(ref, want, strict=True):
        np.testing.assert_allclose(r, w, rtol=1e-6, atol=1e-6)


def test_scan_text_form_and_name_clashes() -> None:
    """Bodies print after their node; body names that clash are renamed only in the file."""
    sample = _scan_samples(F64)[0]
    g = _scan_graph(sample)
    text = str(g)
    assert "body=graph(cumsum)" in text
    assert "\n    graph cumsum(%s: f64[2, 3], %x: f64[2, 3]) {\n" in text
    model = writer.to_model(g)
    onnx.checker.check_model(model, full_check=True)
    body = model.graph.node[0].attribute[0].g
    outer = {v.name for v in model.graph.input} | {o for n in model.graph.node for o in n.output}
    assert not outer & {o for n in body.node for o in n.output}
    back = reader.from_model(model)
    feeds = {f"x{i}": x for i, x in enumerate(sample.inputs)}
    ours, theirs = Interpreter(g).run(feeds), Interpreter(back).run(feeds)
    for v in g.outputs:
        np.testing.assert_array_equal(ours[v.name], theirs[v.name])


def test_verify_refuses_a_body_reading_outer_values() -> None:
    g = ir.Graph("outer")
    s = g.add_input("s", F64, (2,))
    w = g.add_input("w", F64, (2,))
    body = ir.Graph("leaky")
    bs = body.add_input("bs", F64, (2,))
    body.add_input("bx", F64, (2,))
    body.set_outputs([body.apply(get("Add"), [bs, w], {})[0]])  # w is the outer graph's
    g.set_outputs(
        g.apply(
            get("Scan"), [s, g.add_input("xs", F64, (3, 2))], {"body": body, "num_scan_inputs": 1}
        )
    )
    with pytest.raises(GraphInvariantError, match="through a capture"):
        g.verify()


def _onnx_scan_model(opset: int, outer_ref: bool) -> onnx.ModelProto:
    t = TensorProto.FLOAT
    body = helper.make_graph(
        [helper.make_node("Add", ["s", "w" if outer_ref else "x"], ["s2"])],
        "body",
        [helper.make_tensor_value_info("s", t, [2]), helper.make_tensor_value_info("x", t, [2])],
        [helper.make_tensor_value_info("s2", t, [2])],
    )
    inputs = ["", "s0", "xs"] if opset < 9 else ["s0", "xs"]
    node = helper.make_node("Scan", inputs, ["out"], body=body, num_scan_inputs=1)
    graph = helper.make_graph(
        [node],
        "m",
        [
            helper.make_tensor_value_info("s0", t, [2]),
            helper.make_tensor_value_info("xs", t, [3, 2]),
            helper.make_tensor_value_info("w", t, [2]),
        ],
        [helper.make_tensor_value_info("out", t, [2])],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_reader_refuses_scan8_and_reads_outer_scope_values() -> None:
    with pytest.raises(UnsupportedOpError, match="Scan before opset 9"):
        reader.from_model(_onnx_scan_model(8, outer_ref=False))
    feeds = {"s0": np.ones(2, F32), "xs": np.ones((3, 2), F32), "w": np.full(2, 2, F32)}
    g = reader.from_model(_onnx_scan_model(20, outer_ref=False))
    np.testing.assert_array_equal(Interpreter(g).run(feeds)["out"], np.full(2, 4, F32))
    g = reader.from_model(_onnx_scan_model(20, outer_ref=True))  # the body reads w
    assert [v.name for v in next(iter(g.nodes)).attrs["body"].captures] == ["w"]
    np.testing.assert_array_equal(Interpreter(g).run(feeds)["out"], np.full(2, 7, F32))


def test_scan_shape_rule_keeps_a_symbolic_length() -> None:
    body = ir.Graph("double")
    s = body.add_input("s", F32, ("batch",))
    x = body.add_input("x", F32, ("batch",))
    body.set_outputs([op.Add(s, x), op.Mul(x, scalar(2.0, x))])
    g = ir.Graph("main")
    s0 = g.add_input("s0", F32, ("batch",))
    xs = g.add_input("xs", F32, ("batch", "seq"))
    final, ys = g.apply(
        get("Scan"), [s0, xs], {"body": body, "num_scan_inputs": 1, "scan_input_axes": [1]}
    )
    assert final.type.shape == ("batch",)
    assert ys.type.shape == ("seq", "batch")
