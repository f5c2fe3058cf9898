"""Dead code elimination: drop what no graph output depends on.

Rules:

- A node none of whose outputs is used (by a node or as a graph output) is removed. Nodes
  are visited last to first, so a whole dead chain goes in one sweep. Random ops are removed
  too: ONNX ops have no side effects, so an unused draw changes nothing.
- An initializer nobody uses and that is not a graph output is removed.

Never removed: graph inputs (they are the signature callers feed, used or not), graph
outputs, and a node with at least one used output (multi-output nodes stay whole).
"""

from __future__ import annotations

from ir.graph import Graph
from ir.passes.base import Pass, PassResult


class DeadCodeEliminationPass(Pass):
    """Remove nodes whose outputs reach no graph output, and unused initializers."""

    name = "dead_code_elimination"

    def call(self, graph: Graph) -> PassResult:
        """Sweep the nodes last to first, then the initializers."""
        outputs = {id(v) for v in graph.outputs}
        changed = False
        for node in reversed(list(graph.nodes)):
            if not any(v.uses or id(v) in outputs for v in node.outputs):
                graph.remove(node)
                changed = True
        for name, value in list(graph.initializers.items()):
            if not value.uses and id(value) not in outputs:
                graph.remove_initializer(name)
                changed = True
        return PassResult(graph, changed)
