"""Fused-looking pointwise methods PyTorch code uses: ``addcmul``, ``addcdiv``, ``lerp``, ...

They are compositions of registry ops (so they record, differentiate and export), with
PyTorch's argument forms, including the deprecated ``addcmul(value, t1, t2)``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ir.errors import DTypeError
from tracer._legacy_args import scalar_first
from tracer._tensor_base import TensorBase

if TYPE_CHECKING:
    from tracer.tensor import Tensor


class PointwiseMixin(TensorBase):
    """``addcmul``, ``addcdiv``, ``lerp``, ``square``, ``clamp_min`` / ``clamp_max``."""

    __slots__ = ()

    def addcmul(self, *args: Any, value: float = 1) -> Tensor:
        """``self + value * tensor1 * tensor2`` (broadcasting)."""
        (t1, t2), value = scalar_first("addcmul", args, "value", value, 2)
        product = t1 * t2
        return self + (product if value == 1 else product * value)

    def addcdiv(self, *args: Any, value: float = 1) -> Tensor:
        """``self + value * tensor1 / tensor2`` (broadcasting).

        Raises:
            DTypeError: integer ``tensor1`` and ``tensor2`` (PyTorch refuses integer division).
        """
        (t1, t2), value = scalar_first("addcdiv", args, "value", value, 2)
        if all(isinstance(t, TensorBase) and t._data.dtype.kind in "biu" for t in (t1, t2)):
            raise DTypeError(
                "Integer division with addcdiv is no longer supported; use "
                "(input + value * tensor1 / tensor2) or floor_divide instead"
            )
        quotient = t1 / t2
        return self + (quotient if value == 1 else quotient * value)

    def lerp(self, end: Any, weight: Any) -> Tensor:
        """``self + weight * (end - self)``: linear interpolation toward ``end``."""
        return self + weight * (end - self)

    def square(self) -> Tensor:
        """Elementwise ``self * self``."""
        return self * self  # type: ignore[operator]

    def clamp_min(self, min: Any) -> Tensor:
        """Elementwise ``max(self, min)``."""
        return self.clamp(min=min)  # type: ignore[attr-defined]

    def clamp_max(self, max: Any) -> Tensor:
        """Elementwise ``min(self, max)``."""
        return self.clamp(max=max)  # type: ignore[attr-defined]
