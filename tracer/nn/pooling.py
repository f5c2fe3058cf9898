"""Pooling modules with PyTorch's arguments (``torch.nn.modules.pooling``).

``MaxPool1d/2d`` are one ONNX MaxPool node, ``AvgPool1d/2d`` one AveragePool node; the
adaptive pools are GlobalAveragePool/GlobalMaxPool for an output of 1 and a strided pool
when the size divides evenly (see ``tracer.nn._pool`` for the uneven case).
"""

from __future__ import annotations

from typing import Any

from tracer.nn import functional as F  # noqa: N812 - PyTorch's conventional name
from tracer.nn._conv import IntOrTuple
from tracer.nn.module import Module
from tracer.tensor import Tensor

__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool1d",
    "AvgPool1d",
    "AvgPool2d",
    "MaxPool1d",
    "MaxPool2d",
]


class _MaxPoolNd(Module):
    """Holds a max pool's settings; ``stride`` defaults to ``kernel_size``."""

    def __init__(
        self,
        kernel_size: IntOrTuple,
        stride: IntOrTuple | None = None,
        padding: IntOrTuple = 0,
        dilation: IntOrTuple = 1,
        return_indices: bool = False,
        ceil_mode: bool = False,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.dilation = dilation
        self.return_indices = return_indices
        self.ceil_mode = ceil_mode

    def extra_repr(self) -> str:
        """PyTorch's settings line."""
        return (
            f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}, "
            f"dilation={self.dilation}, ceil_mode={self.ceil_mode}"
        )


class MaxPool1d(_MaxPoolNd):
    """Maximum over sliding windows of ``[N, C, L]``; see ``F.max_pool1d``."""

    def forward(self, input: Tensor) -> Any:
        """Pool ``input``; with ``return_indices`` also the positions of the maxima."""
        return F.max_pool1d(
            input, self.kernel_size, self.stride, self.padding, self.dilation,
            ceil_mode=self.ceil_mode, return_indices=self.return_indices,
        )  # fmt: skip


class MaxPool2d(_MaxPoolNd):
    """Maximum over sliding windows of ``[N, C, H, W]``; see ``F.max_pool2d``."""

    def forward(self, input: Tensor) -> Any:
        """Pool ``input``; with ``return_indices`` also the positions of the maxima."""
        return F.max_pool2d(
            input, self.kernel_size, self.stride, self.padding, self.dilation,
            ceil_mode=self.ceil_mode, return_indices=self.return_indices,
        )  # fmt: skip


class AvgPool1d(Module):
    """Mean over sliding windows of ``[N, C, L]``; see ``F.avg_pool1d``."""

    def __init__(
        self,
        kernel_size: IntOrTuple,
        stride: IntOrTuple | None = None,
        padding: IntOrTuple = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
    ) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding
        self.ceil_mode = ceil_mode
        self.count_include_pad = count_include_pad

    def forward(self, input: Tensor) -> Tensor:
        """Pool ``input``."""
        return F.avg_pool1d(
            input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
            self.count_include_pad,
        )  # fmt: skip

    def extra_repr(self) -> str:
        """PyTorch's settings line."""
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(AvgPool1d):
    """Mean over sliding windows of ``[N, C, H, W]``; see ``F.avg_pool2d``."""

    def __init__(
        self,
        kernel_size: IntOrTuple,
        stride: IntOrTuple | None = None,
        padding: IntOrTuple = 0,
        ceil_mode: bool = False,
        count_include_pad: bool = True,
        divisor_override: int | None = None,
    ) -> None:
        super().__init__(kernel_size, stride, padding, ceil_mode, count_include_pad)
        self.divisor_override = divisor_override

    def forward(self, input: Tensor) -> Tensor:
        """Pool ``input``."""
        return F.avg_pool2d(
            input, self.kernel_size, self.stride, self.padding, self.ceil_mode,
            self.count_include_pad, self.divisor_override,
        )  # fmt: skip


class _AdaptivePool(Module):
    def __init__(self, output_size: Any) -> None:
        super().__init__()
        self.output_size = output_size

    def extra_repr(self) -> str:
        """PyTorch's settings line."""
        return f"output_size={self.output_size}"


class AdaptiveAvgPool1d(_AdaptivePool):
    """Average ``[N, C, L]`` over ``output_size`` windows; see ``F.adaptive_avg_pool1d``."""

    def forward(self, input: Tensor) -> Tensor:
        """Pool ``input``."""
        return F.adaptive_avg_pool1d(input, self.output_size)


class AdaptiveAvgPool2d(_AdaptivePool):
    """Average ``[N, C, H, W]`` over an ``output_size`` grid; see ``F.adaptive_avg_pool2d``."""

    def forward(self, input: Tensor) -> Tensor:
        """Pool ``input``."""
        return F.adaptive_avg_pool2d(input, self.output_size)


class AdaptiveMaxPool1d(_AdaptivePool):
    """Maximum of ``[N, C, L]`` over ``output_size`` windows; see ``F.adaptive_max_pool1d``."""

    def __init__(self, output_size: Any, return_indices: bool = False) -> None:
        super().__init__(output_size)
        self.return_indices = return_indices

    def forward(self, input: Tensor) -> Any:
        """Pool ``input``; with ``return_indices`` also the positions of the maxima."""
        return F.adaptive_max_pool1d(input, self.output_size, self.return_indices)
