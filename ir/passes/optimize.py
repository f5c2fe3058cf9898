"""``optimize(graph, level)``: the standard pass pipelines, run to a fixed point."""

from __future__ import annotations

from ir.errors import GraphcapError
from ir.graph import Graph
from ir.passes.algebraic_simplification import AlgebraicSimplificationPass
from ir.passes.base import Pass, PassManager, verify_each_pass, verify_result
from ir.passes.constant_folding import ConstantFoldingPass
from ir.passes.cse import CommonSubexpressionEliminationPass
from ir.passes.dead_code_elimination import DeadCodeEliminationPass
from ir.passes.identity_elimination import IdentityEliminationPass

LEVELS = (0, 1, 2, 3)


def optimize(
    graph: Graph, level: int = 1, *, verify: bool | None = None, copy: bool = True
) -> Graph:
    """Optimize ``graph`` with the passes of ``level``.

    Levels:
        0: nothing (the graph is only verified);
        1: constant folding, identity elimination, common subexpression elimination and
           dead code elimination;
        2: level 1 plus algebraic simplification;
        3: level 2 plus the fusions (``Gemm``, ``LayerNormalization``, ``Gelu``, attention,
           masks added before ``Softmax`` instead of selected with ``Where``),
           run after the level-2 passes, which then run again on the fused graph.

    Each stage runs its passes round after round until none changes the graph. Graph inputs
    are untouched, and graph outputs keep their names and order.

    Verification (``verify``): by default the result is verified once, at the end; with
    ``GRAPHCAP_VERIFY_PASSES=1`` in the environment (the test suite sets it) or
    ``verify=True``, the given graph is verified first and the graph after every pass, so a
    failure names the pass that broke it (several times slower). ``verify=False`` skips it.

    Args:
        graph: the graph to optimize.
        level: 0, 1, 2 or 3.
        verify: None (default: once at the end, or per pass under the environment
            variable), True (per pass) or False (never).
        copy: optimize ``graph.copy()`` and leave ``graph`` alone; otherwise work in place.

    Returns:
        The optimized graph (``graph`` itself when ``copy`` is False).

    Raises:
        ValueError: ``level`` is not one of 0, 1, 2, 3.
        GraphInvariantError: the given graph does not verify.
        PassError: a pass raised or left a graph that does not verify.
    """
    if level not in LEVELS:
        raise ValueError(f"optimize: level={level!r}; expected one of {list(LEVELS)}")
    each = verify_each_pass() if verify is None else verify
    out = graph.copy() if copy else graph
    if each or (level == 0 and verify is None):
        out.verify()  # a broken input is not blamed on the first pass
    ran: list[str] = []
    for passes in pipeline(level):
        PassManager(passes, verify=each)(out)
        ran += [p.name for p in passes]
    if verify is None and not each and ran:
        try:
            out.verify()
        except GraphcapError:
            if copy:
                graph.verify()  # a broken input is reported as such, not blamed on a pass
            verify_result(out, ran)
    return out


def pipeline(level: int) -> list[list[Pass]]:
    """The stages ``optimize`` runs at ``level``: each a list of passes run to a fixed point."""
    if level <= 0:
        return []
    simplify: list[Pass] = [
        ConstantFoldingPass(),
        IdentityEliminationPass(),
        CommonSubexpressionEliminationPass(),
    ]
    if level >= 2:
        simplify.append(AlgebraicSimplificationPass())
    simplify.append(DeadCodeEliminationPass())
    if level < 3:
        return [simplify]
    return [simplify, [*_fusions(), DeadCodeEliminationPass()], simplify]


def _fusions() -> list[Pass]:
    # Imported here: the fusion passes build on the whole registry and are only needed at 3.
    from ir.passes.additive_mask import AdditiveMaskPass
    from ir.passes.fuse_attention import FuseAttentionPass
    from ir.passes.fuse_gelu import FuseGeluPass
    from ir.passes.fuse_gemm import FuseGemmPass
    from ir.passes.fuse_layer_norm import FuseLayerNormPass

    return [
        FuseAttentionPass(),
        AdditiveMaskPass(),
        FuseLayerNormPass(),
        FuseGeluPass(),
        FuseGemmPass(),
    ]
