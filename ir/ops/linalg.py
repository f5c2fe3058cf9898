"""Linear algebra: MatMul (NumPy ``matmul`` semantics, batch dims broadcast), Gemm, Einsum."""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.errors import ShapeError
from ir.ops.grad_util import unbroadcast
from ir.ops.infer import broadcast_shapes, same_dtype
from ir.ops.registry import InferContext, OpDef, VjpContext, ints, op, register
from ir.types import Dim, TensorType


def _matmul_infer(ctx: InferContext, a: TensorType, b: TensorType) -> TensorType:
    dtype = same_dtype((a, b))
    if a.shape is None or b.shape is None:
        return TensorType(dtype, None)
    if not a.shape or not b.shape:
        raise ShapeError("MatMul: inputs must have at least one dimension, got a 0-d input")
    sa = (1, *a.shape) if len(a.shape) == 1 else a.shape
    sb = (*b.shape, 1) if len(b.shape) == 1 else b.shape
    k1, k2 = sa[-1], sb[-2]
    if isinstance(k1, int) and isinstance(k2, int) and k1 != k2:
        raise ShapeError(f"MatMul: contracted dims differ: {list(a.shape)} @ {list(b.shape)}")
    batch = broadcast_shapes(sa[:-2], sb[:-2])
    out: list[Dim] = [*batch, sa[-2], sb[-1]]
    if len(a.shape) == 1:
        del out[-2]
    if len(b.shape) == 1:
        del out[-1]
    return TensorType(dtype, tuple(out))


def swap_last(x: Any) -> Any:
    """``x`` with its last two axes swapped (a registry Transpose)."""
    perm = list(range(x.ndim))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return op.Transpose(x, perm=perm)


def _matmul_vjp(ctx: VjpContext, g: Any, a: Any, b: Any) -> list[Any]:
    if a.ndim == 1 and b.ndim == 1:
        return [
            op.Mul(g, b) if ctx.needs_input_grad[0] else None,
            op.Mul(g, a) if ctx.needs_input_grad[1] else None,
        ]
    a2 = op.Unsqueeze(a, ints([0])) if a.ndim == 1 else a
    b2 = op.Unsqueeze(b, ints([1])) if b.ndim == 1 else b
    g2 = op.Unsqueeze(g, ints([-2])) if a.ndim == 1 else g
    g2 = op.Unsqueeze(g2, ints([-1])) if b.ndim == 1 else g2
    ga = gb = None
    if ctx.needs_input_grad[0]:
        ga = unbroadcast(op.MatMul(g2, swap_last(b2)), a2)
        ga = op.Squeeze(ga, ints([0])) if a.ndim == 1 else ga
    if ctx.needs_input_grad[1]:
        gb = unbroadcast(op.MatMul(swap_last(a2), g2), b2)
        gb = op.Squeeze(gb, ints([1])) if b.ndim == 1 else gb
    return [ga, gb]


register(OpDef("MatMul", 13, np.matmul, _matmul_infer, _matmul_vjp, saves="others"))
