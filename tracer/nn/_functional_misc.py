"""More of ``tracer.nn.functional`` (re-exported there): activations, distances, bilinear.

``mish`` lowers to ONNX ``Mish``, ``hardtanh`` to ``Clip``, ``bilinear`` to one ``Einsum``;
``cosine_similarity`` and ``pairwise_distance`` are compositions with ``ReduceL2``.
Signatures and semantics are PyTorch's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ir.ops.registry import op
from tracer._functions import einsum
from tracer._math import const

if TYPE_CHECKING:
    from tracer.tensor import Tensor


def mish(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * tanh(softplus(x))`` (ONNX Mish)."""
    return op.Mish(input)


def hardtanh(
    input: Tensor, min_val: float = -1.0, max_val: float = 1.0, inplace: bool = False
) -> Tensor:
    """``input`` clamped into ``[min_val, max_val]`` (ONNX Clip).

    Raises:
        ValueError: ``min_val`` greater than ``max_val``.
    """
    if min_val > max_val:
        raise ValueError("min_val cannot be greater than max_val")
    dtype = input._data.dtype
    return op.Clip(input, const(min_val, dtype), const(max_val, dtype))


def _broadcast(x1: Tensor, x2: Tensor) -> tuple[Tensor, Tensor]:
    if tuple(x1.shape) == tuple(x2.shape):
        return x1, x2
    shape = np.broadcast_shapes(tuple(x1._data.shape), tuple(x2._data.shape))
    return x1.expand(*shape), x2.expand(*shape)


def cosine_similarity(x1: Tensor, x2: Tensor, dim: int = 1, eps: float = 1e-8) -> Tensor:
    """``sum(x1 / max(|x1|, eps) * x2 / max(|x2|, eps))`` along ``dim``; the two broadcast.

    Computed as PyTorch 2.13 does (each input divided by its clamped 2-norm first); the
    gradient differs from PyTorch's only where a norm is below ``eps``.
    """
    x1, x2 = _broadcast(x1, x2)
    n1 = x1.norm(2, dim, keepdim=True).clamp(min=eps)
    n2 = x2.norm(2, dim, keepdim=True).clamp(min=eps)
    return ((x1 / n1) * (x2 / n2)).sum(dim)


def pairwise_distance(
    x1: Tensor, x2: Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> Tensor:
    """The ``p``-norm of ``x1 - x2 + eps`` along the last dim; the two broadcast."""
    dim = max(x1.ndim, x2.ndim) - 1
    return (x1 - x2 + eps).norm(p, dim, keepdim=keepdim)


def bilinear(input1: Tensor, input2: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``y_o = x1^T W_o x2 + b_o``: ``x1`` ``[*, in1]``, ``x2`` ``[*, in2]``, ``W [out, in1, in2]``.

    One ONNX Einsum over the flattened leading dims.

    Raises:
        RuntimeError: feature sizes or leading dims that do not match.
    """
    if weight.ndim != 3:
        raise RuntimeError(f"bilinear(): weight must be 3-D, got {list(weight.shape)}")
    out, in1, in2 = (int(d) for d in weight.shape)
    if input1.shape[-1] != in1 or input2.shape[-1] != in2:
        raise RuntimeError(
            f"bilinear(): input sizes {list(input1.shape)} and {list(input2.shape)} do not match "
            f"weight {list(weight.shape)}"
        )
    if tuple(input1.shape[:-1]) != tuple(input2.shape[:-1]):
        raise RuntimeError(
            "bilinear(): input batch dimensions do not match: got "
            f"{list(input1.shape[:-1])} and {list(input2.shape[:-1])}"
        )
    lead = tuple(input1.shape[:-1])
    y = einsum("bi,oij,bj->bo", input1.reshape(-1, in1), weight, input2.reshape(-1, in2))
    if bias is not None:
        y = y + bias
    return y.reshape(*lead, out)
