"""Constant padding modules (``torch.nn.modules.padding``): one ONNX Pad node each."""

from __future__ import annotations

from collections.abc import Sequence

from tracer.nn import functional as F  # noqa: N812 - PyTorch's conventional name
from tracer.nn.module import Module
from tracer.tensor import Tensor

__all__ = ["ConstantPad1d", "ConstantPad2d", "ZeroPad1d", "ZeroPad2d"]


def _padding(padding: int | Sequence[int], n: int) -> tuple[int, ...]:
    if isinstance(padding, int):
        return (padding,) * n
    out = tuple(int(p) for p in padding)
    if len(out) != n:
        raise ValueError(f"padding must be an int or a tuple of {n} ints, got {padding!r}")
    return out


class _ConstantPadNd(Module):
    """Pads the last dims with ``value``: ``padding`` is ``(left, right[, top, bottom])``."""

    _n = 0

    def __init__(self, padding: int | Sequence[int], value: float) -> None:
        super().__init__()
        self.padding = _padding(padding, self._n)
        self.value = value

    def forward(self, input: Tensor) -> Tensor:
        """``input`` padded (negative pads crop)."""
        return F.pad(input, self.padding, "constant", self.value)

    def extra_repr(self) -> str:
        """PyTorch's settings line."""
        return f"padding={self.padding}, value={self.value}"


class ConstantPad1d(_ConstantPadNd):
    """Pad the last dim with ``value``; ``padding`` is an int or ``(left, right)``."""

    _n = 2


class ConstantPad2d(_ConstantPadNd):
    """Pad the last two dims with ``value``; ``(left, right, top, bottom)`` or an int."""

    _n = 4


class ZeroPad1d(ConstantPad1d):
    """Pad the last dim with zeros; ``padding`` is an int or ``(left, right)``."""

    def __init__(self, padding: int | Sequence[int]) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        """PyTorch's settings line."""
        return f"{self.padding}"


class ZeroPad2d(ConstantPad2d):
    """Pad the last two dims with zeros; ``(left, right, top, bottom)`` or an int."""

    def __init__(self, padding: int | Sequence[int]) -> None:
        super().__init__(padding, 0.0)

    def extra_repr(self) -> str:
        """PyTorch's settings line."""
        return f"{self.padding}"
