"""``If`` and ``Loop`` in the IR, against onnx.reference, onnxruntime and finite differences.

Kernels, shape rules, captures (outer-scope values) through verify, the reader and the
writer, and graph autodiff against finite differences and eager autograd.

``tests/ir/test_ops.py`` runs their spec-table samples (kernels, eager, first and second order
gradients); ``tests/export/test_conformance.py`` runs ONNX's own If/Loop/Scan cases.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import ir
import tracer
from export.cli.inspect_command import describe
from export.onnx import from_model, save, to_model
from ir.errors import GraphInvariantError, ShapeError
from ir.graph import Graph
from ir.ops import get, op, scalar
from runtime.numpy_interpreter import Interpreter

F64, F32 = np.dtype(np.float64), np.dtype(np.float32)


def _model() -> Graph:
    """An If, then a Loop whose body holds an If reading ``w`` two scopes up.

    ``y = If(p, sin(x) * w, x * x)``; the Loop runs ``s' = tanh(s) * w + y`` ``m`` times or
    while ``sum(s') < limit``. Returns the final state, the stacked per-iteration
    ``s' * s'`` and the loss, the sum of both.
    """
    g = Graph("main")
    x, w = g.add_input("x", F64, ("n",)), g.add_input("w", F64, ("n",))
    p, m = g.add_input("p", np.bool_, ()), g.add_input("m", np.int64, ())
    limit = g.add_input("limit", F64, ())
    then, other = Graph("then"), Graph("else")
    tx, tw = then.add_capture("x", F64, ("n",)), then.add_capture("w", F64, ("n",))
    then.set_outputs([op.Mul(op.Sin(tx), tw)])
    ex = other.add_capture("x", F64, ("n",))
    other.add_capture("w", F64, ("n",))
    other.set_outputs([op.Mul(ex, ex)])
    (y,) = op.If(p, x, w, then_branch=then, else_branch=other)
    body = Graph("body")
    body.add_input("i", np.int64, ())
    body.add_input("c", np.bool_, ())
    s = body.add_input("s", F64, ("n",))
    bw, by, bl = (body.add_capture(n, t.dtype, t.type.shape) for n, t in
                  [("w", w), ("y", y), ("limit", limit)])  # fmt: skip
    nxt = op.Add(op.Mul(op.Tanh(s), bw), by)
    inner_then, inner_else = Graph("pos"), Graph("neg")
    for branch, sign in [(inner_then, 1.0), (inner_else, -1.0)]:
        cw = branch.add_capture("w2", F64, ("n",))
        cn = branch.add_capture("nxt", F64, ("n",))
        branch.set_outputs([op.Add(cn, op.Mul(cw, scalar(0.1 * sign, cw)))])
    positive = op.Greater(op.ReduceSum(nxt, keepdims=0), scalar(0.0, nxt))
    (nxt,) = op.If(positive, bw, nxt, then_branch=inner_then, else_branch=inner_else)
    keep = op.Less(op.ReduceSum(nxt, keepdims=0), bl)
    body.set_outputs([keep, nxt, op.Mul(nxt, nxt)])
    final, scan = op.Loop(m, g.constant(np.asarray(True)), y, w, y, limit, body=body)
    total = op.Add(op.ReduceSum(final, keepdims=0), op.ReduceSum(scan, keepdims=0))
    g.add_output(final, "final")
    g.add_output(scan, "scan")
    g.add_output(total, "loss")
    g.verify()
    return g


def _feeds(p: bool, m: int, limit: float = 1e9) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x": rng.normal(size=5),
        "w": rng.normal(size=5),
        "p": np.asarray(p),
        "m": np.asarray(m, np.int64),
        "limit": np.asarray(limit),
    }


CASES = [(True, 3, 1e9), (False, 4, 1e9), (True, 0, 1e9), (False, 50, 3.0)]


def test_if_and_loop_agree_with_onnx_reference_and_onnxruntime() -> None:
    g = _model()
    model = to_model(g)
    onnx.checker.check_model(model, full_check=True)
    ours = Interpreter(g)
    ref = ReferenceEvaluator(model)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    trips = set()
    for p, m, limit in CASES:
        feeds = _feeds(p, m, limit)
        want = ours.run(feeds)
        trips.add(want["scan"].shape[0])
        # onnx.reference cannot stack zero iterations' scan outputs (np.vstack of nothing).
        oracles = [sess.run(None, feeds)] + ([ref.run(None, feeds)] if m else [])
        for got in oracles:
            for v, a in zip(g.outputs, got, strict=True):
                np.testing.assert_allclose(a, want[v.name], rtol=1e-12, atol=1e-12)
    assert len(trips) == 4  # 3, 4, 0 and the data-dependent stop


def test_round_trip_keeps_captures_and_names_outer_values_in_the_file() -> None:
    g = _model()
    model = to_model(g)
    loop = next(n for n in model.graph.node if n.op_type == "Loop")
    assert len(loop.input) == 3 and loop.input[0] == "m"  # M, cond, y: captures dropped
    body = loop.attribute[0].g
    assert {i.name for i in body.input} == {"i", "c", "s"}  # captures are not inputs
    inner = next(n for n in body.node if n.op_type == "If")
    reads = {x for b in inner.attribute for n in b.g.node for x in n.input}
    assert "w" in reads  # the top-level input, read by name two scopes down
    back = from_model(model)
    assert str(from_model(to_model(back))) == str(back)
    feeds = _feeds(False, 3)
    want = Interpreter(g).run(feeds)
    got = Interpreter(back).run(feeds)
    for v in g.outputs:
        np.testing.assert_array_equal(got[v.name], want[v.name])


def test_shape_rules_merge_branches_and_carry_growing_values() -> None:
    g = Graph("main")
    x = g.add_input("x", F32, ("b", 3))
    flag = g.add_input("flag", np.bool_, ())
    then, other = Graph("t"), Graph("e")
    then.set_outputs([op.Identity(then.add_capture("x", F32, ("b", 3)))])
    xe = other.add_capture("x", F32, ("b", 3))
    other.set_outputs([op.Concat(xe, xe, axis=1)])
    (y,) = op.If(flag, x, then_branch=then, else_branch=other)
    assert y.type.shape == ("b", None)
    body = Graph("grow")
    body.add_input("i", np.int64, ())
    c = body.add_input("c", np.bool_, ())
    s = body.add_input("s", F32, ("b", None))
    body.set_outputs([op.Identity(c), op.Concat(s, s, axis=1), op.ReduceSum(s, keepdims=0)])
    final, sums = op.Loop(g.constant(np.asarray(2, np.int64)), None, x, body=body)
    assert final.type.shape == ("b", None) and sums.type.shape == (2,)
    final, sums = op.Loop(None, flag, x, body=body)
    assert sums.type.shape == (None,)
    g.set_outputs([y, final])
    g.verify()
    out = Interpreter(g).run({"x": np.ones((2, 3), F32), "flag": np.asarray(False)})
    assert out[y.name].shape == (2, 6) and out[final.name].shape == (2, 3)


def _if_graph() -> tuple[Graph, ir.Node]:
    g = Graph("main")
    x, flag = g.add_input("x", F32, (2,)), g.add_input("flag", np.bool_, ())
    then, other = Graph("t"), Graph("e")
    then.set_outputs([op.Neg(then.add_capture("c", F32, (2,)))])
    other.set_outputs([op.Identity(other.add_capture("c", F32, (2,)))])
    (y,) = op.If(flag, x, then_branch=then, else_branch=other)
    g.set_outputs([y])
    assert y.producer is not None
    return g, y.producer


def test_verify_names_capture_mistakes() -> None:
    g, node = _if_graph()
    g.verify()
    two = Graph("two")
    two.add_capture("a", F32, (2,))
    two.set_outputs([op.Identity(two.add_capture("b", F32, (2,)))])
    node.attrs["then_branch"] = two
    with pytest.raises(GraphInvariantError, match="captures 1 outer value"):
        g.verify()
    g, node = _if_graph()
    wide = Graph("wide")
    wide.set_outputs([op.Identity(wide.add_capture("c", F64, (2,)))])
    node.attrs["else_branch"] = wide
    with pytest.raises(GraphInvariantError, match="consistent types"):
        g.verify()
    g, node = _if_graph()
    leaky = Graph("leaky")
    leaky.add_capture("c", F32, (2,))
    leaky.set_outputs([leaky.apply(get("Neg"), [g.inputs[0]], {})[0]])  # reads x directly
    node.attrs["then_branch"] = leaky
    with pytest.raises(GraphInvariantError, match="through a capture"):
        g.verify()


def test_kernels_refuse_bad_inputs_clearly() -> None:
    then, other = Graph("t"), Graph("e")
    then.set_outputs([then.constant(np.ones(2))])
    other.set_outputs([other.constant(np.ones(2)), other.constant(np.ones(2))])
    with pytest.raises(ShapeError, match="same number"):
        get("If").kernel(np.asarray(True), then_branch=then, else_branch=other)
    with pytest.raises(ShapeError, match="one element"):
        get("If").kernel(np.ones(2, bool), then_branch=then, else_branch=then)
    body = Graph("b")
    body.add_input("i", np.int64, ())
    c = body.add_input("c", np.bool_, ())
    s = body.add_input("s", F64, (None,))
    body.set_outputs([op.Identity(c), op.Concat(s, s, axis=0), op.Identity(s)])
    with pytest.raises(ShapeError, match="scan output 0 changes shape"):
        get("Loop").kernel(np.asarray(3, np.int64), None, np.ones(1), body=body)


def test_text_form_shows_captures() -> None:
    text = str(_model())
    assert "graph then() captures(%x: f64[n], %w: f64[n]) {" in text
    assert "Loop(%m, %const, %1, %w, %1, %limit, body=graph(body))" in text
    assert "graph body(%i: i64[], %c: bool[], %s: f64[n]) captures(%w: f64[n]" in text


def _onnx_nested_model() -> onnx.ModelProto:
    """A Loop whose body's If branch reads the top-level input ``w`` by name."""
    t = TensorProto.FLOAT
    branch = [
        helper.make_graph([helper.make_node(op_type, ["s", "w"], [f"o_{op_type}"])], op_type,
                          [], [helper.make_tensor_value_info(f"o_{op_type}", t, [2])])
        for op_type in ("Add", "Sub")
    ]  # fmt: skip
    body = helper.make_graph(
        [
            helper.make_node("Greater", ["i", "zero"], ["odd"]),
            helper.make_node("If", ["odd"], ["s2"], then_branch=branch[0], else_branch=branch[1]),
            helper.make_node("Identity", ["c"], ["c2"]),
        ],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("c", TensorProto.BOOL, []),
            helper.make_tensor_value_info("s", t, [2]),
        ],
        [helper.make_tensor_value_info("c2", TensorProto.BOOL, []),
         helper.make_tensor_value_info("s2", t, [2])],
        initializer=[helper.make_tensor("zero", TensorProto.INT64, [], [0])],
    )  # fmt: skip
    graph = helper.make_graph(
        [helper.make_node("Loop", ["m", "", "s0"], ["out"], body=body)],
        "m",
        [
            helper.make_tensor_value_info("m", TensorProto.INT64, []),
            helper.make_tensor_value_info("s0", t, [2]),
            helper.make_tensor_value_info("w", t, [2]),
        ],
        [helper.make_tensor_value_info("out", t, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10  # onnxruntime reads IR versions up to 13
    return model


def test_reader_captures_outer_values_through_every_scope() -> None:
    model = _onnx_nested_model()
    g = from_model(model)
    loop = next(iter(g.nodes))
    body = loop.attrs["body"]
    assert [v.name for v in body.captures] == ["w"] and loop.inputs[-1].name == "w"
    inner = next(n for n in body.nodes if n.op.op_type == "If")
    assert [v.name for v in inner.attrs["then_branch"].captures] == ["s", "w"]
    feeds = {
        "m": np.asarray(4, np.int64),
        "s0": np.asarray([1.0, 2.0], F32),
        "w": np.asarray([0.5, 3.0], F32),
    }
    # onnx.reference runs no iteration when cond is absent, so onnxruntime is the oracle.
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    want = sess.run(None, feeds)[0]
    np.testing.assert_allclose(Interpreter(g).run(feeds)["out"], want)
    np.testing.assert_allclose(want, feeds["s0"] + 2 * feeds["w"])  # -w, +w, +w, +w


def _fd_grad(g: Graph, feeds: dict[str, np.ndarray], name: str, eps: float = 1e-6) -> np.ndarray:
    run = Interpreter(g)
    out = np.zeros_like(feeds[name])
    for k in range(out.size):
        d = np.zeros_like(out)
        d.flat[k] = eps
        hi = run.run({**feeds, name: feeds[name] + d})["loss"]
        lo = run.run({**feeds, name: feeds[name] - d})["loss"]
        out.flat[k] = (hi - lo) / (2 * eps)
    return out


@pytest.mark.parametrize(("p", "m", "limit"), CASES)
def test_graph_grad_through_if_and_loop(p: bool, m: int, limit: float) -> None:
    """``ir.grad`` vs central differences, eager autograd and onnxruntime.

    Eager autograd runs the same ops on tensors; the data-dependent trip count is included.
    """
    g = _model()
    grad = ir.grad(g, ["x", "w"], of="loss")
    feeds = _feeds(p, m, limit)
    got = Interpreter(grad).run(feeds)
    for name in ("x", "w"):
        np.testing.assert_allclose(got[f"{name}_grad"], _fd_grad(g, feeds, name), atol=1e-7)
    x = tracer.tensor(feeds["x"], requires_grad=True)
    w = tracer.tensor(feeds["w"], requires_grad=True)
    eager = _eager_loss(g, x, w, feeds)
    eager.backward()
    np.testing.assert_allclose(got["x_grad"], x.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(got["w_grad"], w.grad.numpy(), rtol=1e-12, atol=1e-12)
    model = to_model(grad)
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    theirs = dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feeds), strict=True))
    for name in ("x_grad", "w_grad"):
        np.testing.assert_allclose(theirs[name], got[name], rtol=1e-10, atol=1e-12)


def _eager_loss(
    g: Graph, x: tracer.Tensor, w: tracer.Tensor, feeds: dict[str, np.ndarray]
) -> tracer.Tensor:
    """The graph's nodes applied to eager tensors: the vjp rules run on tensors."""
    env = {"x": x, "w": w, **{k: tracer.tensor(v) for k, v in feeds.items() if k not in "xw"}}
    env.update({k: v.const for k, v in g.initializers.items()})
    for n in g.nodes:
        outs = n.op(*(None if v is None else env[v.name] for v in n.inputs), **n.attrs)
        for v, o in zip(n.outputs, outs if isinstance(outs, tuple) else (outs,), strict=True):
            env[v.name] = o
    return env["loss"]


def test_loop_grad_needs_carried_values_of_one_shape() -> None:
    g = Graph("main")
    s = g.add_input("s", F64, (None,))
    body = Graph("grow")
    body.add_input("i", np.int64, ())
    c = body.add_input("c", np.bool_, ())
    v = body.add_input("v", F64, (None,))
    body.set_outputs([op.Identity(c), op.Concat(v, op.Tanh(v), axis=0)])
    (final,) = op.Loop(g.constant(np.asarray(2, np.int64)), None, s, body=body)
    g.add_output(op.ReduceSum(final, keepdims=0), "loss")
    grad = ir.grad(g, ["s"])
    with pytest.raises(ShapeError, match="changes shape between iterations"):
        Interpreter(grad).run({"s": np.ones(2)})


def test_inspect_counts_nodes_inside_subgraphs(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    save(_model(), path)
    info = describe(path)
    model = onnx.load(str(path))
    top = len(model.graph.node)
    assert info["nodes"] > top and info["subgraph_nodes"] == info["nodes"] - top
    assert info["ops"]["If"] == 2 and info["ops"]["Tanh"] == 1
