"""Quantization ops.

QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearMatMul, MatMulInteger,
ConvInteger, QLinearConv.

Only the integer quantized types graphcap holds (int8, uint8, int16, uint16) are supported;
float8 and 4-bit types have no NumPy dtype here. Integer arithmetic is exact (int64 or
int32), and rescaling happens in float64 before rounding half to even, as ONNX's reference
does. None of these ops has a vjp: their outputs are integers, or (DequantizeLinear) a
function of integer inputs.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.errors import DTypeError, ShapeError, UnsupportedOpError
from ir.ops.conv import ConvAttrs, conv, conv_shape
from ir.ops.infer import check_dtype, normalize_axis
from ir.ops.linalg import _matmul_infer
from ir.ops.registry import InferContext, OpDef, register, with_attrs
from ir.types import TensorType

_QUANT = frozenset({D.int8, D.uint8, D.int16, D.uint16})
_BYTE = frozenset({D.int8, D.uint8})
_SCALES = frozenset({D.float16, D.float32})
_NO_VJP = "quantized ops have integer outputs or integer inputs: nothing to differentiate"


def _expand_param(
    p: np.ndarray, shape: tuple[int, ...], axis: int, block_size: int, what: str
) -> np.ndarray:
    """A scale or zero point broadcastable to ``shape``: per tensor, per axis or blocked."""
    if p.ndim == 0 or p.size == 1:
        return p.reshape(())
    axis = normalize_axis(axis, len(shape), f"{what} axis")
    if not block_size:
        if p.ndim != 1 or p.shape[0] != shape[axis]:
            raise ShapeError(
                f"{what}: a per-axis parameter must be 1-D of length {shape[axis]} (axis "
                f"{axis} of {list(shape)}), got {list(p.shape)}"
            )
        return p.reshape([-1 if i == axis else 1 for i in range(len(shape))])
    if block_size < 0:
        raise ShapeError(f"{what}: block_size must be positive, got {block_size}")
    full = np.repeat(p, block_size, axis=axis).take(np.arange(shape[axis]), axis=axis)
    if full.shape != tuple(shape):
        raise ShapeError(
            f"{what}: blocked parameter {list(p.shape)} with block_size {block_size} does not "
            f"cover an input of shape {list(shape)} along axis {axis}"
        )
    return full


def _quant_dtype(zero_point: np.dtype | None, output_dtype: int, what: str) -> np.dtype:
    if zero_point is not None:
        dtype = zero_point
        if output_dtype and D.from_onnx(output_dtype) != dtype:
            raise DTypeError(f"{what}: output_dtype {output_dtype} differs from zero point's")
    else:
        dtype = D.from_onnx(output_dtype) if output_dtype else D.uint8
    if dtype not in _QUANT:
        raise UnsupportedOpError(f"{what}: quantizing to {dtype} is not supported")
    return dtype


def _saturate(q: np.ndarray, dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(q, info.min, info.max).astype(dtype)


# ---------------------------------------------------------------- QuantizeLinear


def _quantize_linear(
    x: np.ndarray,
    y_scale: np.ndarray,
    y_zero_point: np.ndarray | None = None,
    *,
    axis: int = 1,
    block_size: int = 0,
    output_dtype: int = 0,
    precision: int = 0,
    saturate: int = 1,  # only float8 outputs saturate optionally; integers always do
) -> np.ndarray:
    del saturate
    zp_dtype = None if y_zero_point is None else y_zero_point.dtype
    dtype = _quant_dtype(zp_dtype, output_dtype, "QuantizeLinear")
    # The division runs in `precision`, else in the scale's type.
    work = D.from_onnx(precision) if precision else y_scale.dtype
    work = work if work in D.FLOATING else D.float64
    scale = _expand_param(y_scale, x.shape, axis, block_size, "QuantizeLinear y_scale")
    q = np.rint(x.astype(work) / scale.astype(work)).astype(np.float64)
    if y_zero_point is not None:
        q = q + _expand_param(y_zero_point, x.shape, axis, block_size, "QuantizeLinear zero")
    return _saturate(q, dtype)


def _quantize_linear_infer(
    ctx: InferContext,
    x: TensorType,
    y_scale: TensorType,
    y_zero_point: TensorType | None = None,
    *,
    output_dtype: int = 0,
    **attrs: Any,
) -> TensorType:
    check_dtype(x, {*_SCALES, D.float64, D.int32}, "QuantizeLinear x")
    zp = None if y_zero_point is None else y_zero_point.dtype
    return TensorType(_quant_dtype(zp, output_dtype, "QuantizeLinear"), x.shape)


register(
    OpDef(
        "QuantizeLinear",
        23,
        _quantize_linear,
        _quantize_linear_infer,
        None,
        no_vjp="the output is integer (rounded): its gradient is zero almost everywhere",
    )
)


# ---------------------------------------------------------------- DequantizeLinear


def _dequantize_linear(
    x: np.ndarray,
    x_scale: np.ndarray,
    x_zero_point: np.ndarray | None = None,
    *,
    axis: int = 1,
    block_size: int = 0,
    output_dtype: int = 0,
) -> np.ndarray:
    out = D.from_onnx(output_dtype) if output_dtype else x_scale.dtype
    diff = x.astype(np.int64)
    if x_zero_point is not None:
        zp = _expand_param(x_zero_point, x.shape, axis, block_size, "DequantizeLinear zero")
        diff = diff - zp
    # Exact integer difference, then the product in float32 (ONNX's reference) or float64.
    work = D.float64 if out == D.float64 else D.float32
    scale = _expand_param(x_scale, x.shape, axis, block_size, "DequantizeLinear x_scale")
    return np.asarray(diff.astype(work) * scale.astype(work)).astype(out)


def _dequantize_linear_infer(
    ctx: InferContext,
    x: TensorType,
    x_scale: TensorType,
    x_zero_point: TensorType | None = None,
    *,
    output_dtype: int = 0,
    **attrs: Any,
) -> TensorType:
    check_dtype(x, {*_QUANT, D.int32}, "DequantizeLinear x")
    if x_zero_point is not None and x_zero_point.dtype != x.dtype:
        raise DTypeError("DequantizeLinear: x and x_zero_point must share one dtype")
    return TensorType(D.from_onnx(output_dtype) if output_dtype else x_scale.dtype, x.shape)


register(
    OpDef(
        "DequantizeLinear",
        23,
        _dequantize_linear,
        _dequantize_linear_infer,
        None,
        no_vjp="x is integer; scale gradients of quantization parameters are not provided",
    )
)


# ---------------------------------------------------------------- DynamicQuantizeLinear


def _dynamic_quantize_linear(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f32 = np.float32
    # The range always holds 0, so that 0 quantizes exactly.
    hi = f32(max(0.0, float(np.max(x)))) if x.size else f32(0)
    lo = f32(min(0.0, float(np.min(x)))) if x.size else f32(0)
    scale = f32(f32(1.0) if hi == lo else hi - lo) / f32(255)
    zp = np.rint(np.clip(f32(0) - lo / scale, 0, 255))
    y = np.clip(np.rint(x / scale) + zp, 0, 255).astype(np.uint8)
    return y, np.asarray(scale, x.dtype), np.asarray(zp, np.uint8)


def _dynamic_quantize_linear_infer(
    ctx: InferContext, x: TensorType
) -> tuple[TensorType, TensorType, TensorType]:
    check_dtype(x, {D.float32}, "DynamicQuantizeLinear x")
    return TensorType(D.uint8, x.shape), TensorType(x.dtype, ()), TensorType(D.uint8, ())


register(
    OpDef(
        "DynamicQuantizeLinear",
        11,
        _dynamic_quantize_linear,
        _dynamic_quantize_linear_infer,
        None,
        no_vjp=_NO_VJP,
        num_outputs=3,
    )
)


# ---------------------------------------------------------------- MatMulInteger


def _centered(x: np.ndarray, zp: np.ndarray | None, row_axis: int | None) -> np.ndarray:
    """``x - zp`` exactly; a 1-D ``zp`` is per row (``row_axis`` -2) or per column (-1)."""
    x = x.astype(np.int32)
    if zp is None:
        return x
    zp = zp.astype(np.int32)
    if zp.ndim >= 1 and zp.size > 1 and row_axis == -2 and x.ndim >= 2:
        zp = zp.reshape(*zp.shape, 1)
    return x - zp


def _matmul_integer(
    a: np.ndarray,
    b: np.ndarray,
    a_zero_point: np.ndarray | None = None,
    b_zero_point: np.ndarray | None = None,
) -> np.ndarray:
    return np.matmul(_centered(a, a_zero_point, -2), _centered(b, b_zero_point, -1))


def _matmul_shape(ctx: InferContext, a: TensorType, b: TensorType) -> Any:
    # MatMul's shape rule on stand-in float types.
    f = D.float32
    return _matmul_infer(ctx, TensorType(f, a.shape), TensorType(f, b.shape)).shape


def _matmul_integer_infer(
    ctx: InferContext,
    a: TensorType,
    b: TensorType,
    a_zero_point: TensorType | None = None,
    b_zero_point: TensorType | None = None,
) -> TensorType:
    check_dtype(a, _BYTE, "MatMulInteger A")
    check_dtype(b, _BYTE, "MatMulInteger B")
    return TensorType(D.int32, _matmul_shape(ctx, a, b))


register(OpDef("MatMulInteger", 10, _matmul_integer, _matmul_integer_infer, None, no_vjp=_NO_VJP))


# ---------------------------------------------------------------- QLinearMatMul


def _requantize(acc: np.ndarray, factor: np.ndarray, zp: np.ndarray | None, dtype: Any) -> Any:
    y = acc.astype(np.float64) * factor.astype(np.float64)
    if zp is not None:
        y = y + zp.astype(np.float64)
    return _saturate(np.rint(y), np.dtype(dtype))


def _qlinear_matmul(
    a: np.ndarray,
    a_scale: np.ndarray,
    a_zero_point: np.ndarray,
    b: np.ndarray,
    b_scale: np.ndarray,
    b_zero_point: np.ndarray,
    y_scale: np.ndarray,
    y_zero_point: np.ndarray,
) -> np.ndarray:
    acc = _matmul_integer(a, b, a_zero_point, b_zero_point)
    # Per-row a_scale (size M) scales rows; per-column b_scale (size N) columns.
    sa = a_scale.reshape(-1, 1) if a_scale.size > 1 else a_scale.reshape(())
    factor = sa * b_scale / y_scale  # in the scales' type, as ONNX's reference
    assert y_zero_point is not None  # QLinearConv's y_zero_point is a required input
    return _requantize(acc, factor, y_zero_point, y_zero_point.dtype)


def _qlinear_matmul_infer(ctx: InferContext, a: TensorType, *rest: TensorType) -> TensorType:
    b, y_zp = rest[2], rest[6]
    check_dtype(a, _BYTE, "QLinearMatMul a")
    check_dtype(b, _BYTE, "QLinearMatMul b")
    check_dtype(y_zp, _BYTE, "QLinearMatMul y_zero_point")
    return TensorType(y_zp.dtype, _matmul_shape(ctx, a, b))


register(OpDef("QLinearMatMul", 21, _qlinear_matmul, _qlinear_matmul_infer, None, no_vjp=_NO_VJP))


# ---------------------------------------------------------------- ConvInteger, QLinearConv


def _per_out_channel(p: np.ndarray | None, rank: int, axis: int) -> np.ndarray | None:
    """A scalar or per-output-channel (1-D of M) parameter, broadcastable at ``axis``."""
    if p is None or p.size <= 1:
        return None if p is None else p.reshape(())
    return p.reshape([-1 if i == axis else 1 for i in range(rank)])


def _conv_int32(
    x: np.ndarray,
    w: np.ndarray,
    x_zero_point: np.ndarray | None,
    w_zero_point: np.ndarray | None,
    bias: np.ndarray | None,
    attrs: ConvAttrs,
) -> np.ndarray:
    xc = _centered(x, x_zero_point, None)
    wc = w.astype(np.int32)
    wzp = _per_out_channel(w_zero_point, w.ndim, 0)
    if wzp is not None:
        wc = wc - wzp.astype(np.int32)
    return conv(xc, wc, bias, attrs)


@with_attrs(ConvAttrs)
def _conv_integer(
    x: np.ndarray,
    w: np.ndarray,
    x_zero_point: np.ndarray | None = None,
    w_zero_point: np.ndarray | None = None,
    *,
    attrs: ConvAttrs,
) -> np.ndarray:
    return _conv_int32(x, w, x_zero_point, w_zero_point, None, attrs)


@with_attrs(ConvAttrs)
def _conv_integer_infer(
    ctx: InferContext,
    x: TensorType,
    w: TensorType,
    x_zero_point: TensorType | None = None,
    w_zero_point: TensorType | None = None,
    *,
    attrs: ConvAttrs,
) -> TensorType:
    check_dtype(x, _BYTE, "ConvInteger x")
    check_dtype(w, _BYTE, "ConvInteger w")
    return TensorType(D.int32, conv_shape(x, w, attrs))


register(OpDef("ConvInteger", 10, _conv_integer, _conv_integer_infer, None, no_vjp=_NO_VJP))


@with_attrs(ConvAttrs)
def _qlinear_conv(
    x: np.ndarray,
    x_scale: np.ndarray,
    x_zero_point: np.ndarray,
    w: np.ndarray,
    w_scale: np.ndarray,
    w_zero_point: np.ndarray,
    y_scale: np.ndarray,
    y_zero_point: np.ndarray,
    b: np.ndarray | None = None,
    *,
    attrs: ConvAttrs,
) -> np.ndarray:
    acc = _conv_int32(x, w, x_zero_point, w_zero_point, b, attrs)
    ws = _per_out_channel(w_scale, x.ndim, 1)
    assert ws is not None  # w_scale is a required input
    factor = x_scale.astype(np.float64) * ws.astype(np.float64) / y_scale.astype(np.float64)
    return _requantize(acc, factor, y_zero_point, y_zero_point.dtype)


@with_attrs(ConvAttrs)
def _qlinear_conv_infer(
    ctx: InferContext,
    x: TensorType,
    x_scale: TensorType,
    x_zero_point: TensorType,
    w: TensorType,
    w_scale: TensorType,
    w_zero_point: TensorType,
    y_scale: TensorType,
    y_zero_point: TensorType,
    b: TensorType | None = None,
    *,
    attrs: ConvAttrs,
) -> TensorType:
    check_dtype(x, _BYTE, "QLinearConv x")
    check_dtype(w, _BYTE, "QLinearConv w")
    check_dtype(y_zero_point, _BYTE, "QLinearConv y_zero_point")
    return TensorType(y_zero_point.dtype, conv_shape(x, w, attrs))


register(OpDef("QLinearConv", 10, _qlinear_conv, _qlinear_conv_infer, None, no_vjp=_NO_VJP))
