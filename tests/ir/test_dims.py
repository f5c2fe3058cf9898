"""ir.dims: dimension expressions in one normal form, checked against Python's arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ir import dims
from ir.dims import Expr, parse
from ir.graph import Graph
from ir.ops.registry import ints, op

SIZES = {"batch": 3, "seq": 7, "past": 5, "x.shape[0]": 4, "h.0_1": 2}


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("seq - seq", 0),
        ("(past+seq)-seq", "past"),
        ("seq+past", "past+seq"),
        ("4*seq", "seq*4"),
        ("(batch+seq)*2", "batch*2+seq*2"),
        ("seq*seq - seq*seq + 1", 1),
        ("2-seq", "-seq+2"),
        ("-(seq//2)", "-(seq//2)"),
        ("(seq//2)*3", "(seq//2)*3"),
        ("seq % 3 + 1", "seq%3+1"),
        ("x.shape[0]+1", "x.shape[0]+1"),
        ("h.0_1*batch", "batch*h.0_1"),
    ],
)
def test_normal_form(text: str, normal: int | str) -> None:
    expr = parse(text)
    assert expr.to_dim() == normal
    assert parse(expr.text) == expr  # the text reads back as the same expression
    want = eval(text.replace("x.shape[0]", "x0").replace("h.0_1", "h01"), {}, _python_names())
    assert dims.evaluate(expr.text, SIZES) == want


def _python_names() -> dict[str, int]:
    return {"batch": 3, "seq": 7, "past": 5, "x0": 4, "h01": 2}


def test_symbols_that_are_not_expressions_stay_atoms() -> None:
    odd = Expr.atom("dim 0 of the NonZero at my-model.py:5")
    assert (odd - 1).text == "(dim 0 of the NonZero at my-model.py:5)-1"
    assert parse("dim 0 at a-b.py").terms == {("dim 0 at a-b.py",): 1}
    assert dims.evaluate("seq+unknown", SIZES) is None


def test_dim_helpers_keep_unknown_dims_unknown() -> None:
    assert dims.add("past", "seq") == "past+seq"
    assert dims.sub("past+seq", "seq") == "past"
    assert dims.mul("seq", 4) == "seq*4"
    assert dims.add("seq", None) is None


Terms = tuple[int, list[str]]
_terms = st.lists(
    st.tuples(st.integers(-3, 3), st.lists(st.sampled_from(["batch", "seq", "past"]), max_size=2)),
    min_size=1,
    max_size=4,
)


@settings(max_examples=60, deadline=None)
@given(_terms, _terms)
def test_arithmetic_agrees_with_python(a: list[Terms], b: list[Terms]) -> None:
    def build(terms: list[Terms]) -> tuple[Expr, int]:
        expr, value = Expr.of(0), 0
        for c, syms in terms:
            mono = Expr.of(c)
            for s in syms:
                mono = mono * Expr.atom(s)
            expr, value = expr + mono, value + c * int(np.prod([SIZES[s] for s in syms]))
        return expr, value

    (x, vx), (y, vy) = build(a), build(b)
    for got, want in ((x + y, vx + vy), (x - y, vx - vy), (x * y, vx * vy)):
        assert dims.evaluate(got.text, SIZES) == want
        assert parse(got.text) == got


def test_shape_rules_add_and_cancel_symbolic_sizes() -> None:
    g = Graph()
    past = g.add_input("past", np.float32, ("batch", "past", 8))
    new = g.add_input("new", np.float32, ("batch", "seq", 8))
    k = op.Concat(past, new, axis=1)
    assert str(k.type) == "f32[batch, past+seq, 8]"
    total = op.Gather(op.Shape(k), ints(1), axis=0)
    t = op.Gather(op.Shape(new), ints(1), axis=0)
    offset = op.Sub(total, t)
    assert offset.sym == ("past",)
    assert str(op.Range(offset, total, ints(1)).type) == "i64[seq]"
    tail = op.Slice(k, op.Unsqueeze(offset, ints([0])), ints([2**63 - 1]), ints([1]))
    assert str(tail.type) == "f32[batch, seq, 8]"
