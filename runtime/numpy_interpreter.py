"""The embedded runtime: runs an ``ir.Graph`` by calling each registry op's NumPy kernel.

This is graphcap's reference semantics. ``Interpreter(graph)`` builds, once per set of
requested outputs, an execution plan: the nodes those outputs need, in graph order, each
with its kernel, attributes, where its inputs come from and which values die after it (their
last use). ``run`` walks the plan with a per-call environment, frees every value after its
last use, and when a kernel fails re-raises the error with the node's text form, the shapes
it was given and the source line it was traced from.

Plans are immutable and cached under a lock, and ``run`` keeps all of its state in local
variables, so one interpreter can serve many threads at once. A plan reflects the graph when
it was built: build the interpreter after the last edit to the graph.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from ir.errors import GraphcapError
from runtime.errors import FeedError, NodeExecutionError

if TYPE_CHECKING:
    from ir.graph import Graph, Node, Value
    from ir.ops.registry import Kernel

# A node's input: the env name it is read from, a constant array, or absent.
_Arg = tuple[str | None, np.ndarray | None]
Hook = Callable[["Step", Mapping[str, np.ndarray]], None]
# An output's expected type: dtype, rank (None: unknown), and (axis, size) of static dims.
_Expect = tuple[np.dtype, int | None, tuple[tuple[int, int], ...]]


@dataclass(frozen=True, slots=True)
class Step:
    """One node of a plan.

    Attributes:
        node: the graph node (for its text form and source line in errors).
        kernel: the registry kernel, ``kernel(*arrays, **attrs)``.
        args: per input, ``(env name, None)``, ``(None, constant array)`` or ``(None, None)``
            for an absent optional input.
        attrs: the node's attributes as given (the kernel holds the defaults).
        outputs: env names of the node's outputs.
        frees: env names that die after this step: last uses, and outputs nobody reads.
        expect: per output, the declared dtype, rank and static dims (for ``check_types``).
    """

    node: Node
    kernel: Kernel
    args: tuple[_Arg, ...]
    attrs: Mapping[str, Any]
    outputs: tuple[str, ...]
    frees: tuple[str, ...]
    expect: tuple[_Expect, ...]

    def __repr__(self) -> str:
        return f"<Step {self.node.format()}; frees {list(self.frees)}>"


@dataclass(frozen=True, slots=True)
class Plan:
    """What one ``run`` executes for a given set of requested outputs.

    Attributes:
        steps: the needed nodes, in graph order.
        feeds: graph inputs the steps (or the outputs) read.
        outputs: the requested value names, in the order results are returned.
        constants: requested outputs that are initializers, by name.
    """

    steps: tuple[Step, ...]
    feeds: tuple[str, ...]
    outputs: tuple[str, ...]
    constants: Mapping[str, np.ndarray]


class Interpreter:
    """Runs a graph on NumPy through the op registry's kernels.

    Args:
        graph: the graph to run; it must not be edited afterwards.
        check_types: check each kernel result's dtype and rank (and static dims) against the
            node's declared output type, so a kernel that disagrees with its shape rule is
            caught at the node rather than far downstream.
    """

    def __init__(self, graph: Graph, check_types: bool = True) -> None:
        self.graph = graph
        self.check_types = check_types
        self._values: dict[str, Value] = {v.name: v for v in graph.values()}
        self._consts = {name: _read_only(v.const) for name, v in graph.initializers.items()}
        self._inputs = {v.name for v in graph.inputs}
        self._plans: dict[tuple[str, ...], Plan] = {}
        self._lock = threading.Lock()
        self.output_names: tuple[str, ...] = tuple(v.name for v in graph.outputs)

    def plan(self, outputs: Sequence[str] | None = None) -> Plan:
        """The (cached) execution plan computing ``outputs`` (default: the graph's outputs).

        Raises:
            FeedError: an output name that is no value of the graph.
        """
        key = self.output_names if outputs is None else tuple(outputs)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._build_plan(key)
            with self._lock:
                plan = self._plans.setdefault(key, plan)
        return plan

    def run(
        self,
        feeds: Mapping[str, Any],
        outputs: Sequence[str] | None = None,
        *,
        hook: Hook | None = None,
    ) -> dict[str, np.ndarray]:
        """Run the graph and return the requested values by name.

        Args:
            feeds: one array per graph input the requested outputs depend on.
            outputs: names of any values of the graph (inputs, initializers, intermediates);
                default the graph's outputs.
            hook: called after each step, once its dead values are freed, with the step and a
                read-only view of the live values (for tests, profiling, bisection).

        Returns:
            The requested values, in the requested order. Arrays that would alias the
            graph's constants are copies, so writing to a result never changes the graph.

        Raises:
            FeedError: a needed input is missing, a feed names no input, or an output name
                is no value of the graph.
            NodeExecutionError: a kernel failed; the message names the node, its inputs'
                shapes and its source line. A kernel's own ``GraphcapError`` keeps its type.
        """
        plan = self.plan(outputs)
        env = self._initial_env(plan, feeds)
        view = MappingProxyType(env)
        for step in plan.steps:
            args = [env[name] if name is not None else const for name, const in step.args]
            try:
                arrays = _as_arrays(step.kernel(*args, **step.attrs), len(step.outputs))
                if self.check_types:
                    _check_types(step, arrays)
            except Exception as err:
                raise _node_error(step.node, args, err) from err
            for name, arr in zip(step.outputs, arrays, strict=False):
                env[name] = arr
            # Drop the loop's own references too, so a dead value's memory goes back now
            # rather than after the next kernel has run.
            del args, arrays
            for name in step.frees:
                del env[name]
            if hook is not None:
                hook(step, view)
        return {
            name: _own(plan.constants[name] if name in plan.constants else env[name])
            for name in plan.outputs
        }

    # ------------------------------------------------------------ planning

    def _initial_env(self, plan: Plan, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        unknown = [k for k in feeds if k not in self._inputs]
        missing = [k for k in plan.feeds if k not in feeds]
        if unknown or missing:
            problems = [f"missing input {k!r}" for k in missing]
            problems += [f"unexpected feed {k!r}: the graph has no such input" for k in unknown]
            sig = ", ".join(repr(v) for v in self.graph.inputs)
            raise FeedError("; ".join(problems) + f". The graph's inputs: {sig}")
        return {k: np.asarray(feeds[k]) for k in plan.feeds}

    def _build_plan(self, outputs: tuple[str, ...]) -> Plan:
        unknown = [n for n in outputs if n not in self._values]
        if unknown:
            raise FeedError(
                f"requested output(s) {unknown} are not values of graph {self.graph.name!r}; "
                f"its outputs are {list(self.output_names)}"
            )
        keep = set(outputs)
        nodes = _needed_nodes(self.graph.nodes, keep)
        last_use: dict[str, int] = {}
        for i, node in enumerate(nodes):
            for x in node.inputs:
                if x is not None and x.const is None:
                    last_use[x.name] = i
        dying: list[list[str]] = [[] for _ in nodes]
        for name, i in last_use.items():
            if name not in keep:
                dying[i].append(name)
        read = set(last_use) | keep
        steps = []
        for i, node in enumerate(nodes):
            unread = [v.name for v in node.outputs if v.name not in read]
            steps.append(
                Step(
                    node=node,
                    kernel=node.op.kernel,
                    args=tuple(self._arg(x) for x in node.inputs),
                    attrs=MappingProxyType(dict(node.attrs)),
                    outputs=tuple(v.name for v in node.outputs),
                    frees=tuple(sorted(set(dying[i] + unread))),
                    expect=tuple(_expected(v) for v in node.outputs),
                )
            )
        feeds = {name for name in [*last_use, *outputs] if name in self._inputs}
        return Plan(
            steps=tuple(steps),
            feeds=tuple(v.name for v in self.graph.inputs if v.name in feeds),
            outputs=outputs,
            constants=MappingProxyType({n: self._consts[n] for n in outputs if n in self._consts}),
        )

    def _arg(self, x: Value | None) -> _Arg:
        if x is None:
            return (None, None)
        if x.const is not None:
            return (None, self._consts[x.name])
        return (x.name, None)


def _needed_nodes(nodes: Sequence[Node], wanted: set[str]) -> list[Node]:
    """The nodes ``wanted`` values depend on, in graph order."""
    need = set(wanted)
    picked = []
    for node in reversed(nodes):
        if any(v.name in need for v in node.outputs):
            picked.append(node)
            need.update(x.name for x in node.inputs if x is not None)
    picked.reverse()
    return picked


def _read_only(array: np.ndarray | None) -> np.ndarray:
    assert array is not None, "an initializer holds an array"
    view = np.asarray(array).view()
    view.flags.writeable = False
    return view


def _own(array: np.ndarray) -> np.ndarray:
    """``array``, or a copy when it is (a view of) a read-only constant."""
    return array if array.flags.writeable else array.copy()


def _as_arrays(result: Any, n_outputs: int) -> list[np.ndarray]:
    items = result if isinstance(result, tuple | list) else (result,)
    if len(items) < n_outputs:
        raise NodeExecutionError(f"kernel returned {len(items)} result(s), expected {n_outputs}")
    return [np.asarray(r) for r in items]


def _expected(v: Value) -> _Expect:
    """``v``'s type as (dtype, rank, static dims by axis), precomputed for fast checks."""
    shape = v.type.shape
    if shape is None:
        return (v.type.dtype, None, ())
    return (v.type.dtype, len(shape), tuple((a, d) for a, d in enumerate(shape) if type(d) is int))


def _check_types(step: Step, arrays: Sequence[np.ndarray]) -> None:
    for (dtype, rank, fixed), arr, v in zip(step.expect, arrays, step.node.outputs, strict=False):
        if arr.dtype != dtype or (
            rank is not None and (arr.ndim != rank or any(arr.shape[a] != d for a, d in fixed))
        ):
            raise NodeExecutionError(
                f"kernel result for %{v.name} is {arr.dtype}{list(arr.shape)}, but the node "
                f"declares {v.type}; the op's kernel and its shape rule disagree"
            )


def _describe(name: str, arr: Any) -> str:
    if arr is None:
        return "_"
    a = np.asarray(arr)
    text = f"{name}: {a.dtype}{list(a.shape)}"
    if a.dtype.kind in "iub" and a.size <= 8:
        text += f" = {a.reshape(-1).tolist() if a.ndim else a.item()}"
    return text


def _node_error(node: Node, args: Sequence[Any], err: Exception) -> GraphcapError:
    """``err`` re-raised with the failing node's text form, inputs and source line."""
    source = node.meta.get("source")
    where = f" (traced at {source})" if source else ""
    inputs = ", ".join(
        _describe("_" if x is None else f"%{x.name}", a)
        for x, a in zip(node.inputs, args, strict=True)
    )
    message = (
        f"node {node.name!r} ({node.op.op_type}){where} failed while running graph "
        f"{node.graph.name!r}:\n  {node.format()}\n  inputs: {inputs}\n"
        f"  {type(err).__name__}: {err}"
    )
    new: GraphcapError = NodeExecutionError(message)
    if isinstance(err, GraphcapError) and not isinstance(err, NodeExecutionError):
        with contextlib.suppress(TypeError):  # an error class with another constructor
            new = type(err)(message)
    new.node = node  # type: ignore[attr-defined]
    new.source = source  # type: ignore[attr-defined]
    return new
