"""Shape ops: Reshape, Transpose, Expand, Squeeze, Unsqueeze, Shape and friends.

Shape-like operands (``shape``, ``axes``, ...) are int64 inputs as in opset 13+, so a traced
graph can compute them from ``Shape``. Kernels accept any int sequence for them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir import dtypes as D
from ir.errors import ShapeError
from ir.ops.grad_util import shape_of, unbroadcast
from ir.ops.infer import broadcast_shapes, const_ints, normalize_axis
from ir.ops.registry import InferContext, OpDef, VjpContext, op, register
from ir.types import Dim, TensorType

# ---------------------------------------------------------------- Reshape


def _reshape_target(in_shape: tuple[Dim, ...], shape: tuple[int, ...], allowzero: int) -> tuple[Dim, ...]:
    out: list[Dim] = [
        in_shape[i] if (s == 0 and not allowzero and i < len(in_shape)) else s
        for i, s in enumerate(shape)
    ]
    if -1 in out:
        known = [d for d in out if d != -1]
        if all(isinstance(d, int) for d in (*in_shape, *known)):
            total = int(np.prod([d for d in in_shape], dtype=np.int64))
            rest = int(np.prod([d for d in known], dtype=np.int64))
            if rest == 0 or total % rest:
                raise ShapeError(f"cannot reshape {list(in_shape)} into {list(shape)}")
            out[out.index(-1)] = total // rest
        else:
            out[out.index(-1)] = None
    return tuple(out)


def _reshape(x: np.ndarray, shape: Any, *, allowzero: int = 0) -> np.ndarray:
    target = _reshape_target(x.shape, tuple(int(s) for s in np.asarray(shape).reshape(-1)), allowzero)
    return np.reshape(x, target)


def _reshape_infer(ctx: InferContext, x: TensorType, shape: TensorType, *, allowzero: int = 0) -> TensorType:
    value = const_ints(ctx, 1)
    if value is None or x.shape is None:
        rank = shape.shape[0] if shape.shape is not None and shape.shape else None
        return TensorType(x.dtype, None if not isinstance(rank, int) else (None,) * rank)
    return TensorType(x.dtype, _reshape_target(x.shape, value, allowzero))


def _reshape_vjp(ctx: VjpContext, g: Any, x: Any, shape: Any, *, allowzero: int) -> list[Any]:
    return [op.Reshape(g, shape_of(x)), None]


register(OpDef("Reshape", 19, _reshape, _reshape_infer, _reshape_vjp, saves="none", view=True))


# ---------------------------------------------------------------- Expand


def _expand(x: np.ndarray, shape: Any) -> np.ndarray:
    target = tuple(int(s) for s in np.asarray(shape).reshape(-1))
    return np.broadcast_to(x, np.broadcast_shapes(x.shape, target))


def _expand_infer(ctx: InferContext, x: TensorType, shape: TensorType) -> TensorType:
    value = const_ints(ctx, 1)
    if value is None or x.shape is None:
        return TensorType(x.dtype, None)
    return TensorType(x.dtype, broadcast_shapes(x.shape, value))


def _expand_vjp(ctx: VjpContext, g: Any, x: Any, shape: Any) -> list[Any]:
    return [unbroadcast(g, x), None]


register(OpDef("Expand", 13, _expand, _expand_infer, _expand_vjp, saves="none", view=True))


# ---------------------------------------------------------------- Squeeze / Unsqueeze


def _squeeze(x: np.ndarray, axes: Any = None) -> np.ndarray:
    if axes is None:
        return np.squeeze(x)
    picked = tuple(normalize_axis(int(a), x.ndim) for a in np.asarray(axes).reshape(-1))
    for a in picked:
        if x.shape[a] != 1:
            raise ShapeError(f"Squeeze: axis {a} has size {x.shape[a]}, expected 1")
    return np.squeeze(x, axis=picked)


def _squeeze_infer(ctx: InferContext, x: TensorType, axes: TensorType | None = None) -> TensorType:
    if x.shape is None:
        return TensorType(x.dtype, None)
    if axes is None:
        return TensorType(x.dtype, tuple(d for d in x.shape if d != 1))
    value = const_ints(ctx, 1)
    if value is None:
        return TensorType(x.dtype, None)
    drop = {normalize_axis(a, len(x.shape)) for a in value}
    return TensorType(x.dtype, tuple(d for i, d in enumerate(x.shape) if i not in drop))


def _squeeze_vjp(ctx: VjpContext, g: Any, x: Any, axes: Any = None) -> list[Any]:
    return [op.Reshape(g, shape_of(x)), None]


def _unsqueeze_axes(rank: int, axes: tuple[int, ...]) -> list[int]:
    out_rank = rank + len(axes)
    picked = sorted(normalize_axis(a, out_rank) for a in axes)
    if len(set(picked)) != len(picked):
        raise ShapeError(f"Unsqueeze: repeated axes {list(axes)}")
    return picked


def _unsqueeze(x: np.ndarray, axes: Any) -> np.ndarray:
    picked = _unsqueeze_axes(x.ndim, tuple(int(a) for a in np.asarray(axes).reshape(-1)))
    return np.expand_dims(x, tuple(picked))


def _unsqueeze_infer(ctx: InferContext, x: TensorType, axes: TensorType) -> TensorType:
    value = const_ints(ctx, 1)
    if value is None or x.shape is None:
        return TensorType(x.dtype, None)
    picked = set(_unsqueeze_axes(len(x.shape), value))
    dims = iter(x.shape)
    return TensorType(x.dtype, tuple(1 if i in picked else next(dims) for i in range(len(x.shape) + len(value))))


def _unsqueeze_vjp(ctx: VjpContext, g: Any, x: Any, axes: Any) -> list[Any]:
    return [op.Squeeze(g, axes), None]


register(OpDef("Squeeze", 13, _squeeze, _squeeze_infer, _squeeze_vjp, saves="none", view=True))
register(OpDef("Unsqueeze", 13, _unsqueeze, _unsqueeze_infer, _unsqueeze_vjp, saves="none", view=True))


# ---------------------------------------------------------------- Shape


def _shape(x: np.ndarray, *, start: int = 0, end: int | None = None) -> np.ndarray:
    return np.asarray(x.shape[start:end], dtype=np.int64)


def _shape_infer(ctx: InferContext, x: TensorType, *, start: int = 0, end: int | None = None) -> TensorType:
    if x.shape is None:
        return TensorType(D.int64, (None,))
    return TensorType(D.int64, (len(x.shape[start:end]),))


register(OpDef("Shape", 19, _shape, _shape_infer, None, no_vjp="its output is an integer shape"))


# ---------------------------------------------------------------- Transpose


def _perm(rank: int, perm: Any) -> tuple[int, ...]:
    return tuple(range(rank - 1, -1, -1)) if perm is None else tuple(int(p) for p in perm)


def _transpose(x: np.ndarray, *, perm: Any = None) -> np.ndarray:
    return np.transpose(x, _perm(x.ndim, perm))


def _transpose_infer(ctx: InferContext, x: TensorType, *, perm: Any = None) -> TensorType:
    if x.shape is None:
        return TensorType(x.dtype, None)
    order = _perm(len(x.shape), perm)
    if sorted(order) != list(range(len(x.shape))):
        raise ShapeError(f"Transpose: perm {list(order)} is not a permutation of rank {len(x.shape)}")
    return TensorType(x.dtype, tuple(x.shape[p] for p in order))


def _transpose_vjp(ctx: VjpContext, g: Any, x: Any, *, perm: Any) -> list[Any]:
    order = _perm(x.ndim, perm)
    return [op.Transpose(g, perm=[int(i) for i in np.argsort(order)])]


register(OpDef("Transpose", 13, _transpose, _transpose_infer, _transpose_vjp, saves="none", view=True))
