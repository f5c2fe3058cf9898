"""Specs of ``ir/ops/elementwise.py``."""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import (
    NUMERIC,
    BOOL,
    F32,
    F64,
    I64,
    OpSpec,
    Sample,
    binary_samples,
    positive,
    rand,
    unary_samples,
)


def _div_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    out = []
    for s in binary_samples(rng, dtype):
        x, y = s.inputs
        assert y is not None
        y = np.where(np.abs(y) < 0.5, np.ones_like(y) * 3, y).astype(dtype)
        out.append(Sample((x, y)))
    return out


def _where_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((rand(rng, (3, 4), BOOL), rand(rng, (3, 4), dtype), rand(rng, (3, 4), dtype))),
        Sample((rand(rng, (4,), BOOL), rand(rng, (3, 4), dtype), rand(rng, (), dtype))),
    ]


def _cast_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((rand(rng, (3, 4), dtype),), {"to": to})
        for to in (1, 11, 7)  # float32, float64, int64
    ]


SPECS = [
    OpSpec("Add", binary_samples, dtypes=NUMERIC),
    OpSpec("Sub", binary_samples, dtypes=NUMERIC),
    OpSpec("Mul", binary_samples, dtypes=NUMERIC),
    OpSpec("Div", _div_samples, dtypes=NUMERIC),
    OpSpec("Neg", unary_samples, dtypes=NUMERIC),
    OpSpec("Exp", unary_samples),
    OpSpec("Log", lambda rng, dt: unary_samples(rng, dt, positive)),
    OpSpec("Tanh", unary_samples),
    OpSpec(
        "Relu",
        unary_samples,
        dtypes=(F32, F64, I64),
        oracle_skip={"onnxruntime/int64": "onnxruntime 1.31 has no int64 Relu kernel"},
    ),
    OpSpec("Greater", binary_samples, dtypes=NUMERIC, grad_order=0),
    OpSpec("Where", _where_samples, dtypes=(F32, F64, I64)),
    OpSpec("Cast", _cast_samples, dtypes=(F32, F64, I64)),
]
