"""Op traits live on the ``OpDef``: consumers keep no op-type lists, and every trait is true.

The traits (``random``, ``shape_only``, ``symbolic``, ``reshape``, ``shape_input``, ``nary``,
``commutative`` and the older ONNX forms in ``legacy``) are checked against the kernels'
behaviour and against ONNX's own schemas; the shared attribute schemas (``WindowAttrs``,
``RecurrentAttrs``) against the ops that take them.
"""

from __future__ import annotations

import ast
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import export
import ir.ops  # noqa: F401  (registers every op family)
from export.onnx.microsoft import contrib_schema
from ir.errors import ExportError, ShapeError
from ir.graph import Graph, Value
from ir.ops import registry
from ir.ops.registry import AttrInput, OpDef, ints, op
from tests.op_specs import SPECS_BY_KEY

ROOT = Path(__file__).resolve().parents[2]
OPS = registry.all_ops()
# ONNX's ops: onnxruntime's SimplifiedLayerNormalization is in the default domain, not ONNX.
ONNX_OPS = [o for o in OPS if not o.domain and contrib_schema(o.op_type, o.domain) is None]
RNG = np.random.default_rng(0)


def _ids(o: OpDef) -> str:
    return o.op_type


def _samples(o: OpDef) -> list[Any]:
    spec = SPECS_BY_KEY[o.key]
    return list(spec.samples(np.random.default_rng(0), spec.dtypes[0]))


def _outputs(o: OpDef, inputs: Any, attrs: dict[str, Any]) -> list[np.ndarray]:
    out = o.kernel(*inputs, **attrs)
    return [np.asarray(a) for a in (out if isinstance(out, tuple) else (out,))]


# ---------------------------------------------------------------- consumers ask the op

# Modules that match op formulas (fusions): the op types they name are their patterns.
_PATTERN_MODULES = ("ir/passes/fuse_",)
# Tables keyed by op type whose entries are each op's own code or data, not a trait.
_TABLES = {
    ("ir/passes/algebraic_simplification.py", "_RULES"): "each op's rewrite rule",
    ("ir/lower_recurrent.py", "_KINDS"): "which cell each *Grad op lowers",
    ("ir/lower_recurrent.py", "_CELLS"): "each recurrence's cell lowering",
    ("ir/lower_recurrent.py", "_GRADS"): "each recurrence's cell gradient lowering",
    ("tracer/nn/rnn.py", "_GATES"): "torch.nn.RNNBase modes, which share names with ops",
    ("tracer/nn/rnn.py", "_ONNX_ORDER"): "torch.nn.RNNBase modes, which share names with ops",
}
# Names of registry ops and of every other ONNX op (a list may name ops not registered yet).
_OP_TYPES = {o.op_type for o in OPS} | {s.name for s in onnx.defs.get_all_schemas_with_history()}


def _modules() -> list[tuple[str, ast.Module]]:
    found = []
    for package in ("ir", "runtime", "export", "tracer"):
        for path in sorted((ROOT / package).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            if rel.startswith("ir/ops/") or rel.startswith(_PATTERN_MODULES):
                continue
            found.append((rel, ast.parse(path.read_text(encoding="utf-8"))))
    return found


def _op_names(node: ast.expr) -> list[str]:
    """The op types a literal collection (or ``frozenset(...)`` of one, or dict) names."""
    wrapped = isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.args
    if wrapped and node.func.id in ("frozenset", "set", "tuple", "list"):  # type: ignore[union-attr]
        return _op_names(node.args[0])  # type: ignore[union-attr]
    if isinstance(node, ast.Dict):
        elts = [k for k in node.keys if k is not None]
    elif isinstance(node, ast.Set | ast.Tuple | ast.List):
        elts = list(node.elts)
    else:
        return []
    return [e.value for e in elts if isinstance(e, ast.Constant) and e.value in _OP_TYPES]


def _op_type_lists(rel: str, tree: ast.Module) -> list[str]:
    """Named collections of op types, and ``op_type in <collection>`` tests, in one module."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AnnAssign) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            allowed = "__all__" in names or any((rel, n) in _TABLES for n in names)
            if not allowed and len(_op_names(node.value)) >= 2:
                found.append(f"{rel}:{node.lineno} {names} = {_op_names(node.value)}")
        if isinstance(node, ast.Compare) and any(
            isinstance(o, ast.In | ast.NotIn) for o in node.ops
        ):
            left = node.left
            by_type = (isinstance(left, ast.Attribute) and left.attr == "op_type") or (
                isinstance(left, ast.Name) and left.id == "op_type"
            )
            right = node.comparators[0]
            if by_type and not (isinstance(right, ast.Name) and (rel, right.id) in _TABLES):
                found.append(f"{rel}:{node.lineno} {ast.unparse(node)}")
    return found


def test_no_module_outside_the_registry_keeps_op_type_lists() -> None:
    """Traits are asked of the op (``node.op.random``), never read off a list of names."""
    found = [hit for rel, tree in _modules() for hit in _op_type_lists(rel, tree)]
    assert not found, "op-type lists outside ir/ops (make them OpDef traits):\n" + "\n".join(found)


def test_the_list_detector_finds_the_old_forms() -> None:
    """The meta-test above can fail: the lists this change removed are each detected."""
    old = """
_RANDOM_OPS = frozenset({"Dropout", "RandomNormal", "Bernoulli"})
_OLDEST = {"Scan": 9, "Split": 2}
def f(node):
    return node.op.op_type in ("Reshape", "Expand")
"""
    hits = _op_type_lists("ir/passes/x.py", ast.parse(old))
    assert len(hits) == 3, hits


# ---------------------------------------------------------------- traits agree with behaviour


def test_an_op_with_a_seed_attribute_must_be_random() -> None:
    def kernel(x: np.ndarray, *, seed: float | None = None) -> np.ndarray:
        return x

    with pytest.raises(ValueError, match="seed attribute: declare random=True"):
        OpDef("Noise", 1, kernel, lambda ctx, x, **a: x, None, no_vjp="test")
    assert all(o.random for o in OPS if "seed" in o.attrs)


@pytest.mark.parametrize("o", [o for o in OPS if o.random], ids=_ids)
def test_random_ops_draw_and_a_seed_repeats(o: OpDef) -> None:
    assert o.random and SPECS_BY_KEY[o.key].random
    x = np.ones((64, 64), np.float32)
    inputs = (x, np.asarray(0.5, np.float32), np.asarray(True))
    first, second = _outputs(o, inputs, {}), _outputs(o, inputs, {})
    assert not np.array_equal(first[0], second[0]), "two draws gave the same result"
    if "seed" in o.attrs:
        a, b = _outputs(o, inputs, {"seed": 7}), _outputs(o, inputs, {"seed": 7})
        assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


def test_spec_random_ops_are_registry_random_ops() -> None:
    assert {k for k, s in SPECS_BY_KEY.items() if s.random} <= {o.key for o in OPS if o.random}


@pytest.mark.parametrize("o", [o for o in OPS if o.shape_only], ids=_ids)
def test_shape_only_results_ignore_the_values(o: OpDef) -> None:
    for sample in _samples(o):
        x, *rest = sample.inputs
        other = np.asarray(RNG.permutation(np.asarray(x).reshape(-1))).reshape(np.shape(x))
        other = (np.ones_like(x) if np.array_equal(other, x) else other).astype(x.dtype)
        want = _outputs(o, sample.inputs, sample.attrs)
        got = _outputs(o, (other, *rest), sample.attrs)
        assert all(np.array_equal(g, w) for g, w in zip(got, want, strict=True))


@pytest.mark.parametrize("o", [o for o in OPS if o.reshape], ids=_ids)
def test_reshapes_keep_the_row_major_elements(o: OpDef) -> None:
    for sample in _samples(o):
        x = np.asarray(sample.inputs[0])
        (y,) = _outputs(o, sample.inputs, sample.attrs)
        assert y.size == x.size and np.array_equal(y.reshape(-1), x.reshape(-1))


@pytest.mark.parametrize("o", [o for o in OPS if o.shape_input is not None], ids=_ids)
def test_shape_input_is_the_result_shape(o: OpDef) -> None:
    """Given the result's own shape as that input, the op gives the same result."""
    assert o.shape_input is not None
    for sample in _samples(o):
        (y,) = _outputs(o, sample.inputs, sample.attrs)
        inputs = list(sample.inputs)
        inputs[o.shape_input] = np.asarray(y.shape, np.int64)
        (again,) = _outputs(o, inputs, sample.attrs)
        assert again.shape == y.shape and np.array_equal(again, y)


@pytest.mark.parametrize("o", [o for o in OPS if o.nary], ids=_ids)
def test_nary_ops_return_their_single_input(o: OpDef) -> None:
    assert o.num_inputs[1] is None
    attrs = {"axis": 0} if "axis" in o.attrs else {}
    x = RNG.standard_normal((3, 4)).astype(np.float32)
    (y,) = _outputs(o, (x,), attrs)
    assert y.dtype == x.dtype and np.array_equal(y, x)


@pytest.mark.parametrize("o", [o for o in OPS if o.commutative], ids=_ids)
def test_commutative_ops_give_the_same_result_with_inputs_swapped(o: OpDef) -> None:
    assert o.num_inputs == (2, 2)
    a = RNG.standard_normal((3, 1)).astype(np.float32)
    b = RNG.standard_normal((4,)).astype(np.float32)  # broadcast both ways
    (ab,) = _outputs(o, (a, b), {})
    (ba,) = _outputs(o, (b, a), {})
    assert ab.shape == (3, 4) and np.array_equal(ab, ba)


def test_the_arithmetic_ops_rewrites_commute_are_commutative() -> None:
    flags = {o.op_type: o.commutative for o in ONNX_OPS}
    assert flags["Add"] and flags["Mul"] and not flags["Sub"] and not flags["Div"]


# How each symbolic op is applied to the symbolic value s = Shape(x) = (n, 3, 4).
_SYMBOLIC_CASES: dict[str, Callable[[Value], Value]] = {
    "Add": lambda s: op.Add(s, ints([1, 0, 2])),
    "Cast": lambda s: op.Cast(s, to=TensorProto.INT64),
    "Concat": lambda s: op.Concat(s, ints([7]), axis=0),
    "Expand": lambda s: op.Expand(op.Slice(s, ints([0]), ints([1])), ints([3])),
    "Flatten": lambda s: op.Flatten(op.Unsqueeze(s, ints([0])), axis=1),
    "Gather": lambda s: op.Gather(s, ints([2, 0]), axis=0),
    "Identity": lambda s: op.Identity(s),
    "Mul": lambda s: op.Mul(s, ints(2)),
    "Reshape": lambda s: op.Reshape(s, ints([3, 1])),
    "Slice": lambda s: op.Slice(s, ints([0]), ints([2])),
    "Squeeze": lambda s: op.Squeeze(op.Slice(s, ints([0]), ints([1])), ints([0])),
    "Sub": lambda s: op.Sub(s, ints(1)),
    "Unsqueeze": lambda s: op.Unsqueeze(op.Gather(s, ints(0), axis=0), ints([0])),
}


def _symbolic(dims: tuple[Any, ...], case: Callable[[Value], Value]) -> Value:
    g = Graph()
    return case(op.Shape(g.add_input("x", np.float32, dims)))


def test_symbolic_cases_cover_the_symbolic_ops() -> None:
    assert set(_SYMBOLIC_CASES) == {o.op_type for o in OPS if o.symbolic}


@pytest.mark.parametrize("op_type", sorted(_SYMBOLIC_CASES))
def test_symbolic_ops_carry_dimension_expressions(op_type: str) -> None:
    """The symbolic value, with n = 5, is what the concrete graph computes."""
    y = _symbolic(("n", 3, 4), _SYMBOLIC_CASES[op_type])
    concrete = _symbolic((5, 3, 4), _SYMBOLIC_CASES[op_type])
    assert y.sym is not None and any(isinstance(d, str) for d in y.sym), y.sym
    assert concrete.sym is not None and all(isinstance(d, int) for d in concrete.sym)
    values = [d if isinstance(d, int) else eval(d, {"__builtins__": {}}, {"n": 5}) for d in y.sym]
    assert values == list(concrete.sym)


def test_a_non_symbolic_op_stops_symbolic_values() -> None:
    assert not registry.get("Div").symbolic
    assert _symbolic(("n", 3, 4), lambda s: op.Div(s, ints(1))).sym is None


# ---------------------------------------------------------------- legacy forms against ONNX


def _history(op_type: str) -> list[onnx.defs.OpSchema]:
    return sorted(
        (s for s in onnx.defs.get_all_schemas_with_history() if s.name == op_type and not s.domain),
        key=lambda s: s.since_version,
    )


def _schema(op_type: str, opset: int) -> onnx.defs.OpSchema | None:
    try:
        return onnx.defs.get_schema(op_type, opset)
    except onnx.defs.SchemaError:
        return None


def test_legacy_broadcast_is_exactly_onnx_opset_6_broadcast() -> None:
    """The ops whose opset-1..6 schemas have a ``broadcast`` attribute say so."""
    onnx_says = set()
    for o in ONNX_OPS:
        old = _schema(o.op_type, 6)
        if old is not None and "broadcast" in old.attributes:
            onnx_says.add(o.op_type)
    assert {o.op_type for o in ONNX_OPS if o.legacy.broadcast} == onnx_says
    assert {"Add", "Gemm", "Greater", "Xor"} <= onnx_says  # the check sees old schemas


def _moved_by_onnx(o: OpDef) -> set[tuple[str, int, int]]:
    """(attribute, input position, first opset as input) where ONNX names both the same."""
    inputs = [i.name.lower() for i in onnx.defs.get_schema(o.op_type, o.since).inputs]
    history = _history(o.op_type)
    moved = set()
    for old in history:
        if old.since_version >= o.since:
            continue
        for name in old.attributes:
            if name.lower() in inputs:
                later = [s for s in history if s.since_version > old.since_version]
                until = min(s.since_version for s in later if name not in s.attributes)
                moved.add((name, inputs.index(name.lower()), until))
    return moved


@pytest.mark.parametrize("o", ONNX_OPS, ids=_ids)
def test_attribute_inputs_agree_with_onnx(o: OpDef) -> None:
    """Every attribute ONNX turned into an input is declared, at the right position and opset."""
    declared = {(a.name, a.position, a.until) for a in o.legacy.inputs}
    assert _moved_by_onnx(o) <= declared
    for a in o.legacy.inputs:  # and each declared one (Pad's value) is such an attribute
        before, after = _schema(o.op_type, a.until - 1), _schema(o.op_type, a.until)
        assert before is not None and a.name in before.attributes, a
        assert after is not None and a.name not in after.attributes, a
        assert after.since_version == a.until and after.max_input > a.position, a


def test_the_old_forms_onnx_removed_are_declared() -> None:
    oldest = {o.op_type: o.legacy.oldest for o in ONNX_OPS if o.legacy.oldest > 1}
    assert oldest == {"Scan": 9}
    before, after = _schema("Scan", 8), _schema("Scan", 9)
    assert before and after and before.inputs[0].name == "sequence_lens" != after.inputs[0].name
    for o in ONNX_OPS:
        for name, until in o.legacy.dropped:
            old, new = _schema(o.op_type, until - 1), _schema(o.op_type, until)
            assert old and new and name in old.attributes and name not in new.attributes
        for name, until, _ in o.legacy.defaults:
            old, new = _schema(o.op_type, until - 1), _schema(o.op_type, until)
            assert old and new and not old.attributes[name].required
            assert new.attributes[name].required


def _quoted(value: str, doc: str) -> bool:
    return any(f"{q}{value}{q}" in doc for q in "`'\"")


@pytest.mark.parametrize("o", [o for o in ONNX_OPS if o.legacy.values], ids=_ids)
def test_attribute_values_arrive_when_onnx_says(o: OpDef) -> None:
    for name, value, opset in o.legacy.values:
        new, old = _schema(o.op_type, opset), _schema(o.op_type, opset - 1)
        assert new is not None and new.since_version == opset and name in new.attributes
        assert _quoted(value, new.doc) and (old is None or not _quoted(value, old.doc))


def test_the_writer_names_the_opset_a_value_needs() -> None:
    g = Graph()
    data = g.add_input("data", np.float32, (4,))
    y = op.ScatterElements(data, ints([1]), op.Slice(data, ints([0]), ints([1])), reduction="max")
    g.set_outputs([y])
    with pytest.raises(ExportError, match=r"ScatterElements.*opset >= 18"):
        export.to_model(g, opset=17)


def _model(nodes: list[Any], inputs: dict[str, Any], outputs: dict[str, int], opset: int) -> Any:
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(k, TensorProto.FLOAT, v.shape) for k, v in inputs.items()],
        [helper.make_tensor_value_info(k, t, None) for k, t in outputs.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 7
    return model


def _ours(model: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    graph = export.from_model(model)
    graph.verify()
    env = {v.name: v.const for v in graph.initializers.values()} | feeds
    for node in graph.nodes:
        outs = _outputs(
            node.op, [None if v is None else env[v.name] for v in node.inputs], node.attrs
        )
        env.update({v.name: a for v, a in zip(node.outputs, outs, strict=True)})
    return [env[v.name] for v in graph.outputs]


def _ort(model: Any, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    session = ort.InferenceSession(
        model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
    )
    return session.run(None, feeds)


def test_flat_2d_ops_read_as_onnxruntime_runs_them() -> None:
    """Before opset 13 Softmax, LogSoftmax and Hardmax ran on the input flattened to 2-D."""
    flat = [o.op_type for o in ONNX_OPS if o.legacy.flat_2d]
    assert sorted(flat) == ["Hardmax", "LogSoftmax", "Softmax"]
    for o in ONNX_OPS:  # ONNX's documents say which versions coerce their input to 2-D
        coerced = [s.since_version for s in _history(o.op_type) if "coerced" in s.doc]
        assert (max(coerced) + 1 if coerced else 0) <= o.legacy.flat_2d <= o.since
        assert bool(coerced) == bool(o.legacy.flat_2d), o.op_type
    feeds = {"x": RNG.standard_normal((2, 3, 4)).astype(np.float32)}
    nodes = [helper.make_node(t, ["x"], [t.lower()]) for t in flat]  # default axis=1
    model = _model(nodes, feeds, {t.lower(): TensorProto.FLOAT for t in flat}, 11)
    for got, want in zip(_ours(model, feeds), _ort(model, feeds), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_reduce_axes_attributes_are_read_for_every_reduction() -> None:
    """Opset 13: ReduceL1, ReduceLogSum and ReduceSumSquare take axes as an attribute too."""
    mk = helper.make_node
    feeds = {"x": RNG.uniform(0.5, 2.0, (2, 3, 4)).astype(np.float32)}
    nodes = [
        mk("ReduceL1", ["x"], ["a"], axes=[1]),
        mk("ReduceLogSum", ["x"], ["b"], axes=[2], keepdims=0),
        mk("ReduceSumSquare", ["x"], ["c"], axes=[0, 2]),
    ]
    model = _model(nodes, feeds, dict.fromkeys("abc", TensorProto.FLOAT), 13)
    for got, want in zip(_ours(model, feeds), _ort(model, feeds), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_legacy_broadcast_comparisons_are_read() -> None:
    """Opset 6 Greater/Less with ``broadcast=1``: suffix broadcasting, which NumPy's covers."""
    mk = helper.make_node
    feeds = {
        "x": RNG.standard_normal((2, 3, 4)).astype(np.float32),
        "y": RNG.standard_normal((4,)).astype(np.float32),
    }
    nodes = [mk(t, ["x", "y"], [t.lower()], broadcast=1) for t in ("Greater", "Less", "Add")]
    outputs = {"greater": TensorProto.BOOL, "less": TensorProto.BOOL, "add": TensorProto.FLOAT}
    got = _ours(_model(nodes, feeds, outputs, 6), feeds)
    x, y = feeds["x"], feeds["y"]
    for g, w in zip(got, [x > y, x < y, x + y], strict=True):
        np.testing.assert_array_equal(g, w)


def test_attr_input_default_reaches_the_input() -> None:
    """DFT-17's omitted axis attribute meant 1: the reader makes it the input."""
    (axis,) = registry.get("DFT").legacy.inputs
    assert axis == AttrInput("axis", 2, "int", 20, default=1)
    assert onnx.helper.get_attribute_value(
        onnx.defs.get_schema("DFT", 17).attributes["axis"].default_value
    ) == (axis.default)


# ---------------------------------------------------------------- shared attribute schemas

_WINDOW_OPS = ("Conv", "ConvTranspose", "ConvInteger", "QLinearConv", "MaxPool", "AveragePool")
_WINDOW_OPS += ("LpPool",)
_RECURRENT_OPS = ("LSTM", "GRU", "RNN")


def _window_fields() -> set[str]:
    from ir.ops.pool import WindowAttrs

    return {f.name for f in dataclasses.fields(WindowAttrs)}


@pytest.mark.parametrize("op_type", _WINDOW_OPS)
def test_window_ops_share_one_schema_and_its_check(op_type: str) -> None:
    o = registry.get(op_type)
    assert _window_fields() <= set(o.attrs)
    assert o.attrs["auto_pad"] == "NOTSET" and o.attrs["strides"] is None
    x = np.zeros((1, 1, 4, 4), np.float32)  # the attributes are checked before the inputs
    with pytest.raises(ShapeError, match="auto_pad must be one of"):
        o.kernel(*[x] * o.num_inputs[0], auto_pad="SAME", kernel_shape=[2, 2])


@pytest.mark.parametrize("op_type", _RECURRENT_OPS)
def test_recurrent_ops_share_one_schema_and_its_check(op_type: str) -> None:
    from ir.ops.recurrent_kernels import RecurrentAttrs

    o = registry.get(op_type)
    grad = registry.get(f"{op_type}Grad", "ai.graphcap")
    shared = {f.name for f in dataclasses.fields(RecurrentAttrs)}
    assert shared <= set(o.attrs) and dict(grad.attrs) == dict(o.attrs)
    x = np.zeros((1, 1, 1), np.float32)  # the attributes are checked before the inputs
    for bad, message in [
        ({"direction": "sideways"}, "direction must be"),
        ({"layout": 2}, "layout"),
    ]:
        for fn in (o.kernel, grad.kernel):
            with pytest.raises(ShapeError, match=f"{op_type}: {message}"):
                fn(x, x, x, **bad)
