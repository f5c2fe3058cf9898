"""Patterns for rewrite rules, written as formulas with the registry's own ``op.X``.

Pattern values implement the registry's ``__graphcap_bind__`` hook, as graph ``Value``s do,
so applying ops to them builds a pattern tree instead of a node::

    a, b, c = Var("a"), Var("b"), Var("c")
    linear = op.Add(op.MatMul(a, b), c)  # the tree Add(MatMul(a, b), c)

A rule's pattern and its rewrite are then the same kind of formula: the rewrite applies
``op.X`` to the values the match bound and so emits nodes. ``match(pattern, value)`` yields
every way the graph computing ``value`` fits the pattern, as a ``Match``.

Matching rules:

- ``Var(name)`` matches any value (or an absent optional input, bound as None); a name met
  again must be the very same value.
- ``op.X(...)`` matches output 0 of an ``X`` node whose inputs match, position by position
  (inputs the node lacks count as absent; the node may not have more). Attributes given in
  the pattern must equal the node's, defaults filled in. Commutative ops (``Add``, ``Mul``:
  ``OpDef.commutative``) match their two operands in either order.
- A number matches a one-element numeric constant within a relative 1e-4; ``Const(name)``
  matches any one-element numeric constant and binds it.
- ``Or(p, q, ...)`` matches what any alternative matches, in that order.
- ``p.named(name)`` matches what ``p`` matches and binds the value; met again, it must be the
  same value (so ``op.Mul(d, d)`` with ``d = p.named("d")`` is a square, not two copies).
- ``any_order(op.Mul(...))`` matches a product of the same factors in any order and
  association, read through single-use ``Mul`` nodes and ``Div`` by a non-zero constant
  (``/ c`` as ``* 1/c``); its constants multiply into one coefficient, which must equal the
  product of the pattern's numbers.

The nodes a match went through are in ``Match.nodes``; whether they may be fused away (used
only inside the pattern) is the rewriter's business (``ir.passes.rewriter``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from itertools import permutations
from typing import Any

import numpy as np

from ir.graph import Node, Value
from ir.ops.registry import OpDef

RTOL = 1e-4


class Match:
    """One way a value fits a pattern.

    Attributes:
        value: the matched value (the pattern's root).
        root: the node producing it.
        nodes: the nodes the pattern went through, root included, each once.
        inputs: the values ``Var``s bound: what the pattern reads from outside.
    """

    def __init__(self, value: Value, state: State) -> None:
        assert value.producer is not None
        self.value = value
        self.root: Node = value.producer
        self.nodes = list(dict.fromkeys(state.nodes))
        self._bound = dict(state.bound)
        found = (state.bound[name] for name in state.variables)
        self.inputs = [v for v in found if v is not None]

    def __getitem__(self, name: str) -> Any:
        """The value bound to ``name`` (None for an absent optional input)."""
        return self._bound[name]

    def __contains__(self, name: str) -> bool:
        return name in self._bound

    def get(self, name: str) -> Any:
        """The value bound to ``name``, or None when the match did not bind it."""
        return self._bound.get(name)


class State:
    """What matching has bound and gone through so far.

    Each step makes a new state, so backtracking is free. A custom ``Pattern`` reads
    ``bound`` and extends a state with ``bind`` and ``add``.
    """

    __slots__ = ("bound", "nodes", "variables")

    def __init__(
        self, bound: dict[str, Any], nodes: tuple[Node, ...], variables: tuple[str, ...]
    ) -> None:
        self.bound = bound
        self.nodes = nodes
        self.variables = variables

    def bind(self, name: str, value: Any, variable: bool = False) -> State:
        """This state with ``name`` bound to ``value`` (by a ``Var`` when ``variable``)."""
        names = (*self.variables, name) if variable else self.variables
        return State({**self.bound, name: value}, self.nodes, names)

    def add(self, *nodes: Node) -> State:
        """This state having gone through ``nodes`` too."""
        return State(self.bound, self.nodes + nodes, self.variables)


class Pattern:
    """A pattern value; applying a registry op to it makes a bigger pattern."""

    def fits(self, value: Value | None, state: State) -> Iterator[State]:
        """Every extension of ``state`` under which ``value`` fits this pattern."""
        raise NotImplementedError

    def root_ops(self) -> frozenset[tuple[str, str]] | None:
        """The ops (registry keys) a value it matches can be produced by; None: any."""
        return None

    def named(self, name: str) -> Pattern:
        """This pattern, binding the matched value to ``name``."""
        return _Named(name, self)

    @classmethod
    def __graphcap_bind__(cls, op: OpDef, inputs: Sequence[Any], attrs: Mapping[str, Any]) -> Any:
        """The registry's hook: ``op.X(pattern, ...)`` makes an op pattern."""
        if op.num_outputs != 1:
            raise TypeError(f"{op.op_type} has several outputs; patterns take one-output ops")
        return OpPattern(op, [_as_pattern(x) for x in inputs], attrs)


class Var(Pattern):
    """Any value, bound to ``name``; the same name twice means the same value."""

    def __init__(self, name: str) -> None:
        self.name = name

    def fits(self, value: Value | None, state: State) -> Iterator[State]:
        """See ``Pattern.fits``."""
        if self.name not in state.bound:
            yield state.bind(self.name, value, variable=True)
        elif state.bound[self.name] is value:
            yield state

    def __repr__(self) -> str:
        return self.name


class Const(Pattern):
    """A one-element numeric constant: equal to ``value`` (within ``RTOL``), or any, named."""

    def __init__(self, name: str | None = None, value: float | None = None) -> None:
        self.name = name
        self.value = value

    def fits(self, value: Value | None, state: State) -> Iterator[State]:
        """See ``Pattern.fits``."""
        number = scalar_of(value)
        if number is None or (self.value is not None and not close(number, self.value)):
            return
        yield state if self.name is None else state.bind(self.name, value)

    def __repr__(self) -> str:
        return f"{self.value:g}" if self.name is None else f"Const({self.name})"


class _Absent(Pattern):
    """An optional input that must be left out (``None`` in a pattern formula)."""

    def fits(self, value: Value | None, state: State) -> Iterator[State]:
        """See ``Pattern.fits``."""
        if value is None:
            yield state


class OpPattern(Pattern):
    """Output 0 of an ``op`` node whose inputs fit ``inputs`` and whose attributes ``attrs``."""

    def __init__(self, op: OpDef, inputs: Sequence[Pattern], attrs: Mapping[str, Any]) -> None:
        self.op = op
        self.inputs = tuple(inputs)
        self.attrs = dict(attrs)

    def root_ops(self) -> frozenset[tuple[str, str]]:
        """See ``Pattern.root_ops``."""
        return frozenset({self.op.key})

    def fits(self, value: Value | None, state: State) -> Iterator[State]:
        """See ``Pattern.fits``."""
        node = None if value is None else value.producer
        if node is None or node.op is not self.op or value is None or value.index != 0:
            return
        given = node.inputs
        if len(given) > len(self.inputs) and any(x is not None for x in given[len(self.inputs) :]):
            return
        if self.attrs and any(node.full_attrs.get(k) != v for k, v in self.attrs.items()):
            return
        inputs = (*given, *[None] * (len(self.inputs) - len(given)))
        state = state.add(node)
        orders = [self.inputs]
        if self.op.commutative and len(self.inputs) == 2:
            orders.append(self.inputs[::-1])
        for patterns in orders:
            yield from _fit_all(patterns, inputs, state)

    def __repr__(self) -> str:
        return f"{self.op.op_type}({', '.join(map(repr, self.inputs))})"


class Or(Pattern):
    """Any of ``alternatives``, tried in order."""

    def __init__(self, *alternatives: Any) -> None:
        self.alternatives = [_as_pattern(p) for p in alternatives]

    def root_ops(self) -> frozenset[tuple[str, str]] | None:
        """See ``Pattern.root_ops``."""
        ops: frozenset[tuple[str, str]] = frozenset()
        for p in self.alternatives:
            more = p.root_ops()
            if more is None:
                return None
            ops |= more
        return ops

    def fits(self, value: Value | None, state: State) -> Iterator[State]:
        """See ``Pattern.fits``."""
        for p in self.alternatives:
            yield from p.fits(value, state)


class _Named(Pattern):
    def __init__(self, name: str, inner: Pattern) -> None:
        self.name = name
        self.inner = inner

    def root_ops(self) -> frozenset[tuple[str, str]] | None:
        return self.inner.root_ops()

    def fits(self, value: Value | None, state: State) -> Iterator[State]:
        """See ``Pattern.fits``."""
        if self.name in state.bound:
            if state.bound[self.name] is value:
                yield state
            return
        for found in self.inner.fits(value, state):
            yield found.bind(self.name, value)


class _Product(Pattern):
    """A product of ``factors`` in any order and association (see ``any_order``)."""

    def __init__(self, factors: Sequence[Pattern]) -> None:
        numbers = [p.value for p in factors if isinstance(p, Const) and _is_number(p)]
        self.coefficient = math.prod(v for v in numbers if v is not None)
        self.factors = [p for p in factors if not _is_number(p)]

    def root_ops(self) -> frozenset[tuple[str, str]]:
        return frozenset({("", "Mul"), ("", "Div")})

    def fits(self, value: Value | None, state: State) -> Iterator[State]:
        """See ``Pattern.fits``."""
        if value is None:
            return
        nodes: list[Node] = []
        coefficient, leaves = _product(value, nodes, top=True)
        if len(leaves) != len(self.factors) or not close(coefficient, self.coefficient):
            return
        state = state.add(*nodes)
        for order in permutations(leaves):
            yield from _fit_all(self.factors, order, state)


def any_order(product: Pattern) -> Pattern:
    """``product``, an ``op.Mul`` formula, matched in any order and association of its factors.

    Raises:
        TypeError: ``product`` is not a product.
    """
    if not (isinstance(product, OpPattern) and product.op.key == ("", "Mul")):
        raise TypeError(f"any_order takes an op.Mul(...) pattern, not {product!r}")
    return _Product(_factors(product))


def match(pattern: Pattern, value: Value) -> Iterator[Match]:
    """Every way the graph computing ``value`` fits ``pattern``."""
    for state in pattern.fits(value, State({}, (), ())):
        yield Match(value, state)


# ------------------------------------------------------------ helpers checks share


def scalar_of(value: Value | None) -> float | None:
    """The number a one-element numeric constant holds, else None."""
    if value is None or value.const is None or value.const.size != 1:
        return None
    if not np.issubdtype(value.const.dtype, np.number):
        return None
    return float(value.const.reshape(-1)[0])


def close(value: float | None, want: float, rtol: float = RTOL) -> bool:
    """``value`` is within ``rtol`` (relative) of ``want``."""
    return value is not None and math.isclose(value, want, rel_tol=rtol, abs_tol=0.0)


def same_dims(a: Sequence[object], b: Sequence[object]) -> bool:
    """Two shapes are known to be equal (equal ints, or equal symbol names)."""
    return len(a) == len(b) and all(x is not None and x == y for x, y in zip(a, b, strict=True))


def _as_pattern(x: Any) -> Pattern:
    if isinstance(x, Pattern):
        return x
    if x is None:
        return _Absent()
    if isinstance(x, int | float | np.number) or (isinstance(x, np.ndarray) and x.size == 1):
        return Const(value=float(np.asarray(x).reshape(-1)[0]))
    raise TypeError(f"a pattern input must be a pattern, a number or None, not {x!r}")


def _is_number(p: Pattern) -> bool:
    return isinstance(p, Const) and p.name is None and p.value is not None


def _factors(p: Pattern) -> list[Pattern]:
    if isinstance(p, OpPattern) and p.op.key == ("", "Mul") and not p.attrs:
        return [f for x in p.inputs for f in _factors(x)]
    return [p]


def _fit_all(
    patterns: Sequence[Pattern], values: Sequence[Value | None], state: State
) -> Iterator[State]:
    if not patterns:
        yield state
        return
    for found in patterns[0].fits(values[0], state):
        yield from _fit_all(patterns[1:], values[1:], found)


def _product(value: Value, nodes: list[Node], top: bool) -> tuple[float, list[Value]]:
    """``value`` as a coefficient times leaves, through single-use Mul and Div by a constant."""
    node = value.producer
    is_product = node is not None and node.op.key in (("", "Mul"), ("", "Div"))
    if node is None or not is_product or not (top or _single_use(value)):
        number = scalar_of(value)
        return (number, []) if number is not None else (1.0, [value])
    a, b = node.inputs[0], node.inputs[1]
    assert a is not None and b is not None
    if node.op.op_type == "Div":
        divisor = scalar_of(b)
        if not divisor:  # not a constant, or zero
            return 1.0, [value]
        ca, la = _product(a, nodes, top=False)
        nodes.append(node)
        return ca / divisor, la
    ca, la = _product(a, nodes, top=False)
    cb, lb = _product(b, nodes, top=False)
    nodes.append(node)
    return ca * cb, la + lb


def _single_use(value: Value) -> bool:
    return len(value.uses) == 1 and value not in value.graph.outputs
