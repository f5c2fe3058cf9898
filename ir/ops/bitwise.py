"""Bitwise and bit-shift ops on integers: BitwiseAnd, BitwiseOr, BitwiseXor, BitwiseNot, BitShift.

The Bitwise* ops take any integer type and broadcast as NumPy does. BitShift follows
BitShift-28, which keeps BitShift-11's meaning on unsigned types and adds signed ones: a
right shift of a signed value is arithmetic, and a shift by a negative amount or by at least
the type's width gives what the sign fill alone gives (-1 for a negative value shifted right,
0 otherwise). None of these ops has a gradient: their values are integers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.ops.elementwise import dtype_rule
from ir.ops.registry import OpDef, register

_INTEGER = "its inputs and output are integers, which carry no gradient"


def _require_integer(x: np.ndarray) -> None:
    if x.dtype.kind not in "iu":
        raise TypeError(f"expects an integer tensor, got {x.dtype}")


def _bitwise(fn: Any) -> Any:
    def kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        _require_integer(x)
        return fn(x, y)

    return kernel


def _bitwise_not(x: np.ndarray) -> np.ndarray:
    _require_integer(x)
    return np.invert(x)


def _bit_shift(x: np.ndarray, y: np.ndarray, *, direction: str) -> np.ndarray:
    _require_integer(x)
    if direction not in ("LEFT", "RIGHT"):
        raise ValueError(f"BitShift: direction must be 'LEFT' or 'RIGHT', got {direction!r}")
    x, y = np.broadcast_arrays(x, y)
    bits = x.dtype.itemsize * 8
    valid = (y >= 0) & (y < bits)
    # In-range amounts only: NumPy, like C, leaves wider shifts undefined.
    amount = np.where(valid, y, 0).astype(x.dtype, copy=False)
    if direction == "RIGHT":
        fill = np.where(x < 0, -1, 0).astype(x.dtype) if x.dtype.kind == "i" else 0
        return np.where(valid, np.right_shift(x, amount), fill).astype(x.dtype, copy=False)
    # Signed left shifts go through the unsigned type: bits past the sign bit are dropped.
    unsigned = np.dtype(f"u{x.dtype.itemsize}")
    shifted = np.left_shift(x.view(unsigned), amount.view(unsigned)).view(x.dtype)
    return np.where(valid, shifted, 0).astype(x.dtype, copy=False)


for _name, _fn in (
    ("BitwiseAnd", np.bitwise_and),
    ("BitwiseOr", np.bitwise_or),
    ("BitwiseXor", np.bitwise_xor),
):
    register(OpDef(_name, 18, _bitwise(_fn), dtype_rule(_name, D.INTEGER), None, no_vjp=_INTEGER))
register(
    OpDef(
        "BitwiseNot", 18, _bitwise_not, dtype_rule("BitwiseNot", D.INTEGER), None, no_vjp=_INTEGER
    )
)
register(
    OpDef("BitShift", 11, _bit_shift, dtype_rule("BitShift", D.INTEGER), None, no_vjp=_INTEGER)
)
