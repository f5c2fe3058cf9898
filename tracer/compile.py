"""``compile``: run a module or function as captured graphs on a runtime, joined to autograd.

``compiled = tracer.compile(model)`` behaves as ``model``: each call looks up a graph for the
call's signature (per tensor argument: dtype and shape, with its dynamic axes symbolic; the
module's train/eval mode; whether gradients are wanted;
non-tensor arguments by value; the identity of the parameters). A new signature is captured
by tracing the eager code once, so a graph is never reused for calls it does not describe.
An axis becomes dynamic when declared in ``dynamic_axes``, or, by default (``dynamic=None``,
as ``torch.compile``), once a call brings a second size there (``tracer._dynamic``).

Parameters and buffers become graph inputs, fed on every call, so optimizer updates and
``load_state_dict`` are seen without re-capturing. When gradients are wanted the captured
graph is differentiated with ``ir.grad`` and split (``ir.partition.split``) into a forward
graph, which also returns the activations the backward needs, and a backward graph. The
forward runs at once; the call is recorded as one autograd node whose vjp runs the backward
graph, so ``loss.backward()`` on eager code around a compiled module works as usual.
Second-order gradients (``create_graph=True``) through a compiled call are not supported.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

import ir
from ir.autodiff import grad_name
from ir.errors import GraphcapError
from ir.graph import Graph, Value
from ir.ops.registry import OpDef
from ir.partition import split
from runtime import Session
from runtime.threads import check_num_threads
from tracer import _state
from tracer._dynamic import DynamicShapes
from tracer._signature import DynamicAxes, input_names_of
from tracer._tensor_base import TensorBase, wrap
from tracer.pytree import TreeSpec, leaf_names, tree_flatten, tree_unflatten
from tracer.trace import capture

__all__ = ["Compiled", "compile"]

_DOMAIN = "ai.graphcap.compiled"


def compile(
    fn: Callable[..., Any] | None = None,
    *,
    backend: str = "onnxruntime",
    device: str = "cpu",
    optimize: int = 2,
    dynamic: bool | None = None,
    dynamic_axes: DynamicAxes | None = None,
    num_threads: int | None = None,
) -> Any:
    """Compile ``fn`` (a module or function of tensors); usable as a decorator.

    Args:
        fn: the module or function; omitted, returns a decorator taking it.
        backend: ``"onnxruntime"`` or ``"interpreter"`` (graphcap's NumPy runtime).
        device: ``"cpu"`` or ``"cuda"`` (onnxruntime only; falls back to CPU with a warning).
        optimize: ``ir.optimize`` level (0-3) applied to every captured graph.
        dynamic: as ``torch.compile``'s: ``None`` captures each size as it is until an axis
            of a tensor argument shows a second size, then captures once more with that
            axis dynamic; ``True`` makes every axis dynamic from the first call; ``False``
            only the ``dynamic_axes`` (one capture per shape otherwise).
        dynamic_axes: per argument name, the axes whose size may change without a new
            capture (as in :func:`tracer.trace`), whatever ``dynamic`` says.
        num_threads: onnxruntime's intra-op threads for this function's sessions; None:
            :func:`tracer.get_num_threads` when a session opens.

    Returns:
        A :class:`Compiled` callable.
    """
    check_num_threads(num_threads)
    if fn is None:
        return lambda f: Compiled(
            f, backend, device, optimize, dynamic_axes, dynamic, num_threads=num_threads
        )
    return Compiled(fn, backend, device, optimize, dynamic_axes, dynamic, num_threads=num_threads)


class Compiled:
    """A compiled module or function; see the module docstring.

    Attributes:
        fn: what was compiled.
        captures: how many times the eager code was traced (one per signature).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        backend: str,
        device: str,
        optimize: int,
        dynamic_axes: DynamicAxes | None,
        dynamic: bool | None = None,
        *,
        num_threads: int | None = None,
    ) -> None:
        if backend not in ("onnxruntime", "interpreter"):
            raise ValueError(f"backend={backend!r}: expected 'onnxruntime' or 'interpreter'")
        self.fn = fn
        self.num_threads = num_threads
        # What tracing the wrapper names its graph after: the module's or function's name.
        self.__name__ = getattr(fn, "__name__", type(fn).__name__)
        self.backend = backend
        self.device = device
        self.level = optimize
        self.dynamic = DynamicShapes(dynamic, dynamic_axes)
        self.captures = 0
        self._entries: dict[Any, _Entry] = {}
        self._names: dict[tuple[int, tuple[str, ...]], list[str]] = {}

    def __getattr__(self, name: str) -> Any:  # the module's attributes (train(), eval(), ...)
        return getattr(self.__dict__["fn"], name)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run the graph of this call's signature, capturing it first if it is new."""
        if _state.tracer is not None:  # inside a trace: trace the eager code itself
            return self.fn(*args, **kwargs)
        layout = (len(args), tuple(kwargs))
        names = self._names.get(layout)
        if names is None:  # inspect.signature is slow next to a small graph's run
            names = self._names[layout] = _argument_names(self.fn, len(args), kwargs)
        values = [*args, *kwargs.values()]
        leaves, specs = _flatten_arguments(names, values)
        owned = _owned_tensors(self.fn)
        leaf_names = [n for n, _ in leaves]
        self.dynamic.observe(leaf_names, [v for _, v in leaves])
        key = self._key(leaves, specs, owned)
        entry = self._entries.get(key)
        if entry is None:
            try:
                entry = self._capture(names, values, leaves, owned)
            except GraphcapError:
                if not self.dynamic.give_up(leaf_names):
                    raise
                # Some marked axis cannot be symbolic in this code: capture sizes as they are.
                key = self._key(leaves, specs, owned)
                entry = self._entries.get(key) or self._capture(names, values, leaves, owned)
            self._entries[key] = entry
        return entry.call([v for _, v in leaves])

    def graphs(self) -> list[Graph]:
        """The forward graph of every signature captured so far."""
        return [e.forward for e in self._entries.values()]

    # ------------------------------------------------------------ signatures

    def _key(
        self, leaves: Sequence[tuple[str, Any]], specs: Sequence[TreeSpec], owned: Sequence[Any]
    ) -> Any:
        parts: list[Any] = [getattr(self.fn, "training", None), _state.grad_enabled, *specs]
        for name, v in leaves:
            if isinstance(v, TensorBase):
                shape = self.dynamic.key(name, v._data.shape)
                parts.append((name, v._data.dtype.str, shape, v._requires_grad))
            else:
                parts.append((name, type(v).__name__, repr(v)))
        parts.append(tuple((id(t), t._requires_grad) for t in owned))
        return tuple(parts)

    def _capture(
        self,
        names: Sequence[str],
        values: Sequence[Any],
        leaves: Sequence[tuple[str, Any]],
        owned: Sequence[TensorBase],
    ) -> _Entry:
        example = dict(zip(names, values, strict=True))
        tensors = {n: v for n, v in leaves if isinstance(v, TensorBase)}
        dynamic = self.dynamic.for_capture(list(tensors))
        # Traced in the call's own grad mode: code that branches on it (F.embedding's
        # padding mask) is captured as it runs eagerly.
        graph, tr = capture(self.fn, example, dynamic)
        self.captures += 1
        params = _promote_weights(graph, tr.values.values(), owned)
        wanted = [n for n, t in tensors.items() if t._requires_grad and t.dtype.kind == "f"]
        return _Entry.build(self, graph, list(tensors), wanted, params, tr.structure)


@dataclass
class _Param:
    """A tensor the captured code read that is fed as a graph input on every call."""

    name: str
    tensor: TensorBase


class _Entry:
    """The graphs, sessions and autograd op of one signature."""

    def __init__(
        self,
        forward: Graph,
        inputs: list[str],
        params: list[_Param],
        outputs: list[str],
        structure: Any,
        session: Any,
    ) -> None:
        self.forward = forward
        self.inputs = inputs  # tensor arguments, then parameters, as graph input names
        self.params = params
        self.outputs = outputs
        self.structure = structure
        self.session = session
        # Optimization drops inputs nothing reads (a pooler a head never uses): not fed.
        self.fed = {v.name for v in forward.inputs}
        self.op: OpDef | None = None  # the autograd op, when gradients are wanted

    @classmethod
    def build(
        cls,
        owner: Compiled,
        graph: Graph,
        tensor_names: list[str],
        wanted: list[str],
        params: list[_Param],
        structure: Any,
    ) -> _Entry:
        inputs = [*tensor_names, *(p.name for p in params)]
        outputs = [v.name for v in graph.outputs]
        wanted = [*wanted, *(p.name for p in params if p.tensor._requires_grad)]
        wrt = _differentiable(graph, wanted) if _state.grad_enabled else []
        if not wrt:
            forward = ir.optimize(graph, owner.level) if owner.level else graph
            session = _session(owner, forward)
            return cls(forward, inputs, params, outputs, structure, session)
        float_outs = [v.name for v in graph.outputs if v.dtype.kind == "f"]
        seeds = [graph.fresh_name(f"{n}_seed") for n in float_outs]
        joint = ir.grad(graph, wrt, of=float_outs, seed=seeds)
        parts = split(joint, seeds, outputs, [grad_name(n) for n in wrt])
        forward, backward = parts.forward, parts.backward
        if owner.level:
            forward = ir.optimize(forward, owner.level)
            backward = ir.optimize(backward, owner.level)
        entry = cls(forward, inputs, params, outputs, structure, _session(owner, forward))
        entry.op = _autograd_op(entry, _session(owner, backward), backward, seeds, wrt, parts.saved)
        return entry

    def call(self, leaves: Sequence[Any]) -> Any:
        tensors = [v for v in leaves if isinstance(v, TensorBase)]
        tensors += [p.tensor for p in self.params]
        if self.op is not None and _state.grad_enabled:
            outs = self.op(*tensors)
            outs = (outs,) if isinstance(outs, TensorBase) else outs
            results = list(outs[: len(self.outputs)])
        else:
            feeds = {n: t._data for n, t in zip(self.inputs, tensors, strict=True) if n in self.fed}
            arrays = self.session.run(feeds)
            results = [wrap(np.asarray(arrays[n])) for n in self.outputs]
        return tree_unflatten(self.structure, results)


def _autograd_op(
    entry: _Entry,
    backward_session: Any,
    backward: Graph,
    seeds: list[str],
    wrt: list[str],
    saved: Sequence[str],
) -> OpDef:
    """One op whose kernel runs the forward graph and whose vjp runs the backward graph."""
    returned = [*entry.outputs, *(s for s in saved if s not in entry.outputs)]
    seed_of = dict(zip(_float_outputs(entry), seeds, strict=True))
    backward_inputs = {v.name for v in backward.inputs}

    def kernel(*arrays: np.ndarray) -> Any:
        feeds = {n: a for n, a in zip(entry.inputs, arrays, strict=True) if n in entry.fed}
        outs = entry.session.run(feeds)
        result = tuple(np.asarray(outs[n]) for n in returned)
        return result[0] if len(result) == 1 else result

    def vjp(ctx: Any, grad_out: Any, *inputs: Any) -> list[Any]:
        grads = grad_out if isinstance(grad_out, tuple) else (grad_out,)
        produced = ctx.outputs
        feeds: dict[str, np.ndarray] = {}
        for i, name in enumerate(entry.outputs):
            if name in seed_of:
                g = grads[i]
                data = produced[i]._data
                feeds[seed_of[name]] = np.zeros_like(data) if g is None else np.asarray(g._data)
        for name, t in zip(returned, produced, strict=True):
            if name in backward_inputs:
                feeds[name] = t._data
        for name, x in zip(entry.inputs, inputs, strict=True):
            if name in backward_inputs and name not in feeds:
                feeds[name] = x._data
        outs = backward_session.run(feeds)
        return [
            outs[grad_name(name)] if name in wrt and need else None
            for name, need in zip(entry.inputs, ctx.needs_input_grad, strict=True)
        ]

    return OpDef(
        "CompiledCall",
        1,
        kernel,
        _no_shape_rule,
        vjp,
        domain=_DOMAIN,
        num_outputs=len(returned),
        saves="outputs",
    )


def _float_outputs(entry: _Entry) -> list[str]:
    return [v.name for v in entry.forward.outputs[: len(entry.outputs)] if v.dtype.kind == "f"]


def _no_shape_rule(ctx: Any, *types: Any) -> Any:
    raise ir.UnsupportedOpError("a compiled call cannot be traced; trace the eager code")


def _session(owner: Compiled, graph: Graph) -> Any:
    return Session(graph, owner.device, owner.backend, intra_op_threads=owner.num_threads)


def _differentiable(graph: Graph, wanted: list[str]) -> list[str]:
    """The ``wanted`` inputs that some float output depends on."""
    floats = [v.name for v in graph.outputs if v.dtype.kind == "f"]
    if not floats or not wanted:
        return []
    reached = ir.autodiff.depends_on(graph, floats, wanted)
    return [n for n, r in zip(wanted, reached, strict=True) if r]


def _promote_weights(graph: Graph, seen: Any, owned: Sequence[TensorBase]) -> list[_Param]:
    """Turn initializers captured from parameters, buffers and grad-requiring leaves into inputs.

    Every call then feeds their current values.
    """
    owned_ids = {id(t) for t in owned}
    params = []
    for t, value in list(seen):
        if value.const is None or value.name not in graph.initializers:
            continue
        if not (id(t) in owned_ids or (t._requires_grad and t._node is None)):
            continue
        params.append(_Param(value.name, t))
        _initializer_to_input(graph, value)
    return params


def _initializer_to_input(graph: Graph, value: Value) -> Value:
    name = value.name
    temp = graph.add_input(graph.fresh_name(name + "_in"), value.dtype, value.type.shape)
    graph.replace_all_uses_with(value, temp)
    graph.remove_initializer(name)
    graph.rename(temp, name)
    return temp


def _owned_tensors(fn: Any) -> list[TensorBase]:
    """The parameters and buffers of a module (empty for a plain function)."""
    found: list[TensorBase] = []
    for method in ("parameters", "buffers"):
        if callable(getattr(fn, method, None)):
            found.extend(t for t in getattr(fn, method)() if isinstance(t, TensorBase))
    return found


def _argument_names(fn: Any, n_args: int, kwargs: Mapping[str, Any]) -> list[str]:
    return input_names_of(fn, tuple(range(n_args)), dict(kwargs), None)


def _flatten_arguments(
    names: Sequence[str], values: Sequence[Any]
) -> tuple[list[tuple[str, Any]], list[TreeSpec]]:
    """Each argument's leaves, named as ``trace`` names them, and its structure."""
    leaves: list[tuple[str, Any]] = []
    specs: list[TreeSpec] = []
    for name, value in zip(names, values, strict=True):
        flat, spec = tree_flatten(value)
        leaves.extend(zip(leaf_names(name, spec), flat, strict=True))
        specs.append(spec)
    return leaves, specs
