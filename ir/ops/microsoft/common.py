"""What the ``com.microsoft`` op modules share: the domain, dtype checks, shape helpers."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from ir.dtypes import float16, float32, float64, int32
from ir.errors import DTypeError, ShapeError
from ir.ops.infer import check_dtype, same_dtype
from ir.ops.registry import VjpContext
from ir.types import Dim, TensorType

DOMAIN = "com.microsoft"

# onnxruntime's contrib kernels take float16 and float32 (some also float64); graphcap's
# kernels also run float64 everywhere, for gradient checks and float64 models.
FLOATS = frozenset({float16, float32, float64})


def floats(types: Iterable[TensorType | None], what: str) -> np.dtype:
    """The one floating dtype of ``types`` (None entries skipped).

    Raises:
        DTypeError: the dtypes differ or are not floating.
    """
    given = [t for t in types if t is not None]
    dtype = same_dtype(given, what)
    check_dtype(given[0], FLOATS, what)
    return dtype


def int32_input(t: TensorType | None, what: str) -> None:
    """Raise DTypeError unless ``t`` (when given) is int32, as onnxruntime's masks and ids are."""
    if t is not None and t.dtype != int32:
        raise DTypeError(f"{what} has dtype {t.dtype}; onnxruntime's schema requires int32")


def last_dim(t: TensorType | None) -> Dim:
    """The size of ``t``'s last axis, None when unknown."""
    return None if t is None or not t.shape else t.shape[-1]


def check_last(t: TensorType | None, size: Dim, what: str) -> None:
    """Raise ShapeError when ``t`` is given as 1-D and its size is known to differ from ``size``."""
    if t is None or t.shape is None:
        return
    if len(t.shape) != 1:
        raise ShapeError(f"{what} must be 1-D, got {t}")
    if isinstance(size, int) and isinstance(t.shape[0], int) and t.shape[0] != size:
        raise ShapeError(f"{what} has {t.shape[0]} elements; the hidden size is {size}")


def sub_ctx(ctx: VjpContext, needs: Iterable[bool]) -> VjpContext:
    """A context for calling another op's vjp rule from this one's."""
    del ctx
    return VjpContext((), list(needs))


def opt_add(a: Any, b: Any) -> Any:
    """``a + b`` with registry ops, where either may be None (absent)."""
    from ir.ops.registry import op

    return b if a is None else a if b is None else op.Add(a, b)
