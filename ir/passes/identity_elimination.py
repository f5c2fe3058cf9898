"""Identity elimination: drop nodes that hand their first input on unchanged.

Rules (``y`` is the node's output, ``x`` its first input):

- ``Identity(x)``;
- ``Dropout(x)`` in inference: no ``training_mode`` input, or a constant false one, and its
  mask output unused;
- ``Cast(x)`` to ``x``'s own dtype;
- a node that only reshapes ``x`` or broadcasts it to a target shape (``OpDef.reshape`` or
  ``OpDef.shape_input``: ``Reshape``, ``Expand``, ``Squeeze``, ``Unsqueeze``, ``Flatten``)
  whose output type equals ``x``'s, every dim known (ints, or symbols: equal names are
  equal sizes);
- a chain of two of those (``Squeeze(Unsqueeze(x))``, ``Reshape(Reshape(x))``...) whose
  output type equals the first one's input type: they only re-read the row-major order;
- ``Transpose`` whose permutation is the identity;
- an n-ary op (``OpDef.nary``: ``Concat``, ``Sum``, ``Max``, ``Min``, ``Mean``) of a single
  input.

Does not fire:

- when ``y`` is a graph output and ``x`` is a graph input, an initializer or another graph
  output: the output must keep its own name, so the node stays;
- on ``Dropout`` in training mode, or whose mask is read (it is all true, but computing it is
  what the node is for);
- on shapes with unknown dims or ranks, and on ``Slice`` (a reversing slice keeps the shape);
- on an ``Identity`` marked ``stop_gradient`` (a traced ``detach()``): ``ir.grad`` stops there.
"""

from __future__ import annotations

from ir.graph import Graph, Node, Value
from ir.ops.registry import OpDef
from ir.passes.base import Pass, PassResult, remove_if_dead, replace_value, same_type


class IdentityEliminationPass(Pass):
    """Remove nodes whose first output equals one of their inputs."""

    name = "identity_elimination"

    def call(self, graph: Graph) -> PassResult:
        """Visit nodes in order; chains of identities go in one call."""
        changed = False
        for node in list(graph.nodes):
            x = _passthrough(graph, node)
            if x is not None and replace_value(graph, node.outputs[0], x):
                remove_if_dead(graph, node)
                changed = True
        return PassResult(graph, changed)


def _passthrough(graph: Graph, node: Node) -> Value | None:
    """The value ``node``'s first output always equals, or None."""
    op_type = node.op.op_type
    x = node.inputs[0] if node.inputs else None
    y = node.outputs[0]
    if x is None or node.meta.get("stop_gradient"):  # a traced detach(): ir.grad needs it
        return None
    if op_type == "Identity":
        return x
    if op_type == "Dropout":
        return x if _inference_dropout(graph, node) else None
    if node.op.nary:
        return x if len(node.inputs) == 1 and same_type(x, y) else None
    if op_type == "Cast":
        return x if x.dtype == y.dtype else None
    if op_type == "Transpose":
        perm, rank = node.attrs.get("perm"), x.type.rank
        if rank is None:
            return None
        order = range(rank - 1, -1, -1) if perm is None else perm
        return x if [int(i) for i in order] == list(range(rank)) else None
    if _reshapes(node.op):
        if same_type(x, y):
            return x
        inner = x.producer
        if inner is not None and _reshapes(inner.op):
            source = inner.inputs[0]
            if source is not None and same_type(source, y):
                return source
    return None


def _reshapes(op: OpDef) -> bool:
    """Whether ``op`` keeps input 0's row-major element order, changing only the shape.

    Reshapes do; so does broadcasting to a target shape, which repeats elements only where
    the shape grows (a chain back to the source type never grew).
    """
    return op.reshape or op.shape_input is not None


def _inference_dropout(graph: Graph, node: Node) -> bool:
    mask = node.outputs[1]
    if mask.uses or mask in graph.outputs:
        return False
    training = node.inputs[2] if len(node.inputs) > 2 else None
    return training is None or (training.const is not None and not training.const.any())
