"""graphcap's user-facing package: eager tensors with autograd, PyTorch names."""

from ir.dtypes import bool_ as bool  # noqa: A001 - PyTorch's name
from ir.dtypes import float16, float32, float64, int8, int16, int32, int64, uint8
from tracer import autograd
from tracer.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from tracer.tensor import Tensor, as_tensor, from_numpy, tensor

__all__ = [
    "Tensor",
    "as_tensor",
    "autograd",
    "bool",
    "enable_grad",
    "float16",
    "float32",
    "float64",
    "from_numpy",
    "int8",
    "int16",
    "int32",
    "int64",
    "is_grad_enabled",
    "no_grad",
    "set_grad_enabled",
    "tensor",
    "uint8",
]
