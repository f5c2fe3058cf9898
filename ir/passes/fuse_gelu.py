"""``FuseGeluPass``: the GELU formulas written out elementwise become one ``Gelu`` (opset 20).

Rewrite rules (products and sums in any order and association, ``/ c`` read as ``* 1/c``):

- ``0.5 * x * (1 + erf(x / sqrt(2)))`` -> ``Gelu(x)``: what ``torch.onnx.export`` writes for
  ``nn.GELU()`` below opset 20, and hand-written ``x * 0.5 * (1 + erf(x / math.sqrt(2)))``;
- ``0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x**3)))`` -> ``Gelu(x,
  approximate="tanh")``: ``nn.GELU(approximate="tanh")`` and BERT/GPT-2's ``gelu_new``; the
  cubic may be ``Pow(x, 3)``, ``x * x * x`` or ``x * (1 + 0.044715 * x * x)``.

The root product is read through single-use ``Mul``/``Div``-by-constant nodes as a constant
times exactly two factors, ``x`` and ``1 + erf(..)`` / ``1 + tanh(..)``; the argument of
``erf``/``tanh`` is read as a polynomial in that same ``x`` (single-use ``Add``, ``Sub``,
``Mul``, ``Div`` by a constant, ``Pow`` by 1-3, ``Neg``). Constants must match within a
relative 1e-4 (float32 roundings of ``sqrt(2)`` or ``0.7978845608`` pass; ``1.414`` does not).

It does not fire when a constant is off (``x * sigmoid(1.702 * x)`` and other approximations
are not GELU, nor is ``0.5 * x * (1 + erf(x))``); when an intermediate value has a use outside
the pattern or is a graph output; when the two ``x`` differ, or a constant broadcasts the
result to another shape; or when ``x`` is not floating point.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from ir.graph import Graph, Node, Value
from ir.ops.registry import op
from ir.passes.base import Pass, PassResult
from ir.passes.pattern import Match, Pattern, State, Var, any_order, close, scalar_of
from ir.passes.rewriter import RewriteRule, apply_rules

_Poly = dict[int, float]  # power of x -> coefficient
_MAX_DEPTH = 12


class FuseGeluPass(Pass):
    """Fuse elementwise GELU formulas (exact erf form, tanh form) into ``Gelu``."""

    name = "fuse_gelu"

    def call(self, graph: Graph) -> PassResult:
        """Rewrite every match; see the module docstring for the rules."""
        return PassResult(graph, apply_rules(graph, _RULES))


def _gelu(fn: Callable[[Pattern], Pattern]) -> Pattern:
    """``0.5 * x * (1 + fn(p))``, in any order and association, ``p`` a polynomial in ``x``."""
    x = Var("x")
    return any_order(op.Mul(op.Mul(0.5, x), op.Add(1.0, fn(_PolynomialIn(x, "p")))))


def _is_gelu_input(m: Match) -> bool:
    """``x`` is a floating-point value, not a constant, shaped as the result."""
    x = m["x"]
    floating = np.issubdtype(x.dtype, np.floating)
    return floating and x.const is None and m.value.type == x.type


def _erf_check(m: Match) -> bool:
    p = m["p"]  # erf's argument must be x / sqrt(2)
    return _is_gelu_input(m) and set(p) == {1} and close(p[1], math.sqrt(0.5))


def _tanh_check(m: Match) -> bool:
    p = m["p"]  # tanh's argument must be sqrt(2 / pi) * (x + 0.044715 * x**3)
    if not _is_gelu_input(m) or set(p) != {1, 3}:
        return False
    return close(p[1], math.sqrt(2 / math.pi)) and close(p[3] / p[1], 0.044715)


class _PolynomialIn(Pattern):
    """A polynomial in the value ``x`` bound (matched earlier), its coefficients bound to ``name``.

    Read through single-use ``Add``, ``Sub``, ``Mul``, ``Neg``, ``Div`` by a constant and
    ``Pow`` by 1, 2 or 3, at most ``_MAX_DEPTH`` deep.
    """

    def __init__(self, x: Var, name: str) -> None:
        self.x = x
        self.name = name

    def fits(self, value: Value | None, state: State) -> Iterator[State]:
        x = state.bound.get(self.x.name)
        nodes: list[Node] = []
        poly = None if x is None else _poly(value, x, nodes, 0)
        if poly is not None:
            yield state.add(*nodes).bind(self.name, poly)


def _poly(v: Value | None, x: Value, nodes: list[Node], depth: int) -> _Poly | None:
    """``v`` as a polynomial in ``x``, or None when it is not one (or is too deep)."""
    if v is x:
        return {1: 1.0}
    c = scalar_of(v)
    if c is not None:
        return {0: c}
    n = None if v is None else v.producer
    kinds = ("Add", "Sub", "Mul", "Div", "Pow", "Neg")
    if n is None or n.op.domain or n.op.op_type not in kinds or depth > _MAX_DEPTH:
        return None
    if v is None or len(v.uses) != 1 or v in v.graph.outputs:
        return None
    a = _poly(n.inputs[0], x, nodes, depth + 1)
    b = _poly(n.inputs[1], x, nodes, depth + 1) if len(n.inputs) > 1 else {0: -1.0}
    if a is None or b is None:
        return None
    out = _combine(n.op.op_type, a, b)
    if out is None:
        return None
    nodes.append(n)
    return {p: q for p, q in out.items() if q != 0.0}


def _combine(op_type: str, a: _Poly, b: _Poly) -> _Poly | None:
    """``a <op> b``; None where the result is not a polynomial this pass reads."""
    constant = b[0] if set(b) == {0} else None
    if op_type in ("Add", "Sub"):
        sign = 1.0 if op_type == "Add" else -1.0
        return {p: a.get(p, 0.0) + sign * b.get(p, 0.0) for p in {*a, *b}}
    if op_type in ("Mul", "Neg"):
        return _times(a, b)
    if op_type == "Div" and constant:
        return {p: q / constant for p, q in a.items()}
    if op_type == "Pow" and constant in (1.0, 2.0, 3.0):
        out = {0: 1.0}
        for _ in range(int(constant)):
            out = _times(out, a)
        return out
    return None


def _times(a: _Poly, b: _Poly) -> _Poly:
    out: _Poly = {}
    for p, q in a.items():
        for r, s in b.items():
            out[p + r] = out.get(p + r, 0.0) + q * s
    return out


_RULES = [
    RewriteRule("gelu_erf", _gelu(op.Erf), _erf_check, lambda m: op.Gelu(m["x"])),
    RewriteRule(
        "gelu_tanh", _gelu(op.Tanh), _tanh_check, lambda m: op.Gelu(m["x"], approximate="tanh")
    ),
]
