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

from ir.graph import Graph, Node, Value
from ir.ops.registry import op
from ir.passes._match import close, node_of, pairs, private, scalar_of, single_use, splice
from ir.passes.base import Pass, PassResult

_FLOATS = ("float16", "float32", "float64")
_Poly = dict[int, float]  # power of x -> coefficient


class FuseGeluPass(Pass):
    """Fuse elementwise GELU formulas (exact erf form, tanh form) into ``Gelu``."""

    name = "fuse_gelu"

    def call(self, graph: Graph) -> PassResult:
        """Rewrite every match; see the module docstring for the rules."""
        changed = False
        while (found := _find(graph)) is not None:
            root, x, approximate, nodes = found
            start = len(graph.nodes)
            y = op.Gelu(x, approximate=approximate) if approximate != "none" else op.Gelu(x)
            splice(graph, start, root.outputs[0], y, nodes)
            changed = True
        return PassResult(graph, changed)


def _find(graph: Graph) -> tuple[Node, Value, str, list[Node]] | None:
    roots = (n for n in graph.nodes if not n.op.domain and n.op.op_type in ("Mul", "Div"))
    return next((m for m in map(_match, roots) if m is not None), None)


def _match(root: Node) -> tuple[Node, Value, str, list[Node]] | None:
    nodes: list[Node] = []
    coef, leaves = _product(root.outputs[0], nodes, root)
    if len(leaves) != 2 or not close(coef, 0.5):
        return None
    for x, p in (leaves, leaves[::-1]):
        add = node_of(p, "Add")
        if add is None or not single_use(p) or x.const is not None:
            continue
        for one, e in pairs(add):
            fn = node_of(e, "Erf", "Tanh")
            if fn is None or not close(scalar_of(one), 1.0) or not single_use(e):
                continue
            found = [*nodes, add, fn]
            form = _form(fn, x, found)
            if form and str(x.dtype) in _FLOATS and root.outputs[0].type == x.type:
                return (root, x, form, found) if private(found, root) else None
    return None


def _form(fn: Node, x: Value, nodes: list[Node]) -> str | None:
    """The ``approximate`` attribute when ``fn``'s argument is GELU's polynomial in ``x``."""
    poly = _poly(fn.inputs[0], x, nodes)
    if poly is None:
        return None
    if fn.op.op_type == "Erf":
        return "none" if set(poly) == {1} and close(poly[1], math.sqrt(0.5)) else None
    k = poly.get(1)
    if set(poly) == {1, 3} and close(k, math.sqrt(2 / math.pi)):
        return "tanh" if k and close(poly[3] / k, 0.044715) else None
    return None


def _product(v: Value, nodes: list[Node], root: Node) -> tuple[float, list[Value]]:
    """``v`` as constant * product of leaves, through single-use Mul and Div-by-constant."""
    n = node_of(v, "Mul", "Div")
    if n is None or (n is not root and not single_use(v)):
        c = scalar_of(v)
        return (c, []) if c is not None else (1.0, [v])
    a, b = n.inputs[0], n.inputs[1]
    assert a is not None and b is not None
    if n.op.op_type == "Div":
        d = scalar_of(b)
        if not d:
            return 1.0, [v]
        ca, la = _product(a, nodes, root)
        nodes.append(n)
        return ca / d, la
    ca, la = _product(a, nodes, root)
    cb, lb = _product(b, nodes, root)
    nodes.append(n)
    return ca * cb, la + lb


def _poly(v: Value | None, x: Value, nodes: list[Node], depth: int = 0) -> _Poly | None:
    """``v`` as a polynomial in ``x``, or None when it is not one (or is too deep)."""
    if v is x:
        return {1: 1.0}
    c = scalar_of(v)
    if c is not None:
        return {0: c}
    n = node_of(v, "Add", "Sub", "Mul", "Div", "Pow", "Neg")
    if n is None or not single_use(v) or depth > 12:
        return None
    a = _poly(n.inputs[0], x, nodes, depth + 1)
    b = _poly(n.inputs[1], x, nodes, depth + 1) if len(n.inputs) > 1 else {0: -1.0}
    if a is None or b is None:
        return None
    t = n.op.op_type
    if t in ("Add", "Sub"):
        s = 1.0 if t == "Add" else -1.0
        out = {p: a.get(p, 0.0) + s * b.get(p, 0.0) for p in {*a, *b}}
    elif t in ("Mul", "Neg"):
        out = _times(a, b)
    elif t == "Div" and set(b) == {0} and b[0]:
        out = {p: q / b[0] for p, q in a.items()}
    elif t == "Pow" and set(b) == {0} and b[0] in (1.0, 2.0, 3.0):
        out = {0: 1.0}
        for _ in range(int(b[0])):
            out = _times(out, a)
    else:
        return None
    nodes.append(n)
    return {p: q for p, q in out.items() if q != 0.0}


def _times(a: _Poly, b: _Poly) -> _Poly:
    out: _Poly = {}
    for p, q in a.items():
        for r, s in b.items():
            out[p + r] = out.get(p + r, 0.0) + q * s
    return out
