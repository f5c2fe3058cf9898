"""Reductions of ``tracer.Tensor``: sum, mean, max, argmax, logsumexp, ... (PyTorch names)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from ir.ops.registry import get
from tracer._tensor_base import TensorBase, apply

if TYPE_CHECKING:
    from tracer.tensor import Tensor

Dims = int | Sequence[int] | None


def axes_operand(dim: Dims) -> np.ndarray | None:
    """``dim`` as the int64 ``axes`` input of a reduce op (None: every axis)."""
    if dim is None:
        return None
    return np.asarray([dim] if isinstance(dim, int) else list(dim), dtype=np.int64)


_REDUCE_SUM = get("ReduceSum")


class ReduceMixin(TensorBase):
    """Reductions of ``tracer.Tensor``."""

    __slots__ = ()

    def sum(self, dim: Dims = None, keepdim: bool = False) -> Tensor:
        """Sum over ``dim`` (every axis when None); bool and int tensors sum as int64."""
        x: TensorBase = self
        if x._data.dtype.kind in "bi" and x._data.dtype != np.int64:
            from tracer._math import cast

            x = cast(x, np.dtype(np.int64))
        return apply(_REDUCE_SUM, (x, axes_operand(dim)), {"keepdims": int(keepdim)})
