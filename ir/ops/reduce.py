"""Reductions, scans and selection: ReduceSum and friends, ArgMax/ArgMin, CumSum, TopK.

Reduce ops follow opset 18: ``axes`` is an optional int64 input; absent or empty axes reduce
over every axis unless ``noop_with_empty_axes=1``, which makes the op an identity.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.ops.grad_util import expand_reduced
from ir.ops.infer import const_ints, normalize_axis
from ir.ops.registry import InferContext, OpDef, VjpContext, register
from ir.types import TensorType


def reduce_axes(x: np.ndarray, axes: Any, noop_with_empty_axes: int) -> tuple[int, ...] | None:
    """Axes a reduce kernel works on; None means "no reduction" (the noop case)."""
    picked = () if axes is None else tuple(int(a) for a in np.asarray(axes).reshape(-1))
    if not picked:
        return None if noop_with_empty_axes else tuple(range(x.ndim))
    return tuple(normalize_axis(a, x.ndim) for a in picked)


def reduce_infer(
    ctx: InferContext, x: TensorType, axes: TensorType | None = None, *, keepdims: int = 1,
    noop_with_empty_axes: int = 0, dtype: Any = None,
) -> TensorType:
    """Shape rule shared by the Reduce* ops; ``dtype`` overrides the output dtype."""
    out_dtype = x.dtype if dtype is None else dtype
    if x.shape is None:
        return TensorType(out_dtype, None)
    picked = () if axes is None else const_ints(ctx, 1)
    if picked is None:
        shape = None if not keepdims else tuple(None for _ in x.shape)
        return TensorType(out_dtype, shape)
    rank = len(x.shape)
    if not picked:
        if noop_with_empty_axes:
            return TensorType(out_dtype, x.shape)
        picked = tuple(range(rank))
    reduced = {normalize_axis(a, rank) for a in picked}
    if keepdims:
        return TensorType(out_dtype, tuple(1 if i in reduced else d for i, d in enumerate(x.shape)))
    return TensorType(out_dtype, tuple(d for i, d in enumerate(x.shape) if i not in reduced))


def _reduce_sum(x: np.ndarray, axes: np.ndarray | None = None, *, keepdims: int = 1,
                noop_with_empty_axes: int = 0) -> np.ndarray:
    picked = reduce_axes(x, axes, noop_with_empty_axes)
    if picked is None:
        return x
    return np.sum(x, axis=picked, keepdims=bool(keepdims), dtype=x.dtype)


def _reduce_sum_vjp(ctx: VjpContext, g: Any, x: Any, axes: Any = None, *, keepdims: int,
                    noop_with_empty_axes: int) -> list[Any]:
    if noop_with_empty_axes and (axes is None or np.asarray(axes).size == 0):
        return [g, None]
    return [expand_reduced(g, x, axes, keepdims), None]


register(OpDef("ReduceSum", 13, _reduce_sum, reduce_infer, _reduce_sum_vjp, saves="none"))
