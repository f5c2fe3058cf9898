"""Common subexpression elimination: compute each distinct thing once.

Rules:

- Two initializers with the same dtype, shape and bytes become one (the first in the
  graph's order stays). Initializers larger than ``initializer_size_limit`` elements are only
  merged when they hold the very same array object (weights tied in the model), so the pass
  never hashes large weights.
- Two nodes with the same op, the same input values (by identity, absent inputs included)
  and equal attributes (defaults filled in) become one: the later node's uses move to the
  earlier one. Nodes are visited in order after their inputs were merged, so whole repeated
  chains collapse in one call. A merge removes what only the dropped node read; when that
  takes an earlier representative with it, the next equal node becomes the representative.
  Attributes compare by value: arrays by dtype, shape and bytes; lists and tuples
  element-wise; floats bit for bit (``-0.0`` differs from ``0.0``, NaN equals NaN); graphs (a
  ``Scan`` body) by identity only.
- Two int64 shape values with the same fully known symbolic value (``Value.sym``, e.g.
  ``Shape(a, end=1)`` and ``Shape(b, end=1)`` both ``(seq,)``) become one, however they were
  computed: a symbol has one size per run (``runtime`` checks feeds against it), so equal
  expressions are equal values.

Does not fire:

- on random ops (``Dropout``, ``Random*``, ops with a ``seed`` attribute): two draws are two
  different values;
- when both candidates are graph outputs (each output keeps its name and its own value),
  or when the initializer to drop is a graph output;
- on attribute values of unknown types, which only equal themselves.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np

from ir.graph import Graph, Node
from ir.passes.base import Pass, PassResult, is_deterministic, remove_if_dead, replace_value

# Initializers up to this many elements are compared by content.
DEFAULT_INITIALIZER_SIZE_LIMIT = 1 << 16


class CommonSubexpressionEliminationPass(Pass):
    """Merge identical initializers, then identical nodes.

    Args:
        initializer_size_limit: initializers with more elements are merged only when they
            share one array object.
    """

    name = "cse"

    def __init__(self, initializer_size_limit: int = DEFAULT_INITIALIZER_SIZE_LIMIT) -> None:
        self.initializer_size_limit = initializer_size_limit

    def call(self, graph: Graph) -> PassResult:
        """Merge initializers, then nodes, in graph order."""
        changed = self._merge_initializers(graph)
        seen: dict[Hashable, Node] = {}
        for node in list(graph.nodes):
            if not is_deterministic(node):
                continue
            key = _node_key(node)
            first = seen.get(key)
            if first is None or first not in graph.nodes:
                # An earlier merge may have removed the representative as dead: this node
                # takes its place, or its uses would move to a value no node defines.
                seen[key] = node
            elif _merge(graph, node, first):
                changed = True
        return PassResult(graph, changed)

    def _merge_initializers(self, graph: Graph) -> bool:
        seen: dict[Hashable, Any] = {}
        changed = False
        for value in list(graph.initializers.values()):
            a = value.const
            assert a is not None
            if a.size <= self.initializer_size_limit and a.dtype != object:
                key: Hashable = (a.dtype.str, a.shape, a.tobytes())
            else:
                key = ("same array", id(a), a.dtype.str, a.shape)
            first = seen.setdefault(key, value)
            if first is not value and replace_value(graph, value, first):
                graph.remove_initializer(value.name)
                changed = True
        return changed


def _merge(graph: Graph, node: Node, first: Node) -> bool:
    """Move ``node``'s uses to ``first``'s outputs and drop ``node``, when names allow it."""
    pairs = list(zip(node.outputs, first.outputs, strict=True))
    if any(v in graph.outputs and w in graph.outputs for v, w in pairs):
        return False
    for v, w in pairs:
        replace_value(graph, v, w)
    return remove_if_dead(graph, node)


def _node_key(node: Node) -> Hashable:
    if len(node.outputs) == 1:
        v = node.outputs[0]
        if v.sym is not None and None not in v.sym:
            return ("symbolic value", v.dtype.str, v.type.shape, v.sym)
    attrs = tuple(sorted((k, _attr_key(v)) for k, v in node.full_attrs.items()))
    inputs = tuple(None if x is None else id(x) for x in node.inputs)
    cut = bool(node.meta.get("stop_gradient"))  # a detach() is not its input's copy
    return (node.op.key, inputs, len(node.outputs), attrs, cut)


def _attr_key(value: Any) -> Hashable:
    """A hashable stand-in equal for equal attribute values (see the module docstring)."""
    if value is None or isinstance(value, str | bytes):
        return (type(value).__name__, value)
    if isinstance(value, bool | np.bool_):
        return ("bool", bool(value))
    if isinstance(value, int | np.integer):
        return ("int", int(value))
    if isinstance(value, float | np.floating):
        return ("float", float(value).hex())
    if isinstance(value, np.dtype):
        return ("dtype", value.str)
    if isinstance(value, np.ndarray) and value.dtype != object:
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, list | tuple):
        return ("seq", tuple(_attr_key(v) for v in value))
    return ("identity", id(value))  # graphs, and anything unknown, equal only themselves
