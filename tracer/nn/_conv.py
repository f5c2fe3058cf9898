"""Convolution and batch normalisation of ``tracer.nn.functional`` (re-exported there).

``conv1d``/``conv2d`` lower to one ONNX ``Conv`` node (explicit pads, so ``padding="same"``
exports without ``auto_pad``) and ``batch_norm`` to one ``BatchNormalization`` node.
Signatures and semantics are PyTorch's, unbatched inputs included.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ir.ops.registry import op
from tracer.autograd import no_grad

if TYPE_CHECKING:
    from tracer.tensor import Tensor

IntOrTuple = int | Sequence[int]


def ntuple(value: IntOrTuple, n: int, name: str) -> tuple[int, ...]:
    """``value`` as ``n`` ints: an int repeated, or a sequence of length ``n`` (or 1).

    Raises:
        ValueError: a sequence of another length.
    """
    if isinstance(value, int | np.integer):
        return (int(value),) * n
    values = tuple(int(v) for v in value)
    if len(values) == 1:
        return values * n
    if len(values) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {value!r}")
    return values


def _batched(input: Tensor, nsp: int, name: str) -> bool:
    """Whether ``input`` has a batch dim; raises unless it is ``nsp + 1``- or ``nsp + 2``-d."""
    if input.ndim not in (nsp + 1, nsp + 2):
        raise RuntimeError(
            f"{name}: expected {nsp + 1}D (unbatched) or {nsp + 2}D (batched) input, but got "
            f"input of size: {list(input.shape)}"
        )
    return input.ndim == nsp + 2


def conv_pads(
    padding: str | IntOrTuple, kernel: Sequence[int], dilation: Sequence[int], stride: Sequence[int]
) -> list[int]:
    """ONNX ``pads`` (all begins, then all ends) for PyTorch's ``padding`` argument.

    ``"same"`` pads ``d (k - 1)`` in total, the odd one at the end, as PyTorch does.

    Raises:
        ValueError: an unknown string, or ``"same"`` with a stride other than 1.
    """
    nsp = len(kernel)
    if isinstance(padding, str):
        if padding == "valid":
            return [0] * 2 * nsp
        if padding != "same":
            raise ValueError(
                f"Invalid padding string {padding!r}, should be one of ['valid', 'same']"
            )
        if any(s != 1 for s in stride):
            raise ValueError("padding='same' is not supported for strided convolutions")
        totals = [d * (k - 1) for k, d in zip(kernel, dilation, strict=True)]
        return [t // 2 for t in totals] + [t - t // 2 for t in totals]
    pads = ntuple(padding, nsp, "padding")
    if any(p < 0 for p in pads):
        raise RuntimeError(f"negative padding is not supported, got {list(pads)}")
    return list(pads) * 2


def _conv(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None,
    stride: IntOrTuple,
    padding: str | IntOrTuple,
    dilation: IntOrTuple,
    groups: int,
    nsp: int,
) -> Tensor:
    name = f"conv{nsp}d"
    batched = _batched(input, nsp, name)
    x = input if batched else input.unsqueeze(0)
    if weight.ndim != nsp + 2:
        raise RuntimeError(f"{name}: expected a {nsp + 2}D weight, got {list(weight.shape)}")
    channels, per_group = x.shape[1], weight.shape[1]
    if channels != per_group * groups:
        raise RuntimeError(
            f"Given groups={groups}, weight of size {list(weight.shape)}, expected input"
            f"{list(x.shape)} to have {per_group * groups} channels, but got {channels} "
            "channels instead"
        )
    strides, dilations = ntuple(stride, nsp, "stride"), ntuple(dilation, nsp, "dilation")
    kernel = tuple(int(k) for k in weight.shape[2:])
    pads = conv_pads(padding, kernel, dilations, strides)
    out = op.Conv(
        x, weight, bias, pads=pads, strides=list(strides), dilations=list(dilations), group=groups
    )
    return out if batched else out.squeeze(0)


def conv1d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOrTuple = 1,
    padding: str | IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> Tensor:
    """1-D cross-correlation of ``[N, C, L]`` (or ``[C, L]``) with ``weight`` ``[O, C/groups, k]``.

    ``padding`` is an int, a 1-tuple, ``"valid"`` or ``"same"``. One ONNX Conv node.

    Raises:
        RuntimeError: ranks or channel counts that do not fit.
        ValueError: a bad ``padding`` string, or ``"same"`` with a stride.
    """
    return _conv(input, weight, bias, stride, padding, dilation, groups, 1)


def conv2d(
    input: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    stride: IntOrTuple = 1,
    padding: str | IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
) -> Tensor:
    """2-D cross-correlation of ``[N, C, H, W]`` (or ``[C, H, W]``); see :func:`conv1d`."""
    return _conv(input, weight, bias, stride, padding, dilation, groups, 2)


def batch_norm(
    input: Tensor,
    running_mean: Tensor | None,
    running_var: Tensor | None,
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    training: bool = False,
    momentum: float = 0.1,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise each channel (axis 1) of ``[N, C, ...]``, then scale by ``weight``, add ``bias``.

    In training the batch's statistics are used (biased variance) and, when given,
    ``running_mean``/``running_var`` are updated in place with ``momentum`` (the variance
    unbiased), as PyTorch does. Otherwise the running statistics are used. One ONNX
    BatchNormalization node (``training_mode`` follows ``training``).

    Raises:
        RuntimeError: running statistics missing in evaluation, or an input of fewer than
            two dims.
        ValueError: a single value per channel in training.
    """
    if input.ndim < 2:
        raise RuntimeError(f"batch_norm: expected input [N, C, ...], got {list(input.shape)}")
    channels = int(input.shape[1])
    dtype = input._data.dtype
    scale: Any = weight if weight is not None else np.ones(channels, dtype)
    shift: Any = bias if bias is not None else np.zeros(channels, dtype)
    if not training:
        if running_mean is None or running_var is None:
            raise RuntimeError("batch_norm: running_mean and running_var are needed in evaluation")
        (y,) = op.BatchNormalization(
            input, scale, shift, running_mean, running_var, epsilon=float(eps), training_mode=0
        )
        return y
    per_channel = math.prod(int(d) for d in input._data.shape) // max(channels, 1)
    if per_channel <= 1:
        raise ValueError(
            "Expected more than 1 value per channel when training, got input size "
            f"{list(input.shape)}"
        )
    # Y does not read the running statistics in training; they are updated below (ONNX's
    # running outputs use the biased variance, PyTorch's the unbiased one).
    stats = np.zeros(channels, dtype), np.ones(channels, dtype)
    y, _, _ = op.BatchNormalization(
        input, scale, shift, *stats, epsilon=float(eps), training_mode=1
    )
    if running_mean is not None and running_var is not None:
        _update_running(input, running_mean, running_var, momentum)
    return y


def _update_running(x: Tensor, mean: Tensor, var: Tensor, momentum: float) -> None:
    """PyTorch's update: ``(1 - m) running + m batch``, with the unbiased batch variance."""
    axes = (0, *range(2, x.ndim))
    with no_grad():
        d = x.detach()
        mean.mul_(1.0 - momentum).add_(d.mean(axes).to(mean.dtype) * momentum)
        var.mul_(1.0 - momentum).add_(d.var(axes, correction=1).to(var.dtype) * momentum)
