"""Helpers the fusion passes share: reading a pattern off the graph, splicing in its rewrite.

Matching reads producers (``node_of``), scalar constants (``scalar_of``) and checks that a
matched set of nodes is private to the pattern (``private``). ``splice`` moves the nodes a
rewrite just appended (``op.X(...)`` on values appends at the end of the graph) to just before
the pattern's last node, points every use of the pattern's result at the new one, hands the
new result the old name (so graph output names survive), and removes the orphaned nodes.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

import numpy as np

from ir.errors import GraphInvariantError
from ir.graph import Graph, Node, Value

M = TypeVar("M")


def fuse_all(
    graph: Graph,
    op_types: Sequence[str],
    match: Callable[[Node], M | None],
    rewrite: Callable[[Graph, M], None],
) -> bool:
    """Rewrite matches until none is left; say whether there was any.

    Each round tries ``match`` on the default-domain nodes of ``op_types`` in graph order and
    rewrites the first match (a rewrite changes the node list, so the scan starts again).

    Raises:
        GraphInvariantError: rewrites keep producing matches (a rewrite that matches its
            own output is a bug in the pass).
    """
    for rounds in range(4 * len(graph.nodes) + 16):
        roots = (n for n in graph.nodes if not n.op.domain and n.op.op_type in op_types)
        found = next((m for m in map(match, roots) if m is not None), None)
        if found is None:
            return rounds > 0
        rewrite(graph, found)
    raise GraphInvariantError(f"fusing {list(op_types)} roots does not reach a fixed point")


def node_of(value: Value | None, *op_types: str) -> Node | None:
    """The node producing ``value`` when it is one of ``op_types`` (default domain)."""
    node = None if value is None else value.producer
    if node is None or node.op.domain or node.op.op_type not in op_types:
        return None
    return node


def scalar_of(value: Value | None) -> float | None:
    """The number a one-element constant holds, else None."""
    if value is None or value.const is None or value.const.size != 1:
        return None
    if not np.issubdtype(value.const.dtype, np.number):
        return None
    return float(value.const.reshape(-1)[0])


def close(value: float | None, want: float, rtol: float = 1e-4) -> bool:
    """``value`` is within ``rtol`` (relative) of ``want``."""
    return value is not None and math.isclose(value, want, rel_tol=rtol, abs_tol=0.0)


def pairs(node: Node) -> list[tuple[Value | None, Value | None]]:
    """A binary commutative node's operands in both orders."""
    a, b = node.inputs[0], node.inputs[1]
    return [(a, b), (b, a)]


def single_use(value: Value | None) -> bool:
    """``value`` feeds exactly one node input and is not a graph output."""
    return value is not None and len(value.uses) == 1 and value not in value.graph.outputs


def private(nodes: Sequence[Node], root: Node) -> bool:
    """Whether ``nodes`` are private to the pattern whose last node is ``root``.

    True when every output of every node but ``root`` is read only by ``nodes`` and is not a
    graph output, so fusing them leaves nothing else without its input.
    """
    members = {id(n) for n in nodes}
    for n in nodes:
        if n is root:
            continue
        for v in n.outputs:
            if v in n.graph.outputs or any(id(u) not in members for u, _ in v.uses):
                return False
    return True


def reduce_axes(reduce: Node) -> tuple[int, ...] | None:
    """The sorted non-negative axes of a ``Reduce*`` node that keeps dims, else None.

    Constant ``axes``, or none at all (every axis); anything else gives None.
    """
    x, given = reduce.inputs[0], reduce.inputs[1] if len(reduce.inputs) > 1 else None
    if x is None or x.type.shape is None or not reduce.full_attrs["keepdims"]:
        return None
    if given is None or given.const is None or given.const.size == 0:
        return tuple(range(x.ndim)) or None if given is None else None
    return tuple(sorted(int(a) % x.ndim for a in given.const.reshape(-1)))


def same_dims(a: Sequence[object], b: Sequence[object]) -> bool:
    """Two shapes are known to be equal (equal ints, or equal symbol names)."""
    return len(a) == len(b) and all(x is not None and x == y for x, y in zip(a, b, strict=True))


def splice(graph: Graph, start: int, old: Value, new: Value, matched: Iterable[Node]) -> None:
    """Replace the pattern whose result is ``old`` by the nodes appended from ``start`` on.

    The new nodes go just before ``old``'s producer (every pattern input is defined there),
    take its source location, and ``new`` takes ``old``'s name. Then the ``matched`` nodes
    left without uses are removed, last first.
    """
    anchor = old.producer
    assert anchor is not None
    fresh = graph.nodes[start:]
    for n in fresh:
        graph.remove(n, safe=False)  # their outputs' uses (by each other) stay recorded
    at = graph.nodes.index(anchor)
    for i, n in enumerate(fresh):
        if "source" in anchor.meta:
            n.meta.setdefault("source", anchor.meta["source"])
        graph.insert_at(at + i, n)
    graph.replace_all_uses_with(old, new)
    name = old.name
    graph.rename(old, graph.fresh_name(name))
    graph.rename(new, name)
    remove_dead(graph, matched)


def remove_dead(graph: Graph, nodes: Iterable[Node]) -> None:
    """Remove those of ``nodes`` left unused, last first, and the constants only they read."""
    position = {id(n): i for i, n in enumerate(graph.nodes)}
    live = sorted((n for n in set(nodes) if id(n) in position), key=lambda n: -position[id(n)])
    for n in live:
        if any(v.uses or v in graph.outputs for v in n.outputs):
            continue
        graph.remove(n)
        for x in {id(x): x for x in n.inputs if x is not None}.values():
            if x.const is not None and not x.uses and x not in graph.outputs:
                graph.remove_initializer(x.name)
