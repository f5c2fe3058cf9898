"""Constant folding: compute at optimisation time what does not depend on the graph inputs.

Rules:

- A node whose inputs are all initializers (or absent optional inputs) is run once with its
  registry kernel, ``op.kernel(*arrays, **node.attrs)``, exactly as the interpreter would, and
  its used outputs become initializers. ``tracer.nn.Linear``'s ``Transpose(weight)`` becomes a
  pre-transposed weight this way, and an LSTM's gate reordering becomes reordered weights.
- Shape-only ops (``OpDef.shape_only``: ``Shape``, ``Size``, ``EyeLike``) of a value whose
  shape is static are folded (the kernel runs on a zero-copy stand-in of that shape), and so
  is any int64 value whose symbolic value (``Value.sym``: shape arithmetic) is all ints.
- A folded value keeps its name (the node's output is renamed out of the way), so graph
  outputs keep their names; a graph output may then be an initializer, which ONNX allows.
- Initializers only the folded node read are dropped, and downstream types are re-inferred:
  a shape rule that now sees a constant may give a more precise type.

Does not fire:

- on random ops (``OpDef.random``: ``Dropout``) or on nodes whose subgraph holds one;
- when the fold would add more than ``size_limit`` elements to the model: its results
  minus the initializers that only this node reads (which the fold frees). An ``Expand``
  or ``ConstantOfShape`` to a huge tensor stays a node, and so does a copy of a large
  weight that something else still reads (a ``detach()`` or ``Transpose`` of a tied
  embedding table), while transposing a large weight read nowhere else is folded;
- when the kernel raises, or returns a dtype or shape that disagrees with the node's type
  (the node is left for the runtime to run, or report);
- on nodes none of whose outputs is used (dead code elimination removes those).
"""

from __future__ import annotations

import numpy as np

from ir.errors import GraphcapError
from ir.graph import Graph, Node, Value
from ir.passes.base import Pass, PassResult, is_deterministic, refine_types, remove_if_dead
from ir.types import TensorType

# 2**20 elements: 4 MiB of float32 that a single fold may add to the model.
DEFAULT_SIZE_LIMIT = 1 << 20
_KERNEL_ERRORS = (GraphcapError, ArithmeticError, IndexError, TypeError, ValueError)


class ConstantFoldingPass(Pass):
    """Replace node outputs that are computable now by initializers.

    Args:
        size_limit: the most elements a folded result may add to the model (see the module
            docstring); default ``DEFAULT_SIZE_LIMIT`` (2**20).
    """

    name = "constant_folding"

    def __init__(self, size_limit: int = DEFAULT_SIZE_LIMIT) -> None:
        self.size_limit = size_limit

    def call(self, graph: Graph) -> PassResult:
        """Fold every foldable node once, in graph order (so chains fold in one call)."""
        changed = False
        for node in list(graph.nodes):
            live = [v.uses or v in graph.outputs for v in node.outputs]
            if not any(live):
                continue
            arrays = self._known(node)
            for v, array, used in zip(node.outputs, arrays, live, strict=True):
                if array is not None and used:
                    _replace_with_constant(graph, v, array)
                    changed = True
            remove_if_dead(graph, node)
        if changed:
            refine_types(graph)
        return PassResult(graph, changed)

    def _known(self, node: Node) -> list[np.ndarray | None]:
        """Per output, its value when it is known now, else None."""
        unknown: list[np.ndarray | None] = [None] * len(node.outputs)
        if not is_deterministic(node):
            return unknown
        x = node.inputs[0] if node.inputs else None
        if node.op.shape_only and x is not None and x.type.is_static:
            stand_in = np.broadcast_to(np.zeros((), x.dtype), x.shape)  # type: ignore[arg-type]
            return self._run(node, [stand_in]) or unknown
        if all(v is None or v.const is not None for v in node.inputs):
            folded = self._run(node, [None if v is None else v.const for v in node.inputs])
            if folded is not None:
                return folded
        return [_from_sym(v) for v in node.outputs]

    def _run(self, node: Node, args: list[np.ndarray | None]) -> list[np.ndarray | None] | None:
        """The kernel's results, or None when it fails, disagrees or is too large to keep."""
        try:
            with np.errstate(all="ignore"):  # inf and nan are results like any other
                out = node.op.kernel(*args, **node.attrs)
        except _KERNEL_ERRORS:
            return None
        results = [out] if len(node.outputs) == 1 else list(out)
        arrays = [np.array(r) for r in results]  # a copy: never alias another initializer
        if len(arrays) != len(node.outputs):
            return None
        if not all(_fits(a, v.type) for a, v in zip(arrays, node.outputs, strict=True)):
            return None
        freed = _freed_elements(node)
        if sum(a.size for a in arrays) - freed > self.size_limit:
            return None
        return list(arrays)


def _freed_elements(node: Node) -> int:
    """Elements of the initializers among ``node``'s inputs that nothing else reads."""
    graph_outputs = set(map(id, node.graph.outputs)) if node.graph is not None else set()
    inputs = {id(v): v for v in node.inputs if v is not None and v.const is not None}
    return sum(
        v.const.size
        for v in inputs.values()
        if v.const is not None
        and all(user is node for user, _ in v.uses)
        and id(v) not in graph_outputs
    )


def _fits(array: np.ndarray, t: TensorType) -> bool:
    if array.dtype != t.dtype:
        return False
    if t.shape is None:
        return True
    return len(t.shape) == array.ndim and all(
        d is None or d == n for d, n in zip(t.shape, array.shape, strict=True)
    )


def _from_sym(v: Value) -> np.ndarray | None:
    """``v``'s value from its symbolic value, when every element is a known int."""
    sym, t = v.sym, v.type
    if sym is None or t.dtype != np.int64 or not t.is_static:
        return None
    if not all(isinstance(d, int) for d in sym) or len(sym) != int(np.prod(t.shape)):  # type: ignore[arg-type]
        return None
    return np.asarray(sym, dtype=np.int64).reshape(t.shape)  # type: ignore[arg-type]


def _replace_with_constant(graph: Graph, v: Value, array: np.ndarray) -> None:
    """An initializer named as ``v`` was (``v`` gets a fresh name) takes over its uses."""
    name = v.name
    graph.rename(v, graph.fresh_name(name))
    graph.replace_all_uses_with(v, graph.add_initializer(name, array))
