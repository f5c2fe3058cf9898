"""Neural-network ops with native ONNX forms.

Softmax, LogSoftmax, LayerNormalization, Dropout and OneHot: runtimes fuse and accelerate
these, so they are registry ops with their own vjp rules rather than compositions.

Dropout draws its masks from a module-level ``np.random.Generator``; :func:`set_seed`
reseeds it (``tracer.manual_seed`` calls it), so eager training runs are reproducible.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.dtypes import FLOATING, bool_, from_onnx, to_onnx
from ir.ops.grad_util import reduced_count, shape_of, unbroadcast
from ir.ops.infer import check_dtype, const_ints, normalize_axis, same_dtype
from ir.ops.registry import (
    AttrInput,
    InferContext,
    Legacy,
    OpDef,
    VjpContext,
    ints,
    op,
    register,
    scalar,
)
from ir.types import Dim, TensorType

# ---------------------------------------------------------------- Softmax / LogSoftmax


def _softmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    # Shifting by the max keeps exp from overflowing; the result is unchanged. A row that is
    # all -inf gives NaN, as ONNX's and NumPy's arithmetic do: no warning for that.
    with np.errstate(invalid="ignore"):
        e = np.exp(x - np.max(x, axis=axis, keepdims=True))
        return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(x: np.ndarray, *, axis: int = -1) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        shifted = x - np.max(x, axis=axis, keepdims=True)
        return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def _softmax_infer(ctx: InferContext, x: TensorType, *, axis: int = -1) -> TensorType:
    check_dtype(x, FLOATING, "Softmax input")
    if x.shape is not None:
        normalize_axis(axis, len(x.shape))
    return x


def _softmax_vjp(ctx: VjpContext, g: Any, x: Any, *, axis: int) -> list[Any]:
    y = ctx.outputs[0]
    dot = op.ReduceSum(op.Mul(g, y), ints([axis]), keepdims=1)
    return [op.Mul(y, op.Sub(g, dot))]


def _log_softmax_vjp(ctx: VjpContext, g: Any, x: Any, *, axis: int) -> list[Any]:
    y = ctx.outputs[0]
    total = op.ReduceSum(g, ints([axis]), keepdims=1)
    return [op.Sub(g, op.Mul(op.Exp(y), total))]


# Before 13 both ran on their input flattened to 2-D around `axis` (default 1).
_FLAT_2D = Legacy(flat_2d=13)
register(
    OpDef("Softmax", 13, _softmax, _softmax_infer, _softmax_vjp, saves="outputs", legacy=_FLAT_2D)
)
register(
    OpDef(
        "LogSoftmax",
        13,
        _log_softmax,
        _softmax_infer,
        _log_softmax_vjp,
        saves="outputs",
        legacy=_FLAT_2D,
    )
)


# ---------------------------------------------------------------- LayerNormalization

_EPSILON = float(np.float32(1e-5))  # ONNX stores the default as a float32


def _layer_norm(
    x: np.ndarray,
    scale: np.ndarray,
    b: np.ndarray | None = None,
    *,
    axis: int = -1,
    epsilon: float = _EPSILON,
    stash_type: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    axes = tuple(range(normalize_axis(axis, x.ndim), x.ndim))
    stash = from_onnx(stash_type)
    # Statistics in the wider of X's and the stash type (onnxruntime keeps float64 inputs
    # in float64); Mean and InvStdDev come out in the stash type, as the schema says.
    work = x.astype(np.promote_types(x.dtype, stash), copy=False)
    mean = np.mean(work, axis=axes, keepdims=True)
    d = work - mean
    inv = 1 / np.sqrt(np.mean(d * d, axis=axes, keepdims=True) + epsilon)
    y = (d * inv).astype(x.dtype) * scale
    if b is not None:
        y = y + b
    return y.astype(x.dtype, copy=False), mean.astype(stash), inv.astype(stash)


def _layer_norm_infer(
    ctx: InferContext,
    x: TensorType,
    scale: TensorType,
    b: TensorType | None = None,
    *,
    axis: int = -1,
    epsilon: float = _EPSILON,
    stash_type: int = 1,
) -> tuple[TensorType, TensorType, TensorType]:
    dtype = same_dtype((x, scale, b), "LayerNormalization X, Scale and B")
    check_dtype(x, FLOATING, "LayerNormalization X")
    stash = from_onnx(stash_type)
    if x.shape is None:
        return TensorType(dtype, None), TensorType(stash, None), TensorType(stash, None)
    a = normalize_axis(axis, len(x.shape))
    stats = TensorType(stash, tuple(d if i < a else 1 for i, d in enumerate(x.shape)))
    return TensorType(dtype, x.shape), stats, stats


def _layer_norm_vjp(
    ctx: VjpContext,
    grads: Any,
    x: Any,
    scale: Any,
    b: Any = None,
    *,
    axis: int,
    epsilon: float,
    stash_type: int,
) -> list[Any]:
    gy, g_mean, g_inv = grads
    axes = ints(list(range(axis % x.ndim, x.ndim)))
    # The statistics are recomputed from x with registry ops, in x's dtype, so this rule
    # differentiates again (second order) and never reads stash-typed outputs.
    d = op.Sub(x, op.ReduceMean(x, axes, keepdims=1))
    var = op.ReduceMean(op.Mul(d, d), axes, keepdims=1)
    inv = op.Reciprocal(op.Sqrt(op.Add(var, scalar(epsilon, x))))
    xhat = op.Mul(d, inv)
    gx = gscale = gb = None
    if gy is not None:
        if ctx.needs_input_grad[1]:
            gscale = unbroadcast(op.Mul(gy, xhat), scale)
        if b is not None and ctx.needs_input_grad[2]:
            gb = unbroadcast(gy, b)
        if ctx.needs_input_grad[0]:
            gx = _normalized_grad(op.Mul(gy, scale), xhat, inv, axes)
    if ctx.needs_input_grad[0] and (g_mean is not None or g_inv is not None):
        gx = _stats_grad(gx, g_mean, g_inv, x, xhat, inv, axes)
    return [gx, gscale, gb]


def _normalized_grad(g_hat: Any, xhat: Any, inv: Any, axes: Any) -> Any:
    """Gradient through ``xhat = (x - mean) * inv``, given the gradient of ``xhat``."""
    m1 = op.ReduceMean(g_hat, axes, keepdims=1)
    m2 = op.ReduceMean(op.Mul(g_hat, xhat), axes, keepdims=1)
    return op.Mul(inv, op.Sub(op.Sub(g_hat, m1), op.Mul(xhat, m2)))


def _stats_grad(gx: Any, g_mean: Any, g_inv: Any, x: Any, xhat: Any, inv: Any, axes: Any) -> Any:
    """Add the gradients reaching x through the Mean and InvStdDev outputs."""
    # d mean / dx = 1/n; d inv / dx = -inv^2 * xhat / n.
    n = reduced_count(x, axes)
    terms = []
    if g_mean is not None:
        terms.append(op.Div(_as(g_mean, x), n))
    if g_inv is not None:
        terms.append(op.Neg(op.Div(op.Mul(op.Mul(_as(g_inv, x), op.Mul(inv, inv)), xhat), n)))
    for t in terms:
        gx = op.Expand(t, shape_of(x)) if gx is None else op.Add(gx, t)
    return gx


def _as(v: Any, like: Any) -> Any:
    return v if v.dtype == like.dtype else op.Cast(v, to=to_onnx(like.dtype))


register(
    OpDef("LayerNormalization", 17, _layer_norm, _layer_norm_infer, _layer_norm_vjp, num_outputs=3)
)


# ---------------------------------------------------------------- Dropout

_rng = np.random.default_rng()


def set_seed(seed: int) -> None:
    """Reseed the generator Dropout draws its masks from (``tracer.manual_seed`` calls it)."""
    global _rng
    _rng = np.random.default_rng(seed)


def _dropout(
    data: np.ndarray,
    ratio: np.ndarray | None = None,
    training_mode: np.ndarray | None = None,
    *,
    seed: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    p = 0.5 if ratio is None else float(np.asarray(ratio))
    if training_mode is None or not bool(np.asarray(training_mode)) or p == 0:
        return data, np.ones(data.shape, dtype=bool_)  # inference: the identity
    if not 0 <= p <= 1:
        raise ValueError(f"Dropout: ratio must be in [0, 1), got {p}")
    # A seed attribute makes the mask a function of the seed (as onnx.reference does), so
    # a node with one is deterministic; otherwise the module's generator advances.
    gen = _rng if seed is None else np.random.default_rng(seed)
    mask = gen.random(data.shape) >= p
    scale = np.asarray(1 / (1 - p) if p < 1 else 0, dtype=data.dtype)
    return np.where(mask, data * scale, np.zeros((), data.dtype)), mask


def _dropout_infer(
    ctx: InferContext,
    data: TensorType,
    ratio: TensorType | None = None,
    training_mode: TensorType | None = None,
    *,
    seed: int | None = None,
) -> tuple[TensorType, TensorType]:
    check_dtype(data, FLOATING, "Dropout data")
    if ratio is not None:
        check_dtype(ratio, FLOATING, "Dropout ratio")
    if training_mode is not None:
        check_dtype(training_mode, (bool_,), "Dropout training_mode")
    return data, TensorType(bool_, data.shape)


def _dropout_vjp(
    ctx: VjpContext,
    grads: Any,
    data: Any,
    ratio: Any = None,
    training_mode: Any = None,
    *,
    seed: int | None,
) -> list[Any]:
    g = grads[0]
    if g is None or not ctx.needs_input_grad[0]:
        return [None, None, None]
    if training_mode is None:
        return [g, None, None]
    # The same mask and scale as the forward; the scale is 1 when training_mode is false
    # (then the mask is all true). ratio and training_mode get no gradient.
    one = scalar(1, g)
    r = scalar(0.5, g) if ratio is None else _as(ratio, g)
    scale = op.Where(training_mode, op.Div(one, op.Sub(one, r)), one)
    return [op.Where(ctx.outputs[1], op.Mul(g, scale), scalar(0, g)), None, None]


register(
    OpDef(
        "Dropout",
        13,
        _dropout,
        _dropout_infer,
        _dropout_vjp,
        num_outputs=2,
        view=True,
        random=True,
        legacy=Legacy(inputs=(AttrInput("ratio", 1, "float", 12),), dropped=(("is_test", 7),)),
    )
)


# ---------------------------------------------------------------- OneHot


def _one_hot(
    indices: np.ndarray, depth: np.ndarray, values: np.ndarray, *, axis: int = -1
) -> np.ndarray:
    flat = np.asarray(depth).reshape(-1)
    if flat.size != 1 or flat[0] < 1:
        raise ValueError(f"OneHot: depth must be one positive number, got {flat.tolist()}")
    n = int(flat[0])
    a = normalize_axis(axis, indices.ndim + 1)
    # Float indices truncate toward zero; negative ones count from the end; the rest of
    # the out-of-range ones match no position (all off_value).
    idx = np.trunc(indices).astype(np.int64) if indices.dtype.kind == "f" else indices
    idx = np.where(idx < 0, idx + n, idx).astype(np.int64)
    positions = np.arange(n).reshape((n,) + (1,) * (indices.ndim - a))
    hot = np.expand_dims(idx, a) == positions
    pair = np.asarray(values).reshape(-1)
    if pair.size != 2:
        raise ValueError(f"OneHot: values must be [off_value, on_value], got {pair.size} values")
    off, on = pair
    return np.where(hot, on, off)


def _one_hot_infer(
    ctx: InferContext, indices: TensorType, depth: TensorType, values: TensorType, *, axis: int = -1
) -> TensorType:
    if indices.shape is None:
        return TensorType(values.dtype, None)
    a = normalize_axis(axis, len(indices.shape) + 1)
    n = const_ints(ctx, 1)
    dim: Dim = n[0] if n is not None and len(n) == 1 else None
    dims = list(indices.shape)
    dims.insert(a, dim)
    return TensorType(values.dtype, tuple(dims))


def _one_hot_vjp(
    ctx: VjpContext, g: Any, indices: Any, depth: Any, values: Any, *, axis: int
) -> list[Any]:
    if not ctx.needs_input_grad[2]:
        return [None, None, None]
    # One-hot of the on/off state of each output slot, a trailing axis of 2: summing g
    # against it gives [d off_value, d on_value]. indices and depth have no gradient.
    # Indices and depth as int64 (ONNX casts other types to int64 anyway): onnxruntime has
    # no OneHot kernel for e.g. float or int32 indices with int64 values.
    i64 = to_onnx(np.dtype(np.int64))
    indices = indices if indices.dtype == np.int64 else op.Cast(indices, to=i64)
    depth = depth if depth.dtype == np.int64 else op.Cast(depth, to=i64)
    state = op.OneHot(indices, depth, ints([0, 1]), axis=axis)
    split = op.OneHot(state, ints(2), np.asarray([0, 1], dtype=g.dtype), axis=-1)
    weighted = op.Mul(op.Unsqueeze(g, ints([-1])), split)
    summed = op.ReduceSum(weighted, ints(list(range(g.ndim))), keepdims=0)
    return [None, None, op.Reshape(summed, shape_of(values))]


register(OpDef("OneHot", 11, _one_hot, _one_hot_infer, _one_hot_vjp))
