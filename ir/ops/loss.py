"""Losses with native ONNX forms: NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss.

Both pick, per sample position, the entry of class ``target`` along axis 1 of an input of
shape ``[N, C, d1, ..., dk]`` (k >= 0) and negate it; SoftmaxCrossEntropyLoss first takes
``LogSoftmax`` over axis 1. Semantics are ONNX's (and PyTorch's ``nll_loss`` /
``cross_entropy``):

- ``weight[c]`` scales the loss of positions whose target is ``c``;
- a position whose target equals ``ignore_index`` has loss 0 and weight 0;
- ``reduction="mean"`` divides the summed loss by the summed weights of the positions kept
  (their count when there are no weights), so ignored positions are not counted. When every
  position is ignored that is 0/0: NaN, as in PyTorch.

Gradients flow to the input (scores) and to the weights; targets are integers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.dtypes import FLOATING, int32, int64, to_onnx
from ir.errors import ShapeError
from ir.ops.grad_util import shape_of
from ir.ops.infer import check_dtype, same_dtype
from ir.ops.registry import InferContext, OpDef, VjpContext, ints, op, register, scalar
from ir.types import TensorType

_REDUCTIONS = ("none", "sum", "mean")

# ---------------------------------------------------------------- kernels


def _check(op_type: str, x: np.ndarray, target: np.ndarray, reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op_type}: reduction {reduction!r} is not one of {list(_REDUCTIONS)}")
    if x.ndim < 2 or target.shape != (x.shape[0], *x.shape[2:]):
        raise ShapeError(
            f"{op_type}: input must be [N, C, d1, ..., dk] and target [N, d1, ..., dk]; "
            f"got {list(x.shape)} and {list(target.shape)}"
        )


def _nll_kernel(
    op_type: str,
    x: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None,
    ignore_index: int | None,
    reduction: str,
) -> np.ndarray:
    _check(op_type, x, target, reduction)
    keep = np.ones(target.shape, bool) if ignore_index is None else target != ignore_index
    t = np.where(keep, target, 0).astype(np.int64)
    n_classes = x.shape[1]
    if ((t < 0) | (t >= n_classes)).any():
        bad = sorted({int(v) for v in target[keep & ((t < 0) | (t >= n_classes))]})
        raise ValueError(
            f"{op_type}: target values must be in [0, {n_classes}) or equal ignore_index "
            f"({ignore_index}); got {bad[:5]}"
        )
    picked = np.take_along_axis(x, t[:, None], axis=1)[:, 0]
    w = keep.astype(x.dtype) if weight is None else np.where(keep, weight[t], 0).astype(x.dtype)
    loss = np.where(keep, -picked * w, np.zeros((), x.dtype))
    if reduction == "none":
        return loss.astype(x.dtype, copy=False)
    total = np.sum(loss)
    if reduction == "mean":
        with np.errstate(invalid="ignore", divide="ignore"):  # all ignored: NaN, as PyTorch
            total = total / np.sum(w)
    return np.asarray(total, dtype=x.dtype)


def _nll(
    x: np.ndarray,
    target: np.ndarray,
    weight: np.ndarray | None = None,
    *,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> np.ndarray:
    return _nll_kernel("NegativeLogLikelihoodLoss", x, target, weight, ignore_index, reduction)


def _sce(
    scores: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray | None = None,
    *,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> tuple[np.ndarray, np.ndarray]:
    if scores.ndim < 2:
        raise ShapeError(f"SoftmaxCrossEntropyLoss: scores must be [N, C, ...], got {scores.shape}")
    shifted = scores - np.max(scores, axis=1, keepdims=True)  # no overflow in exp
    log_prob = shifted - np.log(np.sum(np.exp(shifted), axis=1, keepdims=True))
    loss = _nll_kernel(
        "SoftmaxCrossEntropyLoss", log_prob, labels, weights, ignore_index, reduction
    )
    return loss, log_prob


# ---------------------------------------------------------------- shape rules


def _loss_type(
    op_type: str, x: TensorType, target: TensorType, weight: TensorType | None, reduction: str
) -> TensorType:
    dtype = same_dtype((x, weight), f"{op_type} input and weight")
    check_dtype(x, FLOATING, f"{op_type} input")
    check_dtype(target, (int32, int64), f"{op_type} target")
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{op_type}: reduction {reduction!r} is not one of {list(_REDUCTIONS)}")
    if reduction != "none":
        return TensorType(dtype, ())
    if x.shape is None:
        return TensorType(dtype, target.shape)
    if len(x.shape) < 2 or (target.shape is not None and len(target.shape) != len(x.shape) - 1):
        raise ShapeError(
            f"{op_type}: input must be [N, C, d1, ..., dk] and target [N, d1, ..., dk]; "
            f"got {x.shape} and {target.shape}"
        )
    return TensorType(dtype, (x.shape[0], *x.shape[2:]))


def _nll_infer(
    ctx: InferContext,
    x: TensorType,
    target: TensorType,
    weight: TensorType | None = None,
    *,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> TensorType:
    return _loss_type("NegativeLogLikelihoodLoss", x, target, weight, reduction)


def _sce_infer(
    ctx: InferContext,
    scores: TensorType,
    labels: TensorType,
    weights: TensorType | None = None,
    *,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> tuple[TensorType, TensorType]:
    loss = _loss_type("SoftmaxCrossEntropyLoss", scores, labels, weights, reduction)
    return loss, scores


# ---------------------------------------------------------------- vjp rules


def _nll_grads(
    g: Any,
    x: Any,
    target: Any,
    weight: Any,
    ignore_index: int | None,
    reduction: str,
    needs: tuple[bool, bool],
) -> tuple[Any, Any]:
    """Gradients of the NLL of ``x`` (log-probabilities) w.r.t. ``x`` and ``weight``.

    With ``w`` the per-position weight (0 where ignored) and ``W = sum(w)``: the loss
    ``sum(-x[t] * w)`` (over ``W`` for "mean") gives ``d x[c] = -[c == t] * w * g`` (over
    ``W``) and ``d weight[c] = sum over positions of class c of (-x[t] - mean) * g / W``
    ("mean"; without ``- mean`` and ``/ W`` otherwise).
    """
    keep = None
    safe = target
    if ignore_index is not None:  # ignored positions read class 0, then get weight 0
        keep = op.Not(op.Equal(target, np.asarray(ignore_index, dtype=target.dtype)))
        safe = op.Where(keep, target, np.asarray(0, dtype=target.dtype))
    w = _position_weights(x, safe, keep, weight)
    total = op.ReduceSum(w, keepdims=0) if reduction == "mean" else None
    g_pos = g if total is None else op.Div(g, total)
    depth = _depth(x)
    # int64 indices for OneHot: onnxruntime has no OneHot kernel for int32 indices with
    # float values, so int32 targets would give a backward graph it cannot run.
    hot_idx = safe if safe.dtype == int64 else op.Cast(safe, to=to_onnx(int64))
    gx = gw = None
    if needs[0]:
        hot = op.OneHot(hot_idx, depth, np.asarray([0, 1], dtype=x.dtype), axis=1)
        gx = op.Neg(op.Mul(hot, op.Unsqueeze(op.Mul(g_pos, w), ints([1]))))
    if needs[1] and weight is not None:
        picked = op.Squeeze(op.GatherElements(x, op.Unsqueeze(safe, ints([1])), axis=1), ints([1]))
        if keep is not None:  # an ignored position's entry may be -inf; never read it
            picked = op.Where(keep, picked, scalar(0.0, x))
        per_pos = op.Neg(picked)
        if total is not None:
            per_pos = op.Sub(per_pos, op.Div(op.ReduceSum(op.Mul(per_pos, w), keepdims=0), total))
        per_pos = op.Mul(per_pos, g_pos)
        if keep is not None:
            per_pos = op.Where(keep, per_pos, scalar(0.0, x))
        hot = op.OneHot(hot_idx, depth, np.asarray([0, 1], dtype=x.dtype), axis=-1)
        by_class = op.Mul(hot, op.Unsqueeze(per_pos, ints([-1])))
        gw = op.ReduceSum(by_class, ints(list(range(target.ndim))), keepdims=0)
    return gx, gw


def _position_weights(x: Any, safe: Any, keep: Any, weight: Any) -> Any:
    """``weight[target]`` per position (ones without weights), 0 where ignored."""
    zero = scalar(0.0, x)
    if weight is not None:
        w = op.Gather(weight, safe, axis=0)
        return w if keep is None else op.Where(keep, w, zero)
    if keep is not None:
        return op.Where(keep, scalar(1.0, x), zero)
    return op.Expand(scalar(1.0, x), shape_of(safe))


def _depth(x: Any) -> Any:
    """The class count C (axis 1 of ``x``) as a OneHot depth."""
    c = x.shape[1]
    return ints([c]) if isinstance(c, int) else op.Gather(op.Shape(x), ints([1]), axis=0)


def _nll_vjp(
    ctx: VjpContext,
    g: Any,
    x: Any,
    target: Any,
    weight: Any = None,
    *,
    ignore_index: int | None,
    reduction: str,
) -> list[Any]:
    needs = (ctx.needs_input_grad[0], len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2])
    gx, gw = _nll_grads(g, x, target, weight, ignore_index, reduction, needs)
    return [gx, None, gw]


def _sce_vjp(
    ctx: VjpContext,
    grads: Any,
    scores: Any,
    labels: Any,
    weights: Any = None,
    *,
    ignore_index: int | None,
    reduction: str,
) -> list[Any]:
    g_loss, g_log_prob = grads
    log_prob = ctx.outputs[1]  # a differentiable output: second order flows back through it
    needs_w = len(ctx.needs_input_grad) > 2 and ctx.needs_input_grad[2]
    g_lp = gw = None
    if g_loss is not None:
        needs = (ctx.needs_input_grad[0], needs_w)
        g_lp, gw = _nll_grads(g_loss, log_prob, labels, weights, ignore_index, reduction, needs)
    if g_log_prob is not None:
        g_lp = g_log_prob if g_lp is None else op.Add(g_lp, g_log_prob)
    g_scores = None
    if g_lp is not None and ctx.needs_input_grad[0]:
        # LogSoftmax's rule over axis 1: g - softmax * sum(g).
        total = op.ReduceSum(g_lp, ints([1]), keepdims=1)
        g_scores = op.Sub(g_lp, op.Mul(op.Exp(log_prob), total))
    return [g_scores, None, gw]


register(OpDef("NegativeLogLikelihoodLoss", 13, _nll, _nll_infer, _nll_vjp))
register(OpDef("SoftmaxCrossEntropyLoss", 13, _sce, _sce_infer, _sce_vjp, num_outputs=2))
