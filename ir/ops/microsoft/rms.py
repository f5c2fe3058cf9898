"""onnxruntime's RMS normalisations (T5, LLaMA), which its transformer optimizer writes.

- ``SimplifiedLayerNormalization(X, scale)``: ONNX ``RMSNormalization`` (opset 23) under
  the name and version 1 onnxruntime registers it with in the default ONNX domain (it is not
  an ONNX op). Outputs: the result and ``inv_std_var`` (``1 / sqrt(mean(X^2) + epsilon)``
  over the axes from ``axis`` on, kept as 1s), in ``stash_type``. X and scale must share
  one dtype (onnxruntime allows a scale of another float type).
- ``com.microsoft`` ``SkipSimplifiedLayerNormalization(input, skip, gamma, bias?)``:
  ``RMSNormalization`` over the last axis of ``input + skip + bias`` (as
  ``SkipLayerNormalization``, see ``norm``). Its mean output is zeros, as onnxruntime's.

Kernels and vjps are RMSNormalization's, plus the gradient through ``inv_std_var``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.dtypes import from_onnx, to_onnx
from ir.ops import attention  # noqa: F401  (registers RMSNormalization, whose rules serve here)
from ir.ops.infer import normalize_axis
from ir.ops.microsoft.common import DOMAIN, sub_ctx
from ir.ops.microsoft.norm import skip_infer, skip_sum, skip_vjp, stash_code
from ir.ops.registry import InferContext, OpDef, VjpContext, get, ints, op, register, scalar
from ir.types import TensorType

_RMS_NORM = get("RMSNormalization")
_EPSILON = float(np.float32(1e-5))  # the defaults onnxruntime stores, as float32
_SKIP_EPSILON = float(np.float32(1e-12))


def _inv_rms(s: np.ndarray, axis: int, epsilon: float, stash: np.dtype) -> np.ndarray:
    axes = tuple(range(normalize_axis(axis, s.ndim), s.ndim))
    work = s.astype(np.promote_types(s.dtype, stash))
    inv = 1 / np.sqrt(np.mean(work * work, axis=axes, keepdims=True) + epsilon)
    return inv.astype(stash)


def _rms_grads(
    ctx: VjpContext, gy: Any, g_inv: Any, s: Any, scale: Any, need_scale: bool, **attrs: Any
) -> tuple[Any, Any]:
    """Gradients of ``s`` and ``scale`` through the result ``gy`` and ``inv_std_var``."""
    gs = g_scale = None
    if gy is not None:
        rule = _RMS_NORM.vjp
        assert rule is not None
        gs, g_scale = rule(sub_ctx(ctx, [True, need_scale]), gy, s, scale, **attrs)
    if g_inv is not None:  # inv = (mean(s^2) + eps)^-1/2: d inv / ds = -inv^3 s / n
        axes = ints(list(range(normalize_axis(attrs["axis"], s.ndim), s.ndim)))
        mean_sq = op.ReduceMean(op.Mul(s, s), axes, keepdims=1)
        inv = op.Reciprocal(op.Sqrt(op.Add(mean_sq, scalar(attrs["epsilon"], s))))
        g = op.Cast(g_inv, to=to_onnx(s.dtype))
        sizes = op.Gather(op.Shape(s), axes, axis=0)
        n = op.Cast(op.ReduceProd(sizes, keepdims=0), to=to_onnx(s.dtype))
        term = op.Div(op.Mul(op.Neg(op.Mul(g, op.Mul(inv, op.Mul(inv, inv)))), s), n)
        gs = term if gs is None else op.Add(gs, term)
    return gs, g_scale


# ---------------------------------------------------------------- SimplifiedLayerNormalization


def _simplified(
    x: np.ndarray,
    scale: np.ndarray,
    *,
    axis: int = -1,
    epsilon: float = _EPSILON,
    stash_type: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    y = _RMS_NORM.kernel(x, scale, axis=axis, epsilon=epsilon, stash_type=stash_type)
    return y, _inv_rms(x, axis, epsilon, from_onnx(stash_type))


def _simplified_infer(
    ctx: InferContext,
    x: TensorType,
    scale: TensorType,
    *,
    axis: int = -1,
    epsilon: float = _EPSILON,
    stash_type: int = 1,
) -> tuple[TensorType, TensorType]:
    y = _RMS_NORM.infer(ctx, x, scale, axis=axis, epsilon=epsilon, stash_type=stash_type)
    assert isinstance(y, TensorType)
    stash = from_onnx(stash_type)
    if x.shape is None:
        return y, TensorType(stash, None)
    a = normalize_axis(axis, len(x.shape))
    return y, TensorType(stash, tuple(d if i < a else 1 for i, d in enumerate(x.shape)))


def _simplified_vjp(ctx: VjpContext, grads: Any, x: Any, scale: Any, **attrs: Any) -> list[Any]:
    gx, g_scale = _rms_grads(ctx, grads[0], grads[1], x, scale, ctx.needs_input_grad[1], **attrs)
    return [gx if ctx.needs_input_grad[0] else None, g_scale]


# ---------------------------------------------------------------- SkipSimplifiedLayerNormalization


def _skip_simplified(
    x: np.ndarray,
    skip: np.ndarray,
    gamma: np.ndarray,
    bias: np.ndarray | None = None,
    *,
    epsilon: float = _SKIP_EPSILON,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    s = skip_sum(x, skip, bias, "SkipSimplifiedLayerNormalization")
    y, inv = _simplified(s, gamma, epsilon=epsilon, stash_type=stash_code(x.dtype))
    return y, np.zeros_like(inv), inv, s


def _skip_simplified_infer(
    ctx: InferContext,
    x: TensorType,
    skip: TensorType,
    gamma: TensorType,
    bias: TensorType | None = None,
    *,
    epsilon: float = _SKIP_EPSILON,
) -> tuple[TensorType, TensorType, TensorType, TensorType]:
    return skip_infer(x, skip, (gamma, bias), "SkipSimplifiedLayerNormalization")


def _skip_simplified_vjp(
    ctx: VjpContext,
    grads: Any,
    x: Any,
    skip: Any,
    gamma: Any,
    bias: Any = None,
    *,
    epsilon: float,
) -> list[Any]:
    g_gamma: list[Any] = [None]
    attrs = {"axis": -1, "epsilon": epsilon, "stash_type": stash_code(x.dtype)}

    def norm(s: Any) -> Any:  # the mean output is zeros: no gradient flows through it
        need = ctx.needs_input_grad[2]
        gs, g_gamma[0] = _rms_grads(ctx, grads[0], grads[2], s, gamma, need, **attrs)
        return gs

    gx, gskip, gbias, _ = skip_vjp(ctx, grads, x, skip, bias, norm)
    return [gx, gskip, g_gamma[0], gbias]


register(
    OpDef(
        "SimplifiedLayerNormalization",
        1,
        _simplified,
        _simplified_infer,
        _simplified_vjp,
        num_outputs=2,
    )
)
register(
    OpDef(
        "SkipSimplifiedLayerNormalization",
        1,
        _skip_simplified,
        _skip_simplified_infer,
        _skip_simplified_vjp,
        domain=DOMAIN,
        num_outputs=4,
    )
)
