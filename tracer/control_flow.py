"""``cond`` and ``while_loop``: data-dependent control flow that runs eagerly and traces.

Both take ``torch.cond`` / ``torch._higher_order_ops.while_loop``'s arguments. Eagerly they
run now: ``cond`` calls the branch ``pred`` picks, ``while_loop`` iterates in Python, so
eager autograd differentiates what ran (the chosen branch; the unrolled loop).

Under ``tracer.trace`` each function is traced into a subgraph by a :class:`SubTracer`:
tensors the function reads from outside (its operands, module parameters, values computed
before) become captures of the subgraph, which the ``If`` / ``Loop`` node receives as its
last inputs (see ``ir.graph``). ``cond`` traces both branches (each runs once on the
example values) and emits ``If``; the result is the taken branch's. ``while_loop`` traces
``body_fn`` followed by ``cond_fn`` into a ``Loop`` body whose carried values are the loop
state, and runs the loop eagerly for the example's result. A carried dimension that changes
from one iteration to the next (a sequence that grows) is found by comparing the body's
output types with its inputs' and made symbolic in the body, which is traced again.

Like ``torch.cond``, the functions must not mutate their inputs or outer tensors in place
(a trace runs both branches and the first loop iteration more than once).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ir.graph import Graph, Value
from ir.ops.registry import get, op
from tracer import _state
from tracer._symint import TraceError
from tracer._tensor_base import TensorBase
from tracer.trace import Tracer, record_decision, user_source

__all__ = ["cond", "while_loop"]

_MAX_RETRACES = 4


# ---------------------------------------------------------------- nested tracing


class SubTracer(Tracer):
    """Traces a function into a subgraph of the graph ``parent`` is building.

    A tensor the function did not make is looked up in the parent (which may capture it
    from its own parent in turn) and captured: the subgraph gets a placeholder, and
    ``captured`` remembers the parent's value, in first-use order. A tensor nobody has seen
    is a weight (a parameter, or one that requires grad: an initializer of the outermost
    graph, so ``ir.grad`` and ``compile`` find it by name) or else a constant of the subgraph.
    """

    def __init__(self, parent: Tracer, graph: Graph) -> None:
        super().__init__(graph, parent.names)
        self.parent = parent
        self.baked = parent.baked  # decisions go to the outermost graph's list
        self._seen = parent._seen
        self.captured: dict[int, tuple[Value, Value]] = {}  # id(outer) -> (outer, capture)

    def value_of(self, x: Any) -> Value | None:
        """The subgraph value for an op input: its own, a capture, or a new constant."""
        if (
            isinstance(x, TensorBase)
            and id(x) not in self.values
            and (id(x) in self.names or x._requires_grad or _knows(self.parent, x))
        ):
            outer = self.parent.value_of(x)
            assert outer is not None
            self.values[id(x)] = (x, self.capture(outer, self.parent.is_dependent(x)))
        return super().value_of(x)

    def capture(self, outer: Value, dependent: bool) -> Value:
        """The placeholder standing for the parent's ``outer`` (made on first use)."""
        entry = self.captured.get(id(outer))
        if entry is not None:
            return entry[1]
        inner = self.graph.add_capture(
            self.graph.fresh_name(outer.name), outer.dtype, outer.type.shape
        )
        inner.sym = outer.sym
        self.captured[id(outer)] = (outer, inner)
        if dependent:
            self.dependent.add(inner.name)
        return inner


def _knows(tracer: Tracer, x: TensorBase) -> bool:
    """Whether ``tracer`` (or one around it) has a graph value for ``x``."""
    if id(x) in tracer.values:
        return True
    return isinstance(tracer, SubTracer) and _knows(tracer.parent, x)


def _align(subs: Sequence[SubTracer]) -> list[Value]:
    """Give every subgraph the same captures, in one order; the parent values to pass."""
    union: dict[int, Value] = {}
    for sub in subs:
        for key, (outer, _) in sub.captured.items():
            union.setdefault(key, outer)
    for sub in subs:
        for key, outer in union.items():
            if key not in sub.captured:
                sub.capture(outer, dependent=False)
        sub.graph.captures = [sub.captured[key][1] for key in union]
    return list(union.values())


# ---------------------------------------------------------------- pytrees (tensors only)


def _flatten(tree: Any, what: str) -> tuple[list[TensorBase], Any]:
    """Tensors of a nested tuple/list/dict, and the structure to rebuild it."""
    if isinstance(tree, TensorBase):
        return [tree], None
    if isinstance(tree, tuple | list):
        parts = [_flatten(x, what) for x in tree]
        return [t for p in parts for t in p[0]], (type(tree), [p[1] for p in parts])
    if isinstance(tree, dict):
        parts = [_flatten(tree[k], what) for k in tree]
        return [t for p in parts for t in p[0]], (dict, list(tree), [p[1] for p in parts])
    raise TypeError(f"{what} must return tensors (in tuples, lists or dicts), got {type(tree)}")


def _unflatten(leaves: Sequence[Any], spec: Any) -> Any:
    it = iter(leaves)

    def build(s: Any) -> Any:
        if s is None:
            return next(it)
        if s[0] is dict:
            return {k: build(c) for k, c in zip(s[1], s[2], strict=True)}
        return s[0](build(c) for c in s[1])

    return build(spec)


# ---------------------------------------------------------------- helpers


def _fresh(t: TensorBase) -> TensorBase:
    """A new tensor with ``t``'s value (and history), unknown to any tracer."""
    saved, _state.tracer = _state.tracer, None
    try:
        return op.Identity(t)
    finally:
        _state.tracer = saved


def _eagerly(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` with no trace active (the example's values, for the traced result)."""
    saved, _state.tracer = _state.tracer, None
    try:
        return fn(*args)
    finally:
        _state.tracer = saved


def _run_traced(sub: SubTracer, fn: Callable[..., Any], args: Sequence[Any]) -> Any:
    saved, _state.tracer = _state.tracer, sub
    try:
        return fn(*args)
    finally:
        _state.tracer = saved


def _output(sub: SubTracer, t: TensorBase, name: str) -> None:
    value = sub.value_of(t)
    assert value is not None
    sub.graph.add_output(value, sub.graph.fresh_name(name))


def _truth(pred: Any, what: str) -> bool:
    if isinstance(pred, TensorBase):
        if pred._data.size != 1:
            raise ValueError(f"{what} must hold one element, got shape {list(pred._data.shape)}")
        return bool(pred._data.reshape(-1)[0])
    return bool(pred)


def _pred_value(tracer: Tracer, pred: TensorBase, what: str) -> Value:
    if pred._data.dtype != np.bool_ or pred._data.size != 1:
        raise TypeError(
            f"{what} must be a bool tensor of one element (or a Python bool), got "
            f"{pred._data.dtype}{list(pred._data.shape)}; compare it, e.g. (x.sum() > 0)"
        )
    value = tracer.value_of(pred)
    assert value is not None
    return value


def _bind(tracer: Tracer, outs: Sequence[Value], results: Sequence[TensorBase]) -> list[Any]:
    """Fresh tensors holding ``results``' values, standing for ``outs`` in the graph."""
    fresh = []
    for v, t in zip(outs, results, strict=True):
        f = _fresh(t)
        tracer.values[id(f)] = (f, v)
        tracer.dependent.add(v.name)
        fresh.append(f)
    return fresh


# ---------------------------------------------------------------- cond


def cond(
    pred: Any,
    true_fn: Callable[..., Any],
    false_fn: Callable[..., Any],
    operands: Sequence[Any] = (),
) -> Any:
    """``true_fn(*operands)`` if ``pred`` else ``false_fn(*operands)``; traces to ONNX ``If``.

    Args:
        pred: a bool tensor of one element, or a Python bool (then only the chosen branch
            runs, in a trace too, as a Python decision recorded in the graph's metadata).
        true_fn: a function of the operands returning tensors (a tensor or nested tuples,
            lists and dicts of them). It may read any other tensor (module parameters...).
        false_fn: the same, returning the same structure and dtypes (shapes may differ).
        operands: the tensors passed to the branch.

    Returns:
        The chosen branch's result. Eagerly it is what the branch returned (autograd flows
        through it); under ``tracer.trace`` both branches are traced, the graph gets an
        ``If`` node, and the result holds the taken branch's values.

    Raises:
        TypeError: ``pred`` is not boolean, or the branches' results differ in structure
            or dtype.
    """
    operands = tuple(operands)
    tracer = _state.tracer
    if tracer is None or not isinstance(pred, TensorBase):
        taken = _truth(pred, "cond's pred")
        if tracer is not None:
            record_decision("cond", "tracer.cond on a Python bool", taken)
        return (true_fn if taken else false_fn)(*operands)
    pred_value = _pred_value(tracer, pred, "cond's pred")
    subs, results, specs = [], [], []
    for fn, name in ((true_fn, "then_branch"), (false_fn, "else_branch")):
        sub = SubTracer(tracer, Graph(tracer.graph.fresh_name(name)))
        tree = _run_traced(sub, fn, operands)
        leaves, spec = _flatten(tree, f"cond's {name}")
        for i, t in enumerate(leaves):
            _output(sub, t, f"out{i}")
        subs.append(sub)
        results.append(leaves)
        specs.append(spec)
    _check_branches(results, specs)
    outer = _align(subs)
    source = user_source()
    outs = tracer.graph.apply(
        get("If"),
        [pred_value, *outer],
        {"then_branch": subs[0].graph, "else_branch": subs[1].graph},
        meta={"source": source} if source else None,
    )
    chosen = results[0] if _truth(pred, "cond's pred") else results[1]
    return _unflatten(_bind(tracer, outs, chosen), specs[0])


def _check_branches(results: list[list[TensorBase]], specs: list[Any]) -> None:
    if specs[0] != specs[1]:
        raise TypeError(
            "cond: true_fn and false_fn must return the same structure of tensors; they "
            f"returned {len(results[0])} and {len(results[1])} tensor(s) as {specs[0]} and "
            f"{specs[1]}"
        )
    for i, (a, b) in enumerate(zip(*results, strict=True)):
        if a._data.dtype != b._data.dtype:
            raise TypeError(
                f"cond: output {i} is {a._data.dtype} in true_fn and {b._data.dtype} in "
                "false_fn; the branches must agree on dtypes"
            )


# ---------------------------------------------------------------- while_loop


def while_loop(
    cond_fn: Callable[..., Any],
    body_fn: Callable[..., Any],
    carried_inputs: Sequence[Any],
) -> tuple[Any, ...]:
    """Run ``carried = body_fn(*carried)`` while ``cond_fn(*carried)``; traces to ONNX ``Loop``.

    Args:
        cond_fn: carried values -> a bool tensor of one element (or a Python bool).
        body_fn: carried values -> the next carried values (a tuple of as many tensors, of
            the same dtypes and ranks; sizes may change, e.g. a sequence that grows).
        carried_inputs: the initial carried values (tensors; Python numbers become 0-d).

    Returns:
        The final carried values, as a tuple. Eagerly the loop runs in Python (autograd
        differentiates the unrolled computation); under ``tracer.trace`` the graph gets a
        ``Loop`` node whose body is ``body_fn`` then ``cond_fn``, and the result holds the
        values the loop reaches from the example.

    Raises:
        TypeError: a carried value is not a tensor, or ``body_fn`` returns another number
            of values, or changes a dtype or a rank.
        TraceError: a carried dimension keeps changing shape after retracing.
    """
    from tracer.tensor import tensor

    carried = tuple(x if isinstance(x, TensorBase) else tensor(x) for x in carried_inputs)
    tracer = _state.tracer
    if tracer is None:
        return _iterate(cond_fn, body_fn, carried)
    first = cond_fn(*carried)
    if not isinstance(first, TensorBase):
        record_decision("while_loop", "cond_fn returned a Python bool", bool(first))
        if not first:
            return carried
        first = tensor(True)
    keep = _pred_value(tracer, first, "while_loop's cond_fn result")
    outer_values = [tracer.value_of(t) for t in carried]
    sub = _trace_body(tracer, cond_fn, body_fn, carried, outer_values)
    captured = _align([sub])
    source = user_source()
    outs = tracer.graph.apply(
        get("Loop"),
        [None, keep, *outer_values, *captured],
        {"body": sub.graph},
        meta={"source": source} if source else None,
    )
    final = _eagerly(_iterate, cond_fn, body_fn, carried)
    return tuple(_bind(tracer, outs, final))


def _iterate(
    cond_fn: Callable[..., Any], body_fn: Callable[..., Any], carried: tuple[Any, ...]
) -> tuple[Any, ...]:
    while _truth(cond_fn(*carried), "while_loop's cond_fn result"):
        out = body_fn(*carried)
        out = out if isinstance(out, tuple | list) else (out,)
        if len(out) != len(carried):
            raise TypeError(
                f"while_loop: body_fn returned {len(out)} value(s) for {len(carried)} carried"
            )
        carried = tuple(out)
    return carried


def _trace_body(
    tracer: Tracer,
    cond_fn: Callable[..., Any],
    body_fn: Callable[..., Any],
    carried: tuple[TensorBase, ...],
    outer: list[Value | None],
) -> SubTracer:
    """The Loop body, traced until every carried dimension that changes is symbolic."""
    free: list[set[int]] = [set() for _ in carried]
    for _ in range(_MAX_RETRACES):
        sub, changed = _trace_body_once(tracer, cond_fn, body_fn, carried, outer, free)
        if not changed:
            return sub
        for i, axis in changed:
            free[i].add(axis)
    raise TraceError(
        f"while_loop at {user_source() or 'an unknown line'}: carried shapes kept changing "
        f"after {_MAX_RETRACES} traces of body_fn"
    )


def _trace_body_once(
    tracer: Tracer,
    cond_fn: Callable[..., Any],
    body_fn: Callable[..., Any],
    carried: tuple[TensorBase, ...],
    outer: list[Value | None],
    free: list[set[int]],
) -> tuple[SubTracer, list[tuple[int, int]]]:
    graph = Graph(tracer.graph.fresh_name("loop_body"))
    sub = SubTracer(tracer, graph)
    graph.add_input("iteration", np.int64, ())  # ONNX's; body_fn does not see it (as torch's)
    graph.add_input("condition", np.bool_, ())
    args = []
    for i, (t, v) in enumerate(zip(carried, outer, strict=True)):
        assert v is not None
        shape = v.type.shape or ()
        dims = [f"{graph.name}_{i}_{a}" if a in free[i] else d for a, d in enumerate(shape)]
        alias = _fresh(t)
        value = graph.add_input(f"carried_{i}", t._data.dtype, dims)
        sub.values[id(alias)] = (alias, value)
        if tracer.is_dependent(t):
            sub.dependent.add(value.name)
        args.append(alias)
    out = _run_traced(sub, body_fn, args)
    out = tuple(out) if isinstance(out, tuple | list) else (out,)
    if len(out) != len(carried):
        raise TypeError(
            f"while_loop: body_fn returned {len(out)} value(s) for {len(carried)} carried"
        )
    keep = _run_traced(sub, cond_fn, out)
    if not isinstance(keep, TensorBase):
        from tracer.tensor import tensor

        keep = tensor(bool(keep))  # a constant of the body
    _pred_value(sub, keep, "while_loop's cond_fn result")
    _output(sub, keep, "keep")
    changed = []
    for i, t in enumerate(out):
        _output(sub, t, f"carried_{i}_next")
        changed += _changes(i, graph.inputs[2 + i], graph.outputs[-1], free[i])
    return sub, changed


def _changes(i: int, before: Value, after: Value, free: set[int]) -> list[tuple[int, int]]:
    """Axes of carried value ``i`` whose size the body changes and that are not free yet."""
    if before.dtype != after.dtype or before.type.rank != after.type.rank:
        raise TypeError(
            f"while_loop: carried value {i} is {before.type} but body_fn returns {after.type}; "
            "its dtype and rank must stay the same"
        )
    a, b = before.type.shape or (), after.type.shape or ()
    return [(i, k) for k, (x, y) in enumerate(zip(a, b, strict=True)) if x != y and k not in free]
