"""Algebraic simplification: local rewrites that give the same values with less work.

Rules (a neutral constant is an initializer whose every element is 1, or 0):

- ``x * 1``, ``1 * x``, ``x + 0``, ``0 + x``, ``x - 0``, ``x / 1``, ``x ** 1`` -> ``x`` when
  the constant cannot change the result's type: the output type equals ``x``'s, or the
  constant's dims are all 1 and its rank at most ``x``'s;
- ``Transpose(Transpose(x))`` -> one ``Transpose`` (composed perm), or ``x`` for the identity;
- ``Reshape(r(x), s)`` -> ``Reshape(x, s)`` when ``r`` only reshapes (``OpDef.reshape``:
  ``Reshape``, ``Squeeze``, ``Unsqueeze``, ``Flatten``) and ``s`` is a constant without 0 (unless
  ``allowzero``): a 0 would copy a dim of the *intermediate* shape;
- ``Cast(Cast(x, T1), T2)`` -> ``Cast(x, T2)``, or ``x`` when ``T2`` is ``x``'s dtype, when
  ``x -> T1`` is lossless (wider ints or floats, ints into a float whose mantissa holds them,
  bools into anything);
- ``Neg(Neg(x))``, ``Not(Not(x))`` -> ``x``; ``Where(c, x, x)`` -> ``x`` (same type).

Must not fire, and does not: ``x * 0`` -> 0, ``x - x`` -> 0, ``x / x`` -> 1 (wrong for NaN
and inf); ``Reciprocal(Reciprocal(x))`` (inexact); a lossy inner ``Cast`` (``float -> int``
truncates, ``int64 -> float64`` rounds); a neutral constant that broadcasts ``x`` larger.
One liberty: ``x + 0.0`` -> ``x`` keeps a ``-0.0`` the ``Add`` would have made ``+0.0``
(they compare equal; only ``1 / y`` tells them apart).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ir.graph import Graph, Node, Value
from ir.ops.registry import OpDef
from ir.passes.base import Pass, PassResult, emit_before, remove_if_dead, replace_value, same_type


class AlgebraicSimplificationPass(Pass):
    """Apply the module's rewrite rules once over the graph, in node order."""

    name = "algebraic_simplification"

    def call(self, graph: Graph) -> PassResult:
        """Rewrite each node whose rule matches; the old node goes when it is dead."""
        changed = False
        for node in list(graph.nodes):
            rule = _RULES.get(node.op.op_type)
            new = rule(graph, node) if rule else None
            if new is None:
                continue
            if replace_value(graph, node.outputs[0], new):
                remove_if_dead(graph, node)
                changed = True
            elif new.producer is not None:
                remove_if_dead(graph, new.producer)  # undo a node the rule just emitted
        return PassResult(graph, changed)


def _neutral(value: float, commutes: bool) -> Callable[[Graph, Node], Value | None]:
    def rule(graph: Graph, node: Node) -> Value | None:
        a, b = node.inputs
        y = node.outputs[0]
        for x, c in [(a, b), (b, a)][: 1 + commutes]:
            if x is None or c is None or c.const is None or not np.all(c.const == value):
                continue
            rank = x.type.rank
            small = rank is not None and c.const.ndim <= rank and all(d == 1 for d in c.shape)
            if x.dtype == y.dtype and (same_type(x, y) or small):
                return x
        return None

    return rule


def _transpose(graph: Graph, node: Node) -> Value | None:
    inner, x = _inner(node, "Transpose")
    if inner is None or x is None or x.type.rank is None:
        return None
    p, q = (_perm(n, x.type.rank) for n in (inner, node))
    composed = [p[i] for i in q]
    if composed == list(range(x.type.rank)):
        return x
    return emit_before(graph, node, node.op, [x], {**node.attrs, "perm": composed})[0]


def _perm(node: Node, rank: int) -> list[int]:
    perm = node.attrs.get("perm")  # None: reverse the axes
    return list(range(rank))[::-1] if perm is None else [int(i) for i in perm]


def _reshape(graph: Graph, node: Node) -> Value | None:
    inner, x = _inner(node, lambda op: op.reshape)
    shape = node.inputs[1]
    if inner is None or x is None or shape is None or shape.const is None:
        return None
    if not node.full_attrs["allowzero"] and np.any(shape.const == 0):
        return None
    return emit_before(graph, node, node.op, [x, shape], node.attrs)[0]


def _cast(graph: Graph, node: Node) -> Value | None:
    inner, x = _inner(node, "Cast")
    if inner is None or x is None or not _lossless(x.dtype, inner.outputs[0].dtype):
        return None
    if x.dtype == node.outputs[0].dtype:
        return x
    return emit_before(graph, node, node.op, [x], node.attrs)[0]


def _lossless(src: np.dtype, dst: np.dtype) -> bool:
    """Whether every ``src`` value is exactly representable in ``dst``."""
    if src == dst or src.kind == "b":
        return True
    if src.kind in "iu" and dst.kind in "iu":
        if src.kind == dst.kind:
            return dst.itemsize >= src.itemsize
        return src.kind == "u" and dst.itemsize > src.itemsize
    if src.kind in "iu" and dst.kind == "f":
        magnitude_bits = src.itemsize * 8 - (src.kind == "i")
        return magnitude_bits <= np.finfo(dst).nmant + 1
    return src.kind == "f" and dst.kind == "f" and dst.itemsize >= src.itemsize


def _where(graph: Graph, node: Node) -> Value | None:
    _, x, z = node.inputs
    return x if x is not None and x is z and same_type(x, node.outputs[0]) else None


def _inner(node: Node, kind: str | Callable[[OpDef], bool]) -> tuple[Node | None, Value | None]:
    """The producer of ``node``'s first input when it is a ``kind`` node, and its input.

    ``kind`` is an op type, or a test of the op (one of its traits).
    """
    x = node.inputs[0]
    inner = x.producer if x is not None else None
    if inner is None or not (kind(inner.op) if callable(kind) else inner.op.op_type == kind):
        return None, None
    return inner, inner.inputs[0]


_RULES: dict[str, Callable[[Graph, Node], Value | None]] = {
    "Mul": _neutral(1, commutes=True),
    "Add": _neutral(0, commutes=True),
    "Sub": _neutral(0, commutes=False),
    "Div": _neutral(1, commutes=False),
    "Pow": _neutral(1, commutes=False),
    "Transpose": _transpose,
    "Reshape": _reshape,
    "Cast": _cast,
    "Neg": lambda graph, node: _inner(node, "Neg")[1],  # an involution: Neg(Neg(x)) = x
    "Not": lambda graph, node: _inner(node, "Not")[1],
    "Where": _where,
}
