"""Specs of ``ir/ops/quant.py``.

Forward dtypes are the scales' (and float inputs') dtypes; each sample picks its quantized
types (int8, uint8, int16, uint16) itself. Values keep ``x / scale`` away from .5, so no
rounding ties.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.op_specs.common import F32, OpSpec, Sample

U8, I8 = np.dtype(np.uint8), np.dtype(np.int8)
U16, I16 = np.dtype(np.uint16), np.dtype(np.int16)


def _q(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, int(info.max) + 1, size=shape).astype(dtype)


def _scale(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    # Powers of two: x / scale and the requantization factors are exact.
    return (2.0 ** rng.integers(-6, -1, size=shape)).astype(dtype)


def _x(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype, scale: float) -> Any:
    # Off the .5 ties of x / scale (rounding half to even differs by implementation).
    k = rng.integers(-300, 300, size=shape) + rng.uniform(-0.4, 0.4, size=shape)
    return (k * scale).astype(dtype)


def _quantize_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    s = np.asarray(0.03125, dtype)
    x = _x(rng, (3, 4), dtype, 0.03125)
    x3 = _x(rng, (2, 3, 4), dtype, 0.0625)
    per_axis = np.asarray([0.0625, 0.125, 0.25], dtype)
    blocked = _scale(rng, (2, 3, 2), dtype)
    return [
        Sample((x, s)),  # no zero point: uint8
        Sample((x, s, np.asarray(10, U8))),
        Sample((x, s, np.asarray(-3, I8))),
        Sample((x, s, np.asarray(1000, U16))),
        Sample((x, s, np.asarray(-7, I16))),
        Sample((x, s), {"output_dtype": 3}),  # int8 by attribute
        Sample((x3, per_axis, np.asarray([1, -2, 3], I8)), {"axis": 1}),
        Sample((x3, per_axis[:2], np.asarray([5, 0], U8)), {"axis": 0}),
        Sample((x3, np.asarray([0.5, 0.25, 0.125, 0.5], dtype)), {"axis": -1}),
        Sample((x3, blocked, _q(rng, (2, 3, 2), I8)), {"axis": -1, "block_size": 2}),
        Sample((_x(rng, (5,), dtype, 0.03125), s, np.asarray(3, I8))),
    ]


def _dequantize_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    s = np.asarray(0.03125, dtype)
    per_axis = np.asarray([0.5, 0.25, 0.125], dtype)
    return [
        Sample((_q(rng, (3, 4), U8), s)),
        Sample((_q(rng, (3, 4), U8), s, np.asarray(10, U8))),
        Sample((_q(rng, (3, 4), I8), s, np.asarray(-3, I8))),
        Sample((_q(rng, (3, 4), I16), s, np.asarray(-300, I16))),
        Sample((_q(rng, (3, 4), U16), s, np.asarray(3000, U16))),
        Sample((rng.integers(-5000, 5000, (3, 4)).astype(np.int32), s)),
        Sample((_q(rng, (2, 3, 4), I8), per_axis, _q(rng, (3,), I8)), {"axis": 1}),
        Sample((_q(rng, (2, 3, 4), U8), per_axis[:2], _q(rng, (2,), U8)), {"axis": -3}),
        Sample(
            (_q(rng, (2, 3, 4), I8), _scale(rng, (2, 2, 4), dtype), _q(rng, (2, 2, 4), I8)),
            {"axis": 1, "block_size": 2},
        ),
        Sample((_q(rng, (), U8), s, np.asarray(1, U8))),
    ]


def _dynamic_quantize_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((rng.uniform(-2, 3, (3, 4)).astype(dtype),)),
        Sample((rng.uniform(0.5, 3, (2, 5)).astype(dtype),)),  # all positive: min is 0
        Sample((rng.uniform(-3, -0.5, (6,)).astype(dtype),)),  # all negative: max is 0
    ]


def _matmul_integer_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((_q(rng, (3, 4), U8), _q(rng, (4, 2), U8))),
        Sample((_q(rng, (3, 4), U8), _q(rng, (4, 2), U8), np.asarray(12, U8), np.asarray(0, U8))),
        Sample((_q(rng, (2, 3, 4), I8), _q(rng, (4, 5), I8), np.asarray(-2, I8))),
        Sample((_q(rng, (3, 4), U8), _q(rng, (4, 2), I8), None, _q(rng, (2,), I8))),
        Sample((_q(rng, (4,), I8), _q(rng, (2, 4, 3), U8))),
    ]


def _qlinear_matmul_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def case(a_shape: Any, b_shape: Any, qa: np.dtype, qy: np.dtype) -> Sample:
        return Sample(
            (
                _q(rng, a_shape, qa),
                np.asarray(0.0625, dtype),
                np.asarray(3, qa),
                _q(rng, b_shape, qa),
                np.asarray(0.125, dtype),
                np.asarray(-1 if qa == I8 else 7, qa),
                np.asarray(16.0, dtype),
                np.asarray(5, qy),
            )
        )

    return [
        case((3, 4), (4, 2), U8, U8),
        case((2, 3, 4), (4, 5), I8, I8),
        case((2, 3, 4), (2, 4, 2), U8, U8),
    ]


def _conv_integer_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((_q(rng, (1, 2, 5, 5), U8), _q(rng, (3, 2, 3, 3), U8), np.asarray(9, U8))),
        Sample(
            (_q(rng, (2, 2, 5, 4), I8), _q(rng, (2, 2, 2, 2), I8), None, np.asarray(-1, I8)),
            {"pads": [1, 0, 1, 1], "strides": [2, 1]},
        ),
        Sample(
            (_q(rng, (1, 4, 6), U8), _q(rng, (4, 2, 3), U8), np.asarray(1, U8)),
            {"group": 2, "auto_pad": "SAME_UPPER"},
        ),
    ]


def _qlinear_conv_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def case(xs: Any, ws: Any, q: np.dtype, bias: bool, attrs: dict[str, Any]) -> Sample:
        m = ws[0]
        return Sample(
            (
                _q(rng, xs, q),
                np.asarray(0.0625, dtype),
                np.asarray(2, q),
                _q(rng, ws, q),
                np.asarray(0.125, dtype),
                np.asarray(0, q),
                np.asarray(32.0, dtype),
                np.asarray(-4 if q == I8 else 100, q),
                rng.integers(-500, 500, (m,)).astype(np.int32) if bias else None,
            ),
            attrs,
        )

    return [
        case((1, 2, 5, 5), (3, 2, 3, 3), U8, False, {}),
        case((1, 2, 5, 5), (3, 2, 3, 3), U8, True, {"pads": [1, 1, 1, 1]}),
        case((2, 2, 6, 5), (2, 1, 2, 2), I8, True, {"group": 2, "strides": [2, 2]}),
    ]


SPECS = [
    OpSpec("QuantizeLinear", _quantize_samples, dtypes=(F32,), grad_order=0),
    OpSpec("DequantizeLinear", _dequantize_samples, dtypes=(F32,), grad_order=0),
    OpSpec("DynamicQuantizeLinear", _dynamic_quantize_samples, dtypes=(F32,), grad_order=0),
    OpSpec("MatMulInteger", _matmul_integer_samples, dtypes=(F32,), grad_order=0),
    OpSpec("QLinearMatMul", _qlinear_matmul_samples, dtypes=(F32,), grad_order=0),
    OpSpec("ConvInteger", _conv_integer_samples, dtypes=(F32,), grad_order=0),
    OpSpec("QLinearConv", _qlinear_conv_samples, dtypes=(F32,), grad_order=0),
]
