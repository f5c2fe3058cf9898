"""Shape methods of ``tracer.Tensor``: reshape, view, transpose, permute, (un)squeeze, ..."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ir.ops.registry import get
from tracer._tensor_base import TensorBase, apply

if TYPE_CHECKING:
    from tracer.tensor import Tensor


def shape_operand(shape: tuple[Any, ...]) -> np.ndarray:
    """``reshape(2, 3)`` or ``reshape((2, 3))`` arguments as an int64 shape input."""
    if len(shape) == 1 and not isinstance(shape[0], int):
        shape = tuple(shape[0])
    return np.asarray(shape, dtype=np.int64)


_RESHAPE = get("Reshape")


class ShapeMixin(TensorBase):
    """Shape methods of ``tracer.Tensor``."""

    __slots__ = ()

    def reshape(self, *shape: Any) -> Tensor:
        """A tensor with the same data and a new shape; one dim may be -1."""
        return apply(_RESHAPE, (self, shape_operand(shape)), {})
