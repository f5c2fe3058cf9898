"""``SiLU``, ``Mish`` and ``Hardtanh`` with PyTorch's arguments.

The other activation modules (``ReLU``, ``GELU``, ``Tanh``, ...) live in
``tracer.nn.layers``; both are re-exported by ``tracer.nn``.
"""

from __future__ import annotations

import warnings

from tracer.nn import functional as F  # noqa: N812 - PyTorch's conventional name
from tracer.nn.module import Module
from tracer.tensor import Tensor

__all__ = ["Hardtanh", "Mish", "SiLU"]


def _inplace(inplace: bool) -> str:
    return "inplace=True" if inplace else ""


class SiLU(Module):
    """``x * sigmoid(x)`` elementwise (swish)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        """Apply SiLU."""
        return F.silu(input)

    def extra_repr(self) -> str:
        """PyTorch's settings line."""
        return _inplace(self.inplace)


class Mish(Module):
    """``x * tanh(softplus(x))`` elementwise (ONNX Mish)."""

    def __init__(self, inplace: bool = False) -> None:
        super().__init__()
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        """Apply Mish."""
        return F.mish(input)

    def extra_repr(self) -> str:
        """PyTorch's settings line."""
        return _inplace(self.inplace)


class Hardtanh(Module):
    """``input`` clamped into ``[min_val, max_val]`` (ONNX Clip).

    ``min_value``/``max_value`` are PyTorch's deprecated spellings and still accepted.

    Raises:
        ValueError: ``max_val`` not greater than ``min_val``.
    """

    def __init__(
        self,
        min_val: float = -1.0,
        max_val: float = 1.0,
        inplace: bool = False,
        min_value: float | None = None,
        max_value: float | None = None,
    ) -> None:
        super().__init__()
        if min_value is not None:
            warnings.warn(
                "keyword argument `min_value` is deprecated and rename to `min_val`",
                FutureWarning,
                stacklevel=2,
            )
            min_val = min_value
        if max_value is not None:
            warnings.warn(
                "keyword argument `max_value` is deprecated and rename to `max_val`",
                FutureWarning,
                stacklevel=2,
            )
            max_val = max_value
        if max_val <= min_val:
            raise ValueError(
                f"Hardtanh: max_val ({max_val}) must be greater than min_val ({min_val})"
            )
        self.min_val = min_val
        self.max_val = max_val
        self.inplace = inplace

    def forward(self, input: Tensor) -> Tensor:
        """Clamp ``input``."""
        return F.hardtanh(input, self.min_val, self.max_val)

    def extra_repr(self) -> str:
        """PyTorch's settings line."""
        extra = ", inplace=True" if self.inplace else ""
        return f"min_val={self.min_val}, max_val={self.max_val}{extra}"
