"""A whole training step as one graph: forward, loss, backward and the optimizer's update.

``step = tracer.compile_step(loss_fn, optimizer)`` and then ``loss = step(*batch)`` in the
training loop instead of ``loss = loss_fn(*batch); loss.backward(); optimizer.step()``.

The first call of a signature traces ``loss_fn`` (which reads the model's parameters) and
builds the train-step graph (:func:`build_train_step`): ``ir.grad`` differentiates the loss
with respect to every optimizer parameter it depends on, and each parameter's update is
appended by the optimizer's own rule (``Optimizer.functional_update``, written once with
registry ops). Its inputs are the batch, the learning rate of each param group (fed from
``group["lr"]`` on every call, so schedulers work), the parameters and the optimizer state;
its outputs are the loss and the new parameters and state. Every op is a standard ONNX op.

Weights and optimizer state live in the runtime between steps: on onnxruntime as
``OrtValue``s (on the GPU with ``device="cuda"``, through IOBinding) that each step's outputs
replace. ``step.sync()`` writes them back into the eager parameters and optimizer, so eager
code (evaluation, ``state_dict``, checkpoints) sees the trained model.

Under data parallelism (``model`` a ``tracer.nn.parallel.DistributedDataParallel``) the step
is two graphs: one computes the loss and the gradients, the other the update; between them
``model.reduce_gradients`` averages the gradients over the processes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import ir
from export.onnx.writer import to_model
from ir.autodiff import grad_name
from ir.errors import GraphcapError
from ir.graph import Graph, Value
from ir.ops.registry import op, scalar
from runtime import Interpreter
from runtime.ort_backend import OrtBackend
from runtime.threads import check_num_threads
from tracer._dynamic import DynamicShapes
from tracer._step_grads import GradOptions, clip
from tracer._tensor_base import TensorBase, wrap
from tracer.autograd import enable_grad
from tracer.compile import _argument_names, _initializer_to_input
from tracer.trace import DynamicAxes, capture

__all__ = ["TrainStep", "TrainStepGraph", "build_train_step", "compile_step"]

# Param group entries a step graph does not bake in: fed per call, or not hyper-parameters.
_FED = ("params", "param_names", "lr", "initial_lr")


@dataclass
class TrainStepGraph:
    """A train-step graph and what its names mean.

    Attributes:
        graph: inputs ``batch + lrs + params + states``; outputs ``[loss, *updates]``.
        batch: names of the batch inputs, in ``loss_fn``'s argument order.
        lrs: one float64 scalar input per param group: ``lr``, ``lr_1``, ...
        params: parameter input name -> the eager parameter.
        states: state input name -> ``(parameter name, state key)``.
        updates: output name -> the input it replaces on the next step.
        loss: the loss output's name.
    """

    graph: Graph
    batch: list[str]
    lrs: list[str]
    params: dict[str, TensorBase]
    states: dict[str, tuple[str, str]]
    updates: dict[str, str]
    loss: str = "loss"
    groups: list[int] = field(default_factory=list)  # param group index of each parameter
    hyper: list[dict[str, Any]] = field(default_factory=list)  # each group's baked settings
    accumulators: dict[str, str] = field(default_factory=dict)  # grad-sum input -> param
    grad_norm: str | None = None  # the output holding the total norm before clipping
    # Split steps (split=True): ``backward`` maps batch + params to loss + ``grads`` (one per
    # parameter, in order); ``graph`` then takes the loss, params and grads as inputs.
    backward: Graph | None = None
    grads: list[str] = field(default_factory=list)


def build_train_step(
    loss_fn: Callable[..., Any],
    example_batch: Any,
    optimizer: Any,
    *,
    names: Mapping[int, str] | None = None,
    dynamic_axes: DynamicAxes | None = None,
    optimize: int = 2,
    grads: GradOptions | None = None,
    update: bool = True,
    split: bool = False,
) -> TrainStepGraph:
    """Trace ``loss_fn`` on ``example_batch`` and build the train-step graph.

    Args:
        loss_fn: returns a scalar float loss from a batch; reads the parameters.
        example_batch: a tensor, a tuple of tensors, or a dict of them.
        optimizer: a ``tracer.optim`` optimizer over (some of) the parameters.
        names: ``id(parameter) -> name`` (e.g. from ``model.named_parameters()``).
        dynamic_axes: batch axes that may change size, as in :func:`tracer.trace`.
        optimize: ``ir.optimize`` level for the graph.
        grads: clipping and accumulation (:class:`GradOptions`; default: neither). With
            ``accumulation_steps`` n > 1 the graph adds each gradient to a ``<param>.grad_sum``
            input; the update uses the mean of the n sums.
        update: False builds the graph of a micro-batch that only accumulates: outputs loss
            and each ``<param>.grad_sum.next``, no optimizer inputs.
        split: two graphs, loss and gradients, then the rest (see ``TrainStepGraph``), so
            that something can run between them (the gradients' all-reduce).

    Raises:
        ValueError: the loss is not a float scalar, or depends on no optimizer parameter.
    """
    with enable_grad():  # as the eager loop computes its loss, for code that branches on it
        graph, tr = capture(loss_fn, example_batch, dynamic_axes, output_names=["loss"])
    (loss,) = graph.outputs
    if loss.type.shape != () or loss.dtype.kind != "f":
        raise ValueError(f"compile_step: loss_fn must return a float scalar, got {loss.type}")
    batch = [v.name for v in graph.inputs]
    index = {id(p): (gi, p) for gi, g in enumerate(optimizer.param_groups) for p in g["params"]}
    params: dict[str, TensorBase] = {}
    groups: list[int] = []
    for t, value in list(tr.values.values()):
        if id(t) not in index or value.name not in graph.initializers:
            continue
        promoted = _initializer_to_input(graph, value)
        name = (names or {}).get(id(t))
        if name and name != promoted.name:
            graph.rename(promoted, graph.fresh_name(name))
        params[promoted.name] = t
        groups.append(index[id(t)][0])
    reached = ir.autodiff.depends_on(graph, ["loss"], list(params)) if params else []
    if not any(reached):
        raise ValueError("compile_step: the loss depends on none of the optimizer's parameters")
    params = {n: t for (n, t), r in zip(params.items(), reached, strict=True) if r}
    groups = [gi for gi, r in zip(groups, reached, strict=True) if r]
    if optimize:  # before differentiating: fusions give smaller backward graphs (see docs)
        graph = ir.optimize(graph, optimize)
    joint = ir.grad(graph, list(params), of="loss")
    options = grads or GradOptions()
    if split:
        rest = _update_inputs(joint, params)
        step = _append_updates(rest, optimizer, params, groups, options, update)
        step.graph.set_outputs(step.graph.outputs[1:])  # the loss comes from ``backward``
        step.backward = ir.optimize(joint, optimize) if optimize else joint
        step.grads = [v.name for v in joint.outputs[1:]]
    else:
        step = _append_updates(joint, optimizer, params, groups, options, update)
    step.batch = batch
    if optimize:
        step.graph = ir.optimize(step.graph, optimize)
    return step


def _update_inputs(joint: Graph, params: dict[str, TensorBase]) -> Graph:
    """A graph whose inputs are ``joint``'s outputs (loss, gradients) and the parameters."""
    g = Graph("update")
    outs = [g.add_input(v.name, v.dtype, v.shape) for v in joint.outputs]
    for name, p in params.items():
        g.add_input(name, p._data.dtype, p._data.shape)
    g.set_outputs(outs)
    return g


def _append_updates(
    g: Graph,
    optimizer: Any,
    params: dict[str, TensorBase],
    groups: list[int],
    options: GradOptions,
    update: bool,
) -> TrainStepGraph:
    """Add lr and state inputs and the optimizer's update; outputs become loss + updates."""
    by_name = {v.name: v for v in g.outputs}
    hyper = [_baked(group) for group in optimizer.param_groups]
    grads = [by_name[grad_name(n)] for n in params]
    g.set_outputs([by_name["loss"]])  # the gradients become intermediate values
    accumulators: dict[str, str] = {}
    updates: dict[str, str] = {}
    n = options.accumulation_steps
    if n > 1:
        sums = []
        for name, grad in zip(params, grads, strict=True):
            sums.append(g.add_input(f"{name}.grad_sum", grad.dtype, grad.type.shape))
            accumulators[sums[-1].name] = name
        grads = [op.Add(acc, grad) for acc, grad in zip(sums, grads, strict=True)]
        if not update:  # a micro-batch before the last: the sums are the outputs
            for acc, total in zip(sums, grads, strict=True):
                updates[g.add_output(total, g.fresh_name(f"{acc.name}.next")).name] = acc.name
            g.verify()
            return TrainStepGraph(
                g, [], [], params, {}, updates, groups=groups, hyper=hyper,
                accumulators=accumulators,
            )  # fmt: skip
        grads = [op.Div(grad, scalar(float(n), grad)) for grad in grads]
    grads, norm = clip(grads, options)
    lrs = [
        g.add_input("lr" if i == 0 else f"lr_{i}", np.float64, ())
        for i in range(len(optimizer.param_groups))
    ]
    states: dict[str, tuple[str, str]] = {}
    for (name, p), gi, grad in zip(params.items(), groups, grads, strict=True):
        group = optimizer.param_groups[gi]
        state_values: dict[str, Value] = {}
        for key, array in optimizer.functional_state(p).items():
            value = g.add_input(f"{name}.{key}", array.dtype, array.shape)
            state_values[key] = value
            states[value.name] = (name, key)
        param = next(v for v in g.inputs if v.name == name)
        new_p, new_state = optimizer.functional_update(group, param, grad, state_values, lrs[gi])
        for value, target in [(new_p, name), *((new_state[k], f"{name}.{k}") for k in new_state)]:
            out = g.add_output(value, g.fresh_name(f"{target}.next"))
            updates[out.name] = target
    norm_name = None if norm is None else g.add_output(norm, g.fresh_name("grad_norm")).name
    g.verify()
    return TrainStepGraph(
        g, [], [v.name for v in lrs], params, states, updates, groups=groups, hyper=hyper,
        accumulators=accumulators, grad_norm=norm_name,
    )  # fmt: skip


def compile_step(
    loss_fn: Callable[..., Any],
    optimizer: Any,
    *,
    model: Any = None,
    backend: str = "onnxruntime",
    device: str = "cpu",
    optimize: int = 2,
    dynamic: bool | None = None,
    dynamic_axes: DynamicAxes | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    clip_value: float | None = None,
    accumulation_steps: int = 1,
    num_threads: int | None = None,
) -> TrainStep:
    """Compile ``loss_fn`` plus backward plus ``optimizer.step()`` into one graph per signature.

    Args:
        loss_fn: returns a scalar loss from a batch (the training loop's forward and loss).
        optimizer: a ``tracer.optim`` optimizer; its learning rates are read on every call,
            its other hyper-parameters are baked into the graph (a change captures anew).
        model: the module: names the parameters in the graph; its train/eval mode (and
            ``loss_fn``'s, when a module) is part of the signature. A model with a
            ``reduce_gradients(arrays)`` method (``DistributedDataParallel``) gets the
            gradients of each call, to average them over the processes, before the rest.
        backend: ``"onnxruntime"`` or ``"interpreter"``.
        device: ``"cpu"`` or ``"cuda"`` (onnxruntime; state then stays on the GPU).
        optimize: ``ir.optimize`` level.
        dynamic: as in :func:`tracer.compile`: ``None`` makes an axis of a batch tensor
            dynamic once a second size is seen there, ``True`` every axis, ``False`` none.
        dynamic_axes: batch axes whose size may change without a new capture.
        max_norm: clip the gradients as ``clip_grad_norm_(params, max_norm, norm_type)``
            does, in the graph, before the update; the norm is then ``step.grad_norm``.
        norm_type: the p of that total norm (``float("inf")``: the largest absolute value).
        clip_value: clamp the gradients into ``[-clip_value, clip_value]`` first, as
            ``clip_grad_value_``.
        accumulation_steps: n > 1 accumulates gradients over n calls (micro-batches) and
            updates on every n-th with their mean (then clipped): with a mean loss and
            equal micro-batches, the update of one call on the n batches joined.
        num_threads: onnxruntime's intra-op threads for the step's sessions; None:
            :func:`tracer.get_num_threads` when a session opens.

    Returns:
        A :class:`TrainStep`.

    Raises:
        ValueError: a clipping or accumulation setting out of range, or ``num_threads``
            not a positive int.
    """
    check_num_threads(num_threads)
    names = {id(p): n for n, p in model.named_parameters()} if model is not None else None
    options = GradOptions(max_norm, norm_type, clip_value, accumulation_steps)
    return TrainStep(
        loss_fn, optimizer, names, backend, device, optimize, dynamic_axes, model=model,
        dynamic=dynamic, grads=options, num_threads=num_threads,
    )  # fmt: skip


class TrainStep:
    """A compiled training step; see the module docstring and :func:`compile_step`.

    Attributes:
        captures: how many graphs were captured (per signature; with accumulation, one for
            the accumulating micro-batches and one for the updating one).
        grad_norm: the total gradient norm before clipping of the latest update (a 0-d
            tensor), with ``max_norm`` set; None before.
    """

    def __init__(
        self,
        loss_fn: Callable[..., Any],
        optimizer: Any,
        names: Mapping[int, str] | None,
        backend: str,
        device: str,
        optimize: int,
        dynamic_axes: DynamicAxes | None,
        *,
        model: Any = None,
        dynamic: bool | None = None,
        grads: GradOptions | None = None,
        num_threads: int | None = None,
    ) -> None:
        if backend not in ("onnxruntime", "interpreter"):
            raise ValueError(f"backend={backend!r}: expected 'onnxruntime' or 'interpreter'")
        self.num_threads = num_threads
        self.loss_fn = loss_fn
        self.model = model
        self.optimizer = optimizer
        self.names = names
        self.backend = backend
        self.device = device
        self.level = optimize
        self.dynamic = DynamicShapes(dynamic, dynamic_axes)
        self.grads = grads or GradOptions()
        self.reduce_gradients: Callable[[list[np.ndarray]], None] | None = getattr(
            model, "reduce_gradients", None
        )
        self.captures = 0
        self.grad_norm: Any = None
        self._micro = 0  # micro-batches run since the last update
        self._names: dict[int, list[str]] = {}
        self._graphs: dict[Any, tuple[TrainStepGraph, Any]] = {}
        self._store: _StateStore | None = None
        self.last: TrainStepGraph | None = None

    def __call__(self, *batch: Any) -> Any:
        """Run one step on ``batch``; returns the loss as a tensor (no history).

        With ``accumulation_steps`` n, a call runs one micro-batch; every n-th updates.
        """
        update = self._micro + 1 >= self.grads.accumulation_steps
        built, runner = self._entry(batch, update)
        store = self._store
        if (
            store is None
            or store.params != set(built.params)
            or (update and store.states != set(built.states))
        ):
            # This graph holds other parameters or state buffers: start it from eager's.
            self.sync()
            store = self._store = _StateStore.of(built, self.optimizer, runner)
        self.last = built
        tensors = [b for b in batch if isinstance(b, TensorBase)]  # the rest are baked in
        feeds: dict[str, Any] = {n: b._data for n, b in zip(built.batch, tensors, strict=True)}
        for name, group in zip(built.lrs, self.optimizer.param_groups, strict=False):
            feeds[name] = np.asarray(float(group["lr"]), np.float64)  # none to accumulate
        for name in (*built.params, *built.states):
            feeds[name] = store.values[name]
        for name, param in built.accumulators.items():
            acc = store.sums.get(name)
            feeds[name] = acc if acc is not None else store.zero(name, built.params[param], runner)
        outs = runner.run(feeds)
        for out_name, in_name in built.updates.items():
            target = store.sums if in_name in built.accumulators else store.values
            target[in_name] = outs[out_name]
        if update:
            store.sums.clear()
            store.dirty = True
            self._micro = 0
            if built.grad_norm is not None:
                self.grad_norm = wrap(np.asarray(_to_numpy(outs[built.grad_norm])))
        else:
            self._micro += 1
        return wrap(np.asarray(_to_numpy(outs[built.loss])))

    def _entry(self, batch: Sequence[Any], update: bool) -> tuple[TrainStepGraph, Any]:
        """The graph and runner of this call's signature, captured first if new."""
        names = self._arg_names(batch)
        self.dynamic.observe(names, batch)
        key = (update, self._key(names, batch))
        entry = self._graphs.get(key)
        if entry is not None:
            return entry
        try:
            built = self._build(names, batch, update)
        except GraphcapError:
            if not self.dynamic.give_up(names):
                raise
            # Some marked axis cannot be symbolic in this code: capture sizes as they are.
            key = (update, self._key(names, batch))
            if key in self._graphs:
                return self._graphs[key]
            built = self._build(names, batch, update)
        runner = _runner(built.graph, self.backend, self.device, self.num_threads)
        if built.backward is not None:
            runner = _SplitRunner(built, runner, self)
        entry = self._graphs[key] = (built, runner)
        return entry

    def _build(self, names: Sequence[str], batch: Sequence[Any], update: bool) -> TrainStepGraph:
        built = build_train_step(
            self.loss_fn,
            tuple(batch),
            self.optimizer,
            names=self.names,
            dynamic_axes=self.dynamic.for_capture(names),
            optimize=self.level,
            grads=self.grads,
            update=update,
            split=self.reduce_gradients is not None,
        )
        self.captures += 1
        return built

    @property
    def graph(self) -> Graph:
        """The train-step graph of the latest call."""
        if self.last is None:
            raise RuntimeError("TrainStep.graph: no step has run yet")
        return self.last.graph

    def sync(self) -> None:
        """Write the runtime's weights and optimizer state back into the eager objects.

        Gradients being accumulated (micro-batches since the last update) stay in the step.
        """
        store, built = self._store, self.last
        if store is None or built is None or not store.dirty:
            return
        for (name, p), gi in zip(built.params.items(), built.groups, strict=True):
            np.copyto(p._data, _to_numpy(store.values[name]))
            p._bump_version()
            state = {k: _to_numpy(store.values[f"{name}.{k}"]) for k in store.keys[name]}
            # The state has the form of the settings it was computed under, which the user
            # may have changed since (momentum 0 keeps no buffer).
            with _settings(self.optimizer.param_groups[gi], built.hyper[gi]):
                self.optimizer.load_functional_state(p, state)
        store.dirty = False

    def _arg_names(self, batch: Sequence[Any]) -> list[str]:
        names = self._names.get(len(batch))
        if names is None:  # inspect.signature is slow next to a step
            names = self._names[len(batch)] = _argument_names(self.loss_fn, len(batch), {})
        return names

    def _key(self, names: Sequence[str], batch: Sequence[Any]) -> Any:
        """What a step graph bakes in, so a change means another graph.

        Dtype and shape of each batch tensor (dynamic axes by name), other arguments by value,
        the size and hyper-parameters (but the lr) of each param group, and the train/eval
        mode of ``model`` and ``loss_fn``.
        """
        groups = self.optimizer.param_groups
        parts: list[Any] = [tuple(len(g["params"]) for g in groups)]
        # Hyper-parameters other than the fed lr are baked into the graph.
        parts.append(tuple(repr(sorted(_baked(g).items())) for g in groups))
        parts.append(tuple(getattr(m, "training", None) for m in (self.model, self.loss_fn)))
        for name, b in zip(names, batch, strict=True):
            if not isinstance(b, TensorBase):
                parts.append((name, type(b).__name__, repr(b)))
                continue
            data = b._data
            parts.append((name, data.dtype.str, self.dynamic.key(name, data.shape)))
        return tuple(parts)


def _baked(group: Mapping[str, Any]) -> dict[str, Any]:
    """The hyper-parameters of a param group that a step graph bakes in."""
    return {k: v for k, v in group.items() if k not in _FED}


@contextmanager
def _settings(group: dict[str, Any], baked: Mapping[str, Any]) -> Iterator[None]:
    """``group`` with the hyper-parameters ``baked`` for a while; restored after."""
    saved = dict(group)
    group.update(baked)
    try:
        yield
    finally:
        group.clear()
        group.update(saved)


class _StateStore:
    """Parameters and optimizer state as the runtime holds them, by graph input name."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}  # parameters and optimizer state
        self.keys: dict[str, list[str]] = {}
        self.params: set[str] = set()
        self.states: set[str] = set()
        self.sums: dict[str, Any] = {}  # gradients accumulated since the last update
        self._zeros: dict[str, Any] = {}
        self.dirty = False

    @classmethod
    def of(cls, built: TrainStepGraph, optimizer: Any, runner: Any) -> _StateStore:
        store = cls()
        for name, p in built.params.items():
            store.values[name] = runner.place(p._data)
            store.params.add(name)
            state = optimizer.functional_state(p)
            store.keys[name] = list(state)
            for key, array in state.items():
                store.values[f"{name}.{key}"] = runner.place(np.array(array))
                store.states.add(f"{name}.{key}")
        return store

    def zero(self, name: str, like: TensorBase, runner: Any) -> Any:
        """Zeros for the gradient sum ``name`` (runtimes never write into their inputs)."""
        z = self._zeros.get(name)
        if z is None:
            z = self._zeros[name] = runner.place(np.zeros_like(like._data))
        return z


def _to_numpy(value: Any) -> np.ndarray:
    return value if isinstance(value, np.ndarray) else value.numpy()


class _OrtRunner:
    """Runs on onnxruntime with every input and output an ``OrtValue`` left in place."""

    def __init__(self, graph: Graph, device: str, num_threads: int | None) -> None:
        import onnxruntime as ort  # imported when used: the interpreter needs none of it

        self.backend = OrtBackend(
            to_model(graph), device, intra_op_threads=num_threads, io_binding=True, stacklevel=4
        )
        self._ort = ort

    def place(self, array: np.ndarray) -> Any:
        return self._ort.OrtValue.ortvalue_from_numpy(
            np.require(array, requirements="C"), self.backend.device, self.backend.device_id
        )

    def run(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        return self.backend.run(feeds, as_numpy=False)


class _InterpreterRunner:
    """Runs on graphcap's NumPy interpreter; state stays as arrays."""

    def __init__(self, graph: Graph) -> None:
        self.interpreter = Interpreter(graph)

    def place(self, array: np.ndarray) -> Any:
        return np.array(array)

    def run(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        return self.interpreter.run(dict(feeds))


def _runner(graph: Graph, backend: str, device: str, num_threads: int | None) -> Any:
    if backend == "onnxruntime":
        return _OrtRunner(graph, device, num_threads)
    return _InterpreterRunner(graph)


class _SplitRunner:
    """Runs a split step: loss and gradients, ``reduce_gradients`` on them, then the rest."""

    def __init__(self, built: TrainStepGraph, rest: Any, step: TrainStep) -> None:
        assert built.backward is not None and step.reduce_gradients is not None
        self.backward = _runner(built.backward, step.backend, step.device, step.num_threads)
        self.rest = rest
        self.reduce = step.reduce_gradients
        self.grads, self.loss = built.grads, built.loss
        self.backward_inputs = [v.name for v in built.backward.inputs]
        inputs = {v.name for v in built.graph.inputs}
        self.rest_inputs = inputs - {*built.grads, built.loss}
        self.feed_loss = built.loss in inputs  # unused there: optimize may have dropped it

    def place(self, array: np.ndarray) -> Any:
        return self.rest.place(array)

    def run(self, feeds: Mapping[str, Any]) -> dict[str, Any]:
        outs = self.backward.run({n: feeds[n] for n in self.backward_inputs})
        grads = [np.array(_to_numpy(outs[n])) for n in self.grads]  # owned, writable
        self.reduce(grads)
        rest = {n: feeds[n] for n in self.rest_inputs}
        rest.update(zip(self.grads, grads, strict=True))
        if self.feed_loss:
            rest[self.loss] = _to_numpy(outs[self.loss])
        return {**self.rest.run(rest), self.loss: outs[self.loss]}
