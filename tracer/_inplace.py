"""In-place methods of ``tracer.Tensor`` (``add_``, ``x += y``, ...), PyTorch semantics.

Each one computes with a registry op and writes into the tensor's memory through
``apply_inplace``, which bumps the version counter and rebases autograd history.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ir.ops.registry import get
from tracer._math import operands
from tracer._tensor_base import TensorBase, apply_inplace

if TYPE_CHECKING:
    from tracer.tensor import Tensor

_ADD = get("Add")


class InplaceMixin(TensorBase):
    """In-place methods of ``tracer.Tensor``."""

    __slots__ = ()

    def add_(self, other: Any, alpha: float = 1) -> Tensor:
        """``self += alpha * other`` in place."""
        if alpha != 1:
            other = other * alpha
        _, y = operands(self, other)
        return apply_inplace(_ADD, self, (y,), {})
