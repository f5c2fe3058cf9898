"""Elementwise ops: arithmetic, unary math, activations, comparisons, logic and Cast.

Binary ops broadcast as NumPy does (ONNX multidirectional broadcasting) and require equal
input dtypes; integer and bool inputs keep their dtype (no silent float promotion).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir import dtypes as D
from ir.ops.grad_util import unbroadcast
from ir.ops.infer import broadcast_shapes, elementwise, same
from ir.ops.registry import InferContext, OpDef, VjpContext, op, register, scalar
from ir.types import TensorType


def _unbroadcast_each(ctx: VjpContext, grads: tuple[Any, ...], inputs: tuple[Any, ...]) -> list[Any]:
    return [
        unbroadcast(g, x) if need else None
        for g, x, need in zip(grads, inputs, ctx.needs_input_grad, strict=True)
    ]


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


register(OpDef("Add", 14, np.add, elementwise, _add_vjp, saves="none"))
register(OpDef("Sub", 14, np.subtract, elementwise, _sub_vjp, saves="none"))
register(OpDef("Mul", 14, np.multiply, elementwise, _mul_vjp, saves="others"))
register(OpDef("Div", 14, _div, elementwise, _div_vjp))


# ---------------------------------------------------------------- unary math


def _neg_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [op.Neg(g)]


def _exp_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [op.Mul(g, ctx.outputs[0])]


def _log_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [op.Div(g, x)]


def _tanh_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    y = ctx.outputs[0]
    return [op.Mul(g, op.Sub(scalar(1, y), op.Mul(y, y)))]


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, np.zeros((), dtype=x.dtype))


def _relu_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    positive = op.Greater(x, scalar(0, x))
    return [op.Where(positive, g, scalar(0, g))]


register(OpDef("Neg", 13, np.negative, same, _neg_vjp, saves="none"))
register(OpDef("Exp", 13, np.exp, same, _exp_vjp, saves="outputs"))
register(OpDef("Log", 13, np.log, same, _log_vjp))
register(OpDef("Tanh", 13, np.tanh, same, _tanh_vjp, saves="outputs"))
register(OpDef("Relu", 14, _relu, same, _relu_vjp))


# ---------------------------------------------------------------- comparisons and logic


def _predicate(ctx: InferContext, x: TensorType, y: TensorType, **attrs: object) -> TensorType:
    t = elementwise(ctx, x, y)
    return TensorType(D.bool_, t.shape)


_NOT_DIFFERENTIABLE = "its output is boolean"
register(OpDef("Greater", 13, np.greater, _predicate, None, no_vjp=_NOT_DIFFERENTIABLE))


# ---------------------------------------------------------------- selection


def _where_infer(ctx: InferContext, c: TensorType, x: TensorType, y: TensorType) -> TensorType:
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
    return np.asarray(x).astype(D.from_onnx(to), copy=False)


def _cast_infer(ctx: InferContext, x: TensorType, *, to: int, saturate: int = 1) -> TensorType:
    return TensorType(D.from_onnx(to), x.shape)


def _cast_vjp(ctx: VjpContext, g: Any, x: Any, *, to: int, saturate: int) -> list[Any]:
    if not D.is_floating(x.dtype):
        return [None]
    return [op.Cast(g, to=D.to_onnx(x.dtype))]


register(OpDef("Cast", 19, _cast, _cast_infer, _cast_vjp, saves="none"))
