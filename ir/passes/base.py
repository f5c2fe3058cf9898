"""The pass protocol and the pass manager.

A pass is a class ``XxxPass`` with ``name`` and ``call(graph) -> PassResult``. Passes here
rewrite the graph in place (``in_place = True``) through ``Graph``'s methods, so use lists stay
right, and report whether they changed anything. ``PassManager`` runs a list of passes
repeatedly until a whole round changes nothing (or ``steps`` rounds ran), verifying the graph
after each pass when asked, and names the pass that broke an invariant and the passes that ran
before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ir.errors import GraphcapError
from ir.graph import Graph


@dataclass(frozen=True)
class PassResult:
    """What a pass returns: the graph (the same object for in-place passes) and whether it
    changed."""

    graph: Graph
    changed: bool


class PassError(GraphcapError, RuntimeError):
    """A pass raised, or left a graph that does not verify."""


class Pass:
    """Base class of graph passes.

    Subclasses set ``name`` and implement :meth:`call`. ``in_place`` passes modify the graph
    they are given and return it.
    """

    name: str = "pass"
    in_place: bool = True

    def call(self, graph: Graph) -> PassResult:
        """Run the pass once over ``graph``."""
        raise NotImplementedError

    def __call__(self, graph: Graph) -> PassResult:
        return self.call(graph)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class PassManager:
    """Run ``passes`` in order, round after round, until none changes the graph.

    Args:
        passes: the passes, run in this order in each round.
        steps: the most rounds to run.
        verify: run ``graph.verify()`` after every pass.
    """

    def __init__(self, passes: Sequence[Pass], steps: int = 8, verify: bool = True) -> None:
        self.passes = list(passes)
        self.steps = steps
        self.verify = verify

    def __call__(self, graph: Graph) -> PassResult:
        """Run the passes on ``graph`` (in place) and say whether anything changed.

        Raises:
            PassError: a pass raised or broke an invariant; the message names it and the
                passes that ran before it.
        """
        ran: list[str] = []
        changed_any = False
        for _ in range(self.steps):
            changed = False
            for p in self.passes:
                try:
                    result = p.call(graph)
                except GraphcapError as e:
                    raise PassError(_blame(p, ran, f"raised {type(e).__name__}: {e}")) from e
                graph = result.graph
                ran.append(p.name)
                if self.verify:
                    try:
                        graph.verify()
                    except GraphcapError as e:
                        raise PassError(_blame(p, ran[:-1], f"broke an invariant: {e}")) from e
                changed |= result.changed
            changed_any |= changed
            if not changed:
                break
        return PassResult(graph, changed_any)


def _blame(p: Pass, before: list[str], what: str) -> str:
    tail = ", ".join(before[-6:]) or "none"
    return f"pass {p.name!r} {what} (passes run before it, latest last: {tail})"
