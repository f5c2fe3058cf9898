"""Graph passes and ``optimize``.

Each pass rewrites a graph in place through ``Graph``'s methods and returns
``PassResult(graph, changed)``; ``PassManager`` runs passes to a fixed point and verifies the
result (after every pass with ``verify=True`` or ``GRAPHCAP_VERIFY_PASSES=1``). The fusion
passes are pattern / check / rewrite rules (``pattern.py``, ``rewriter.py``). The
general-purpose passes:

- ``DeadCodeEliminationPass``: nodes whose outputs reach no graph output, unused initializers.
- ``ConstantFoldingPass``: nodes of constants (and shapes known statically) become
  initializers, computed by the registry's kernels.
- ``CommonSubexpressionEliminationPass``: identical nodes and identical initializers merged.
- ``IdentityEliminationPass``: ``Identity``, inference ``Dropout``, no-op ``Cast``,
  ``Reshape``, ``Transpose``... removed.
- ``AlgebraicSimplificationPass``: ``x * 1``, ``x + 0``, ``Transpose`` of ``Transpose``,
  ``Reshape`` of ``Reshape``, lossless ``Cast`` chains, ``Neg(Neg(x))``...

``optimize(graph, level)`` levels: 0 verifies only; 1 runs dead code elimination, identity
elimination, constant folding and CSE; 2 adds algebraic simplification; 3 adds the fusions
(``FuseGemmPass``, ``FuseLayerNormPass``, ``FuseGeluPass``, ``FuseAttentionPass``,
``AdditiveMaskPass``, in their own modules). Every pass keeps graph inputs as they are and
graph outputs' names and order.
"""

from ir.passes.algebraic_simplification import AlgebraicSimplificationPass
from ir.passes.base import Pass, PassError, PassManager, PassResult
from ir.passes.constant_folding import ConstantFoldingPass
from ir.passes.cse import CommonSubexpressionEliminationPass
from ir.passes.dead_code_elimination import DeadCodeEliminationPass
from ir.passes.identity_elimination import IdentityEliminationPass
from ir.passes.optimize import optimize

__all__ = [
    "AlgebraicSimplificationPass",
    "CommonSubexpressionEliminationPass",
    "ConstantFoldingPass",
    "DeadCodeEliminationPass",
    "IdentityEliminationPass",
    "Pass",
    "PassError",
    "PassManager",
    "PassResult",
    "optimize",
]
