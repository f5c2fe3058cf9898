"""Rewrite rules as pattern / check / rewrite triples, and the loop that applies them.

A ``RewriteRule`` holds a ``pattern`` (``ir.passes.pattern``: a formula of ``op.X`` over
pattern variables), a ``check`` that holds the side conditions a formula cannot say (dtypes,
shapes, constants within tolerance) and a ``rewrite`` that emits the replacement with
``op.X`` on the values the match bound. ``apply_rules`` applies rules until none matches:

- a sweep visits the nodes once, in graph order, and tries the rules whose pattern can end
  in that node's op; a match is taken only when its nodes other than the root are used only
  inside the match and are not graph outputs (fusing them leaves nothing without its
  input) and ``check`` holds; the first such match of the first such rule wins;
- a match grows down a chain of single uses: while the root's only reader is the root of
  a match that contains it, that larger match is taken instead (layer norm with its affine
  ``* gamma + beta`` rather than the bare norm);
- the rewrite runs under ``graph.inserting_before(root)``, so its nodes land where the
  pattern ended and take the root's source location; the root's uses (and graph output
  name) move to the rewrite's result, and the matched nodes left unused go, with constants
  only they read;
- sweeps repeat until one changes nothing (rewrites may make new matches), so each sweep is
  O(nodes) and there is no rescan after every rewrite.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from ir.errors import GraphInvariantError
from ir.graph import Graph, Node, Value
from ir.passes.pattern import Match, Pattern, match

_MAX_SWEEPS = 64


@dataclass(frozen=True)
class RewriteRule:
    """One fusion: what to find, when it may fire, what to put instead.

    Attributes:
        name: for error messages.
        pattern: the formula to find; its root is the value replaced.
        check: side conditions on a match (must not change the graph).
        rewrite: emits the replacement (``op.X`` on the match's values) and returns it.
    """

    name: str
    pattern: Pattern
    check: Callable[[Match], bool]
    rewrite: Callable[[Match], Value]

    def find(self, node: Node, containing: Node | None = None) -> Match | None:
        """The first match rooted at ``node``'s first output that may be rewritten.

        With ``containing``, only a match that goes through that node counts.
        """
        for m in match(self.pattern, node.outputs[0]):
            if containing is not None and containing not in m.nodes:
                continue
            if _private(m) and self.check(m):
                return m
        return None


def apply_rules(graph: Graph, rules: Sequence[RewriteRule]) -> bool:
    """Rewrite matches of ``rules`` until none is left; say whether there was any.

    Raises:
        GraphInvariantError: rewrites keep making matches (a rule whose rewrite matches its
            own pattern is a bug in the pass).
    """
    by_op: dict[tuple[str, str] | None, list[RewriteRule]] = {}
    for rule in rules:
        for key in rule.pattern.root_ops() or [None]:
            by_op.setdefault(key, []).append(rule)
    changed = False
    for _ in range(_MAX_SWEEPS):
        if not _sweep(graph, by_op):
            return changed
        changed = True
    names = [r.name for r in rules]
    raise GraphInvariantError(f"rewrite rules {names} do not reach a fixed point")


_ByOp = dict[tuple[str, str] | None, list[RewriteRule]]


def _sweep(graph: Graph, by_op: _ByOp) -> bool:
    changed = False
    for node in list(graph.nodes):  # a snapshot: new nodes wait for the next sweep
        if node not in graph.nodes:
            continue
        found = _first_match(node, by_op)
        if found is None:
            continue
        while (larger := _grown(found[1], by_op)) is not None:
            found = larger
        _replace(graph, *found)
        changed = True
    return changed


def _first_match(
    node: Node, by_op: _ByOp, containing: Node | None = None
) -> tuple[RewriteRule, Match] | None:
    if not node.outputs:
        return None
    for rule in [*by_op.get(node.op.key, []), *by_op.get(None, [])]:
        m = rule.find(node, containing)
        if m is not None:
            return rule, m
    return None


def _grown(m: Match, by_op: _ByOp) -> tuple[RewriteRule, Match] | None:
    """A match rooted at the only reader of ``m``'s root, containing ``m``'s root."""
    out = m.value
    if len(out.uses) != 1 or out in out.graph.outputs:
        return None
    return _first_match(out.uses[0][0], by_op, containing=m.root)


def _replace(graph: Graph, rule: RewriteRule, m: Match) -> None:
    """Emit ``rule``'s rewrite before the match's root, move uses and name over, clean up."""
    old, root = m.value, m.root
    with graph.inserting_before(root) as point:
        new = rule.rewrite(m)
    if new.producer not in point.nodes:
        raise GraphInvariantError(f"rule {rule.name}'s rewrite must return a new node's output")
    if "source" in root.meta:
        for n in point.nodes:
            n.meta.setdefault("source", root.meta["source"])
    graph.replace_all_uses_with(old, new)
    name = old.name
    graph.rename(old, graph.fresh_name(name))
    graph.rename(new, name)
    remove_unused(graph, m.nodes)


def remove_unused(graph: Graph, nodes: Iterable[Node]) -> None:
    """Remove those of ``nodes`` left unused (and what they leave unused among them).

    Constants that only the removed nodes read go too.
    """
    pending = [n for n in dict.fromkeys(nodes) if n in graph.nodes]
    while True:
        dead = [n for n in pending if not any(v.uses or v in graph.outputs for v in n.outputs)]
        if not dead:
            return
        for n in dead:
            graph.remove(n)
            for x in {id(x): x for x in n.inputs if x is not None}.values():
                if x.const is not None and not x.uses and x not in graph.outputs:
                    graph.remove_initializer(x.name)
        pending = [n for n in pending if n in graph.nodes]


def _private(m: Match) -> bool:
    """Whether the match's nodes but the root may go: their outputs are read only by them.

    An output that is a graph output, read by another node, or bound to one of the pattern's
    variables (an input of the rewrite) must stay, and so must its node.
    """
    members = {id(n) for n in m.nodes}
    kept = {id(v) for v in m.root.graph.outputs} | {id(v) for v in m.inputs}
    for n in m.nodes:
        if n is m.root:
            continue
        for v in n.outputs:
            if id(v) in kept or any(id(u) not in members for u, _ in v.uses):
                return False
    return True
