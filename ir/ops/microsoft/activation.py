"""``com.microsoft`` GELU variants onnxruntime's transformer optimizer writes.

- ``Gelu``: the exact (erf) GELU, as ONNX ``Gelu`` (opset 20) with ``approximate="none"``.
- ``BiasGelu(A, B)``: ``Gelu(A + B)``, B a 1-D bias over A's last axis.
- ``FastGelu(X, bias?)``: the tanh approximation of GELU of ``X + bias``, as ONNX ``Gelu``
  with ``approximate="tanh"``.
- ``QuickGelu(X)``: ``X * Sigmoid(alpha * X)`` (``alpha`` 1.702 by default).

The GELUs run ONNX ``Gelu``'s kernel and vjp rule (one definition of GELU), after the bias
add; their vjps sum the bias gradient over the broadcast axes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.errors import ShapeError
from ir.ops import activation  # noqa: F401  (registers ONNX Gelu, whose kernel and vjp serve here)
from ir.ops.grad_util import unbroadcast
from ir.ops.microsoft.common import DOMAIN, check_last, floats, last_dim, sub_ctx
from ir.ops.registry import InferContext, OpDef, VjpContext, get, op, register, scalar
from ir.types import TensorType

_GELU = get("Gelu")


def _biased(x: np.ndarray, bias: np.ndarray | None, what: str) -> np.ndarray:
    if bias is None:
        return x
    if bias.ndim != 1 or not x.ndim or bias.shape[0] != x.shape[-1]:
        raise ShapeError(
            f"{what}: the bias must be 1-D with X's last dim ({x.shape[-1:]}), got "
            f"{list(bias.shape)}"
        )
    return (x + bias).astype(x.dtype, copy=False)


def _biased_infer(x: TensorType, bias: TensorType | None, what: str) -> TensorType:
    floats((x, bias), f"{what} inputs")
    check_last(bias, last_dim(x), f"{what} bias")
    return x


def _biased_vjp(ctx: VjpContext, g: Any, x: Any, bias: Any, approximate: str) -> list[Any]:
    s = x if bias is None else op.Add(x, bias)
    (gs,) = _GELU.vjp(sub_ctx(ctx, [True]), g, s, approximate=approximate)  # type: ignore[misc]
    gb = unbroadcast(gs, bias) if bias is not None and ctx.needs_input_grad[1] else None
    return [gs if ctx.needs_input_grad[0] else None, gb]


# ---------------------------------------------------------------- Gelu, BiasGelu, FastGelu


def _gelu(x: np.ndarray) -> np.ndarray:
    return _GELU.kernel(x, approximate="none")


def _gelu_infer(ctx: InferContext, x: TensorType) -> TensorType:
    return _biased_infer(x, None, "Gelu")


def _gelu_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return _biased_vjp(ctx, g, x, None, "none")[:1]


def _bias_gelu(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return _GELU.kernel(_biased(a, b, "BiasGelu"), approximate="none")


def _bias_gelu_infer(ctx: InferContext, a: TensorType, b: TensorType) -> TensorType:
    return _biased_infer(a, b, "BiasGelu")


def _bias_gelu_vjp(ctx: VjpContext, g: Any, a: Any, b: Any) -> list[Any]:
    return _biased_vjp(ctx, g, a, b, "none")


def _fast_gelu(x: np.ndarray, bias: np.ndarray | None = None) -> np.ndarray:
    return _GELU.kernel(_biased(x, bias, "FastGelu"), approximate="tanh")


def _fast_gelu_infer(
    ctx: InferContext, x: TensorType, bias: TensorType | None = None
) -> TensorType:
    return _biased_infer(x, bias, "FastGelu")


def _fast_gelu_vjp(ctx: VjpContext, g: Any, x: Any, bias: Any = None) -> list[Any]:
    return _biased_vjp(ctx, g, x, bias, "tanh")


# ---------------------------------------------------------------- QuickGelu

_QUICK_ALPHA = float(np.float32(1.702))  # onnxruntime stores the default as a float32


def _quick_gelu(x: np.ndarray, *, alpha: float = _QUICK_ALPHA) -> np.ndarray:
    x64 = x.astype(np.float64)
    return (x64 / (1.0 + np.exp(-alpha * x64))).astype(x.dtype, copy=False)


def _quick_gelu_infer(ctx: InferContext, x: TensorType, **attrs: Any) -> TensorType:
    return _biased_infer(x, None, "QuickGelu")


def _quick_gelu_vjp(ctx: VjpContext, g: Any, x: Any, *, alpha: float) -> list[Any]:
    # y = x s with s = sigmoid(alpha x): y' = s + alpha x s (1 - s).
    s = op.Sigmoid(op.Mul(x, scalar(alpha, x)))
    ds = op.Mul(op.Mul(op.Mul(x, scalar(alpha, x)), s), op.Sub(scalar(1.0, x), s))
    return [op.Mul(g, op.Add(s, ds))]


def _register(op_type: str, kernel: Any, infer: Any, vjp: Any) -> None:
    register(OpDef(op_type, 1, kernel, infer, vjp, domain=DOMAIN))


_register("Gelu", _gelu, _gelu_infer, _gelu_vjp)
_register("BiasGelu", _bias_gelu, _bias_gelu_infer, _bias_gelu_vjp)
_register("FastGelu", _fast_gelu, _fast_gelu_infer, _fast_gelu_vjp)
_register("QuickGelu", _quick_gelu, _quick_gelu_infer, _quick_gelu_vjp)
