"""Specs of ``ir/ops/bitwise.py``."""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import I32, I64, OpSpec, Sample

U8, U32, U64 = np.dtype(np.uint8), np.dtype(np.uint32), np.dtype(np.uint64)
_PAIRS = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)), ((), (2, 3))]


def _bits(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Integers over the dtype's whole range (sign bit and high bits included)."""
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)


def _binary(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [Sample((_bits(rng, a, dtype), _bits(rng, b, dtype))) for a, b in _PAIRS]


def _unary(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [Sample((_bits(rng, s, dtype),)) for s in [(), (5,), (3, 4)]]


def _shift_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    width = dtype.itemsize * 8
    out = []
    for direction in ("LEFT", "RIGHT"):
        for a, b in _PAIRS:
            x = _bits(rng, a, dtype)
            y = rng.integers(0, width, size=b).astype(dtype)
            out.append(Sample((x, y), {"direction": direction}))
    return out


_INTS = (np.dtype(np.int8), I32, I64, U8, U32, U64)
# BitShift-11 declares unsigned types only; signed ones (BitShift-28) are checked by ONNX's
# conformance cases, as no oracle runs them at opset 20.
_UNSIGNED = (U8, U32, U64)

SPECS = [
    OpSpec("BitwiseAnd", _binary, dtypes=_INTS, grad_order=0),
    OpSpec("BitwiseOr", _binary, dtypes=_INTS, grad_order=0),
    OpSpec("BitwiseXor", _binary, dtypes=_INTS, grad_order=0),
    OpSpec("BitwiseNot", _unary, dtypes=_INTS, grad_order=0),
    OpSpec("BitShift", _shift_samples, dtypes=_UNSIGNED, grad_order=0),
]
