"""``Bilinear``: ``y = x1^T W x2 + b`` with PyTorch's parameters and initialisation."""

from __future__ import annotations

import math
from typing import Any

from tracer._creation import empty
from tracer.nn import functional as F  # noqa: N812 - PyTorch's conventional name
from tracer.nn import init
from tracer.nn._factory import param_dtype
from tracer.nn.module import Module, Parameter
from tracer.tensor import Tensor

__all__ = ["Bilinear"]


class Bilinear(Module):
    """``y_o = x1^T W_o x2 + b_o`` with ``weight`` ``[out, in1, in2]`` and ``bias`` ``[out]``.

    Both are drawn from U(-1/sqrt(in1_features), 1/sqrt(in1_features)), as PyTorch.
    """

    def __init__(
        self,
        in1_features: int,
        in2_features: int,
        out_features: int,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        self.in1_features = in1_features
        self.in2_features = in2_features
        self.out_features = out_features
        dt = param_dtype(device, dtype)
        self.weight = Parameter(empty(out_features, in1_features, in2_features, dtype=dt))
        if bias:
            self.bias = Parameter(empty(out_features, dtype=dt))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Re-draw the weights with PyTorch's default initialisation."""
        bound = 1 / math.sqrt(self.weight.shape[1])
        init.uniform_(self.weight, -bound, bound)
        if self.bias is not None:
            init.uniform_(self.bias, -bound, bound)

    def forward(self, input1: Tensor, input2: Tensor) -> Tensor:
        """``[*, in1]`` and ``[*, in2]`` to ``[*, out]``."""
        return F.bilinear(input1, input2, self.weight, self.bias)

    def extra_repr(self) -> str:
        """PyTorch's settings line."""
        return (
            f"in1_features={self.in1_features}, in2_features={self.in2_features}, "
            f"out_features={self.out_features}, bias={self.bias is not None}"
        )
