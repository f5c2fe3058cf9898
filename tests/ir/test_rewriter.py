"""Patterns written with ``op.X`` and the rewrite loop that the fusion passes are built on.

Matching is checked on small hand-built graphs (what binds, which forms match, which must
not); rewriting against NumPy on the interpreter, with its cost counted: a sweep tries each
node whose op can end the pattern once, and there is no rescan after a rewrite.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from ir.errors import GraphInvariantError
from ir.graph import Graph, Value
from ir.ops.registry import op
from ir.passes.pattern import Const, Match, OpPattern, Or, Var, any_order, match
from ir.passes.rewriter import RewriteRule, apply_rules
from runtime import Session

F32 = np.float32


def build(fn: Callable[..., Any], *shapes: tuple[Any, ...]) -> Graph:
    g = Graph("g")
    outs = fn(*[g.add_input(f"x{i}", F32, s) for i, s in enumerate(shapes)])
    g.set_outputs(outs if isinstance(outs, list) else [outs])
    return g


def matches(pattern: Any, g: Graph) -> list[Match]:
    return list(match(pattern, g.outputs[0]))


def test_a_pattern_is_the_formula_built_by_the_registry_ops() -> None:
    a, b, c = Var("a"), Var("b"), Var("c")
    pattern = op.Add(op.MatMul(a, b), c)
    assert isinstance(pattern, OpPattern) and repr(pattern) == "Add(MatMul(a, b), c)"
    assert repr(op.Mul(0.5, a)) == "Mul(0.5, a)" and pattern.root_ops() == {("", "Add")}
    with pytest.raises(TypeError, match="several outputs"):
        op.Split(a, num_outputs=2)
    with pytest.raises(TypeError, match="a pattern, a number or None"):
        op.Add(a, "b")


def test_vars_bind_values_and_add_matches_either_operand_order() -> None:
    w, bias = np.ones((4, 3), F32), np.ones(3, F32)
    pattern = op.Add(op.MatMul(Var("a"), Var("b")), Var("c"))
    for order in (1, -1):
        g = build(lambda x, o=order: op.Add(*[op.MatMul(x, w), bias][::o]), (2, 4))
        (m,) = matches(pattern, g)
        assert m["a"] is g.inputs[0] and m["c"].const is not None and m.get("missing") is None
        assert [n.op.op_type for n in m.nodes] == ["Add", "MatMul"] and m.root is m.nodes[0]
        assert {id(v) for v in m.inputs} == {id(m[name]) for name in "abc"}
    assert not matches(op.Sub(op.MatMul(Var("a"), Var("b")), Var("c")), g)


def test_a_name_met_twice_is_the_same_value() -> None:
    x = Var("x")
    square = op.Mul(x, x)
    assert len(matches(square, build(lambda v: op.Mul(v, v), (3,)))) == 2  # both orders
    assert not matches(square, build(lambda v, w: op.Mul(v, w), (3,), (3,)))
    d = op.Neg(Var("y")).named("d")  # a named sub-pattern: one node, not two equal ones
    shared = build(lambda v: op.Mul(n := op.Neg(v), n), (3,))
    assert matches(op.Mul(d, d), shared)[0]["d"] is shared.nodes[0].outputs[0]
    assert not matches(op.Mul(d, d), build(lambda v: op.Mul(op.Neg(v), op.Neg(v)), (3,)))


def test_numbers_match_one_element_constants_within_a_relative_1e_4() -> None:
    def scaled(c: float) -> Graph:
        return build(lambda v: op.Mul(v, np.asarray([c], F32)), (3,))

    assert matches(op.Mul(Var("x"), 0.5), scaled(0.50004))
    assert not matches(op.Mul(Var("x"), 0.5), scaled(0.5006))
    assert not matches(
        op.Mul(Var("x"), 0.5), build(lambda v: op.Mul(v, np.full(3, 0.5, F32)), (3,))
    )
    (m,) = matches(op.Mul(Var("x"), Const("c")), scaled(-2.0))
    assert m["c"].const.item() == -2.0


def test_any_order_reads_products_in_every_order_and_association() -> None:
    x, y = Var("x"), Var("y")
    pattern = any_order(op.Mul(op.Mul(0.5, x), op.Neg(y)))
    half, two = np.asarray(0.5, F32), np.asarray(2.0, F32)
    forms: list[Callable[[Value, Value], Value]] = [
        lambda a, b: op.Mul(op.Mul(half, a), op.Neg(b)),
        lambda a, b: op.Mul(op.Neg(b), op.Mul(a, half)),
        lambda a, b: op.Div(op.Mul(a, op.Neg(b)), two),  # / 2 read as * 0.5
        lambda a, b: op.Mul(a, op.Mul(op.Neg(b), half)),
    ]
    for form in forms:
        g = build(form, (3,), (3,))
        found = [(m["x"], m["y"]) for m in matches(pattern, g)]
        assert (g.inputs[0], g.inputs[1]) in found
    off = build(lambda a, b: op.Mul(op.Mul(np.asarray(0.6, F32), a), op.Neg(b)), (3,), (3,))
    assert not matches(pattern, off)

    def shared(a: Value, b: Value) -> list[Value]:  # a used interior product: a leaf
        inner = op.Mul(half, a)
        return [op.Mul(inner, op.Neg(b)), inner]

    assert not matches(pattern, build(shared, (3,), (3,)))
    with pytest.raises(TypeError, match=r"op\.Mul"):
        any_order(op.Add(x, y))


def test_or_tries_alternatives_in_order_and_backtracks() -> None:
    x = Var("x")
    pattern = op.Add(Or(op.Neg(x), x), x)  # Add(Neg(x), x), else Add(x, x)
    g = build(lambda v: op.Add(op.Neg(v), v), (3,))
    assert [m["x"] is g.inputs[0] for m in matches(pattern, g)] == [True]
    g = build(lambda v: op.Add(v, v), (3,))
    assert [m["x"] is g.inputs[0] for m in matches(pattern, g)] == [True, True]


# ---------------------------------------------------------------- rewriting


def _double(m: Match) -> Value:
    return op.Add(m["x"], m["x"])


DOUBLE = RewriteRule("double", op.Mul(Var("x"), 2.0), lambda m: True, _double)


def test_rewrites_emit_where_the_pattern_ended_and_keep_names_and_values() -> None:
    two = np.asarray(2.0, F32)

    def fn(v: Value) -> list[Value]:
        a = op.Mul(op.Exp(v), two)
        return [op.Mul(op.Sin(a), two), op.Cos(a)]

    g = build(fn, (4,))
    for node in g.nodes:
        node.meta["source"] = f"model.py:{node.name}"
    names = [v.name for v in g.outputs]
    feed = np.linspace(-1, 1, 4).astype(F32)
    want = Session(g.copy(), backend="interpreter").run({"x0": feed})
    assert apply_rules(g, [DOUBLE]) and not apply_rules(g, [DOUBLE])
    g.verify()
    assert [n.op.op_type for n in g.nodes] == ["Exp", "Add", "Sin", "Add", "Cos"]
    assert [n.meta["source"] for n in g.nodes if n.op.op_type == "Add"] == [
        "model.py:mul",
        "model.py:mul_1",
    ]
    assert [v.name for v in g.outputs] == names and not g.initializers
    got = Session(g, backend="interpreter").run({"x0": feed})
    for name, w in want.items():
        np.testing.assert_allclose(got[name], w, rtol=1e-6)


def test_a_match_whose_inside_is_read_elsewhere_is_left_alone() -> None:
    square_of_neg = RewriteRule(
        "neg_square",
        op.Mul(op.Neg(Var("x")), op.Neg(Var("x"))),
        lambda m: True,
        lambda m: op.Mul(m["x"], m["x"]),
    )
    g = build(lambda v: [op.Mul(n := op.Neg(v), n), n], (3,))  # the Neg is an output too
    assert not apply_rules(g, [square_of_neg])
    g = build(lambda v: op.Mul(op.Neg(v), op.Neg(v)), (3,))
    assert apply_rules(g, [square_of_neg]) and [n.op.op_type for n in g.nodes] == ["Mul"]


def test_a_match_grows_to_the_larger_one_that_contains_it() -> None:
    x = Var("x")
    pattern = Or(op.Relu(op.Neg(x)), op.Neg(x))  # visited first: the Neg alone would match
    rule = RewriteRule("neg", pattern, lambda m: True, lambda m: op.Sub(np.zeros((), F32), m["x"]))
    g = build(lambda v: op.Relu(op.Neg(v)), (3,))
    assert apply_rules(g, [rule]) and [n.op.op_type for n in g.nodes] == ["Sub"]


def test_each_sweep_tries_each_node_once(monkeypatch: pytest.MonkeyPatch) -> None:
    tried: list[str] = []
    find = RewriteRule.find

    def counting(self: RewriteRule, node: Any, containing: Any = None) -> Match | None:
        tried.append(node.name)
        return find(self, node, containing)

    monkeypatch.setattr(RewriteRule, "find", counting)
    two = np.asarray(2.0, F32)

    def fn(v: Value) -> Value:
        for _ in range(300):
            v = op.Sin(op.Mul(v, two))
        return v

    g = build(fn, (3,))
    assert apply_rules(g, [DOUBLE])
    # Each Mul once in the first sweep; the second finds no Mul (its root op) left to try.
    assert len(tried) == 300 and len(set(tried)) == 300
    assert [n.op.op_type for n in g.nodes] == ["Add", "Sin"] * 300


def test_a_rule_that_matches_its_own_rewrite_is_reported() -> None:
    loop = RewriteRule("loop", op.Neg(Var("x")), lambda m: True, lambda m: op.Neg(m["x"]))
    g = build(lambda v: op.Neg(v), (3,))
    with pytest.raises(GraphInvariantError, match=r"\['loop'\] do not reach a fixed point"):
        apply_rules(g, [loop])
    bad = RewriteRule("bad", op.Neg(Var("x")), lambda m: True, lambda m: m["x"])
    with pytest.raises(GraphInvariantError, match="bad's rewrite must return a new node"):
        apply_rules(build(lambda v: op.Neg(v), (3,)), [bad])
