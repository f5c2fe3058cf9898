"""``trace``: run eager code once and capture what it did as an ``ir.Graph``.

While a trace is active, every op that ``apply`` runs is also lowered, as it runs, into a
graph node through ``Graph.apply`` (so types, symbolic dims included, come from the
registry's shape rules). Tensors the code did not receive as inputs (weights, buffers,
constants it built) become initializers. ``x.shape`` of a dynamic axis is a ``SymInt``.

What a trace cannot keep dynamic is either refused or written down:

* reading a value that depends on the inputs into Python (``bool(t)``, ``t.item()``,
  ``int(t)``, ``if t:``) raises ``TraceError`` naming the source line;
* turning a dynamic dimension into a Python int raises ``TraceError``, and so does a
  ``Reshape``/``Expand`` whose constant shape fixes a dynamic dimension;
* Python decisions that shaped the graph (branches on sizes, ``len()``, reads of static
  sizes, non-tensor arguments) go to ``graph.meta["baked"]`` with their source lines.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

import numpy as np

import ir
from ir.graph import Graph, Value
from ir.ops.registry import OpDef, op
from tracer import _state
from tracer._symint import SymInt, TraceError
from tracer._tensor_base import TensorBase

__all__ = ["TraceError", "trace"]

_PACKAGES = tuple(
    os.path.dirname(os.path.abspath(m.__file__ or "")) + os.sep for m in (sys.modules["tracer"], ir)
)
DynamicAxes = Mapping[str, Mapping[int, str] | Sequence[int]]


# ---------------------------------------------------------------- source locations


def _relative(filename: str) -> str:
    """``filename`` relative to the user's project (the working directory) or sys.path."""
    path = os.path.abspath(filename)
    here = os.getcwd() + os.sep
    if path.startswith(here):
        return path[len(here) :]
    for root in sorted((p for p in sys.path if p), key=len, reverse=True):
        root = os.path.abspath(root) + os.sep
        if path.startswith(root):
            return path[len(root) :]
    return os.path.basename(path)


def user_source() -> str | None:
    """``file:line`` of the innermost frame outside graphcap's own packages."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGES):
        frame = frame.f_back
    if frame is None:
        return None
    return f"{_relative(frame.f_code.co_filename)}:{frame.f_lineno}"


def record_decision(kind: str, what: str, result: Any) -> None:
    """Note a Python-level decision the active trace baked in (no-op outside a trace)."""
    tracer = _state.tracer
    if tracer is not None:
        tracer.decide(kind, what, result)


# ---------------------------------------------------------------- the tracer


class Tracer:
    """Lowers eager ops into ``graph`` as they run (installed as ``_state.tracer``)."""

    def __init__(self, graph: Graph, names: Mapping[int, str]) -> None:
        self.graph = graph
        self.names = dict(names)  # id(tensor) -> parameter/buffer name
        # id(tensor) -> (tensor, value); holding the tensor keeps its id from being reused.
        self.values: dict[int, tuple[TensorBase, Value]] = {}
        self.dependent: set[str] = set()  # values computed from graph inputs
        self.baked: list[dict[str, Any]] = []
        self._seen: set[tuple[str, str, str]] = set()
        self._shapes: dict[int, Any] = {}
        self.structure: tuple[str, list[Any]] = ("single", [])  # how the outputs were packed

    # ------------------------------------------------------------ values

    def add_input(self, t: TensorBase, name: str, dims: Mapping[int, str]) -> None:
        shape = [dims.get(i, d) for i, d in enumerate(t._data.shape)]
        value = self.graph.add_input(name, t._data.dtype, shape)
        self.values[id(t)] = (t, value)
        self.dependent.add(value.name)

    def value_of(self, x: Any) -> Value | None:
        """The graph value standing for an op input (a new initializer when unseen)."""
        if x is None:
            return None
        if isinstance(x, TensorBase):
            entry = self.values.get(id(x))
            if entry is not None:
                return entry[1]
            hint = self.names.get(id(x)) or ("param" if x._requires_grad else "const")
            # A snapshot: later in-place updates of the eager tensor must not change it.
            value = self.graph.add_initializer(self.graph.fresh_name(hint), x._data.copy())
            self.values[id(x)] = (x, value)
            return value
        return self.graph.constant(np.asarray(x))

    def alias(self, target: TensorBase, result: TensorBase) -> None:
        """After an in-place op, ``target`` holds ``result``'s value."""
        entry = self.values.get(id(result))
        if entry is not None:
            self.values[id(target)] = (target, entry[1])
            self._shapes.pop(id(target), None)

    def detach(self, result: TensorBase, source: TensorBase) -> None:
        """``result = source.detach()``: the same values, with the gradient cut kept.

        Any trace may be differentiated later (``ir.grad``, ``tracer.compile``) by inputs
        that did not require grad when it ran, so the cut is always kept, as an ``Identity``
        node marked ``meta["stop_gradient"]`` that ``ir.grad`` does not differentiate
        through (``ir.optimize`` removes it from graphs that are only run).
        """
        value = self.value_of(source)
        (out,) = self.graph.apply(ir.ops.get("Identity"), [value], {}, meta={"stop_gradient": True})
        self.values[id(result)] = (result, out)
        if value is not None and value.name in self.dependent:
            self.dependent.add(out.name)

    def is_dependent(self, t: TensorBase) -> bool:
        entry = self.values.get(id(t))
        return entry is not None and entry[1].name in self.dependent

    # ------------------------------------------------------------ ops

    def record(
        self, op: OpDef, inputs: Sequence[Any], attrs: Mapping[str, Any], outs: Sequence[TensorBase]
    ) -> None:
        """Lower one eager op application into a graph node."""
        values = [self.value_of(x) for x in inputs]
        source = user_source()
        outputs = self.graph.apply(op, values, attrs, meta={"source": source} if source else None)
        dependent = any(v is not None and v.name in self.dependent for v in values)
        for t, v in zip(outs, outputs, strict=True):
            self._check_type(t, v, op)
            self.values[id(t)] = (t, v)
            if dependent:
                self.dependent.add(v.name)
        if op.shape_input is not None:  # Reshape, Expand: a target shape for input 0
            _check_not_fixed(values[0], values[op.shape_input], outputs[0], op.op_type, source)

    def _check_type(self, t: TensorBase, v: Value, op: OpDef) -> None:
        shape = v.type.shape
        ok = v.dtype == t._data.dtype and shape is not None and len(shape) == t._data.ndim
        if ok and shape is not None:
            ok = all(
                not isinstance(d, int) or d == n for d, n in zip(shape, t._data.shape, strict=True)
            )
        if not ok:
            raise TraceError(
                f"{op.op_type}'s shape rule gives {v.type} but the eager result is "
                f"{t._data.dtype}{list(t._data.shape)}: a bug in the op's registry entry"
            )

    # ------------------------------------------------------------ shapes and decisions

    def shape_of(self, t: TensorBase) -> tuple[Any, ...]:
        """``t.shape`` as user code sees it: ints, and SymInts for dynamic dims."""
        entry = self.values.get(id(t))
        if entry is None or entry[1].type.shape is None:
            return t._data.shape
        cached = self._shapes.get(id(t))
        if cached is not None:
            return cached
        dims: list[Any] = []
        for axis, (d, n) in enumerate(zip(entry[1].type.shape, t._data.shape, strict=True)):
            if isinstance(d, int):
                dims.append(n)
            else:
                dims.append(SymInt(n, d or f"{entry[1].name}.shape[{axis}]", _size_of(t, axis)))
        shape = tuple(dims)
        self._shapes[id(t)] = shape
        return shape

    def decide(self, kind: str, what: str, result: Any) -> None:
        source = user_source() or "?"
        key = (kind, what, source)
        if key not in self._seen:
            self._seen.add(key)
            self.baked.append(
                {"kind": kind, "what": what, "result": _plain(result), "source": source}
            )


def _plain(value: Any) -> Any:
    return value if isinstance(value, bool | int | float | str | type(None)) else repr(value)


def _size_of(t: TensorBase, axis: int) -> Callable[[], Any]:
    def make() -> Any:
        shape = op.Shape(t, start=axis, end=axis + 1)
        return op.Squeeze(shape, np.asarray([0], dtype=np.int64))

    return make


def _check_not_fixed(
    x: Value | None, shape: Value | None, out: Value, op_type: str, source: str | None
) -> None:
    """Refuse a constant target shape that turns a dynamic dimension into a constant."""
    if x is None or shape is None or shape.const is None or x.type.shape is None:
        return
    symbols = [d for d in x.type.shape if isinstance(d, str)]
    if not symbols or out.type.shape is None:
        return
    if all(isinstance(d, int) for d in out.type.shape):
        raise TraceError(
            f"{op_type} at {source or 'an unknown line'} turns {x.type} into {out.type} with a "
            f"constant shape, fixing the dynamic dimension(s) {', '.join(symbols)}. Build the "
            "shape from x.shape (e.g. x.reshape(x.shape[0], -1)) or use -1 instead of the "
            "example's size."
        )


# ---------------------------------------------------------------- the entry point


def trace(
    fn: Callable[..., Any],
    example_inputs: Any,
    dynamic_axes: DynamicAxes | None = None,
    *,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> Graph:
    """Run ``fn`` on ``example_inputs`` eagerly and capture what it did as a graph.

    Args:
        fn: a function or module (any callable) of tensors.
        example_inputs: a tensor, a tuple of positional arguments, or a dict of keyword
            arguments. Non-tensor arguments are baked in (and listed in the metadata).
        dynamic_axes: per input name, ``{axis: symbol}`` (or a list of axes, named
            ``<input>_<axis>``): those sizes stay symbolic in the graph.
        input_names: names of the graph inputs (default: ``fn``'s parameter names).
        output_names: names of the graph outputs (default: ``output`` or ``output_<i>``,
            or the keys when ``fn`` returns a dict).

    Returns:
        A verified ``ir.Graph``; ``graph.meta["baked"]`` lists the Python decisions.

    Raises:
        TraceError: ``fn`` read an input-dependent value into Python, or fixed a dynamic
            dimension; the message names the source line.
    """
    graph, _ = capture(fn, example_inputs, dynamic_axes, input_names, output_names)
    return graph


def capture(
    fn: Callable[..., Any],
    example_inputs: Any,
    dynamic_axes: DynamicAxes | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> tuple[Graph, Tracer]:
    """:func:`trace`, also returning the tracer.

    The tracer's ``values`` map each tensor the code touched (by id) to its graph value:
    that is how ``compile`` finds the parameters among the initializers.
    """
    if _state.tracer is not None:
        raise TraceError("trace() was called while another trace is running")
    args, kwargs = _split_inputs(example_inputs)
    names = _input_names(fn, args, kwargs, input_names)
    graph = Graph(getattr(fn, "__name__", type(fn).__name__))
    tracer = Tracer(graph, _parameter_names(fn))
    axes = _normalise_axes(dynamic_axes or {}, names)
    for name, value in zip(names, [*args, *kwargs.values()], strict=True):
        if isinstance(value, TensorBase):
            tracer.add_input(value, name, axes.pop(name, {}))
        else:
            tracer.baked.append(
                {
                    "kind": "argument",
                    "what": name,
                    "result": _plain(value),
                    "source": "example_inputs",
                }
            )
    if axes:
        raise ValueError(f"dynamic_axes names {sorted(axes)}, which are not tensor inputs {names}")
    _state.tracer = tracer
    try:
        result = fn(*args, **kwargs)
    finally:
        _state.tracer = None
    _set_outputs(graph, tracer, result, output_names)
    graph.meta["baked"] = tracer.baked
    graph.verify()
    return graph, tracer


def _split_inputs(example_inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(example_inputs, Mapping):
        return (), dict(example_inputs)
    if isinstance(example_inputs, tuple | list):
        return tuple(example_inputs), {}
    return (example_inputs,), {}


def _input_names(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    given: Sequence[str] | None,
) -> list[str]:
    if given is not None:
        if len(given) != len(args) + len(kwargs):
            raise ValueError(f"{len(given)} input_names for {len(args) + len(kwargs)} inputs")
        return list(given)
    target = getattr(fn, "forward", fn)
    try:
        params = [
            p.name
            for p in inspect.signature(target).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    positional = params[: len(args)] if len(params) >= len(args) else []
    positional += [f"input_{i}" for i in range(len(positional), len(args))]
    return [*positional, *kwargs]


def _parameter_names(fn: Any) -> dict[int, str]:
    names: dict[int, str] = {}
    for method in ("named_parameters", "named_buffers"):
        if callable(getattr(fn, method, None)):
            for name, t in getattr(fn, method)():
                names.setdefault(id(t), name)
    return names


def _normalise_axes(dynamic_axes: DynamicAxes, names: list[str]) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = {}
    for name, spec in dynamic_axes.items():
        if isinstance(spec, Mapping):
            out[name] = {int(a): str(s) for a, s in spec.items()}
        else:
            out[name] = {int(a): f"{name}_{int(a)}" for a in spec}
    return out


def _set_outputs(graph: Graph, tracer: Tracer, result: Any, names: Sequence[str] | None) -> None:
    if isinstance(result, Mapping):
        items = list(result.items())
        tracer.structure = ("dict", list(result))
    elif isinstance(result, tuple | list):
        items = [(f"output_{i}", r) for i, r in enumerate(result)]
        tracer.structure = ("tuple" if isinstance(result, tuple) else "list", [])
    else:
        items = [("output", result)]
    if names is not None:
        if len(names) != len(items):
            raise ValueError(f"{len(names)} output_names for {len(items)} outputs")
        items = [(n, r) for n, (_, r) in zip(names, items, strict=True)]
    graph.set_outputs([])
    for name, t in items:
        if not isinstance(t, TensorBase):
            raise TraceError(f"output {name!r} is a {type(t).__name__}, not a tensor")
        value = tracer.value_of(t)
        assert value is not None
        # An input, a weight or a repeated output gets an Identity node of its own there.
        graph.add_output(value, graph.fresh_name(name))
