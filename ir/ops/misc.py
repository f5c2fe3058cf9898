"""Assorted tensor ops.

CastLike, EyeLike, Hardmax, Compress, DepthToSpace, SpaceToDepth and LpNormalization.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.errors import ShapeError
from ir.ops.elementwise import require_floating
from ir.ops.grad_util import shape_of
from ir.ops.infer import check_dtype, normalize_axis
from ir.ops.registry import InferContext, Legacy, OpDef, VjpContext, get, ints, op, register, scalar
from ir.types import Dim, TensorType

# ---------------------------------------------------------------- CastLike


def _cast_like(x: np.ndarray, like: np.ndarray, *, saturate: int = 1) -> np.ndarray:
    del saturate  # only meaningful for float8 targets, which graphcap does not support
    return np.asarray(x).astype(like.dtype)  # always a copy: eager tensors never alias


def _cast_like_infer(
    ctx: InferContext, x: TensorType, like: TensorType, *, saturate: int = 1
) -> TensorType:
    return TensorType(like.dtype, x.shape)


def _cast_like_vjp(ctx: VjpContext, g: Any, x: Any, like: Any, *, saturate: int) -> list[Any]:
    # The gradient is cast back to the input's dtype; the target only lends its dtype.
    if not D.is_floating(x.dtype) or not ctx.needs_input_grad[0]:
        return [None, None]
    return [op.Cast(g, to=D.to_onnx(x.dtype)), None]


register(OpDef("CastLike", 19, _cast_like, _cast_like_infer, _cast_like_vjp, saves="none"))


# ---------------------------------------------------------------- EyeLike


def _eye_like(x: np.ndarray, *, dtype: int | None = None, k: int = 0) -> np.ndarray:
    if x.ndim != 2:
        raise ShapeError(f"EyeLike: the input must have rank 2, got shape {list(x.shape)}")
    out = x.dtype if dtype is None else D.from_onnx(dtype)
    return np.eye(x.shape[0], x.shape[1], k=k, dtype=out)


def _eye_like_infer(
    ctx: InferContext, x: TensorType, *, dtype: int | None = None, k: int = 0
) -> TensorType:
    if x.shape is not None and len(x.shape) != 2:
        raise ShapeError(f"EyeLike: the input must have rank 2, got shape {list(x.shape)}")
    return TensorType(x.dtype if dtype is None else D.from_onnx(dtype), x.shape or (None, None))


register(
    OpDef(
        "EyeLike",
        9,
        _eye_like,
        _eye_like_infer,
        None,
        no_vjp="its output depends only on its input's shape",
        shape_only=True,
    )
)


# ---------------------------------------------------------------- Hardmax


def _hardmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    require_floating(x)
    a = normalize_axis(axis, x.ndim, "Hardmax axis")
    out = np.zeros_like(x)
    if x.size:
        first = np.argmax(x, axis=a, keepdims=True)  # the first of equal maxima, as ONNX
        np.put_along_axis(out, first, 1, axis=a)
    return out


def _hardmax_infer(ctx: InferContext, x: TensorType, *, axis: int = -1) -> TensorType:
    check_dtype(x, D.FLOATING, "Hardmax's input")
    if x.shape is not None:
        normalize_axis(axis, len(x.shape), "Hardmax axis")
    return x


register(
    OpDef(
        "Hardmax",
        13,
        _hardmax,
        _hardmax_infer,
        None,
        no_vjp="its output is piecewise constant (a one-hot of the argmax)",
        legacy=Legacy(flat_2d=13),
    )
)


# ---------------------------------------------------------------- Compress


def _compress(x: np.ndarray, condition: np.ndarray, *, axis: int | None = None) -> np.ndarray:
    if condition.dtype != np.bool_ or condition.ndim != 1:
        raise TypeError(f"Compress: condition must be a 1-D bool tensor, got {condition.dtype}")
    if axis is None:
        return np.compress(condition, x.reshape(-1))
    return np.compress(condition, x, axis=normalize_axis(axis, x.ndim, "Compress axis"))


def _compress_infer(
    ctx: InferContext, x: TensorType, condition: TensorType, *, axis: int | None = None
) -> TensorType:
    check_dtype(condition, {D.bool_}, "Compress's condition")
    value = ctx.value(1)
    kept: Dim = None if value is None else int(np.count_nonzero(value))
    if axis is None:
        return TensorType(x.dtype, (kept,))
    if x.shape is None:
        return TensorType(x.dtype, None)
    a = normalize_axis(axis, len(x.shape), "Compress axis")
    return TensorType(x.dtype, tuple(kept if i == a else d for i, d in enumerate(x.shape)))


def _compress_vjp(
    ctx: VjpContext, g: Any, x: Any, condition: Any, *, axis: int | None
) -> list[Any]:
    # Compress is Gather with the indices of the true entries: Gather's rule scatters back.
    index = op.Reshape(op.NonZero(condition), ints([-1]))
    gather_ctx = VjpContext((), (True, False))
    gather_vjp = get("Gather").vjp
    assert gather_vjp is not None
    if axis is None:
        flat = op.Reshape(x, ints([-1]))
        (gx, _) = gather_vjp(gather_ctx, g, flat, index, axis=0)
        return [op.Reshape(gx, shape_of(x)), None]
    return [gather_vjp(gather_ctx, g, x, index, axis=axis)[0], None]


register(OpDef("Compress", 11, _compress, _compress_infer, _compress_vjp))


# ---------------------------------------------------------------- DepthToSpace, SpaceToDepth


def _check_nchw(op_type: str, x: Any) -> None:
    if len(x.shape) != 4:
        raise ShapeError(f"{op_type}: the input must have rank 4 (N, C, H, W), got {x.shape}")


def _scaled(d: Dim, factor: int, divide: bool, op_type: str) -> Dim:
    if not isinstance(d, int):
        return None
    if divide and d % factor:
        raise ShapeError(f"{op_type}: dimension {d} is not divisible by {factor}")
    return d // factor if divide else d * factor


def _depth_to_space(x: np.ndarray, *, blocksize: int, mode: str = "DCR") -> np.ndarray:
    _check_nchw("DepthToSpace", x)
    b, c, h, w = x.shape
    bs = blocksize
    _scaled(c, bs * bs, True, "DepthToSpace")
    if mode == "DCR":
        tmp = np.transpose(x.reshape(b, bs, bs, c // bs**2, h, w), (0, 3, 4, 1, 5, 2))
    elif mode == "CRD":
        tmp = np.transpose(x.reshape(b, c // bs**2, bs, bs, h, w), (0, 1, 4, 2, 5, 3))
    else:
        raise ValueError(f"DepthToSpace: mode must be 'DCR' or 'CRD', got {mode!r}")
    return tmp.reshape(b, c // bs**2, h * bs, w * bs)


def _depth_to_space_infer(
    ctx: InferContext, x: TensorType, *, blocksize: int, mode: str = "DCR"
) -> TensorType:
    if x.shape is None:
        return TensorType(x.dtype, (None,) * 4)
    _check_nchw("DepthToSpace", x)
    b, c, h, w = x.shape
    bs, name = blocksize, "DepthToSpace"
    dims = (
        _scaled(c, bs * bs, True, name),
        _scaled(h, bs, False, name),
        _scaled(w, bs, False, name),
    )
    return TensorType(x.dtype, (b, *dims))


def _depth_to_space_vjp(ctx: VjpContext, g: Any, x: Any, *, blocksize: int, mode: str) -> list[Any]:
    s = op.SpaceToDepth(g, blocksize=blocksize)  # the exact inverse of DCR
    if mode == "CRD":
        # CRD(x) = DCR(P x), P moving channel k*bs^2 + r to r*C/bs^2 + k: undo P on s.
        s = op.Reshape(op.Transpose(s, perm=[0, 2, 3, 1]), ints([0, 0, 0, blocksize**2, -1]))
        s = op.Reshape(op.Transpose(s, perm=[0, 1, 2, 4, 3]), ints([0, 0, 0, -1]))
        s = op.Transpose(s, perm=[0, 3, 1, 2])
    return [s]


def _space_to_depth(x: np.ndarray, *, blocksize: int) -> np.ndarray:
    _check_nchw("SpaceToDepth", x)
    b, c, h, w = x.shape
    bs = blocksize
    _scaled(h, bs, True, "SpaceToDepth")
    _scaled(w, bs, True, "SpaceToDepth")
    tmp = np.transpose(x.reshape(b, c, h // bs, bs, w // bs, bs), (0, 3, 5, 1, 2, 4))
    return tmp.reshape(b, c * bs * bs, h // bs, w // bs)


def _space_to_depth_infer(ctx: InferContext, x: TensorType, *, blocksize: int) -> TensorType:
    if x.shape is None:
        return TensorType(x.dtype, (None,) * 4)
    _check_nchw("SpaceToDepth", x)
    b, c, h, w = x.shape
    bs, name = blocksize, "SpaceToDepth"
    dims = (
        _scaled(c, bs * bs, False, name),
        _scaled(h, bs, True, name),
        _scaled(w, bs, True, name),
    )
    return TensorType(x.dtype, (b, *dims))


def _space_to_depth_vjp(ctx: VjpContext, g: Any, x: Any, *, blocksize: int) -> list[Any]:
    return [op.DepthToSpace(g, blocksize=blocksize, mode="DCR")]


register(
    OpDef(
        "DepthToSpace",
        13,
        _depth_to_space,
        _depth_to_space_infer,
        _depth_to_space_vjp,
        saves="none",
    )
)
register(
    OpDef(
        "SpaceToDepth",
        13,
        _space_to_depth,
        _space_to_depth_infer,
        _space_to_depth_vjp,
        saves="none",
    )
)


# ---------------------------------------------------------------- LpNormalization


def _lp_normalization(x: np.ndarray, *, axis: int = -1, p: int = 2) -> np.ndarray:
    require_floating(x)
    a = normalize_axis(axis, x.ndim, "LpNormalization axis")
    if p == 1:
        norm = np.sum(np.abs(x), axis=a, keepdims=True)
    elif p == 2:
        norm = np.sqrt(np.sum(x * x, axis=a, keepdims=True))
    else:
        raise ValueError(f"LpNormalization: p must be 1 or 2, got {p}")
    zero = norm == 0  # a zero norm gives zeros (ONNX), not 0/0
    return np.where(zero, x.dtype.type(0), x / np.where(zero, x.dtype.type(1), norm))


def _lp_normalization_infer(
    ctx: InferContext, x: TensorType, *, axis: int = -1, p: int = 2
) -> TensorType:
    check_dtype(x, D.FLOATING, "LpNormalization's input")
    if p not in (1, 2):
        raise ValueError(f"LpNormalization: p must be 1 or 2, got {p}")
    if x.shape is not None:
        normalize_axis(axis, len(x.shape), "LpNormalization axis")
    return x


def _lp_normalization_vjp(ctx: VjpContext, g: Any, x: Any, *, axis: int, p: int) -> list[Any]:
    # y = x / n: dx = (g - n' * sum(g y)) / n, with n' = y (p = 2) or sign(x) (p = 1).
    axes = ints([axis])
    norm = (op.ReduceL2 if p == 2 else op.ReduceL1)(x, axes, keepdims=1)
    # A zero norm is taken as 1 there (the output is 0): the subgradient g, finite.
    safe = op.Where(op.Equal(norm, scalar(0, norm)), scalar(1, norm), norm)
    y = op.Div(x, safe)
    slope = y if p == 2 else op.Sign(x)
    dot = op.ReduceSum(op.Mul(g, y), axes, keepdims=1)
    return [op.Div(op.Sub(g, op.Mul(slope, dot)), safe)]


register(
    OpDef("LpNormalization", 1, _lp_normalization, _lp_normalization_infer, _lp_normalization_vjp)
)
