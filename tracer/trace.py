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

import os
import sys
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

import numpy as np

import ir
from ir.dims import Expr, evaluate
from ir.graph import Graph, Value
from ir.ops.registry import OpDef, op
from tracer import _state
from tracer._signature import (
    DynamicAxes,
    input_names_of,
    normalise_axes,
    output_names_of,
    parameter_names,
    split_inputs,
)
from tracer._symint import SymInt, TraceError
from tracer._tensor_base import TensorBase
from tracer.autograd import set_grad_enabled
from tracer.pytree import LEAF, TreeSpec, leaf_names, tree_flatten

__all__ = ["TraceError", "trace"]

# Frames in these are not the user's: graphcap's own, and NumPy's when it calls back.
_PACKAGES = tuple(
    os.path.dirname(os.path.abspath(m.__file__ or "")) + os.sep
    for m in (sys.modules["tracer"], ir, np)
)
_serial = 0  # Tracer.serial of the last trace started


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


def trace_serial() -> int:
    """The active trace's number (0 outside a trace): which trace wrote a module's state."""
    tracer = _state.tracer
    return 0 if tracer is None else tracer.serial


def note_state_write(owner: Any, name: str, value: Any) -> None:
    """A forward assigned ``owner.name``: the graph does not carry it to the next call."""
    record_decision("module-state", f"writes {type(owner).__name__}.{name}", _describe(value))


def note_state_read(owner: Any, name: str, value: Any) -> None:
    """A forward read ``owner.name``, which an earlier call set: its value is baked in."""
    record_decision(
        "module-state",
        f"reads {type(owner).__name__}.{name} set by an earlier call",
        _describe(value),
    )


def _describe(value: Any) -> Any:
    if isinstance(value, TensorBase):
        return f"tensor {value._data.dtype}{list(value._data.shape)}"
    return _plain(value)


def record_decision(kind: str, what: str, result: Any) -> None:
    """Note a Python-level decision the active trace baked in (no-op outside a trace)."""
    tracer = _state.tracer
    if tracer is not None:
        tracer.decide(kind, what, result)


# ---------------------------------------------------------------- the tracer


class Tracer:
    """Lowers eager ops into ``graph`` as they run (installed as ``_state.tracer``)."""

    def __init__(self, graph: Graph, names: Mapping[int, str]) -> None:
        global _serial
        _serial += 1
        self.serial = _serial
        self.graph = graph
        self.names = dict(names)  # id(tensor) -> parameter/buffer name
        # id(tensor) -> (tensor, value); holding the tensor keeps its id from being reused.
        self.values: dict[int, tuple[TensorBase, Value]] = {}
        self.dependent: set[str] = set()  # values computed from graph inputs
        self.baked: list[dict[str, Any]] = []
        self._seen: set[tuple[str, str, str]] = set()
        self._shapes: dict[int, Any] = {}
        self.sizes: dict[str, int] = {}  # each dynamic dim's example size
        self.structure: TreeSpec = LEAF  # how the outputs were packed (tracer.pytree)

    # ------------------------------------------------------------ values

    def add_input(self, t: TensorBase, name: str, dims: Mapping[int, str]) -> None:
        for axis, symbol in dims.items():
            if not -t._data.ndim <= axis < t._data.ndim:
                raise ValueError(
                    f"dynamic_axes[{name!r}] names axis {axis} of a rank-{t.ndim} input"
                )
            size = int(t._data.shape[axis])
            if self.sizes.setdefault(symbol, size) != size:
                raise ValueError(
                    f"dynamic dim {symbol!r} has example size {self.sizes[symbol]} on one input "
                    f"and {size} on {name!r} axis {axis}; one symbol is one size"
                )
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
        """The node's type must describe the eager result, symbolic dims at the example sizes."""
        shape = v.type.shape
        ok = v.dtype == t._data.dtype and shape is not None and len(shape) == t._data.ndim
        if ok and shape is not None:
            ok = all(
                d is None or evaluate(d, self.sizes) in (None, n)
                for d, n in zip(shape, t._data.shape, strict=True)
            )
        if not ok:
            raise TraceError(
                f"{op.op_type} at {user_source() or 'an unknown line'}: its shape rule gives "
                f"{v.type} (with {_shown(self.sizes)}) but the eager result is "
                f"{t._data.dtype}{list(t._data.shape)}; a slice bound beyond its axis, or a bug "
                "in the op's registry entry"
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
                name = Expr.of(d) if d else Expr.atom(_unnamed(entry[1], axis))
                dims.append(SymInt(n, name, _size_of(t, axis)))
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


def _unnamed(value: Value, axis: int) -> str:
    """A readable name for a dim no shape rule could name (never an internal value id)."""
    node = value.producer
    if node is None:
        return f"dim {axis} of {value.name}"
    where = node.meta.get("source")
    return f"dim {axis} of the {node.op.op_type}" + (f" at {where}" if where else "")


def _shown(sizes: Mapping[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sizes.items()) or "no dynamic dims"


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
    differentiable: bool = False,
) -> Graph:
    """Run ``fn`` on ``example_inputs`` eagerly and capture what it did as a graph.

    By default the graph is captured for inference: ``fn`` runs with gradients off, so code
    that only shapes gradients (``nn.Embedding``'s ``padding_idx`` cut) is left out, and
    ``ir.grad`` refuses a graph where that happened. Pass ``differentiable=True`` to capture
    what ``fn`` does with gradients on, for ``ir.grad``.

    Arguments and results may be nested tuples, lists, dicts, named tuples and dataclasses
    of tensors (``None`` allowed): each tensor is one graph input or output, named after
    its path (``tracer.pytree``): argument ``hidden = (h, c)`` gives inputs ``hidden.0`` and
    ``hidden.1``.

    Args:
        fn: a function or module (any callable) of tensors.
        example_inputs: a tensor, a tuple of positional arguments, or a dict of keyword
            arguments. Non-tensor values are baked in (and listed in the metadata).
        dynamic_axes: per input name (a tensor's path name, ``hidden.0``), ``{axis:
            symbol}`` (or a list of axes, named ``<input>_<axis>``): those sizes stay
            symbolic in the graph.
        input_names: names of the arguments (default: ``fn``'s parameter names).
        output_names: names of the results: one per item of a returned tuple, list or dict
            (default: ``output`` or ``output_<i>``, or the keys), or one per tensor.
        differentiable: capture with gradients on (see above).

    Returns:
        A verified ``ir.Graph``; ``graph.meta["baked"]`` lists the Python decisions.

    Raises:
        TraceError: ``fn`` read an input-dependent value into Python, or fixed a dynamic
            dimension; the message names the source line.
    """
    try:
        with set_grad_enabled(differentiable):
            graph, _ = capture(fn, example_inputs, dynamic_axes, input_names, output_names)
    except RuntimeError as err:
        if not differentiable and not isinstance(err, TraceError):  # backward() in fn, say
            err.add_note(
                "tracer.trace captures for inference, with gradients off; pass "
                "differentiable=True to trace code that computes gradients"
            )
        raise
    return graph


def capture(
    fn: Callable[..., Any],
    example_inputs: Any,
    dynamic_axes: DynamicAxes | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
) -> tuple[Graph, Tracer]:
    """:func:`trace` in the caller's grad mode, also returning the tracer.

    The tracer's ``values`` map each tensor the code touched (by id) to its graph value:
    that is how ``compile`` finds the parameters among the initializers.
    """
    if _state.tracer is not None:
        raise TraceError("trace() was called while another trace is running")
    args, kwargs = split_inputs(example_inputs)
    names = input_names_of(fn, args, kwargs, input_names)
    graph = Graph(getattr(fn, "__name__", type(fn).__name__))
    tracer = Tracer(graph, parameter_names(fn))
    axes = normalise_axes(dynamic_axes or {})
    tensors: list[str] = []
    for name, value in zip(names, [*args, *kwargs.values()], strict=True):
        leaves, spec = tree_flatten(value)
        for leaf_name, leaf in zip(leaf_names(name, spec), leaves, strict=True):
            if isinstance(leaf, TensorBase):
                tracer.add_input(leaf, leaf_name, axes.pop(leaf_name, {}))
                tensors.append(leaf_name)
            else:
                tracer.baked.append(
                    {
                        "kind": "argument",
                        "what": leaf_name,
                        "result": _plain(leaf),
                        "source": "example_inputs",
                    }
                )
    if axes:
        raise ValueError(
            f"dynamic_axes names {sorted(axes)}, which are not tensor inputs {tensors}"
        )
    _state.tracer = tracer
    try:
        result = fn(*args, **kwargs)
    finally:
        _state.tracer = None
    _set_outputs(graph, tracer, result, output_names)
    graph.meta["baked"] = tracer.baked
    graph.verify()
    return graph, tracer


def _set_outputs(graph: Graph, tracer: Tracer, result: Any, names: Sequence[str] | None) -> None:
    """Flatten ``result`` into named graph outputs; its structure goes to ``tracer.structure``."""
    leaves, spec = tree_flatten(result)
    tracer.structure = spec
    graph.set_outputs([])
    for name, t in zip(output_names_of(spec, names), leaves, strict=True):
        if not isinstance(t, TensorBase):
            raise TraceError(f"output {name!r} is a {type(t).__name__}, not a tensor")
        value = tracer.value_of(t)
        assert value is not None
        # An input, a weight or a repeated output gets an Identity node of its own there.
        graph.add_output(value, graph.fresh_name(name))
