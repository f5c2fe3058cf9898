"""Eager reverse-mode autodiff: the tape node, grad modes, ``backward`` and ``grad``.

Every recorded op leaves a :class:`Node` that points at its input tensors. ``backward``
walks the nodes reachable from the roots in reverse topological order and calls each op's
registry vjp rule on eager tensors. With ``create_graph=True`` the rules run with grad mode
on, so the gradients are themselves recorded and can be differentiated again.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ir.errors import GraphcapError, ShapeError, UnsupportedOpError
from ir.ops.registry import VjpContext
from tracer import _state
from tracer._node import Node
from tracer._tensor_base import TensorBase, rebased, wrap

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
    results = _run(roots, grads, targets, retain, create_graph)
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
            if root.ndim != 0:
                raise RuntimeError(
                    f"grad can be implicitly created only for scalar outputs; tensor {i} has "
                    f"shape {root.shape}: pass a gradient of that shape"
                )
            g = wrap(np.ones((), dtype=root.dtype))
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
        if node.inputs is None:
            raise RuntimeError(
                f"trying to backward through the graph a second time (at op {node.op.op_type}); "
                "its saved values were freed: pass retain_graph=True to the first backward"
            )
        for i, x in enumerate(node.inputs):
            if not isinstance(x, TensorBase):
                continue
            child = x._node if x._version is None else _recorded(node, i, x)[0]
            if child is not None and child not in seen:
                stack.append((child, False))
    order.reverse()
    return order


def _run(
    roots: list[Tensor],
    root_grads: list[Tensor],
    targets: list[Tensor] | None,
    retain_graph: bool,
    create_graph: bool,
) -> _Results:
    results = _Results()
    pending: dict[Node, list[Any]] = {}
    for r, g in zip(roots, root_grads, strict=True):
        if r._node is None:
            _add_leaf(results.leaves, r, g)
        else:
            _add_pending(pending, r._node, r._index, g)
    wanted = None if targets is None else {(t._node, t._index) for t in targets if t._node}
    order = _toposort(roots)
    with _GradMode(create_graph):
        for node in order:
            grads_out = pending.pop(node, None)
            if grads_out is None:
                continue
            if wanted is not None:
                for i, g in enumerate(grads_out):
                    if g is not None and (node, i) in wanted:
                        results.captured[(node, i)] = g
            _step(node, grads_out, create_graph, results, pending)
            if not retain_graph:
                node.inputs = None
                node.out_data = None
    return results


def _step(
    node: Node,
    grads_out: list[Any],
    create_graph: bool,
    results: _Results,
    pending: dict[Node, list[Any]],
) -> None:
    """Call ``node``'s vjp rule and route each input gradient onward."""
    op, inputs = node.op, node.inputs
    assert inputs is not None
    if op.vjp is None:
        raise UnsupportedOpError(f"{op.op_type} is not differentiable: {op.no_vjp}")
    for g in grads_out:  # not list.count(None): it would compare tensors with ==
        if g is not None:
            break
    else:
        return
    needs = []
    edges: list[Any] = []  # each input's (node, index) when recorded, None for leaves
    modified = False  # some input tensor was changed in place at some point
    for i, x in enumerate(inputs):
        if not isinstance(x, TensorBase):
            needs.append(False)
            edges.append(None)
        elif x._version is None:
            needs.append(x._requires_grad)
            edges.append(x._node and (x._node, x._index))
        else:
            modified = True
            child, index, requires_grad = _recorded(node, i, x)
            needs.append(requires_grad)
            edges.append(child and (child, index))
    if modified or node.out_versions is not None:
        _check_versions(node, needs)
    ctx = VjpContext(lambda: _saved_outputs(node, create_graph), needs)
    grad_out: Any = grads_out[0] if len(grads_out) == 1 else tuple(grads_out)
    attrs = {**op.attrs, **node.attrs} if op.attrs else node.attrs
    in_grads = op.vjp(ctx, grad_out, *inputs, **attrs)
    for i, (x, g) in enumerate(zip(inputs, in_grads, strict=False)):
        if g is None or not needs[i]:
            continue
        if not isinstance(g, TensorBase):  # a rule may return a constant, e.g. zeros
            g = wrap(np.asarray(g))
        if g.shape != x.shape:
            raise GraphcapError(
                f"vjp of {op.op_type} returned a gradient of shape {tuple(g.shape)} for input "
                f"{i} of shape {tuple(x.shape)}; this is a bug in the op's vjp rule"
            )
        edge = edges[i]
        if edge is None:
            _add_leaf(results.leaves, x, g)
        else:
            _add_pending(pending, edge[0], edge[1], g)


def _recorded(node: Node, i: int, x: TensorBase) -> tuple[Node | None, int, bool]:
    """Input ``i``'s history when ``node`` was recorded, before later in-place rebases."""
    seen = 0 if node.versions is None else node.versions[i]
    assert x._version is not None
    if x._version[0] == seen:
        return x._node, x._index, x._requires_grad
    return rebased(x, seen)


def _saved_outputs(node: Node, create_graph: bool) -> tuple[Tensor, ...]:
    assert node.out_data is not None
    outs = []
    for i, data in enumerate(node.out_data):
        t = wrap(data)
        if create_graph and np.issubdtype(data.dtype, np.floating):
            # The output, reconnected to the node that made it, so rules that read
            # outputs (Exp, Softmax) still differentiate to second order.
            t._node, t._index, t._requires_grad = node, i, True
        outs.append(t)
    return tuple(outs)


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
    slots[index] = g if slots[index] is None else slots[index] + g


def _add_leaf(leaves: dict[Tensor, Tensor], leaf: Tensor, g: Tensor) -> None:
    prev = leaves.get(leaf)
    leaves[leaf] = g if prev is None else prev + g


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
