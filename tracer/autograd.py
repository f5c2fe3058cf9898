"""Eager reverse-mode autodiff: the tape node, grad modes, ``backward`` and ``grad``.

Every recorded op leaves a :class:`Node` holding its inputs and, per input, the edge its
gradient takes (the producing node and output, or the leaf), fixed when the op ran.
``backward`` walks the nodes reachable from the roots in reverse topological order and
calls each op's registry vjp rule on eager tensors; given ``inputs``, it runs only the
nodes on a path to them. With ``create_graph=True`` the rules run with grad mode on, so
the gradients are themselves recorded and can be differentiated again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ir.errors import GraphcapError, ShapeError, UnsupportedOpError
from tracer import _state
from tracer._hooks import (
    POST_ACCUMULATE,
    final_callbacks,
    hooked_leaves,
    run_post_accumulate_hooks,
)
from tracer._node import Node
from tracer._tensor_base import TensorBase, wrap

if TYPE_CHECKING:
    from tracer.tensor import Tensor

# ---------------------------------------------------------------- grad modes


class _GradMode(contextlib.ContextDecorator):
    """Context manager and decorator that sets grad mode and restores it on exit."""

    def __init__(self, enabled: bool) -> None:
        self._enabled = enabled
        self._prev: list[bool] = []

    def __enter__(self) -> None:
        self._prev.append(_state.grad_enabled)
        _state.grad_enabled = self._enabled

    def __exit__(self, *exc: object) -> None:
        _state.grad_enabled = self._prev.pop()


def no_grad(func: Callable[..., Any] | None = None) -> Any:
    """Disable recording for autograd inside a ``with`` block or a decorated function.

    Works as ``with no_grad():``, ``@no_grad()`` and ``@no_grad``.
    """
    return _GradMode(False) if func is None else _GradMode(False)(func)


def enable_grad(func: Callable[..., Any] | None = None) -> Any:
    """Enable recording for autograd inside a ``with`` block or a decorated function.

    Works as ``with enable_grad():``, ``@enable_grad()`` and ``@enable_grad``.
    """
    return _GradMode(True) if func is None else _GradMode(True)(func)


class set_grad_enabled(_GradMode):  # noqa: N801 - PyTorch's name
    """Set grad mode now; as a context manager or decorator, restore the previous mode on exit.

    ``set_grad_enabled(False)`` called alone switches recording off until switched back;
    ``with set_grad_enabled(m):`` and ``@set_grad_enabled(m)`` scope the mode as PyTorch does.
    """

    def __init__(self, mode: bool) -> None:
        super().__init__(bool(mode))
        self._before: bool | None = _state.grad_enabled
        _state.grad_enabled = bool(mode)

    def __enter__(self) -> None:
        if self._before is None:
            super().__enter__()
        else:  # entered right after construction, which already set the mode
            self._prev.append(self._before)
            self._before = None

    def __call__(self, func: Callable[..., Any]) -> Any:
        """Decorate ``func`` so that it runs in this grad mode."""
        if self._before is not None:  # decorating must not change the mode outside calls
            _state.grad_enabled = self._before
            self._before = None
        return super().__call__(func)


def is_grad_enabled() -> bool:
    """Whether ops are currently recorded for autograd."""
    return _state.grad_enabled


# ---------------------------------------------------------------- the engine


def backward(
    tensors: Tensor | Sequence[Tensor],
    grad_tensors: Tensor | Sequence[Tensor | None] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    inputs: Sequence[Tensor] | None = None,
) -> None:
    """Accumulate into ``.grad`` of leaves the gradients of ``tensors``.

    Args:
        tensors: roots to differentiate.
        grad_tensors: the gradient of each root; may be None only for scalar roots.
        retain_graph: keep the graph for another backward (default: ``create_graph``).
        create_graph: record the backward pass, for higher-order gradients.
        inputs: accumulate only into these tensors' ``.grad``.

    Raises:
        RuntimeError: a root does not require grad, or the graph was already freed.
    """
    roots, grads = _roots_and_grads(tensors, grad_tensors)
    retain = create_graph if retain_graph is None else retain_graph
    targets = None if inputs is None else list(inputs)
    with final_callbacks():  # what hooks queued runs once every .grad below is written
        # Leaves with post-accumulate hooks get .grad (and their hooks) during the walk, at
        # their last use; the others, all at the end.
        results = _run(roots, grads, targets, retain, create_graph, accumulate=True)
        leaves = targets if targets is not None else list(results.leaves)
        for leaf in leaves:
            g = results.grad_of(leaf)
            if g is not None:
                _accumulate(leaf, g, create_graph)


def grad(
    outputs: Tensor | Sequence[Tensor],
    inputs: Tensor | Sequence[Tensor],
    grad_outputs: Tensor | Sequence[Tensor | None] | None = None,
    retain_graph: bool | None = None,
    create_graph: bool = False,
    allow_unused: bool = False,
) -> tuple[Tensor | None, ...]:
    """Return the gradients of ``outputs`` with respect to ``inputs``, leaving ``.grad`` alone.

    Raises:
        RuntimeError: an input the outputs do not depend on, unless ``allow_unused``.
    """
    roots, grads = _roots_and_grads(outputs, grad_outputs)
    targets: list[Tensor] = [inputs] if isinstance(inputs, TensorBase) else list(inputs)
    retain = create_graph if retain_graph is None else retain_graph
    results = _run(roots, grads, targets, retain, create_graph)
    out = []
    for i, t in enumerate(targets):
        g = results.grad_of(t)
        if g is None and not allow_unused:
            raise RuntimeError(
                f"input {i} of autograd.grad was not used to compute the outputs; "
                "pass allow_unused=True to get None for it"
            )
        out.append(g)
    return tuple(out)


def _roots_and_grads(
    tensors: Tensor | Sequence[Tensor], grad_tensors: Any
) -> tuple[list[Tensor], list[Tensor]]:
    roots = [tensors] if isinstance(tensors, TensorBase) else list(tensors)
    if grad_tensors is None or isinstance(grad_tensors, TensorBase):
        given: list[Any] = [grad_tensors] * len(roots)
    else:
        given = list(grad_tensors)
    if len(given) != len(roots):
        raise RuntimeError(f"got {len(given)} gradients for {len(roots)} tensors")
    grads = []
    for i, (root, g) in enumerate(zip(roots, given, strict=True)):
        if not root.requires_grad:
            raise RuntimeError(
                f"tensor {i} does not require grad and has no grad_fn; "
                "did you compute it under no_grad() or from tensors without requires_grad?"
            )
        if g is None:
            # As PyTorch: any one-element root (a scalar, or a [1] loss) gets ones.
            if root._data.size != 1:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; tensor {i} has "
                    f"shape {root.shape}: pass a gradient of that shape"
                )
            g = wrap(np.ones(root._data.shape, dtype=root.dtype))
        elif not isinstance(g, TensorBase):
            g = wrap(np.asarray(g, dtype=root.dtype))
        if tuple(g.shape) != tuple(root.shape):
            raise ShapeError(f"gradient {i} has shape {g.shape}; expected {root.shape}")
        grads.append(g)
    return roots, grads


class _Results:
    """Gradients found by one engine run, for leaves and for requested non-leaf tensors."""

    def __init__(self) -> None:
        self.leaves: dict[Tensor, Tensor] = {}
        self.captured: dict[tuple[Node, int], Tensor] = {}

    def grad_of(self, t: Tensor) -> Tensor | None:
        if t._node is None:
            return self.leaves.get(t)
        return self.captured.get((t._node, t._index))


def _toposort(roots: list[Tensor]) -> list[Node]:
    """Nodes reachable from ``roots``, each after every node that consumes its outputs."""
    order: list[Node] = []
    seen: set[Node] = set()  # nodes hash by identity
    stack: list[tuple[Node, bool]] = [(r._node, False) for r in roots if r._node is not None]
    while stack:
        node, expanded = stack.pop()
        if expanded:
            order.append(node)
            continue
        if node in seen:
            continue
        seen.add(node)
        stack.append((node, True))
        if node.edges is None:
            raise RuntimeError(
                f"trying to backward through the graph a second time (at op {node.op.op_type}); "
                "its saved values were freed: pass retain_graph=True to the first backward"
            )
        # Last input pushed first: the data path (usually the first input) is expanded first
        # and so runs last, and short parameter branches (W.t()) run early, so their
        # gradients, and post-accumulate hooks such as DDP's all-reduce, come early.
        for edge in reversed(node.edges):
            if type(edge) is tuple and edge[0] not in seen:
                stack.append((edge[0], False))  # noqa: PERF401 - a generator costs more here
    order.reverse()
    return order


def _prune(
    order: list[Node], targets: list[Tensor], wanted: set[tuple[Node, int]]
) -> dict[Node, list[bool]]:
    """The nodes on a path to a requested tensor, each with the inputs that lead there.

    ``order`` lists consumers first, so walking it backwards meets every producer before
    the nodes that read its outputs. A node missing from the result cannot reach any
    requested tensor, so its vjp never needs to run.
    """
    leaves = {id(t) for t in targets if t._node is None}
    live: dict[Node, list[bool]] = {}
    for node in reversed(order):
        assert node.edges is not None
        needs = []
        for edge in node.edges:
            if edge is None:
                needs.append(False)
            elif type(edge) is tuple:
                needs.append(edge in wanted or edge[0] in live)
            else:
                needs.append(id(edge) in leaves)
        if True in needs:
            live[node] = needs
    return live


def _final_uses(order: list[Node], targets: list[Tensor] | None) -> dict[Node | None, list[Any]]:
    """Hooked leaves this backward accumulates into, by the last node that sends them a gradient.

    ``order`` is the execution order, so the last node with an edge to a leaf is the one
    after which the leaf's gradient is final. Key None: leaves that only roots feed.
    """
    allowed = None if targets is None else {id(t) for t in targets if t._node is None}
    last: dict[Any, Node | None] = {}
    for node in order:
        assert node.edges is not None
        for edge in node.edges:
            if edge is not None and type(edge) is not tuple and id(edge) in POST_ACCUMULATE:
                last[edge] = node
    for leaf in hooked_leaves():
        last.setdefault(leaf, None)  # a root itself, or unreached (then it gets nothing)
    finals: dict[Node | None, list[Any]] = {}
    for leaf, final in last.items():
        if allowed is None or id(leaf) in allowed:
            finals.setdefault(final, []).append(leaf)
    return finals


def _finalize(leaves: list[Any], found: dict[Tensor, Tensor], create_graph: bool) -> None:
    """Accumulate each leaf's gradient found so far (now final) and call its hooks."""
    for leaf in leaves:
        g = found.pop(leaf, None)
        if g is not None:
            _accumulate(leaf, g, create_graph)
            run_post_accumulate_hooks(leaf)


def _run(
    roots: list[Tensor],
    root_grads: list[Tensor],
    targets: list[Tensor] | None,
    retain_graph: bool,
    create_graph: bool,
    accumulate: bool = False,
) -> _Results:
    """One engine walk; with ``accumulate`` (``backward``), hooked leaves are finished in it."""
    results = _Results()
    pending: dict[Node, list[Any]] = {}
    for r, g in zip(roots, root_grads, strict=True):
        if r._node is None:
            _add_leaf(results.leaves, r, g)
        else:
            _add_pending(pending, r._node, r._index, g)
    order = _toposort(roots)
    wanted: set[tuple[Node, int]] | None = None
    live: dict[Node, list[bool]] | None = None
    if targets is not None:
        wanted = {(t._node, t._index) for t in targets if t._node is not None}
        live = _prune(order, targets, wanted)
    finals = _final_uses(order, targets) if accumulate and POST_ACCUMULATE else None
    with _GradMode(create_graph):
        if finals is not None and None in finals:
            _finalize(finals.pop(None), results.leaves, create_graph)
        for node in order:
            grads_out = pending.pop(node, None)  # None: every gradient sent here was None
            if grads_out is not None:
                needs = None
                if live is not None:
                    assert wanted is not None
                    for i, g in enumerate(grads_out):
                        if g is not None and (node, i) in wanted:
                            results.captured[(node, i)] = g
                    needs = live.get(node)  # None: no path from here to a requested tensor
                if live is None or needs is not None:
                    _step(node, grads_out, needs, results.leaves, pending)
                    if not retain_graph:
                        node.inputs = node.edges = node.out_data = None
            if finals is not None and node in finals:
                _finalize(finals.pop(node), results.leaves, create_graph)
    return results


def _step(
    node: Node,
    grads_out: list[Any],
    needs: list[bool] | None,
    leaves: dict[Tensor, Tensor],
    pending: dict[Node, list[Any]],
) -> None:
    """Call ``node``'s vjp rule and route each input gradient along its edge.

    ``needs`` says which inputs lead to a requested tensor (None: every input that
    required grad when the op ran). ``grads_out`` holds at least one gradient.
    """
    op, inputs, edges = node.op, node.inputs, node.edges
    assert inputs is not None and edges is not None
    if op.vjp is None:
        raise UnsupportedOpError(f"{op.op_type} is not differentiable: {op.no_vjp}")
    # Indexed loops, not zip(..., strict=): keyword arguments make zip slow on this path.
    recorded = []  # which inputs required grad when the op ran
    modified = False  # a tensor the node saw was changed in place since it was recorded
    versions = node.versions
    for i, x in enumerate(inputs):
        recorded.append(edges[i] is not None)
        if isinstance(x, TensorBase):
            cell = x._version
            if cell is not None and cell[0] != (0 if versions is None else versions[i]):
                modified = True
    if node.out_versions is not None:
        for cell, expected in node.out_versions:
            if cell[0] != expected:
                modified = True
    if modified:  # whether the rule reads what changed is _check_versions' call
        _check_versions(node, recorded)
    node.needs_input_grad = needs = recorded if needs is None else needs
    grad_out = grads_out[0] if len(grads_out) == 1 else tuple(grads_out)
    attrs = node.attrs
    if not op.attrs:
        in_grads = op.vjp(node, grad_out, *inputs)
    elif len(attrs) == len(op.attrs):  # every attribute given: no merged copy
        in_grads = op.vjp(node, grad_out, *inputs, **attrs)
    else:  # fill in the defaults the call left out
        in_grads = op.vjp(node, grad_out, *inputs, **{**op.attrs, **attrs})
    # min(): a rule may also return gradients for optional inputs left out.
    for i in range(min(len(needs), len(in_grads))):
        g = in_grads[i]
        if g is None or not needs[i]:
            continue
        if not isinstance(g, TensorBase):  # a rule may return a constant, e.g. zeros
            g = wrap(np.asarray(g))
        if g._data.shape != inputs[i]._data.shape:
            _raise_bad_shape(op.op_type, i, g, inputs[i])
        edge = edges[i]
        if type(edge) is tuple:
            producer, index = edge
            slots = pending.get(producer)
            if slots is None:
                assert producer.out_data is not None
                slots = pending[producer] = [None] * len(producer.out_data)
            prev = slots[index]
            slots[index] = g if prev is None else _sum(prev, g)
        elif edge._requires_grad:  # a leaf; as in PyTorch, one frozen since gets nothing
            _add_leaf(leaves, edge, g)


def _raise_bad_shape(op_type: str, i: int, g: TensorBase, x: TensorBase) -> None:
    raise GraphcapError(
        f"vjp of {op_type} returned a gradient of shape {tuple(g.shape)} for input {i} of "
        f"shape {tuple(x.shape)}; this is a bug in the op's vjp rule"
    )


def _check_versions(node: Node, needs: list[bool]) -> None:
    """Raise when a tensor the vjp rule reads was modified in place after recording."""
    saves, inputs = node.op.saves, node.inputs
    assert inputs is not None
    if saves in ("all", "others"):
        for i, x in enumerate(inputs):
            if saves == "others" and not any(n for j, n in enumerate(needs) if j != i):
                continue
            cell = getattr(x, "_version", None)
            if cell is None:
                continue
            expected = 0 if node.versions is None else node.versions[i]
            if cell[0] != expected:
                _raise_modified(node, f"input {i}", cell[0], expected)
    if node.out_versions is not None:
        for i, (cell, expected) in enumerate(node.out_versions):
            if cell[0] != expected:
                _raise_modified(node, f"output {i}", cell[0], expected)


def _raise_modified(node: Node, which: str, now: int, expected: int) -> None:
    raise RuntimeError(
        f"one of the tensors needed for gradient computation has been modified by an in-place "
        f"operation: {which} of {node.op.op_type} is at version {now}; expected version "
        f"{expected}. Hint: use the out-of-place op, or .clone() the tensor before changing it"
    )


def _add_pending(pending: dict[Node, list[Any]], node: Node, index: int, g: Tensor) -> None:
    slots = pending.get(node)
    if slots is None:
        n = len(node.out_data) if node.out_data is not None else index + 1
        slots = pending[node] = [None] * n
    prev = slots[index]
    slots[index] = g if prev is None else _sum(prev, g)


def _add_leaf(leaves: dict[Tensor, Tensor], leaf: Tensor, g: Tensor) -> None:
    prev = leaves.get(leaf)
    leaves[leaf] = g if prev is None else _sum(prev, g)


def _sum(a: Any, b: Any) -> Any:
    """``a + b`` for two gradients of one tensor; in NumPy unless the sum is recorded."""
    if _state.grad_enabled or _state.tracer is not None or a._data.dtype != b._data.dtype:
        return a + b  # create_graph, a trace recording the backward, or promotion
    return wrap(a._data + b._data)


def _accumulate(leaf: Tensor, g: Tensor, create_graph: bool) -> None:
    """Add ``g`` to ``leaf.grad``; the stored gradient never aliases another tensor."""
    if not create_graph:
        g = wrap(np.array(g._data, copy=True))
    if leaf.grad is None:
        leaf.grad = g
    elif create_graph:
        leaf.grad = leaf.grad + g
    else:
        np.add(leaf.grad._data, g._data, out=leaf.grad._data)


# PyTorch's legacy wrapper (``torch.autograd.Variable``), kept apart in tracer/_variable.py.
from tracer._variable import Variable  # noqa: E402, F401
