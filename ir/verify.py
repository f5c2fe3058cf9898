"""``verify(graph)``: every IR invariant, with messages that say how to fix the graph."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ir.errors import GraphInvariantError
from ir.symbolic import infer_node
from ir.types import TensorType

if TYPE_CHECKING:
    from ir.graph import Graph, Node, Value


def verify(graph: Graph) -> None:
    """Check SSA form, topological order, use lists, outputs and types.

    Raises:
        GraphInvariantError: the first broken invariant, naming the value or node.
    """
    defined: set[int] = set()
    names: set[str] = set()
    for v in [*graph.inputs, *graph.captures, *graph.initializers.values()]:
        _define(graph, v, names, defined, producer=None, index=0)
    node_ids = {id(n) for n in graph.nodes}
    for node in graph.nodes:
        for i, x in enumerate(node.inputs):
            if x is None:
                continue
            if x.graph is not graph:
                raise GraphInvariantError(
                    f"argument %{x.name} of node {node.name} ({node.op.op_type}) belongs to "
                    f"graph {x.graph.name!r}, not {graph.name!r}; a subgraph reads a value of the "
                    "graph around it through a capture (Graph.add_capture) that its node feeds"
                )
            if id(x) not in defined:
                raise GraphInvariantError(
                    f"argument %{x.name} of node {node.name} ({node.op.op_type}) is used before "
                    "it is defined; nodes must be topologically ordered"
                )
            if (node, i) not in x.uses:
                raise GraphInvariantError(
                    f"%{x.name} does not list its use as input {i} of node {node.name}"
                )
        for j, v in enumerate(node.outputs):
            _define(graph, v, names, defined, producer=node, index=j)
        _check_subgraphs(node)
        _check_types(node)
    for v in graph.values():
        for user, i in v.uses:
            if id(user) not in node_ids or user.inputs[i] is not v:
                raise GraphInvariantError(
                    f"%{v.name} lists a use as input {i} of node {user.name}, which does not use it"
                )
    for v in graph.outputs:
        if id(v) not in defined:
            raise GraphInvariantError(f"graph output %{v.name} is not defined by the graph")


def _check_subgraphs(node: Node) -> None:
    """Verify graph-valued attributes (If branches, Loop and Scan bodies) and their captures.

    A subgraph reads values of the graph around it only through its captures, which the
    node's last inputs feed, one each, with the same type.
    """
    from ir.graph import Graph

    count = node.num_captured
    for key in sorted(node.attrs):
        body = node.attrs[key]
        if not isinstance(body, Graph):
            continue
        where = f"attribute {key} (graph {body.name!r}) of node {node.name} ({node.op.op_type})"
        if body is node.graph:
            raise GraphInvariantError(f"node {node.name}: attribute {key} is the node's own graph")
        if len(body.captures) != count or count > len(node.inputs):
            raise GraphInvariantError(
                f"{where} captures {len(body.captures)} outer value(s); the node's other "
                f"subgraphs capture {count} and it has {len(node.inputs)} inputs: every subgraph "
                "of a node captures the same values, which the node passes as its last inputs"
            )
        outer = node.inputs[len(node.inputs) - count :]
        for inner, x in zip(body.captures, outer, strict=True):
            if x is None or not _consistent(x.type, inner.type):
                given = "nothing" if x is None else f"%{x.name} {x.type}"
                raise GraphInvariantError(
                    f"{where}: capture %{inner.name} {inner.type} is fed {given}; the node's "
                    "last inputs must be the captured outer values, of consistent types"
                )
        try:
            verify(body)
        except GraphInvariantError as err:
            raise GraphInvariantError(f"in {where}: {err}") from None


def _define(
    graph: Graph, v: Value, names: set[str], defined: set[int], producer: Node | None, index: int
) -> None:
    if v.name in names:
        raise GraphInvariantError(f"value name %{v.name} is defined twice; SSA names are unique")
    if v.graph is not graph:
        raise GraphInvariantError(f"%{v.name} belongs to another graph")
    if v.producer is not producer or v.index != index:
        raise GraphInvariantError(f"%{v.name} has a wrong producer or output index")
    names.add(v.name)
    defined.add(id(v))


def _check_types(node: Node) -> None:
    inferred, _ = infer_node(node)
    if len(inferred) != len(node.outputs):
        raise GraphInvariantError(
            f"node {node.name} ({node.op.op_type}) has {len(node.outputs)} outputs; its shape "
            f"rule gives {len(inferred)}"
        )
    for v, t in zip(node.outputs, inferred, strict=True):
        if not _compatible(v.type, t):
            raise GraphInvariantError(
                f"output %{v.name} of node {node.name} ({node.op.op_type}) is typed {v.type}; "
                f"the registry's rule gives {t}"
            )


def _consistent(a: TensorType, b: TensorType) -> bool:
    """Same dtype, and no dim on which both are known and differ (ranks too)."""
    if a.dtype != b.dtype:
        return False
    if a.shape is None or b.shape is None:
        return True
    return len(a.shape) == len(b.shape) and all(
        not (isinstance(x, int) and isinstance(y, int)) or x == y
        for x, y in zip(a.shape, b.shape, strict=True)
    )


def _compatible(stored: TensorType, inferred: TensorType) -> bool:
    """Same dtype, and the stored shape is the inferred one or a refinement of it."""
    if stored.dtype != inferred.dtype:
        return False
    if inferred.shape is None:
        return True
    if stored.shape is None or len(stored.shape) != len(inferred.shape):
        return False
    return all(b is None or a == b for a, b in zip(stored.shape, inferred.shape, strict=True))
