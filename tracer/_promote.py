"""PyTorch's type promotion for operands of mixed dtypes.

The result's category (bool < integer < floating) is the highest among all operands. Its
dtype comes from the first group that holds an operand of that category, in priority
order: tensors with dimensions, then 0-d tensors, then Python numbers (whose dtypes are
bool, int64 and the default float32). Within a group, dtypes of that category promote by
size (``numpy.promote_types``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from ir import dtypes


def scalar_dtype(value: object) -> np.dtype:
    """The dtype a Python number takes: bool, int64 or float32 (PyTorch's defaults)."""
    if isinstance(value, bool | np.bool_):
        return dtypes.bool_
    if isinstance(value, int | np.integer):
        return dtypes.int64
    if isinstance(value, float | np.floating):
        return dtypes.float32
    raise TypeError(f"expected a tensor or a Python number, got {type(value).__name__}")


def result_type(*operands: Any) -> np.dtype:
    """The dtype an elementwise op over ``operands`` (tensors or numbers) computes in."""
    groups: tuple[list[np.dtype], list[np.dtype], list[np.dtype]] = ([], [], [])
    for x in operands:
        data = getattr(x, "_data", None)
        if data is None:
            groups[2].append(scalar_dtype(x))
        else:
            groups[0 if data.ndim else 1].append(data.dtype)
    top = max(dtypes.category(d) for g in groups for d in g)
    for group in groups:
        picked = [d for d in group if dtypes.category(d) == top]
        if picked:
            return functools.reduce(np.promote_types, picked)
    raise AssertionError("unreachable: at least one operand has the top category")
