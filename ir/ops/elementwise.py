"""Elementwise ops: arithmetic, Sum/Mean, unary math, Max/Min/Clip, rounding, logic, Cast.

Activations and trigonometric/hyperbolic math live in ``activation.py``. Binary ops
broadcast as NumPy does (ONNX multidirectional broadcasting) and require equal input dtypes
(Pow excepted); integer and bool inputs keep their dtype (no silent float promotion). Shape
rules check the dtypes ONNX allows; kernels of float-only ops reject other dtypes too, so
eager code fails where an export would.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.ops.grad_util import shape_of, unbroadcast
from ir.ops.infer import broadcast_shapes, broadcast_types, check_dtype, elementwise
from ir.ops.registry import (
    AttrInput,
    InferContext,
    InferFn,
    Legacy,
    OpDef,
    VjpContext,
    VjpFn,
    op,
    register,
    scalar,
)
from ir.types import TensorType

SIGNED = D.FLOATING | {D.int8, D.int16, D.int32, D.int64}
BOOL = frozenset({D.bool_})


def dtype_rule(op_type: str, allowed: Iterable[np.dtype], out: np.dtype | None = None) -> InferFn:
    """Shape rule of an elementwise op whose inputs must have a dtype in ``allowed``.

    Inputs broadcast and share one dtype; the output has that dtype, or ``out`` when given.
    Absent optional inputs (None) are skipped.
    """
    allowed = frozenset(allowed)

    def infer(ctx: InferContext, *types: TensorType | None, **attrs: object) -> TensorType:
        given = [t for t in types if t is not None]
        for i, t in enumerate(given):
            check_dtype(t, allowed, f"{op_type}'s input {i}")
        return broadcast_types(given, dtype=out)

    return infer


def require_floating(x: np.ndarray) -> None:
    """Raise TypeError, in a kernel, when ``x`` is not floating (NumPy would upcast it)."""
    if x.dtype.kind != "f":
        raise TypeError(f"expects a floating-point tensor, got {x.dtype}")


def floating_kernel(fn: Callable[[np.ndarray], np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
    """``fn`` as a kernel that rejects non-float inputs (see :func:`require_floating`)."""

    def kernel(x: np.ndarray) -> np.ndarray:
        if x.dtype.kind != "f":  # checked inline: this wrapper is on the eager hot path
            require_floating(x)
        return fn(x)

    return kernel


def _unary(
    op_type: str, since: int, kernel: Any, vjp: VjpFn | None, allowed: Iterable[np.dtype], **kw: Any
) -> None:
    if frozenset(allowed) <= D.FLOATING:
        kernel = floating_kernel(kernel)
    register(OpDef(op_type, since, kernel, dtype_rule(op_type, allowed), vjp, **kw))


def _unbroadcast_each(
    ctx: VjpContext, grads: tuple[Any, ...], inputs: tuple[Any, ...]
) -> list[Any]:
    return [
        unbroadcast(g, x) if need and g is not None else None
        for g, x, need in zip(grads, inputs, ctx.needs_input_grad, strict=True)
    ]


def _to(x: Any, like: Any) -> Any:
    """``x`` cast to ``like``'s dtype (a registry Cast only when they differ)."""
    return x if x.dtype == like.dtype else op.Cast(x, to=D.to_onnx(like.dtype))


# ---------------------------------------------------------------- arithmetic


def _add_vjp(ctx: VjpContext, g: Any, x: Any, y: Any) -> list[Any]:
    return _unbroadcast_each(ctx, (g, g), (x, y))


def _sub_vjp(ctx: VjpContext, g: Any, x: Any, y: Any) -> list[Any]:
    return _unbroadcast_each(ctx, (g, op.Neg(g) if ctx.needs_input_grad[1] else None), (x, y))


def _mul_vjp(ctx: VjpContext, g: Any, x: Any, y: Any) -> list[Any]:
    gx = op.Mul(g, y) if ctx.needs_input_grad[0] else None
    gy = op.Mul(g, x) if ctx.needs_input_grad[1] else None
    return _unbroadcast_each(ctx, (gx, gy), (x, y))


def _div(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if np.result_type(x).kind in "iu":
        # ONNX integer division truncates toward zero (C semantics), unlike NumPy's floor.
        q = np.floor_divide(x, y)
        fix = (np.remainder(x, y) != 0) & ((np.asarray(x) < 0) != (np.asarray(y) < 0))
        return q + fix.astype(q.dtype)
    return np.true_divide(x, y)


def _div_vjp(ctx: VjpContext, g: Any, x: Any, y: Any) -> list[Any]:
    gx = op.Div(g, y) if ctx.needs_input_grad[0] else None
    gy = op.Neg(op.Div(op.Mul(g, x), op.Mul(y, y))) if ctx.needs_input_grad[1] else None
    return _unbroadcast_each(ctx, (gx, gy), (x, y))


def _pow(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    if x.dtype.kind in "iu" and y.dtype.kind in "iu":
        # NumPy refuses negative integer powers; C's pow then truncates 1/x**n toward zero.
        whole = np.power(x, np.abs(y))
        return np.where((y < 0) & (np.abs(x) != 1), 0, whole).astype(x.dtype, copy=False)
    return np.power(x, y).astype(x.dtype, copy=False)  # ONNX: the base's dtype


def _pow_infer(ctx: InferContext, x: TensorType, y: TensorType) -> TensorType:
    check_dtype(x, D.FLOATING | {D.int32, D.int64}, "Pow's base")
    check_dtype(y, D.NUMERIC, "Pow's exponent")
    if x.shape is None or y.shape is None:
        return TensorType(x.dtype, None)
    return TensorType(x.dtype, broadcast_shapes(x.shape, y.shape))


def _pow_vjp(ctx: VjpContext, g: Any, x: Any, y: Any) -> list[Any]:
    gx = gy = None
    if ctx.needs_input_grad[0]:
        yx = _to(y, x)
        gx = op.Mul(g, op.Mul(yx, op.Pow(x, op.Sub(yx, scalar(1, yx)))))
    if ctx.needs_input_grad[1] and D.is_floating(y.dtype):
        zero = scalar(0, x)
        # d/dy x**y = x**y log x; taken as 0 at x = 0, where log x is -inf (as PyTorch does).
        dy = op.Where(op.Equal(x, zero), zero, op.Mul(op.Pow(x, y), op.Log(x)))
        gy = _to(op.Mul(g, dy), y)
    return _unbroadcast_each(ctx, (gx, gy), (x, y))


def _mod(x: np.ndarray, y: np.ndarray, *, fmod: int = 0) -> np.ndarray:
    # fmod=1: sign of the dividend, as C's fmod. fmod=0: sign of the divisor, as Python's %
    # (inf/nan/zero cases included); Mod-13 disallows it for floats, Mod-28 defines it so.
    fn = np.fmod if fmod else np.mod
    if x.dtype.kind == "f":
        with np.errstate(invalid="ignore"):  # x % 0 and inf % y are NaN by definition
            return fn(x, y)
    return fn(x, y)


def _mod_vjp(ctx: VjpContext, g: Any, x: Any, y: Any, *, fmod: int) -> list[Any]:
    gy = None
    if ctx.needs_input_grad[1]:
        # x mod y = x - q*y with q = trunc or floor(x/y), locally constant; q = (x - r)/y.
        q = op.Div(op.Sub(x, op.Mod(x, y, fmod=fmod)), y)
        gy = op.Neg(op.Mul(g, q))
    return _unbroadcast_each(ctx, (g, gy), (x, y))


# ONNX's Add/Sub/Mul/Div reject bool, but these rules still accept it: eager code (and
# tests/ir/test_properties.py) adds bool tensors. Tighten to D.NUMERIC once tracer avoids that.
# Before opset 7 they had `broadcast` and `axis` attributes (so did Gemm, Equal, Greater,
# Less, And, Or and Xor).
_BROADCAST_6 = Legacy(broadcast=True)
register(
    OpDef(
        "Add",
        14,
        np.add,
        elementwise,
        _add_vjp,
        saves="none",
        symbolic=True,
        commutative=True,
        legacy=_BROADCAST_6,
    )
)
register(
    OpDef(
        "Sub",
        14,
        np.subtract,
        elementwise,
        _sub_vjp,
        saves="none",
        symbolic=True,
        legacy=_BROADCAST_6,
    )
)
register(
    OpDef(
        "Mul",
        14,
        np.multiply,
        elementwise,
        _mul_vjp,
        saves="others",
        symbolic=True,
        commutative=True,
        legacy=_BROADCAST_6,
    )
)
register(OpDef("Div", 14, _div, elementwise, _div_vjp, legacy=_BROADCAST_6))
register(OpDef("Pow", 15, _pow, _pow_infer, _pow_vjp, legacy=_BROADCAST_6))
register(OpDef("Mod", 13, _mod, dtype_rule("Mod", D.NUMERIC), _mod_vjp))


# ---------------------------------------------------------------- Sum, Mean (variadic)


def _fold(fn: Any, floating: bool = False) -> Any:
    """A variadic kernel folding the binary ufunc ``fn`` over its broadcast inputs."""

    def kernel(x: np.ndarray, *rest: np.ndarray) -> np.ndarray:
        if floating:
            require_floating(x)
        for y in rest:
            x = fn(x, y)
        return x if rest else x.copy()

    return kernel


_sum = _fold(np.add, floating=True)


def _mean(x: np.ndarray, *rest: np.ndarray) -> np.ndarray:
    total = _sum(x, *rest)
    return np.divide(total, total.dtype.type(1 + len(rest)), dtype=total.dtype)


def _sum_vjp(ctx: VjpContext, g: Any, *xs: Any) -> list[Any]:
    return _unbroadcast_each(ctx, (g,) * len(xs), xs)


def _mean_vjp(ctx: VjpContext, g: Any, *xs: Any) -> list[Any]:
    return _sum_vjp(ctx, op.Div(g, scalar(len(xs), g)), *xs)


register(OpDef("Sum", 13, _sum, dtype_rule("Sum", D.FLOATING), _sum_vjp, saves="none", nary=True))
register(
    OpDef("Mean", 13, _mean, dtype_rule("Mean", D.FLOATING), _mean_vjp, saves="none", nary=True)
)


# ---------------------------------------------------------------- unary math


def _neg_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [op.Neg(g)]


def _abs_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [op.Mul(g, op.Sign(x))]


def _sign_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    # Zero almost everywhere, like PyTorch; this keeps Abs twice differentiable.
    return [op.Mul(g, scalar(0, g))]


def _exp_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [op.Mul(g, ctx.outputs[0])]


def _log_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [op.Div(g, x)]


def _sqrt_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    y = ctx.outputs[0]
    return [op.Div(g, op.Mul(y, scalar(2, y)))]


def _reciprocal_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    y = ctx.outputs[0]
    return [op.Neg(op.Mul(g, op.Mul(y, y)))]


def _sin_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [op.Mul(g, op.Cos(x))]


def _cos_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [op.Neg(op.Mul(g, op.Sin(x)))]


def _tanh_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    y = ctx.outputs[0]
    return [op.Mul(g, op.Sub(scalar(1, y), op.Mul(y, y)))]


_ZEROS: dict[np.dtype, np.ndarray] = {}


def _relu(x: np.ndarray) -> np.ndarray:
    zero = _ZEROS.get(x.dtype)  # a cached 0-d zero per dtype: this kernel is benchmarked
    if zero is None:
        zero = _ZEROS[x.dtype] = scalar(0, x)
    return np.maximum(x, zero)


def _relu_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    positive = op.Greater(x, scalar(0, x))
    return [op.Where(positive, g, scalar(0, g))]


def _identity(x: np.ndarray) -> np.ndarray:
    return np.array(x, copy=True)  # a copy, so eager tensors never alias


def _identity_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [g]


def _step_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    # Piecewise constant: 0 between steps (undefined on them); PyTorch and JAX give 0 too.
    return [op.Expand(scalar(0, g), shape_of(x))]


_unary("Neg", 13, np.negative, _neg_vjp, SIGNED, saves="none")
_unary("Abs", 13, np.abs, _abs_vjp, D.NUMERIC)
_unary("Sign", 13, np.sign, _sign_vjp, D.NUMERIC, saves="none")
_unary("Exp", 13, np.exp, _exp_vjp, D.FLOATING, saves="outputs")
_unary("Log", 13, np.log, _log_vjp, D.FLOATING)
_unary("Sqrt", 13, np.sqrt, _sqrt_vjp, D.FLOATING, saves="outputs")
_unary("Reciprocal", 13, np.reciprocal, _reciprocal_vjp, D.FLOATING, saves="outputs")
_unary("Sin", 7, np.sin, _sin_vjp, D.FLOATING)
_unary("Cos", 7, np.cos, _cos_vjp, D.FLOATING)
_unary("Tanh", 13, np.tanh, _tanh_vjp, D.FLOATING, saves="outputs")
_unary("Relu", 14, _relu, _relu_vjp, SIGNED)
_unary("Floor", 13, np.floor, _step_vjp, D.FLOATING, saves="none")
_unary("Ceil", 13, np.ceil, _step_vjp, D.FLOATING, saves="none")
_unary("Round", 11, np.round, _step_vjp, D.FLOATING, saves="none")  # halves to even, as ONNX
_unary("Identity", 19, _identity, _identity_vjp, D.ALL, saves="none", symbolic=True)


# ---------------------------------------------------------------- Max, Min, Clip


_max, _min = _fold(np.maximum), _fold(np.minimum)


def _extremum_vjp(largest: bool) -> VjpFn:
    """The vjp rule of Max (``largest``) or Min.

    The gradient goes to the winning input, the first one on ties, so the input gradients
    always add up to ``grad_out``.
    """

    def vjp(ctx: VjpContext, g: Any, *xs: Any) -> list[Any]:
        if len(xs) == 1:
            return [g]
        if len(xs) == 2:
            first = op.GreaterOrEqual(*xs) if largest else op.LessOrEqual(*xs)
            masks = [first, op.Not(first)]
        else:
            # Recomputed rather than read from ctx.outputs, so saves="all" covers it.
            best = op.Max(*xs) if largest else op.Min(*xs)
            masks, taken = [], None
            for x in xs:
                hit = op.Equal(x, best)
                hit = hit if taken is None else op.And(hit, op.Not(taken))
                taken = hit if taken is None else op.Or(taken, hit)
                masks.append(hit)
        zero = scalar(0, g)
        routed = tuple(
            op.Where(m, g, zero) if n else None
            for m, n in zip(masks, ctx.needs_input_grad, strict=True)
        )
        return _unbroadcast_each(ctx, routed, xs)

    return vjp


def _clip(x: np.ndarray, lo: np.ndarray | None = None, hi: np.ndarray | None = None) -> np.ndarray:
    # max then min: when lo > hi every element becomes hi, as ONNX specifies.
    out = x if lo is None else np.maximum(x, lo)
    out = out if hi is None else np.minimum(out, hi)
    return out.copy() if out is x else out


_CLIP_DTYPES = dtype_rule("Clip", D.NUMERIC)


def _clip_infer(
    ctx: InferContext, x: TensorType, lo: TensorType | None = None, hi: TensorType | None = None
) -> TensorType:
    _CLIP_DTYPES(ctx, x, lo, hi)
    return x  # min and max are scalars


def _clip_vjp(ctx: VjpContext, g: Any, x: Any, lo: Any = None, hi: Any = None) -> list[Any]:
    zero = scalar(0, g)
    g_lo = g_hi = None
    if hi is not None:
        above = op.Greater(x if lo is None else op.Max(x, lo), hi)
        if ctx.needs_input_grad[2]:
            g_hi = unbroadcast(op.Where(above, g, zero), hi)
        g = op.Where(above, zero, g)
    if lo is not None:
        below = op.Less(x, lo)
        if ctx.needs_input_grad[1]:
            g_lo = unbroadcast(op.Where(below, g, zero), lo)
        g = op.Where(below, zero, g)
    return [g if ctx.needs_input_grad[0] else None, g_lo, g_hi]


register(
    OpDef("Max", 13, _max, dtype_rule("Max", D.NUMERIC), _extremum_vjp(largest=True), nary=True)
)
register(
    OpDef("Min", 13, _min, dtype_rule("Min", D.NUMERIC), _extremum_vjp(largest=False), nary=True)
)
_CLIP_11 = (AttrInput("min", 1, "like_x", 11), AttrInput("max", 2, "like_x", 11))
register(OpDef("Clip", 13, _clip, _clip_infer, _clip_vjp, legacy=Legacy(inputs=_CLIP_11)))


# ---------------------------------------------------------------- comparisons and logic

_BOOLEAN = "its output is boolean"
_CURRENT = Legacy()  # older versions read as they are


def _predicate(
    op_type: str,
    since: int,
    kernel: Any,
    allowed: Iterable[np.dtype],
    legacy: Legacy = _CURRENT,
) -> None:
    rule = dtype_rule(op_type, allowed, out=D.bool_)
    register(OpDef(op_type, since, kernel, rule, None, no_vjp=_BOOLEAN, legacy=legacy))


_predicate("Equal", 19, np.equal, D.ALL, _BROADCAST_6)
_predicate("Greater", 13, np.greater, D.NUMERIC, _BROADCAST_6)
_predicate("Less", 13, np.less, D.NUMERIC, _BROADCAST_6)
_predicate("GreaterOrEqual", 16, np.greater_equal, D.NUMERIC)
_predicate("LessOrEqual", 16, np.less_equal, D.NUMERIC)
_predicate("And", 7, np.logical_and, BOOL, _BROADCAST_6)
_predicate("Or", 7, np.logical_or, BOOL, _BROADCAST_6)
_predicate("Xor", 7, np.logical_xor, BOOL, _BROADCAST_6)
_predicate("Not", 1, np.logical_not, BOOL)


def _is_inf(x: np.ndarray, *, detect_negative: int = 1, detect_positive: int = 1) -> np.ndarray:
    require_floating(x)
    return np.isinf(x) & (((x > 0) & bool(detect_positive)) | ((x < 0) & bool(detect_negative)))


def _is_nan(x: np.ndarray) -> np.ndarray:
    require_floating(x)
    return np.isnan(x)


_IS_RULE = dtype_rule("IsInf/IsNaN", D.FLOATING, out=D.bool_)
register(OpDef("IsInf", 20, _is_inf, _IS_RULE, None, no_vjp=_BOOLEAN))
register(OpDef("IsNaN", 20, _is_nan, _IS_RULE, None, no_vjp=_BOOLEAN))


# ---------------------------------------------------------------- selection


def _where_infer(ctx: InferContext, c: TensorType, x: TensorType, y: TensorType) -> TensorType:
    check_dtype(c, BOOL, "Where's condition")
    t = elementwise(ctx, x, y)
    if c.shape is None or t.shape is None:
        return TensorType(t.dtype, None)
    return TensorType(t.dtype, broadcast_shapes(c.shape, t.shape))


def _where_vjp(ctx: VjpContext, g: Any, c: Any, x: Any, y: Any) -> list[Any]:
    zero = scalar(0, g)
    gx = op.Where(c, g, zero) if ctx.needs_input_grad[1] else None
    gy = op.Where(c, zero, g) if ctx.needs_input_grad[2] else None
    return [None, *_unbroadcast_each(ctx, (None, gx, gy), (c, x, y))[1:]]


def _where(c: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.where(c, x, y)


register(OpDef("Where", 16, _where, _where_infer, _where_vjp))


# ---------------------------------------------------------------- Cast


def _cast(x: np.ndarray, *, to: int, saturate: int = 1) -> np.ndarray:
    del saturate  # only meaningful for float8 targets, which graphcap does not support
    return np.asarray(x).astype(D.from_onnx(to))  # always a copy: eager tensors never alias


def _cast_infer(ctx: InferContext, x: TensorType, *, to: int, saturate: int = 1) -> TensorType:
    return TensorType(D.from_onnx(to), x.shape)


def _cast_vjp(ctx: VjpContext, g: Any, x: Any, *, to: int, saturate: int) -> list[Any]:
    if not D.is_floating(x.dtype):
        return [None]
    return [op.Cast(g, to=D.to_onnx(x.dtype))]


register(OpDef("Cast", 19, _cast, _cast_infer, _cast_vjp, saves="none", symbolic=True))
