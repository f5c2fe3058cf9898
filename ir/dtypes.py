"""Dtypes: NumPy dtypes are graphcap's dtypes; this module maps them to ONNX and ranks them.

ONNX names element types by the integers of ``TensorProto.DataType``; ``ir`` imports only
NumPy, so the table is written out here.
"""

from __future__ import annotations

import numpy as np

from ir.errors import DTypeError

float16: np.dtype = np.dtype(np.float16)
float32: np.dtype = np.dtype(np.float32)
float64: np.dtype = np.dtype(np.float64)
int8: np.dtype = np.dtype(np.int8)
int16: np.dtype = np.dtype(np.int16)
int32: np.dtype = np.dtype(np.int32)
int64: np.dtype = np.dtype(np.int64)
uint8: np.dtype = np.dtype(np.uint8)
uint16: np.dtype = np.dtype(np.uint16)
uint32: np.dtype = np.dtype(np.uint32)
uint64: np.dtype = np.dtype(np.uint64)
bool_: np.dtype = np.dtype(np.bool_)

# TensorProto.DataType values (onnx/onnx.proto).
_ONNX_ENUM: dict[np.dtype, int] = {
    float32: 1,
    uint8: 2,
    int8: 3,
    uint16: 4,
    int16: 5,
    int32: 6,
    int64: 7,
    bool_: 9,
    float16: 10,
    float64: 11,
    uint32: 12,
    uint64: 13,
}
_FROM_ONNX: dict[int, np.dtype] = {v: k for k, v in _ONNX_ENUM.items()}

FLOATING: frozenset[np.dtype] = frozenset({float16, float32, float64})
INTEGER: frozenset[np.dtype] = frozenset({int8, int16, int32, int64, uint8, uint16, uint32, uint64})
NUMERIC: frozenset[np.dtype] = FLOATING | INTEGER
ALL: frozenset[np.dtype] = NUMERIC | {bool_}


def to_onnx(dtype: np.dtype) -> int:
    """Return the ONNX ``TensorProto.DataType`` integer for a NumPy dtype.

    Raises:
        DTypeError: the dtype has no ONNX element type graphcap supports.
    """
    try:
        return _ONNX_ENUM[np.dtype(dtype)]
    except KeyError:
        raise DTypeError(
            f"dtype {np.dtype(dtype)} has no ONNX element type; expected one of "
            f"{sorted(str(d) for d in _ONNX_ENUM)}"
        ) from None


def from_onnx(code: int) -> np.dtype:
    """Return the NumPy dtype for an ONNX ``TensorProto.DataType`` integer.

    Raises:
        DTypeError: the element type is not one graphcap supports.
    """
    try:
        return _FROM_ONNX[int(code)]
    except KeyError:
        raise DTypeError(
            f"ONNX element type {code} is not supported; expected one of {sorted(_FROM_ONNX)}"
        ) from None


def is_floating(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is a floating-point type (the types that carry gradients)."""
    return dtype in FLOATING


def category(dtype: np.dtype) -> int:
    """Rank of a dtype's kind for PyTorch-style promotion: bool 0 < integer 1 < floating 2."""
    if dtype == bool_:
        return 0
    return 2 if dtype in FLOATING else 1
