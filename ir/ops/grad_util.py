"""Helpers for vjp rules, written with registry ops so they run on any interpreter.

Values here are whatever the running interpreter hands a rule (eager tensors or graph
values): they expose ``.shape`` (ints or symbols), ``.ndim`` and ``.dtype``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.dtypes import to_onnx
from ir.ops.registry import ints, op


def known_value(x: Any) -> np.ndarray | None:
    """The value of an operand (axes, pads, scales...) when a rule can read it now, else None.

    Constants and eager tensors have one (``np.asarray`` reads a tensor without a copy); a
    graph value whose value is unknown does not.
    """
    if x is None:
        return None
    try:
        value = np.asarray(x)
    except (TypeError, ValueError):
        return None
    return None if value.dtype == object else value


def shape_of(x: Any) -> Any:
    """``x``'s shape as an int64 op input: a constant when static, else a ``Shape`` op."""
    if all(isinstance(d, int) for d in x.shape):
        return ints(x.shape)
    return op.Shape(x)


def unbroadcast(grad: Any, x: Any) -> Any:
    """Sum ``grad`` over the axes along which ``x`` was broadcast, giving ``x``'s shape.

    A symbolic dimension of ``x`` is taken to be other than 1, as broadcasting a symbol
    that is 1 at run time cannot be told apart at capture time.
    """
    g_shape, x_shape = tuple(grad.shape), tuple(x.shape)
    if g_shape == x_shape:
        return grad
    lead = len(g_shape) - len(x_shape)
    axes = list(range(lead)) + [
        lead + i for i, d in enumerate(x_shape) if d == 1 and g_shape[lead + i] != 1
    ]
    if axes:
        grad = op.ReduceSum(grad, ints(axes), keepdims=1)
    if lead:
        grad = op.Squeeze(grad, ints(list(range(lead))))
    return grad


def expand_reduced(grad: Any, x: Any, axes: np.ndarray | None, keepdims: int) -> Any:
    """Broadcast the gradient of a reduction over ``axes`` back to ``x``'s shape."""
    if not keepdims:
        rank = x.ndim
        if axes is None or len(np.asarray(axes).reshape(-1)) == 0:
            restore = list(range(rank))
        else:
            restore = sorted(int(a) % rank for a in np.asarray(axes).reshape(-1))
        grad = op.Unsqueeze(grad, ints(restore))
    return op.Expand(grad, shape_of(x))


def reduced_count(x: Any, axes: np.ndarray | None) -> Any:
    """Number of elements a mean over ``axes`` divides by, as a 0-d value of ``x``'s dtype."""
    rank = x.ndim
    picked = (
        range(rank)
        if axes is None or np.asarray(axes).size == 0
        else [int(a) % rank for a in np.asarray(axes).reshape(-1)]
    )
    dims = [x.shape[a] for a in picked]
    if all(isinstance(d, int) for d in dims):
        return np.asarray(float(np.prod(dims)), dtype=x.dtype)
    sizes = op.Gather(op.Shape(x), ints(list(picked)), axis=0)
    return op.Cast(op.ReduceProd(sizes, keepdims=0), to=to_onnx(x.dtype))
