"""Activations and transcendental unary math.

Sigmoid, Softplus, Softsign, Mish, the ReLU family (LeakyRelu, PRelu, ThresholdedRelu, Elu,
Selu, Celu), HardSigmoid, HardSwish, Shrink, Gelu; Erf and the trigonometric/hyperbolic
functions (Tan, Asin, ..., Atanh). All but Shrink and PRelu take and return one
floating-point tensor. Activation kernels are numerically stable over the whole real line
(no overflow warnings for large ``|x|``); vjp rules are compositions of registry ops, so
they differentiate again.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.errors import ShapeError
from ir.ops.elementwise import dtype_rule, floating_kernel, require_floating
from ir.ops.grad_util import unbroadcast
from ir.ops.registry import InferContext, OpDef, VjpContext, op, register, scalar
from ir.ops.special import erf_float, gelu_float
from ir.types import TensorType


def _erf(x: np.ndarray) -> np.ndarray:
    return erf_float(x)


def _erf_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    dx = op.Mul(op.Exp(op.Neg(op.Mul(x, x))), scalar(2.0 / math.sqrt(math.pi), x))
    return [op.Mul(g, dx)]


# ---------------------------------------------------------------- sigmoid family


def _sigmoid(x: np.ndarray) -> np.ndarray:
    # exp(-|x|) never overflows and keeps full relative precision for very negative x.
    e = np.exp(-np.abs(x))
    r = 1 / (1 + e)
    return np.where(x >= 0, r, e * r)


def _sigmoid_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    y = ctx.outputs[0]
    return [op.Mul(g, op.Mul(y, op.Sub(scalar(1, y), y)))]


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.logaddexp(np.zeros((), dtype=x.dtype), x)  # log(1 + e^x) without overflow


def _softplus_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [op.Mul(g, op.Sigmoid(x))]


# ---------------------------------------------------------------- ReLU family

# ONNX stores attribute floats as float32: its default alpha 0.01 reads back as this.
_LEAKY_ALPHA = float(np.float32(0.01))


def _leaky_relu(x: np.ndarray, *, alpha: float = _LEAKY_ALPHA) -> np.ndarray:
    require_floating(x)
    return np.where(x < 0, x * x.dtype.type(alpha), x)


def _leaky_relu_vjp(ctx: VjpContext, g: Any, x: Any, *, alpha: float) -> list[Any]:
    return [op.Where(op.Less(x, scalar(0, x)), op.Mul(g, scalar(alpha, g)), g)]


def _elu(x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    require_floating(x)
    neg = np.expm1(np.minimum(x, 0)) * x.dtype.type(alpha)  # min: no overflow for large x
    return np.where(x < 0, neg, x)


def _elu_vjp(ctx: VjpContext, g: Any, x: Any, *, alpha: float) -> list[Any]:
    zero = scalar(0, x)
    # Exp of min(x, 0): the unused branch of Where stays finite, so its gradient is not NaN.
    slope = op.Mul(op.Exp(op.Min(x, zero)), scalar(alpha, x))
    return [op.Where(op.Less(x, zero), op.Mul(g, slope), g)]


# ---------------------------------------------------------------- GELU

_SQRT_HALF = math.sqrt(0.5)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_TANH_C = 0.044715


def _gelu(x: np.ndarray, *, approximate: str = "none") -> np.ndarray:
    require_floating(x)
    if approximate not in ("none", "tanh"):
        raise ValueError(f"Gelu: approximate must be 'none' or 'tanh', got {approximate!r}")
    return gelu_float(x, approximate)


def _gelu_vjp(ctx: VjpContext, g: Any, x: Any, *, approximate: str) -> list[Any]:
    def c(v: float) -> Any:
        return scalar(v, x)

    if approximate == "tanh":
        # y = x/2 (1 + t), t = tanh(u), u = k (x + c x^3): y' = (1 + t)/2 + x/2 (1 - t^2) u'.
        x2 = op.Mul(x, x)
        t = op.Tanh(op.Mul(op.Mul(x, op.Add(c(1), op.Mul(x2, c(_TANH_C)))), c(_SQRT_2_OVER_PI)))
        du = op.Mul(op.Add(c(1), op.Mul(x2, c(3 * _TANH_C))), c(_SQRT_2_OVER_PI))
        dt = op.Mul(op.Sub(c(1), op.Mul(t, t)), du)
        dx = op.Mul(op.Add(op.Add(c(1), t), op.Mul(x, dt)), c(0.5))
    else:
        # y = x Phi(x): y' = Phi(x) + x phi(x).
        cdf = op.Mul(op.Add(c(1), op.Erf(op.Mul(x, c(_SQRT_HALF)))), c(0.5))
        pdf = op.Mul(op.Exp(op.Mul(op.Mul(x, x), c(-0.5))), c(_INV_SQRT_2PI))
        dx = op.Add(cdf, op.Mul(x, pdf))
    return [op.Mul(g, dx)]


def _float_op(op_type: str, since: int, kernel: Any, vjp: Any, **kw: Any) -> None:
    rule = dtype_rule(op_type, D.FLOATING)
    register(OpDef(op_type, since, kernel, rule, vjp, **kw))


_float_op("Sigmoid", 13, floating_kernel(_sigmoid), _sigmoid_vjp, saves="outputs")
_float_op("Softplus", 1, floating_kernel(_softplus), _softplus_vjp)
_float_op("Erf", 13, floating_kernel(_erf), _erf_vjp)
_float_op("LeakyRelu", 16, _leaky_relu, _leaky_relu_vjp)
_float_op("Elu", 6, _elu, _elu_vjp)
_float_op("Gelu", 20, _gelu, _gelu_vjp)


# ---------------------------------------------------------------- more activations
# ONNX stores attribute floats as float32: defaults are written as they read back.
_HARD_SIGMOID_ALPHA = float(np.float32(0.2))
_SELU_ALPHA = float(np.float32(1.67326319217681884765625))
_SELU_GAMMA = float(np.float32(1.05070102214813232421875))


def _hard_sigmoid(
    x: np.ndarray, *, alpha: float = _HARD_SIGMOID_ALPHA, beta: float = 0.5
) -> np.ndarray:
    require_floating(x)
    t = x.dtype.type
    return np.clip(x * t(alpha) + t(beta), t(0), t(1))


def _hard_sigmoid_vjp(ctx: VjpContext, g: Any, x: Any, *, alpha: float, beta: float) -> list[Any]:
    z = op.Add(op.Mul(x, scalar(alpha, x)), scalar(beta, x))
    inside = op.And(op.Greater(z, scalar(0, z)), op.Less(z, scalar(1, z)))
    return [op.Where(inside, op.Mul(g, scalar(alpha, g)), scalar(0, g))]


def _hard_swish(x: np.ndarray) -> np.ndarray:
    return x * _hard_sigmoid(x, alpha=1 / 6, beta=0.5)


def _hard_swish_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    # y = x (x + 3) / 6 on (-3, 3): y' = x/3 + 1/2; 0 below, 1 above.
    ramp = op.Add(op.Div(x, scalar(3, x)), scalar(0.5, x))
    inner = op.Where(op.Greater(x, scalar(3, x)), g, op.Mul(g, ramp))
    return [op.Where(op.Less(x, scalar(-3, x)), scalar(0, g), inner)]


def _selu(x: np.ndarray, *, alpha: float = _SELU_ALPHA, gamma: float = _SELU_GAMMA) -> np.ndarray:
    require_floating(x)
    t = x.dtype.type
    return np.where(x > 0, x, np.expm1(np.minimum(x, t(0))) * t(alpha)) * t(gamma)


def _selu_vjp(ctx: VjpContext, g: Any, x: Any, *, alpha: float, gamma: float) -> list[Any]:
    zero = scalar(0, x)
    neg = op.Mul(op.Exp(op.Min(x, zero)), scalar(alpha * gamma, x))
    return [op.Mul(g, op.Where(op.Greater(x, zero), scalar(gamma, x), neg))]


def _celu(x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    require_floating(x)
    t = x.dtype.type
    neg = np.expm1(np.minimum(x, t(0)) / t(alpha)) * t(alpha)
    return np.maximum(x, t(0)) + np.minimum(neg, t(0))


def _celu_vjp(ctx: VjpContext, g: Any, x: Any, *, alpha: float) -> list[Any]:
    zero = scalar(0, x)
    # For either sign of alpha the exponential part is active exactly where x < 0.
    slope = op.Exp(op.Div(op.Min(x, zero), scalar(alpha, x)))
    return [op.Where(op.Less(x, zero), op.Mul(g, slope), g)]


def _thresholded_relu(x: np.ndarray, *, alpha: float = 1.0) -> np.ndarray:
    require_floating(x)
    return np.where(x > x.dtype.type(alpha), x, x.dtype.type(0))


def _thresholded_relu_vjp(ctx: VjpContext, g: Any, x: Any, *, alpha: float) -> list[Any]:
    return [op.Where(op.Greater(x, scalar(alpha, x)), g, scalar(0, g))]


def _mish(x: np.ndarray) -> np.ndarray:
    return x * np.tanh(_softplus(x))


def _mish_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    # y = x tanh(sp(x)): y' = t + x (1 - t^2) sigmoid(x), as sp' = sigmoid.
    t = op.Tanh(op.Softplus(x))
    dt = op.Mul(op.Sub(scalar(1, t), op.Mul(t, t)), op.Sigmoid(x))
    return [op.Mul(g, op.Add(t, op.Mul(x, dt)))]


def _softsign(x: np.ndarray) -> np.ndarray:
    return x / (np.abs(x) + x.dtype.type(1))


def _softsign_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    d = op.Add(op.Abs(x), scalar(1, x))
    return [op.Div(g, op.Mul(d, d))]


def _shrink(x: np.ndarray, *, bias: float = 0.0, lambd: float = 0.5) -> np.ndarray:
    # Integers compute in float and truncate back, as ONNX runtimes do.
    out = np.where(x < -lambd, x + bias, np.where(x > lambd, x - bias, 0))
    return out.astype(x.dtype, copy=False)


def _shrink_vjp(ctx: VjpContext, g: Any, x: Any, *, bias: float, lambd: float) -> list[Any]:
    if not D.is_floating(x.dtype):
        return [None]
    outside = op.Or(op.Less(x, scalar(-lambd, x)), op.Greater(x, scalar(lambd, x)))
    return [op.Where(outside, g, scalar(0, g))]


_PRELU_RULE = dtype_rule("PRelu", D.FLOATING | {D.int32, D.int64, D.uint32, D.uint64})


def _prelu(x: np.ndarray, slope: np.ndarray) -> np.ndarray:
    return np.where(x < 0, x * slope, x).astype(x.dtype, copy=False)


def _prelu_infer(ctx: InferContext, x: TensorType, slope: TensorType) -> TensorType:
    _PRELU_RULE(ctx, x, slope)  # dtypes, and the shapes broadcast at all
    if x.shape is not None and slope.shape is not None:
        # Unidirectional: slope broadcasts to X, never the other way round.
        lead = len(x.shape) - len(slope.shape)
        if lead < 0 or any(
            isinstance(s, int) and s != 1 and (d == 1 or (isinstance(d, int) and s != d))
            for s, d in zip(slope.shape, x.shape[lead:], strict=True)
        ):
            raise ShapeError(f"PRelu: slope {slope.shape} does not broadcast to X {x.shape}")
    return x


def _prelu_vjp(ctx: VjpContext, g: Any, x: Any, slope: Any) -> list[Any]:
    neg = op.Less(x, scalar(0, x))
    gx = op.Where(neg, op.Mul(g, slope), g) if ctx.needs_input_grad[0] else None
    gs = None
    if ctx.needs_input_grad[1]:
        gs = unbroadcast(op.Where(neg, op.Mul(g, x), scalar(0, g)), slope)
    return [gx, gs]


_float_op("HardSigmoid", 6, _hard_sigmoid, _hard_sigmoid_vjp)
_float_op("HardSwish", 14, floating_kernel(_hard_swish), _hard_swish_vjp)
_float_op("Selu", 6, _selu, _selu_vjp)
# Celu-12 admits float32 only; Celu-28 (same meaning) every float type, which this follows.
_float_op("Celu", 12, _celu, _celu_vjp)
_float_op("ThresholdedRelu", 10, _thresholded_relu, _thresholded_relu_vjp)
_float_op("Mish", 18, floating_kernel(_mish), _mish_vjp)
_float_op("Softsign", 1, floating_kernel(_softsign), _softsign_vjp)
register(OpDef("Shrink", 9, _shrink, dtype_rule("Shrink", D.NUMERIC), _shrink_vjp))
register(OpDef("PRelu", 16, _prelu, _prelu_infer, _prelu_vjp))


# ---------------------------------------------------------------- trigonometric, hyperbolic


def _sqrt_of(x: Any, sign: float) -> Any:
    """``sqrt(1 + sign * x^2)`` (sign -1: 1 - x^2) as registry ops."""
    return op.Sqrt(op.Add(scalar(1, x), op.Mul(op.Mul(x, x), scalar(sign, x))))


def _tan_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    y = ctx.outputs[0]
    return [op.Mul(g, op.Add(scalar(1, y), op.Mul(y, y)))]


def _asin_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [op.Div(g, _sqrt_of(x, -1))]


def _acos_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [op.Neg(op.Div(g, _sqrt_of(x, -1)))]


def _atan_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [op.Div(g, op.Add(scalar(1, x), op.Mul(x, x)))]


def _sinh_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [op.Mul(g, op.Cosh(x))]


def _cosh_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [op.Mul(g, op.Sinh(x))]


def _asinh_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [op.Div(g, _sqrt_of(x, 1))]


def _acosh_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    # sqrt(x - 1) sqrt(x + 1) rather than sqrt(x^2 - 1): no cancellation near x = 1.
    one = scalar(1, x)
    return [op.Div(g, op.Mul(op.Sqrt(op.Sub(x, one)), op.Sqrt(op.Add(x, one))))]


def _atanh_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    return [op.Div(g, op.Sub(scalar(1, x), op.Mul(x, x)))]


for _name, _since, _fn, _vjp in (
    ("Tan", 7, np.tan, _tan_vjp),
    ("Asin", 7, np.arcsin, _asin_vjp),
    ("Acos", 7, np.arccos, _acos_vjp),
    ("Atan", 7, np.arctan, _atan_vjp),
    ("Sinh", 9, np.sinh, _sinh_vjp),
    ("Cosh", 9, np.cosh, _cosh_vjp),
    ("Asinh", 9, np.arcsinh, _asinh_vjp),
    ("Acosh", 9, np.arccosh, _acosh_vjp),
    ("Atanh", 9, np.arctanh, _atanh_vjp),
):
    _saves = "outputs" if _name == "Tan" else "all"
    _float_op(_name, _since, floating_kernel(_fn), _vjp, saves=_saves)
