"""The pass protocol and the pass manager.

A pass is a class ``XxxPass`` with ``name`` and ``call(graph) -> PassResult``. Passes here
rewrite the graph in place (``in_place = True``) through ``Graph``'s methods, so use lists stay
right, and report whether they changed anything. ``PassManager`` runs a list of passes
repeatedly until a whole round changes nothing (or ``steps`` rounds ran) and verifies the
result once; with per-pass verification on (``verify=True``, or the environment variable
``GRAPHCAP_VERIFY_PASSES=1``, which the test suite sets) it verifies after every pass instead
and names the pass that broke an invariant and the passes that ran before it.

The helpers at the end are what several passes share: which nodes are deterministic,
replacing a value while graph outputs keep their names, placing a new node before another,
removing a node whose outputs went unused, comparing types, and re-inferring types.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ir.errors import GraphcapError
from ir.graph import Graph, Node, Value
from ir.ops.registry import OpDef
from ir.symbolic import infer_node
from ir.types import TensorType


@dataclass(frozen=True)
class PassResult:
    """What a pass returns.

    Attributes:
        graph: the resulting graph (the same object for in-place passes).
        changed: whether the pass changed anything.
    """

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
        """Run the pass once over ``graph`` (same as :meth:`call`)."""
        return self.call(graph)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


VERIFY_PASSES_ENV = "GRAPHCAP_VERIFY_PASSES"


def verify_each_pass() -> bool:
    """Whether per-pass verification is asked for: ``GRAPHCAP_VERIFY_PASSES`` set, not ``0``."""
    return os.environ.get(VERIFY_PASSES_ENV, "") not in ("", "0")


class PassManager:
    """Run ``passes`` in order, round after round, until none changes the graph.

    Args:
        passes: the passes, run in this order in each round.
        steps: the most rounds to run.
        verify: True: ``graph.verify()`` after every pass (a failure names the pass);
            None (default): after every pass when ``GRAPHCAP_VERIFY_PASSES=1``, else once,
            at the end; False: never (the caller verifies).
    """

    def __init__(self, passes: Sequence[Pass], steps: int = 8, verify: bool | None = None):
        self.passes = list(passes)
        self.steps = steps
        self.verify = verify

    def __call__(self, graph: Graph) -> PassResult:
        """Run the passes on ``graph`` (in place) and say whether anything changed.

        Raises:
            PassError: a pass raised or broke an invariant; with per-pass verification
                the message names the pass and the passes that ran before it, otherwise it
                names the passes that ran.
        """
        each = verify_each_pass() if self.verify is None else self.verify
        ran: list[str] = []
        changed_any = False
        for _ in range(self.steps):
            changed = False
            for p in self.passes:
                try:
                    result = p.call(graph)
                except Exception as e:  # a pass's own bug (KeyError...) is blamed on it too
                    raise PassError(_blame(p, ran, f"raised {type(e).__name__}: {e}")) from e
                graph = result.graph
                ran.append(p.name)
                if each:
                    try:
                        graph.verify()
                    except GraphcapError as e:
                        raise PassError(_blame(p, ran[:-1], f"broke an invariant: {e}")) from e
                changed |= result.changed
            changed_any |= changed
            if not changed:
                break
        if self.verify is None and not each:
            verify_result(graph, ran)
        return PassResult(graph, changed_any)


def verify_result(graph: Graph, ran: Sequence[str]) -> None:
    """Verify the graph passes ``ran`` left (the check run once when not after every pass).

    Raises:
        PassError: it does not verify; the message names the passes and how to find the one
            that broke it.
    """
    try:
        graph.verify()
    except GraphcapError as e:
        names = ", ".join(dict.fromkeys(ran)) or "none"
        raise PassError(
            f"the graph does not verify after passes {names}: {e}; rerun with "
            f"{VERIFY_PASSES_ENV}=1 (or verify=True) to name the pass that broke it"
        ) from e


def _blame(p: Pass, before: list[str], what: str) -> str:
    tail = ", ".join(before[-6:]) or "none"
    return f"pass {p.name!r} {what} (passes run before it, latest last: {tail})"


# ------------------------------------------------------------ helpers passes share


def subgraphs(node: Node) -> list[Graph]:
    """The graphs held in ``node``'s attributes (a ``Scan`` body, ``If`` branches)."""
    found: list[Graph] = []
    for value in node.attrs.values():
        items = value if isinstance(value, list | tuple) else [value]
        found += [g for g in items if isinstance(g, Graph)]
    return found


def is_deterministic(node: Node) -> bool:
    """Whether ``node`` computes the same outputs every time from the same inputs.

    Random ops (``OpDef.random``: ``Dropout``) are not, and neither is a node whose
    subgraph holds one. Passes never fold or merge those.
    """
    if node.op.random:
        return False
    return all(is_deterministic(n) for g in subgraphs(node) for n in g.nodes)


def replace_value(graph: Graph, old: Value, new: Value) -> bool:
    """Make every use of ``old`` use ``new``, keeping graph outputs' names.

    When ``old`` is a graph output, ``new`` takes over its name, which works only when
    ``new`` is a node output that is not a graph output itself; otherwise (``new`` is a graph
    input, an initializer or another output) nothing changes and the result is False.
    """
    if old is new:
        return False
    if old in graph.outputs:
        if new.producer is None or new in graph.outputs:
            return False
        name = old.name
        graph.rename(old, graph.fresh_name(name))
        graph.rename(new, name)
    graph.replace_all_uses_with(old, new)
    return True


def emit_before(
    graph: Graph, anchor: Node, op: OpDef, inputs: Sequence[Any], attrs: Mapping[str, Any]
) -> tuple[Value, ...]:
    """Apply ``op`` as a new node placed just before ``anchor`` (with its source location)."""
    with graph.inserting_before(anchor):
        return graph.apply(op, inputs, attrs, meta=anchor.meta)


def remove_if_dead(graph: Graph, node: Node) -> bool:
    """Remove ``node`` when none of its outputs is used, say whether it was removed.

    What only that node read goes with it: producers left without uses, transitively, and
    initializers left without uses, so each pass leaves no debris behind.
    """
    removed = False
    work = [node]
    while work:
        n = work.pop()
        if n not in graph.nodes or any(v.uses or v in graph.outputs for v in n.outputs):
            continue
        graph.remove(n)
        removed = True
        for x in n.inputs:
            if x is None or x.uses or x in graph.outputs:
                continue
            if x.producer is not None:
                work.append(x.producer)
            elif x.name in graph.initializers:
                graph.remove_initializer(x.name)
    return removed


def same_type(a: Value, b: Value) -> bool:
    """Same dtype and shape, every dim known (an int, or a symbol: one size per run)."""
    shape = a.type.shape
    return a.type == b.type and shape is not None and all(d is not None for d in shape)


def refine_types(graph: Graph) -> None:
    """Adopt the registry's types and symbolic values where they became more precise.

    After a pass turned values into constants, shape rules that read constants may know
    more (a ``Reshape`` target, an ``Expand`` shape); stored types must then follow, or
    ``verify`` would find them less precise than the rule.
    """
    for node in graph.nodes:
        try:
            types, syms = infer_node(node)
        except GraphcapError:  # a rule that rejects the constants: the runtime will too
            continue
        for v, t, sym in zip(node.outputs, types, syms, strict=True):
            if t != v.type and _refines(t, v.type):
                v.type = t
            if v.sym is None and sym is not None:
                v.sym = sym


def _refines(new: TensorType, old: TensorType) -> bool:
    if new.dtype != old.dtype or new.shape is None:
        return False
    if old.shape is None:
        return True
    return len(new.shape) == len(old.shape) and all(
        a is None or a == b for a, b in zip(old.shape, new.shape, strict=True)
    )
