"""``Conv1d`` and ``Conv2d`` with PyTorch's arguments, parameters and initialisation.

``weight`` is ``[out_channels, in_channels / groups, *kernel_size]`` (Kaiming-uniform with
``a = sqrt(5)``) and ``bias`` ``[out_channels]`` (U(-1/sqrt(fan_in), 1/sqrt(fan_in))), as
``torch.nn.Conv*d``, so weights move by name. With the default ``padding_mode="zeros"`` a
layer is one ONNX Conv node; other modes pad first (one Pad node).
"""

from __future__ import annotations

import math
from typing import Any

from tracer._creation import empty
from tracer.nn import functional as F  # noqa: N812 - PyTorch's conventional name
from tracer.nn import init
from tracer.nn._conv import IntOrTuple, conv_pads, ntuple
from tracer.nn._factory import param_dtype
from tracer.nn.module import Module, Parameter
from tracer.tensor import Tensor

__all__ = ["Conv1d", "Conv2d"]

_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


class _ConvNd(Module):
    """Shared by :class:`Conv1d` and :class:`Conv2d` (``nsp`` spatial dims).

    Raises:
        ValueError: channels not divisible by ``groups``, an unknown padding string or
            mode, or ``padding="same"`` with a stride.
    """

    _nsp = 0
    bias: Parameter | None

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: IntOrTuple,
        stride: IntOrTuple = 1,
        padding: str | IntOrTuple = 0,
        dilation: IntOrTuple = 1,
        groups: int = 1,
        bias: bool = True,
        padding_mode: str = "zeros",
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        n = self._nsp
        if groups <= 0:
            raise ValueError("groups must be a positive integer")
        if in_channels % groups:
            raise ValueError("in_channels must be divisible by groups")
        if out_channels % groups:
            raise ValueError("out_channels must be divisible by groups")
        if padding_mode not in _PADDING_MODES:
            raise ValueError(
                f"padding_mode must be one of {list(_PADDING_MODES)}, but got "
                f"padding_mode='{padding_mode}'"
            )
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = ntuple(kernel_size, n, "kernel_size")
        self.stride = ntuple(stride, n, "stride")
        self.dilation = ntuple(dilation, n, "dilation")
        self.padding: str | tuple[int, ...] = (
            padding if isinstance(padding, str) else ntuple(padding, n, "padding")
        )
        # Checks the padding string (and "same" with a stride) now, as PyTorch does.
        self._pads = conv_pads(self.padding, self.kernel_size, self.dilation, self.stride)
        self.padding_mode = padding_mode
        self.transposed = False
        self.output_padding = (0,) * n
        dt = param_dtype(device, dtype)
        shape = (out_channels, in_channels // groups, *self.kernel_size)
        self.weight = Parameter(empty(*shape, dtype=dt))
        if bias:
            self.bias = Parameter(empty(out_channels, dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the weights with PyTorch's default initialisation."""
        init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            fan_in, _ = init._calculate_fan_in_and_fan_out(self.weight)
            if fan_in != 0:
                bound = 1 / math.sqrt(fan_in)
                init.uniform_(self.bias, -bound, bound)

    def forward(self, input: Tensor) -> Tensor:
        """Convolve ``input`` (``[N, C, *spatial]`` or unbatched ``[C, *spatial]``)."""
        conv = F.conv1d if self._nsp == 1 else F.conv2d
        if self.padding_mode == "zeros":
            return conv(
                input, self.weight, self.bias, self.stride, self.padding, self.dilation,
                self.groups,
            )  # fmt: skip
        n = self._nsp
        # F.pad's order: last axis first, (begin, end) for each.
        order = [p for i in reversed(range(n)) for p in (self._pads[i], self._pads[n + i])]
        padded = F.pad(input, order, mode=self.padding_mode)
        return conv(padded, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)

    def extra_repr(self) -> str:
        """PyTorch's settings line."""
        n = self._nsp
        s = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0,) * n:
            s += f", padding={self.padding}"
        if self.dilation != (1,) * n:
            s += f", dilation={self.dilation}"
        if self.groups != 1:
            s += f", groups={self.groups}"
        if self.bias is None:
            s += ", bias=False"
        if self.padding_mode != "zeros":
            s += f", padding_mode={self.padding_mode}"
        return s


class Conv1d(_ConvNd):
    """1-D convolution over ``[N, C_in, L]``, as ``torch.nn.Conv1d``.

    Args:
        in_channels: channels of the input.
        out_channels: channels of the output.
        kernel_size: taps of the kernel.
        stride: step between windows.
        padding: zeros added on both sides (an int), or ``"valid"`` / ``"same"``.
        dilation: step between taps.
        groups: split channels into this many independent groups.
        bias: whether to add a learned bias.
        padding_mode: ``"zeros"``, ``"reflect"``, ``"replicate"`` or ``"circular"``.
        device: ``None`` or ``"cpu"``.
        dtype: the parameters' dtype (float32 by default).
    """

    _nsp = 1


class Conv2d(_ConvNd):
    """2-D convolution over ``[N, C_in, H, W]``, as ``torch.nn.Conv2d``; arguments as Conv1d's."""

    _nsp = 2
