"""Reductions, scans and selection: ReduceSum and friends, ArgMax/ArgMin, CumSum, TopK.

Reduce ops follow opset 18: ``axes`` is an optional int64 input; absent or empty axes reduce
over every axis unless ``noop_with_empty_axes=1``, which makes the op an identity. Kernels
return the input's dtype (integer means truncate toward zero, as ONNX runtimes do). A
reduction over an empty set gives the reduction's identity (ReduceMax: -inf, or the dtype's
minimum, or False; ReduceLogSum/LogSumExp: -inf; ReduceProd: 1; sums and norms: 0);
ReduceMean's is undefined in ONNX: NaN for floats, as NumPy, and 0 for integers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.dtypes import int64, to_onnx
from ir.errors import ShapeError
from ir.ops.grad_util import expand_reduced, reduced_count, shape_of
from ir.ops.infer import const_ints, normalize_axis
from ir.ops.registry import AttrInput, InferContext, Legacy, OpDef, VjpContext, op, register, scalar
from ir.types import Dim, TensorType


def reduce_axes(x: np.ndarray, axes: Any, noop_with_empty_axes: int) -> tuple[int, ...] | None:
    """Axes a reduce kernel works on; None means "no reduction" (the noop case)."""
    picked = () if axes is None else tuple(int(a) for a in np.asarray(axes).reshape(-1))
    if not picked:
        return None if noop_with_empty_axes else tuple(range(x.ndim))
    return tuple(normalize_axis(a, x.ndim) for a in picked)


def reduce_infer(
    ctx: InferContext,
    x: TensorType,
    axes: TensorType | None = None,
    *,
    keepdims: int = 1,
    noop_with_empty_axes: int = 0,
    dtype: Any = None,
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


def _is_noop(axes: Any, noop_with_empty_axes: int) -> bool:
    return bool(noop_with_empty_axes) and (axes is None or np.asarray(axes).size == 0)


def _reducer(fn: Any, noop: Any = None) -> Any:
    """A Reduce* kernel from ``fn(x, axis, keepdims) -> array``, cast back to ``x.dtype``.

    ``noop(x)`` is the op's elementwise part, what it computes when it reduces over nothing
    (ONNX: ReduceL2 then gives ``|x|``); the identity when None.
    """

    def kernel(
        x: np.ndarray,
        axes: np.ndarray | None = None,
        *,
        keepdims: int = 1,
        noop_with_empty_axes: int = 0,
    ) -> np.ndarray:
        picked = reduce_axes(x, axes, noop_with_empty_axes)
        if picked is None:
            return x if noop is None else noop(x)
        return np.asarray(fn(x, picked, bool(keepdims))).astype(x.dtype, copy=False)

    kernel.__name__ = f"_reduce_{fn.__name__.strip('_')}"
    return kernel


def _sum(x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    return np.sum(x, axis=axis, keepdims=keepdims, dtype=x.dtype)


def _mean(x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    if x.dtype.kind in "iu":  # integer mean: sum, then divide truncating toward zero
        total = np.sum(x, axis=axis, keepdims=keepdims, dtype=x.dtype)
        count = int(np.prod([x.shape[a] for a in axis]))
        return np.trunc(total / count) if count else total
    with np.errstate(invalid="ignore", divide="ignore"):  # an empty mean is NaN, quietly
        return np.mean(x, axis=axis, keepdims=keepdims, dtype=x.dtype)


def _lowest(dtype: np.dtype) -> Any:
    """The identity of max: -inf, the integer minimum, or False."""
    if dtype.kind == "f":
        return -np.inf
    return False if dtype.kind == "b" else np.iinfo(dtype).min


def _highest(dtype: np.dtype) -> Any:
    """The identity of min: +inf, the integer maximum, or True."""
    if dtype.kind == "f":
        return np.inf
    return True if dtype.kind == "b" else np.iinfo(dtype).max


def _max(x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    if x.size == 0:  # NumPy refuses empty maxima; ONNX wants the identity
        return np.max(x, axis=axis, keepdims=keepdims, initial=_lowest(x.dtype))
    return np.max(x, axis=axis, keepdims=keepdims)


def _min(x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    if x.size == 0:
        return np.min(x, axis=axis, keepdims=keepdims, initial=_highest(x.dtype))
    return np.min(x, axis=axis, keepdims=keepdims)


def _prod(x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    return np.prod(x, axis=axis, keepdims=keepdims, dtype=x.dtype)


def _l2(x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    return np.sqrt(np.sum(x * x, axis=axis, keepdims=keepdims))


def _l1(x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    return np.sum(np.abs(x), axis=axis, keepdims=keepdims, dtype=x.dtype)


def _sum_square(x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    return np.sum(x * x, axis=axis, keepdims=keepdims, dtype=x.dtype)


def _log_sum(x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    with np.errstate(divide="ignore"):  # log 0 = -inf: the empty set's value
        return np.log(np.sum(x, axis=axis, keepdims=keepdims, dtype=x.dtype))


def _square(x: np.ndarray) -> np.ndarray:
    return x * x


def _log(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore"):
        return np.log(x).astype(x.dtype, copy=False)


def _logsumexp(x: np.ndarray, axis: tuple[int, ...], keepdims: bool) -> np.ndarray:
    # Shift by the max so exp never overflows; an all -inf slice keeps shift 0 (gives -inf).
    m = _max(x, axis, True)
    m = np.where(np.isfinite(m), m, np.zeros((), dtype=m.dtype))
    with np.errstate(divide="ignore"):
        out = np.log(np.sum(np.exp(x - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


# ---------------------------------------------------------------- vjp rules


def _kept(g: Any, x: Any, axes: Any, keepdims: int) -> Any:
    """The gradient broadcast back to ``x``'s shape (see ``expand_reduced``)."""
    return expand_reduced(g, x, axes, keepdims)


def _reduce_sum_vjp(
    ctx: VjpContext, g: Any, x: Any, axes: Any = None, *, keepdims: int, noop_with_empty_axes: int
) -> list[Any]:
    if _is_noop(axes, noop_with_empty_axes):
        return [g, None]
    return [_kept(g, x, axes, keepdims), None]


def _reduce_mean_vjp(
    ctx: VjpContext, g: Any, x: Any, axes: Any = None, *, keepdims: int, noop_with_empty_axes: int
) -> list[Any]:
    if _is_noop(axes, noop_with_empty_axes):
        return [g, None]
    return [op.Div(_kept(g, x, axes, keepdims), reduced_count(x, axes)), None]


def _extremum_vjp(reduce_op: str) -> Any:
    """The vjp of ReduceMax/ReduceMin: ties share the gradient equally (as PyTorch's amax)."""

    def vjp(
        ctx: VjpContext,
        g: Any,
        x: Any,
        axes: Any = None,
        *,
        keepdims: int,
        noop_with_empty_axes: int,
    ) -> list[Any]:
        if _is_noop(axes, noop_with_empty_axes):
            return [g, None]
        # Recomputed from x (not read from ctx.outputs) so saves="all" is the whole truth.
        best = getattr(op, reduce_op)(x, axes, keepdims=1)
        hit = op.Cast(op.Equal(x, best), to=to_onnx(g.dtype))
        ties = op.ReduceSum(hit, axes, keepdims=1)
        return [op.Mul(_kept(g, x, axes, keepdims), op.Div(hit, ties)), None]

    return vjp


def _reduce_prod_vjp(
    ctx: VjpContext, g: Any, x: Any, axes: Any = None, *, keepdims: int, noop_with_empty_axes: int
) -> list[Any]:
    if _is_noop(axes, noop_with_empty_axes):
        return [g, None]
    # d prod / d x_i = product of the others, exact with zeros: prod/x_i off the zeros (0 when
    # a zero is elsewhere, with the right derivative); at a lone zero, the others' product.
    # Second order is exact where a slice holds at most one zero.
    zero, one = scalar(0, x), scalar(1, x)
    is_zero = op.Equal(x, zero)
    nonzero = op.Where(is_zero, one, x)
    zeros = op.ReduceSum(op.Cast(is_zero, to=to_onnx(x.dtype)), axes, keepdims=1)
    prod_nz = op.ReduceProd(nonzero, axes, keepdims=1)
    at_zero = op.Where(op.Equal(zeros, one), prod_nz, zero)
    elsewhere = op.Div(op.ReduceProd(x, axes, keepdims=1), nonzero)
    return [op.Mul(_kept(g, x, axes, keepdims), op.Where(is_zero, at_zero, elsewhere)), None]


def _reduce_l2_vjp(
    ctx: VjpContext, g: Any, x: Any, axes: Any = None, *, keepdims: int, noop_with_empty_axes: int
) -> list[Any]:
    if _is_noop(axes, noop_with_empty_axes):
        return [op.Mul(g, op.Sign(x)), None]
    norm = op.ReduceL2(x, axes, keepdims=1)
    # The subgradient 0 where the norm is 0 (as PyTorch), instead of 0/0.
    safe = op.Where(op.Equal(norm, scalar(0, norm)), scalar(1, norm), norm)
    return [op.Mul(_kept(g, x, axes, keepdims), op.Div(x, safe)), None]


def _reduce_logsumexp_vjp(
    ctx: VjpContext, g: Any, x: Any, axes: Any = None, *, keepdims: int, noop_with_empty_axes: int
) -> list[Any]:
    if _is_noop(axes, noop_with_empty_axes):
        return [g, None]
    lse = op.ReduceLogSumExp(x, axes, keepdims=1)
    return [op.Mul(_kept(g, x, axes, keepdims), op.Exp(op.Sub(x, lse))), None]


def _pointwise_vjp(slope: Any) -> Any:
    """The vjp of a sum of ``f(x)`` (ReduceL1, ReduceSumSquare): ``g * f'(x)``, expanded."""

    def vjp(
        ctx: VjpContext,
        g: Any,
        x: Any,
        axes: Any = None,
        *,
        keepdims: int,
        noop_with_empty_axes: int,
    ) -> list[Any]:
        if not _is_noop(axes, noop_with_empty_axes):
            g = _kept(g, x, axes, keepdims)
        return [op.Mul(g, slope(x)), None]

    return vjp


def _sign(x: Any) -> Any:
    return op.Sign(x)


def _twice(x: Any) -> Any:
    return op.Mul(x, scalar(2, x))


def _reduce_log_sum_vjp(
    ctx: VjpContext, g: Any, x: Any, axes: Any = None, *, keepdims: int, noop_with_empty_axes: int
) -> list[Any]:
    if _is_noop(axes, noop_with_empty_axes):
        return [op.Div(g, x), None]
    return [op.Div(_kept(g, x, axes, keepdims), op.ReduceSum(x, axes, keepdims=1)), None]


def _reduction(
    op_type: str, since: int, kernel: Any, vjp: Any, axes_until: int = 18, **kw: Any
) -> None:
    """Register a Reduce* op, whose ``axes`` was an attribute before opset ``axes_until``."""
    legacy = Legacy(inputs=(AttrInput("axes", 1, "ints", axes_until),))
    register(OpDef(op_type, since, kernel, reduce_infer, vjp, legacy=legacy, **kw))


_reduction("ReduceSum", 13, _reducer(_sum), _reduce_sum_vjp, axes_until=13, saves="none")
_reduction("ReduceMean", 18, _reducer(_mean), _reduce_mean_vjp, saves="none")
_reduction("ReduceMax", 20, _reducer(_max), _extremum_vjp("ReduceMax"))
_reduction("ReduceMin", 20, _reducer(_min), _extremum_vjp("ReduceMin"))
_reduction("ReduceProd", 18, _reducer(_prod), _reduce_prod_vjp)
_reduction("ReduceL2", 18, _reducer(_l2, np.abs), _reduce_l2_vjp)
_reduction("ReduceLogSumExp", 18, _reducer(_logsumexp), _reduce_logsumexp_vjp)
_reduction("ReduceL1", 18, _reducer(_l1, np.abs), _pointwise_vjp(_sign))
_reduction("ReduceSumSquare", 18, _reducer(_sum_square, _square), _pointwise_vjp(_twice))
_reduction("ReduceLogSum", 18, _reducer(_log_sum, _log), _reduce_log_sum_vjp)


# ---------------------------------------------------------------- ArgMax / ArgMin


def _arg(pick: Any) -> Any:
    def kernel(
        x: np.ndarray, *, axis: int = 0, keepdims: int = 1, select_last_index: int = 0
    ) -> np.ndarray:
        a = normalize_axis(axis, x.ndim)
        if select_last_index:
            # The last of equal extremes: search the reversed axis, map the index back.
            idx = x.shape[a] - 1 - pick(np.flip(x, axis=a), axis=a, keepdims=True)
        else:
            idx = pick(x, axis=a, keepdims=True)
        idx = idx.astype(np.int64, copy=False)
        return idx if keepdims else np.squeeze(idx, axis=a)

    return kernel


def _arg_infer(
    ctx: InferContext,
    x: TensorType,
    *,
    axis: int = 0,
    keepdims: int = 1,
    select_last_index: int = 0,
) -> TensorType:
    if x.shape is None:
        return TensorType(int64, None)
    a = normalize_axis(axis, len(x.shape))
    dims = (
        [1 if i == a else d for i, d in enumerate(x.shape)]
        if keepdims
        else [d for i, d in enumerate(x.shape) if i != a]
    )
    return TensorType(int64, tuple(dims))


_INDEX_OUTPUT = "its output is an int64 index, which has no gradient"
register(OpDef("ArgMax", 13, _arg(np.argmax), _arg_infer, None, no_vjp=_INDEX_OUTPUT))
register(OpDef("ArgMin", 13, _arg(np.argmin), _arg_infer, None, no_vjp=_INDEX_OUTPUT))


# ---------------------------------------------------------------- CumSum


def _cumsum(x: np.ndarray, axis: Any, *, exclusive: int = 0, reverse: int = 0) -> np.ndarray:
    values = np.asarray(axis).reshape(-1)
    if values.size != 1:
        raise ShapeError(f"CumSum: axis must hold one value, got {values.size}")
    a = normalize_axis(int(values[0]), x.ndim)
    y = np.flip(x, axis=a) if reverse else x
    out = np.cumsum(y, axis=a, dtype=x.dtype)
    if exclusive:
        # Shift by one along the axis: the first slot gets 0, the last sum drops out.
        out = np.concatenate([np.zeros_like(np.take(out, [0], axis=a)), out], axis=a)
        out = np.delete(out, -1, axis=a)
    return np.flip(out, axis=a) if reverse else out


def _cumsum_infer(
    ctx: InferContext, x: TensorType, axis: TensorType, *, exclusive: int = 0, reverse: int = 0
) -> TensorType:
    return x


def _cumsum_vjp(
    ctx: VjpContext, g: Any, x: Any, axis: Any, *, exclusive: int, reverse: int
) -> list[Any]:
    # Each x_j feeds the sums on one side of it, so its gradient is the sum of g on that side.
    return [op.CumSum(g, axis, exclusive=exclusive, reverse=1 - reverse), None]


register(OpDef("CumSum", 14, _cumsum, _cumsum_infer, _cumsum_vjp, saves="none"))


# ---------------------------------------------------------------- TopK


def _topk_k(k: Any) -> int:
    values = np.asarray(k).reshape(-1)
    if values.size != 1:
        raise ShapeError(f"TopK: K must hold one value, got {values.size}")
    return int(values[0])


def _topk(
    x: np.ndarray, k: np.ndarray, *, axis: int = -1, largest: int = 1, sorted: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    a = normalize_axis(axis, x.ndim)
    n, kk = x.shape[a], _topk_k(k)
    if not 0 <= kk <= n:
        raise ShapeError(f"TopK: K={kk} is out of range for axis {axis} of size {n}")
    if largest:
        # Stable ascending sort of the reversed axis, reversed again: descending values, and
        # among equal values the lower index first, as ONNX requires.
        order = np.flip(np.argsort(np.flip(x, axis=a), axis=a, kind="stable"), axis=a)
        order = n - 1 - order
    else:
        order = np.argsort(x, axis=a, kind="stable")
    idx = np.take(order, np.arange(kk), axis=a).astype(np.int64, copy=False)
    return np.take_along_axis(x, idx, axis=a), idx


def _topk_infer(
    ctx: InferContext,
    x: TensorType,
    k: TensorType,
    *,
    axis: int = -1,
    largest: int = 1,
    sorted: int = 1,
) -> tuple[TensorType, TensorType]:
    if x.shape is None:
        return TensorType(x.dtype, None), TensorType(int64, None)
    a = normalize_axis(axis, len(x.shape))
    kk = const_ints(ctx, 1)
    dim: Dim = kk[0] if kk is not None and len(kk) == 1 else None
    shape = tuple(dim if i == a else d for i, d in enumerate(x.shape))
    return TensorType(x.dtype, shape), TensorType(int64, shape)


def _topk_vjp(
    ctx: VjpContext, grads: Any, x: Any, k: Any, *, axis: int, largest: int, sorted: int
) -> list[Any]:
    g = grads[0]
    if g is None or not ctx.needs_input_grad[0]:
        return [None, None]
    zeros = op.Expand(scalar(0, g), shape_of(x))
    return [op.ScatterElements(zeros, ctx.outputs[1], g, axis=axis), None]


register(
    OpDef(
        "TopK",
        11,
        _topk,
        _topk_infer,
        _topk_vjp,
        num_outputs=2,
        saves="outputs",
        legacy=Legacy(inputs=(AttrInput("k", 1, "ints", 10),)),
    )
)
