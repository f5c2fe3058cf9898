"""The general-purpose passes and ``optimize``.

Per pass: small golden tests on the text form showing each rule fires, and that it does not
fire where it must not. Soundness: seeded random graphs and traced models (an MLP, a
``TransformerEncoder`` classifier, an LSTM tagger, the models of ``tests/models.py``) give
the same values before and after every pass and every ``optimize`` level, on the interpreter
and on onnxruntime (an oracle nobody here wrote), and still verify.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracer
from ir.errors import GraphInvariantError
from ir.graph import Graph, Value
from ir.ops.registry import op
from ir.passes import (
    AlgebraicSimplificationPass,
    CommonSubexpressionEliminationPass,
    ConstantFoldingPass,
    DeadCodeEliminationPass,
    IdentityEliminationPass,
    Pass,
    PassError,
    PassManager,
    PassResult,
    optimize,
)
from ir.passes.cse import _attr_key
from ir.passes.optimize import pipeline
from ir.types import TensorType
from runtime import Session
from tests import models
from tracer import nn

F32 = np.float32
PASSES: list[Callable[[], Pass]] = [
    DeadCodeEliminationPass,
    ConstantFoldingPass,
    CommonSubexpressionEliminationPass,
    IdentityEliminationPass,
    AlgebraicSimplificationPass,
]


# ---------------------------------------------------------------- helpers


def build(fn: Callable[..., Any], **inputs: tuple[Any, list[Any]]) -> Graph:
    """A graph with ``inputs`` (name -> (dtype, shape)) whose outputs ``fn`` returns."""
    g = Graph("g")
    outs = fn(*[g.add_input(name, *spec) for name, spec in inputs.items()])
    g.set_outputs(outs if isinstance(outs, list) else [outs])
    g.verify()
    return g


def const(g: Value | Graph, array: Any, hint: str = "c") -> Value:
    graph = g.graph if isinstance(g, Value) else g
    return graph.constant(np.asarray(array), hint)


def rewrite(p: Pass, g: Graph) -> tuple[str, bool]:
    """Run ``p`` once on ``g`` (in place), verify, and give the text and ``changed``."""
    changed = p.call(g).changed
    g.verify()
    return body(g), changed


def body(g: Graph) -> str:
    """The text form without the signature line and braces, dedented."""
    return "\n".join(line.strip() for line in str(g).splitlines()[1:-1])


def run(g: Graph, feeds: dict[str, np.ndarray], backend: str = "interpreter") -> list[Any]:
    out = Session(g, backend=backend).run(feeds)
    assert list(out) == [v.name for v in g.outputs]
    return list(out.values())


def assert_same(got: list[Any], want: list[Any], rtol: float = 1e-6, atol: float = 1e-6) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_allclose(a, b, rtol=rtol, atol=atol, equal_nan=True)


def signature(g: Graph) -> tuple[list[str], list[str]]:
    return [repr(v) for v in g.inputs], [v.name for v in g.outputs]


# ---------------------------------------------------------------- dead code elimination


def test_dce_removes_dead_chains_and_unused_initializers_but_not_inputs() -> None:
    def f(x: Value, unused: Value) -> Value:
        op.Tanh(op.Neg(x))
        return op.Relu(x)

    g = build(f, x=(F32, [2, 3]), unused=(F32, [1]))
    g.add_initializer("w_unused", np.ones(3, F32))
    text, changed = rewrite(DeadCodeEliminationPass(), g)
    assert changed and text == "%3 = Relu(%x) : f32[2, 3]\nreturn %3"
    assert [v.name for v in g.inputs] == ["x", "unused"]
    assert not DeadCodeEliminationPass().call(g).changed


def test_dce_keeps_a_node_with_one_used_output_and_initializer_outputs() -> None:
    def f(x: Value) -> list[Value]:
        values, _ = op.TopK(x, np.asarray([2]), axis=-1)
        return [values, const(x, np.zeros(2, F32), "out_c")]

    g = build(f, x=(F32, [4]))
    before = body(g)
    assert rewrite(DeadCodeEliminationPass(), g) == (before, False)


# ---------------------------------------------------------------- constant folding


def test_constant_folding_folds_constant_chains_shapes_and_sizes() -> None:
    w = np.arange(6, dtype=F32).reshape(3, 2)

    def f(x: Value) -> list[Value]:
        wt = op.Add(op.Transpose(const(x, w, "w"), perm=[1, 0]), np.ones((), F32))
        return [op.MatMul(x, wt), op.Shape(x, start=1), op.Size(x), op.Shape(x)]

    g = build(f, x=(F32, ["batch", 2]))
    text, changed = rewrite(ConstantFoldingPass(), g)
    assert changed
    assert text == (
        "%2 = initializer f32[2, 3]\n"
        "%4 = initializer i64[1]\n"
        "%3 = MatMul(%x, %2) : f32[batch, 3]\n"
        "%5 = Size(%x) : i64[]\n"
        "%6 = Shape(%x) : i64[2]\n"
        "return %3, %4, %5, %6"
    )  # Size and the full Shape depend on batch: they stay
    np.testing.assert_array_equal(g.initializers["2"].const, w.T + 1)
    np.testing.assert_array_equal(g.initializers["4"].const, [2])


def test_constant_folding_folds_size_and_shape_of_static_values() -> None:
    g = build(lambda x: [op.Size(x), op.Shape(op.Relu(x))], x=(F32, [2, 3]))
    text, _ = rewrite(ConstantFoldingPass(), g)
    assert text == (
        "%1 = initializer i64[]\n"
        "%3 = initializer i64[2]\n"
        "return %1, %3"  # the Relu only the Shape read went with it
    )
    assert g.initializers["1"].const == 6
    np.testing.assert_array_equal(g.initializers["3"].const, [2, 3])


def test_constant_folding_leaves_random_large_and_dynamic_values() -> None:
    def f(x: Value) -> list[Value]:
        on = const(x, np.asarray(True), "train")
        drop, _ = op.Dropout(const(x, np.ones(4, F32), "w"), np.asarray(0.5, F32), on)
        big = op.ConstantOfShape(const(x, np.asarray([64, 64]), "shape"))
        return [op.Add(x, drop), big, op.Shape(x)]

    g = build(f, x=(F32, ["n", 4]))
    before = body(g)
    assert rewrite(ConstantFoldingPass(size_limit=1000), g) == (before, False)
    _, changed = rewrite(ConstantFoldingPass(), g)  # 4096 elements are within the default
    assert changed and g.nodes[1].op.op_type == "Add"


def test_constant_folding_folds_linear_weights_transpose() -> None:
    tracer.manual_seed(0)
    g = tracer.trace(nn.Linear(4, 3), (tracer.randn(2, 4),), dynamic_axes={"input": {0: "b"}})
    assert [n.op.op_type for n in g.nodes] == ["Transpose", "MatMul", "Add"]
    ConstantFoldingPass().call(g)
    g.verify()
    assert [n.op.op_type for n in g.nodes] == ["MatMul", "Add"]
    assert "weight" not in g.initializers  # only the transpose read it


def test_constant_folding_never_duplicates_a_large_initializer() -> None:
    """A copy (a detach()'s Identity, a Transpose) of a weight that is still read elsewhere."""
    table = np.arange(24, dtype=F32).reshape(6, 4)

    def f(ids: Value) -> list[Value]:
        w = const(ids, table, "table")
        frozen = op.Identity(w)  # e.g. a detached copy of an embedding table
        tied = op.Transpose(w, perm=[1, 0])  # e.g. a tied output projection
        return [op.Gather(w, ids, axis=0), op.Gather(frozen, ids, axis=0), tied]

    g = build(f, ids=(np.dtype(np.int64), [3]))
    feeds = {"ids": np.asarray([0, 5, 2])}
    want = run(g, feeds)
    size = sum(v.const.size for v in g.initializers.values() if v.const is not None)
    ConstantFoldingPass(size_limit=10).call(g)
    g.verify()
    assert sum(v.const.size for v in g.initializers.values() if v.const is not None) == size
    assert_same(run(g, feeds), want)
    ConstantFoldingPass(size_limit=24).call(g)  # the limit allows one copy's growth
    assert_same(run(g, feeds), want)


# ---------------------------------------------------------------- CSE


def test_cse_merges_nodes_chains_and_initializers() -> None:
    def f(x: Value) -> list[Value]:
        a = op.Tanh(op.Add(x, const(x, np.ones(3, F32))))
        b = op.Tanh(op.Add(x, const(x, np.ones(3, F32))))
        s1 = op.Softmax(x)
        s2 = op.Softmax(x, axis=-1)  # the default given explicitly
        t1 = op.Transpose(x, perm=[1, 0])
        t2 = op.Transpose(x, perm=(1, 0))
        return [op.Mul(a, b), op.Add(s1, s2), op.Sub(t1, t2)]

    g = build(f, x=(F32, [2, 3]))
    text, changed = rewrite(CommonSubexpressionEliminationPass(), g)
    assert changed
    assert text == (
        "%c = initializer f32[3]\n"
        "%1 = Add(%x, %c) : f32[2, 3]\n"
        "%2 = Tanh(%1) : f32[2, 3]\n"
        "%6 = Softmax(%x) : f32[2, 3]\n"
        "%8 = Transpose(%x, perm=[1, 0]) : f32[3, 2]\n"
        "%10 = Mul(%2, %2) : f32[2, 3]\n"
        "%11 = Add(%6, %6) : f32[2, 3]\n"
        "%12 = Sub(%8, %8) : f32[3, 2]\n"
        "return %10, %11, %12"
    )


def test_cse_keeps_distinct_attributes_random_ops_and_separate_outputs() -> None:
    def f(x: Value) -> list[Value]:
        on = const(x, np.asarray(True), "on")
        d1, _ = op.Dropout(x, np.asarray(0.5, F32), on)
        d2, _ = op.Dropout(x, np.asarray(0.5, F32), on)
        t1 = op.Transpose(x, perm=[0, 1])
        t2 = op.Transpose(x, perm=[1, 0])
        return [op.Add(d1, d2), op.Relu(t1), op.Relu(t2), op.Neg(x), op.Neg(x)]

    g = build(f, x=(F32, [3, 3]))
    pm = CommonSubexpressionEliminationPass()
    text, _ = rewrite(pm, g)
    assert text.count("Dropout") == 2 and text.count("Transpose") == 2
    assert text.count("Neg") == 2  # both are graph outputs: each keeps its name
    assert "initializer f32[]" in text and text.count("initializer") == 2  # ratios merged


def test_cse_merges_shape_values_with_one_symbolic_value() -> None:
    def f(a: Value, b: Value, c: Value) -> list[Value]:
        return [
            op.Reshape(a, op.Concat(op.Shape(a, end=1), np.asarray([-1]), axis=0)),
            op.Reshape(b, op.Concat(op.Shape(b, end=1), np.asarray([-1]), axis=0)),
            op.Reshape(c, op.Concat(op.Shape(c, end=1), np.asarray([-1]), axis=0)),
        ]

    g = build(f, a=(F32, ["n", 2, 3]), b=(F32, ["n", 6]), c=(F32, ["m", 6]))
    text, changed = rewrite(CommonSubexpressionEliminationPass(), g)
    assert changed and text == (
        "%const = initializer i64[1]\n"
        "%1 = Shape(%a, end=1) : i64[1]\n"
        "%2 = Concat(%1, %const, axis=0) : i64[2]\n"
        "%3 = Reshape(%a, %2) : f32[n, 6]\n"
        "%7 = Reshape(%b, %2) : f32[n, 6]\n"
        "%8 = Shape(%c, end=1) : i64[1]\n"  # m is not n
        "%10 = Concat(%8, %const, axis=0) : i64[2]\n"
        "%11 = Reshape(%c, %10) : f32[m, 6]\n"
        "return %3, %7, %11"
    )


def _cumsum_body(name: str, dropout: bool = False) -> Graph:
    """A Scan body: state, x -> state + x, 2 * (state + x) (after a training Dropout)."""
    body = Graph(name)
    total = op.Add(body.add_input("s", F32, [3]), body.add_input("x", F32, [3]))
    if dropout:
        total, _ = op.Dropout(total, np.asarray(0.5, F32), const(body, np.asarray(True)))
    body.set_outputs([total, op.Mul(total, np.asarray(2.0, F32))])
    return body


def test_scan_nodes_merge_by_body_identity_and_fold_on_constants() -> None:
    body, twin, noisy = _cumsum_body("body"), _cumsum_body("twin"), _cumsum_body("noisy", True)

    def f(s: Value, xs: Value) -> list[Value]:
        a = op.Scan(s, xs, body=body, num_scan_inputs=1)
        b = op.Scan(s, xs, body=body, num_scan_inputs=1)
        c = op.Scan(s, xs, body=twin, num_scan_inputs=1)  # equal, but another graph
        ones = [const(s, np.ones(3, F32)), const(s, np.ones((4, 3), F32))]
        k = op.Scan(*ones, body=body, num_scan_inputs=1)  # all constant: folded
        r = op.Scan(*ones, body=noisy, num_scan_inputs=1)  # draws at random: kept
        return [op.Add(a[1], b[1]), op.Add(c[0], k[0]), r[0]]

    g = build(f, s=(F32, [3]), xs=(F32, ["t", 3]))
    feeds = {"s": np.arange(3, dtype=F32), "xs": np.ones((5, 3), F32)}
    want = run(g, feeds)[:2]
    o = optimize(g, 2)
    scans = [n.attrs["body"].name for n in o.nodes if n.op.op_type == "Scan"]
    assert scans == ["body", "twin", "noisy"]
    assert_same(run(o, feeds)[:2], want)
    assert_same(run(o, feeds, "onnxruntime")[:2], want)


def test_cse_compares_attribute_graphs_by_identity_and_floats_bitwise() -> None:
    g1, g2 = Graph("body"), Graph("body")
    assert _attr_key(g1) == _attr_key(g1) and _attr_key(g1) != _attr_key(g2)
    assert _attr_key([g1, 1]) == _attr_key((g1, 1))
    assert _attr_key(-0.0) != _attr_key(0.0) and _attr_key(float("nan")) == _attr_key(np.nan)
    assert _attr_key(np.arange(3)) == _attr_key(np.arange(3))
    assert _attr_key(np.arange(3)) != _attr_key(np.arange(3, dtype=np.int32))
    assert _attr_key(1) != _attr_key(1.0) and _attr_key(True) != _attr_key(1)


def test_cse_merges_large_initializers_only_when_they_share_the_array() -> None:
    g = build(lambda x: op.Add(x, x), x=(F32, [2]))
    big = np.ones(100, F32)
    for name, array in [("a", big), ("b", big), ("c", big.copy())]:
        g.set_outputs(
            [*g.outputs, op.Add(g.outputs[0], op.ReduceSum(g.add_initializer(name, array)))]
        )
    CommonSubexpressionEliminationPass(initializer_size_limit=10).call(g)
    g.verify()
    assert sorted(g.initializers) == ["a", "c"]


# ---------------------------------------------------------------- identity elimination


def test_identity_elimination_removes_no_op_nodes() -> None:
    def f(x: Value) -> Value:
        y = op.Identity(x)
        y = op.Cast(y, to=1)  # float32 to float32
        y = op.Reshape(y, np.asarray([2, 3]))
        y = op.Transpose(y, perm=[0, 1])
        y = op.Squeeze(op.Unsqueeze(y, np.asarray([1])), np.asarray([1]))
        y, _ = op.Dropout(op.Relu(y))
        false = const(x, np.asarray(False), "off")
        y, _ = op.Dropout(y, np.asarray(0.3, F32), false)
        return op.Identity(op.Concat(y, axis=0))

    g = build(f, x=(F32, [2, 3]))
    text, changed = rewrite(IdentityEliminationPass(), g)
    assert changed and text == "%16 = Relu(%x) : f32[2, 3]\nreturn %16"
    assert g.outputs[0].name == "16"  # the original output's name, taken over by Relu's value
    before = "\n".join(line for line in str(g).splitlines())
    assert not IdentityEliminationPass().call(g).changed and str(g) == before


def test_identity_elimination_keeps_outputs_names_and_real_work() -> None:
    def f(x: Value) -> list[Value]:
        on = const(x, np.asarray(True), "on")
        trained, _ = op.Dropout(x, np.asarray(0.5, F32), on)
        _, mask = op.Dropout(x)
        return [
            op.Identity(x),  # output of an input: it must keep its own name
            trained,
            mask,
            op.Cast(x, to=11),
            op.Reshape(x, np.asarray([3, 2])),
            op.Transpose(x, perm=[1, 0]),
        ]

    g = build(f, x=(F32, [2, 3]))
    before = body(g)
    assert rewrite(IdentityEliminationPass(), g) == (before, False)


# ---------------------------------------------------------------- algebraic simplification


def test_algebraic_simplification_removes_neutral_elements() -> None:
    def f(x: Value) -> Value:
        y = op.Mul(x, np.ones((), F32))
        y = op.Mul(const(x, np.ones([1, 1], F32), "one"), y)
        y = op.Add(y, np.zeros([3], F32))
        y = op.Sub(y, np.zeros((), F32))
        y = op.Div(y, np.ones([3], F32))
        return op.Relu(y)

    g = build(f, x=(F32, ["n", 3]))
    text, changed = rewrite(AlgebraicSimplificationPass(), g)
    assert changed and text == "%9 = Relu(%x) : f32[n, 3]\nreturn %9"


def test_algebraic_simplification_composes_transposes_reshapes_casts() -> None:
    def f(x: Value) -> list[Value]:
        t = op.Transpose(op.Transpose(x, perm=[1, 2, 0]), perm=[2, 0, 1])  # identity
        u = op.Transpose(op.Transpose(x, perm=[1, 0, 2]), perm=[0, 2, 1])
        r = op.Reshape(op.Reshape(x, np.asarray([6, 4])), np.asarray([4, -1]))
        c = op.Cast(op.Cast(op.Cast(x, to=11), to=1), to=11)  # f32 -> f64 -> f32 -> f64
        n = op.Neg(op.Neg(x))
        w = op.Where(op.Greater(x, np.zeros((), F32)), n, n)
        return [op.Add(t, w), u, r, c]

    g = build(f, x=(F32, [2, 3, 4]))
    text, _ = rewrite(AlgebraicSimplificationPass(), g)
    assert text == (
        "%const_6 = initializer i64[2]\n"
        "%4 = Transpose(%x, perm=[1, 2, 0]) : f32[3, 4, 2]\n"
        "%7 = Reshape(%x, %const_6) : f32[4, 6]\n"
        "%10 = Cast(%x, to=11) : f64[2, 3, 4]\n"
        "%16 = Add(%x, %x) : f32[2, 3, 4]\n"
        "return %16, %4, %7, %10"
    )


def test_algebraic_simplification_does_not_fire_where_it_must_not() -> None:
    def f(x: Value, v: Value) -> list[Value]:
        return [
            op.Mul(x, np.zeros((), F32)),  # NaN * 0 is NaN
            op.Sub(np.zeros((), F32), x),  # 0 - x is -x
            op.Div(x, x),  # inf / inf is NaN
            op.Mul(v, np.ones([2, 3], F32)),  # broadcasts v up to [2, 3]
            op.Pow(np.ones((), F32), v),  # 1 ** v is 1
            op.Cast(op.Cast(x, to=6), to=1),  # f32 -> i32 truncates
            op.Cast(op.Cast(op.Cast(x, to=7), to=1), to=11),  # i64 -> f32 may round
            op.Reshape(op.Reshape(x, np.asarray([3, 2])), np.asarray([0, 2])),  # 0: copy a dim
            op.Reciprocal(op.Reciprocal(x)),
        ]

    g = build(f, x=(F32, [2, 3]), v=(F32, [3]))
    before = body(g)
    assert rewrite(AlgebraicSimplificationPass(), g) == (before, False)


# ---------------------------------------------------------------- pass manager and optimize


def test_outputs_turned_constant_or_renamed_keep_their_names_on_onnxruntime() -> None:
    def f(x: Value) -> list[Value]:
        shape = op.Identity(op.Shape(x, start=1))  # folds to an initializer output
        return [op.Identity(op.Relu(x)), shape, op.Identity(x)]

    g = build(f, x=(F32, ["n", 3]))
    names = [v.name for v in g.outputs]
    o = optimize(g, 2)
    assert [n.op.op_type for n in o.nodes] == ["Relu", "Identity"]  # output of an input stays
    assert [v.name for v in o.outputs] == names and o.outputs[1].const is not None
    feeds = {"x": np.asarray([[-1.0, 2.0, 0.5]], F32)}
    assert_same(run(o, feeds, "onnxruntime"), run(g, feeds))


class _BreaksTypes(Pass):
    name = "breaks_types"

    def call(self, graph: Graph) -> PassResult:
        v = graph.nodes[0].outputs[0]
        v.type = TensorType(np.dtype(np.float64), v.type.shape)
        return PassResult(graph, True)


class _Raises(Pass):
    name = "raises"

    def call(self, graph: Graph) -> PassResult:
        registry: dict[str, Graph] = {}
        return PassResult(registry["missing"], True)  # a bug in the pass: KeyError


@pytest.mark.parametrize(
    ("bad", "what"), [(_BreaksTypes, "broke an invariant"), (_Raises, "raised KeyError")]
)
def test_pass_manager_names_the_pass_that_broke_the_graph(bad: type[Pass], what: str) -> None:
    g = build(lambda x: op.Relu(op.Identity(x)), x=(F32, [2]))
    with pytest.raises(PassError) as err:
        PassManager([IdentityEliminationPass(), DeadCodeEliminationPass(), bad()])(g)
    msg = str(err.value)
    assert f"pass {bad.name!r} {what}" in msg
    assert "identity_elimination, dead_code_elimination" in msg


def test_optimize_copies_or_works_in_place_and_checks_the_level() -> None:
    g = build(lambda x: op.Relu(op.Identity(x)), x=(F32, [2]))
    before = str(g)
    assert str(optimize(g, 0)) == before
    out = optimize(g, 1)
    assert str(g) == before and out is not g and len(out.nodes) == 1
    assert optimize(g, 1, copy=False) is g and len(g.nodes) == 1
    with pytest.raises(ValueError, match="level=4"):
        optimize(g, 4)


# ---------------------------------------------------------------- random graphs


def _const(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    if kind == "ones":
        return np.ones(shape, F32)
    if kind == "zeros":
        return np.zeros(shape, F32)
    return (rng.uniform(0.5, 1.5, shape) * rng.choice([-1, 1], shape)).astype(F32)


def _trailing(v: Value, rng: np.random.Generator) -> tuple[int, ...]:
    """A constant's shape that broadcasts against ``v`` without growing it."""
    static: list[int] = []
    for d in reversed(v.shape):
        if not isinstance(d, int) or rng.random() < 0.3:
            break
        static.insert(0, d)
    return tuple(static)


def _unary(g: Graph, rng: np.random.Generator, v: Value) -> Value:
    name = str(rng.choice(["Neg", "Relu", "Tanh", "Identity", "Abs", "Sigmoid"]))
    return getattr(op, name)(v)


def _binary(g: Graph, rng: np.random.Generator, v: Value) -> Value:
    name = str(rng.choice(["Add", "Sub", "Mul", "Div"]))
    same = [w for w in g.values() if w.type == v.type and w.const is None]
    if name != "Div" and rng.random() < 0.3:
        w = same[rng.integers(len(same))]
    else:
        kind = "ones" if name == "Div" else str(rng.choice(["ones", "zeros", "random"]))
        w = const(g, _const(rng, _trailing(v, rng), kind))
    return getattr(op, name)(*((w, v) if rng.random() < 0.3 and name != "Div" else (v, w)))


def _constant_chain(g: Graph, rng: np.random.Generator, v: Value) -> Value:
    shape = _trailing(v, rng)[::-1]
    c = op.Transpose(const(g, _const(rng, shape, "random")), perm=list(range(len(shape)))[::-1])
    return op.Mul(v, op.Add(c, const(g, _const(rng, (), "random"))))


def _transpose(g: Graph, rng: np.random.Generator, v: Value) -> Value:
    y = op.Transpose(v, perm=[int(i) for i in rng.permutation(v.ndim)])
    return (
        op.Transpose(y, perm=[int(i) for i in rng.permutation(v.ndim)]) if rng.random() < 0.6 else y
    )


def _reshape(g: Graph, rng: np.random.Generator, v: Value) -> Value:
    if rng.random() < 0.5:  # by a shape computed from v's own
        shape = op.Concat(op.Shape(v, end=1), np.asarray([-1]), axis=0)
        y = op.Reshape(v, shape)
    else:
        y = op.Unsqueeze(v, np.asarray([int(rng.integers(v.ndim + 1))]))
    return op.Reshape(y, op.Shape(v)) if rng.random() < 0.7 else y


def _cast(g: Graph, rng: np.random.Generator, v: Value) -> Value:
    via = int(rng.choice([11, 6, 1]))  # float64 (lossless), int32 (truncates), float32
    return op.Cast(op.Cast(v, to=via), to=1)


def _matmul(g: Graph, rng: np.random.Generator, v: Value) -> Value:
    d = v.shape[-1]
    if not isinstance(d, int):
        return op.Relu(v)
    w = op.Transpose(const(g, _const(rng, (3, d), "random")), perm=[1, 0])
    return op.Add(op.MatMul(v, w), const(g, _const(rng, (3,), "zeros")))


def _duplicate(g: Graph, rng: np.random.Generator, v: Value) -> Value:
    nodes = [n for n in g.nodes if n.op.op_type != "Dropout" and n.outputs[0].type == v.type]
    if not nodes:
        return op.Neg(op.Neg(v))
    node = nodes[rng.integers(len(nodes))]
    return g.apply(node.op, node.inputs, node.attrs)[0]


def _split(g: Graph, rng: np.random.Generator, v: Value) -> Value:
    d = v.shape[-1]
    if not isinstance(d, int) or d < 2:
        return op.Tanh(v)
    first, _ = op.Split(v, np.asarray([1, d - 1]), axis=-1)
    return first


def _where_dropout_expand(g: Graph, rng: np.random.Generator, v: Value) -> Value:
    y = op.Where(op.Greater(v, np.zeros((), F32)), v, v)
    y, _ = op.Dropout(y)
    return op.Expand(y, op.Shape(y))


STEPS = [
    _unary,
    _binary,
    _binary,
    _constant_chain,
    _transpose,
    _reshape,
    _cast,
    _matmul,
    _duplicate,
    _split,
    _where_dropout_expand,
]


def random_graph(seed: int) -> Graph:
    """A small graph of float32 elementwise, shape and matmul ops with constants in it."""
    rng = np.random.default_rng(seed)
    g = Graph("random")
    pool = [g.add_input("x", F32, ["batch", 3, 4]), g.add_input("y", F32, [3, 4])]
    for _ in range(int(rng.integers(3, 12))):
        v = pool[rng.integers(len(pool))]
        pool.append(STEPS[rng.integers(len(STEPS))](g, rng, v))
    # Most values nothing reads are outputs, so most steps count; the rest is dead code.
    outputs = [v for v in pool[2:] if not v.uses and rng.random() < 0.8] or [pool[-1]]
    outputs += [pool[rng.integers(2, len(pool))]] if rng.random() < 0.5 else []
    outputs = list(dict.fromkeys(outputs))
    if rng.random() < 0.2:
        outputs.append(op.Identity(pool[0]))
    g.set_outputs(outputs)
    g.verify()
    return g


def random_feeds(seed: int, batch: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed + 1)
    return {
        "x": rng.normal(size=(batch, 3, 4)).astype(F32),
        "y": rng.normal(size=(3, 4)).astype(F32),
    }


def check_sound(original: Graph, transform: Callable[[Graph], Graph], feeds: list[dict]) -> Graph:
    """``transform`` of a copy verifies, keeps the signature and computes the same values."""
    g = transform(original.copy())
    g.verify()
    assert signature(g) == signature(original)
    for f in feeds:
        assert_same(run(g, f), run(original, f))
    return g


def _once(make: Callable[[], Pass]) -> Callable[[Graph], Graph]:
    return lambda g: make().call(g).graph


def _to_fixed_point(make: Callable[[], Pass]) -> Callable[[Graph], Graph]:
    return lambda g: PassManager([make()])(g).graph


def _optimize(level: int) -> Callable[[Graph], Graph]:
    return lambda g: optimize(g, level)


TRANSFORMS: dict[str, Callable[[Graph], Graph]] = {
    **{make().name: _once(make) for make in PASSES},
    **{f"optimize{level}": _optimize(level) for level in range(4)},
}


@settings(max_examples=60)
@given(seed=st.integers(0, 2**31 - 1))
def test_passes_and_optimize_are_sound_on_random_graphs(seed: int) -> None:
    g = random_graph(seed)
    feeds = [random_feeds(seed, 2), random_feeds(seed, 5)]
    for transform in TRANSFORMS.values():
        check_sound(g, transform, feeds)


def test_optimized_random_graphs_run_on_onnxruntime() -> None:
    for seed in range(12):
        g = random_graph(seed)
        o = optimize(g, 3)
        for feeds in [random_feeds(seed, 2), random_feeds(seed, 4)]:
            assert_same(run(o, feeds, "onnxruntime"), run(g, feeds), rtol=1e-5, atol=1e-5)


def test_random_graphs_exercise_every_pass() -> None:
    fired = dict.fromkeys([f().name for f in PASSES], 0)
    for seed in range(30):
        g = random_graph(seed)
        for f in PASSES:
            fired[f().name] += f().call(g.copy()).changed
    assert all(n >= 5 for n in fired.values()), fired


# ---------------------------------------------------------------- traced models


class TransformerClassifier(nn.Module):
    def __init__(self, vocab: int = 40, d: int = 16, classes: int = 3) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d, padding_idx=0)
        layer = nn.TransformerEncoderLayer(d, 2, 32, dropout=0.1, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 2)
        self.head = nn.Linear(d, classes)

    def forward(self, ids: tracer.Tensor) -> tracer.Tensor:
        h = self.encoder(self.emb(ids), src_key_padding_mask=ids == 0)
        return self.head(h.mean(1))


class LSTMTagger(nn.Module):
    def __init__(self, vocab: int = 40, d: int = 16, hidden: int = 12, tags: int = 5) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, d)
        self.lstm = nn.LSTM(d, hidden, batch_first=True, bidirectional=True)
        self.out = nn.Linear(2 * hidden, tags)

    def forward(self, ids: tracer.Tensor, lengths: tracer.Tensor) -> tracer.Tensor:
        h, _ = self.lstm(self.emb(ids), lengths=lengths)
        return self.out(h).log_softmax(-1)


def _distinct_weights(m: nn.Module, seed: int) -> nn.Module:
    """Give every parameter its own values (deep-copied layers start out equal)."""
    rng = np.random.default_rng(seed)
    m.load_state_dict(
        {k: rng.normal(0, 0.3, v.shape).astype(F32) for k, v in m.state_dict().items()}
    )
    return m.eval()


def _ids(rng: np.random.Generator, batch: int, seq: int) -> np.ndarray:
    return models.token_ids(rng, batch, seq, 40)


def _traced_models() -> dict[str, tuple[Graph, list[dict[str, np.ndarray]]]]:
    tracer.manual_seed(0)
    rng = np.random.default_rng(0)
    dyn = {0: "batch", 1: "seq"}
    ids = tracer.tensor(_ids(rng, 2, 6))
    feeds = [{"ids": _ids(rng, 3, 5)}, {"ids": _ids(rng, 1, 9)}]
    out: dict[str, tuple[Graph, list[dict[str, np.ndarray]]]] = {}
    mlp = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 4)).eval()
    x = rng.normal(size=(3, 8)).astype(F32)
    out["mlp"] = (tracer.trace(mlp, (tracer.tensor(x),), {"input": {0: "b"}}), [{"input": x}])
    clf = _distinct_weights(TransformerClassifier(), 1)
    out["transformer"] = (tracer.trace(clf, (ids,), {"ids": dyn}), feeds)
    tagger = _distinct_weights(LSTMTagger(), 2)
    lengths = np.asarray([5, 3, 4])
    out["lstm_tagger"] = (
        tracer.trace(
            tagger, (ids, tracer.tensor(np.asarray([6, 4]))), {"ids": dyn, "lengths": {0: "batch"}}
        ),
        [{"ids": feeds[0]["ids"], "lengths": lengths}],
    )
    text = models.TextClassifier(vocab=40, d=16, heads=2, ff=32, activation="gelu")
    out["text_classifier"] = (tracer.trace(text, (ids,), {"ids": dyn}), feeds)
    mixer = models.HeadMixer()
    h = rng.normal(size=(2, 5, 24)).astype(F32)
    out["head_mixer"] = (tracer.trace(mixer, (tracer.tensor(h),), {"x": dyn}), [{"x": h}])
    bag = models.BagOfEmbeddings(vocab=40)
    out["bag"] = (tracer.trace(bag, (ids,), {"ids": dyn}), feeds)
    return out


@pytest.fixture(scope="module")
def traced() -> dict[str, tuple[Graph, list[dict[str, np.ndarray]]]]:
    return _traced_models()


MODEL_NAMES = ["mlp", "transformer", "lstm_tagger", "text_classifier", "head_mixer", "bag"]


@pytest.mark.parametrize("name", MODEL_NAMES)
def test_passes_are_sound_on_traced_models(traced: dict, name: str) -> None:
    g, feeds = traced[name]
    for make in PASSES:
        check_sound(g, _to_fixed_point(make), feeds)


@pytest.mark.parametrize("level", range(4))
@pytest.mark.parametrize("name", MODEL_NAMES)
def test_optimize_is_sound_on_traced_models_and_onnxruntime_agrees(
    traced: dict, name: str, level: int
) -> None:
    g, feeds = traced[name]
    o = check_sound(g, lambda h: optimize(h, level), feeds)
    if level >= 1:
        assert len(o.nodes) < len(g.nodes)
        assert not any(n.op.op_type == "Identity" for n in o.nodes)
        assert not any(all(x is None or x.const is not None for x in n.inputs) for n in o.nodes), (
            "a node of constants survived constant folding"
        )
    for f in feeds:
        assert_same(run(o, f, "onnxruntime"), run(g, f), rtol=1e-4, atol=1e-5)


# ---------------------------------------------------------------- Graph helpers the passes use


def test_add_output_renames_a_node_output_and_wraps_anything_else() -> None:
    g = Graph("g")
    x = g.add_input("x", np.float32, (2,))
    y = op.Neg(x)
    assert g.add_output(y, "neg") is y and y.name == "neg"
    again = g.add_output(y, "neg_again")  # an output already: an Identity of its own
    passed = g.add_output(x, "x_out")  # an input keeps its name
    assert again.producer is not None and again.producer.op.op_type == "Identity"
    assert passed.producer is not None and x.name == "x"
    assert [v.name for v in g.outputs] == ["neg", "neg_again", "x_out"]
    g.verify()
    a = np.array([1.0, -2.0], np.float32)
    got = Session(g, backend="onnxruntime").run({"x": a})
    np.testing.assert_array_equal(got["neg_again"], -a)
    np.testing.assert_array_equal(got["x_out"], a)
    with pytest.raises(Exception, match="already used"):
        g.add_output(op.Neg(x), "neg")


def test_copy_keeps_text_and_is_independent() -> None:
    g = tracer.trace(nn.Sequential(nn.Linear(4, 3), nn.ReLU()), tracer.randn(2, 4))
    c = g.copy()
    assert str(c) == str(g)
    c.add_output(c.inputs[0], "extra")
    assert "extra" not in str(g)


# ---------------------------------------------------------------- when graphs are verified


def _count_verify(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    verify = Graph.verify

    def counting(self: Graph) -> None:
        calls.append(self.name)
        verify(self)

    monkeypatch.setattr(Graph, "verify", counting)
    return calls


@pytest.mark.parametrize("flag", [None, "1"])
def test_optimize_verifies_once_unless_asked_for_every_pass(
    monkeypatch: pytest.MonkeyPatch, flag: str | None
) -> None:
    g = build(lambda x: op.Relu(op.Identity(op.Add(x, np.zeros(2, F32)))), x=(F32, [2]))
    if flag is None:
        monkeypatch.delenv("GRAPHCAP_VERIFY_PASSES", raising=False)
    else:
        monkeypatch.setenv("GRAPHCAP_VERIFY_PASSES", flag)
    calls = _count_verify(monkeypatch)
    out = optimize(g, 3)
    assert [n.op.op_type for n in out.nodes] == ["Relu"]
    passes = sum(len(stage) for stage in pipeline(3))
    assert len(calls) == 1 if flag is None else len(calls) > passes  # the input, every pass
    calls.clear()
    optimize(g, 3, verify=True)
    assert len(calls) > passes
    calls.clear()
    optimize(g, 3, verify=False)
    assert calls == []


def test_a_broken_graph_fails_loudly_when_only_the_result_is_verified(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("GRAPHCAP_VERIFY_PASSES", raising=False)
    g = build(lambda x: op.Relu(op.Identity(x)), x=(F32, [2]))
    with pytest.raises(PassError) as err:
        PassManager([IdentityEliminationPass(), _BreaksTypes()])(g)
    msg = str(err.value)
    assert "does not verify after passes identity_elimination, breaks_types" in msg
    assert "GRAPHCAP_VERIFY_PASSES=1" in msg and "is typed f64[2]" in msg
    monkeypatch.setenv("GRAPHCAP_VERIFY_PASSES", "1")
    g = build(lambda x: op.Relu(op.Identity(x)), x=(F32, [2]))
    with pytest.raises(PassError, match="pass 'breaks_types' broke an invariant"):
        PassManager([IdentityEliminationPass(), _BreaksTypes()])(g)


def test_optimize_blames_a_broken_input_not_the_passes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GRAPHCAP_VERIFY_PASSES", raising=False)
    g = build(lambda x: op.Relu(op.Exp(x)), x=(F32, [2]))
    relu = g.nodes[1].outputs[0]
    relu.type = TensorType(np.dtype(np.float64), relu.type.shape)  # a wrong stored type
    with pytest.raises(GraphInvariantError, match="is typed f64"):
        optimize(g, 2)
