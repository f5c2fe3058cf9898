"""Pooling functions of ``tracer.nn.functional`` (re-exported there), PyTorch's semantics.

``max_pool1d/2d`` lower to one ONNX ``MaxPool`` node, ``avg_pool1d/2d`` to one
``AveragePool`` node (``ceil_mode`` and ``count_include_pad`` as PyTorch: a last window
that would start in the end padding is dropped, and padded taps past the padded input never
count). Adaptive pools use ``GlobalAveragePool``/``GlobalMaxPool`` for an output of 1, a
strided ``AveragePool``/``MaxPool`` when the size divides evenly, and otherwise PyTorch's
uneven windows (``floor(i L / out)`` to ``ceil((i + 1) L / out)``): a ``MatMul`` with a
constant averaging matrix for the average, one ``ReduceMax`` per window for the maximum.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ir.ops.pool import PoolAttrs, tap_counts
from ir.ops.registry import op
from tracer._functions import cat
from tracer.nn._conv import IntOrTuple, _batched, ntuple

if TYPE_CHECKING:
    from tracer.tensor import Tensor


def _geometry(
    name: str,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None,
    padding: IntOrTuple,
    dilation: IntOrTuple,
    nsp: int,
) -> dict[str, list[int]]:
    """ONNX pool attributes for PyTorch's arguments (``stride=None`` means the kernel's)."""
    kernel = ntuple(kernel_size, nsp, "kernel_size")
    strides = kernel if stride is None or stride == () else ntuple(stride, nsp, "stride")
    pads, dilations = ntuple(padding, nsp, "padding"), ntuple(dilation, nsp, "dilation")
    if any(k <= 0 for k in kernel):
        raise RuntimeError(f"{name}() kernel_size must be greater than zero, but got {kernel}")
    if any(s <= 0 for s in strides):
        raise RuntimeError(f"{name}() stride must be greater than zero, but got {strides}")
    for p, k, d in zip(pads, kernel, dilations, strict=True):
        if p < 0 or p > ((k - 1) * d + 1) // 2:
            raise RuntimeError(
                f"{name}(): pad should be at most half of effective kernel size, but got "
                f"pad={p}, kernel_size={k} and dilation={d}"
            )
    return {
        "kernel_shape": list(kernel),
        "strides": list(strides),
        "pads": list(pads) * 2,
        "dilations": list(dilations),
    }


def _max_pool(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None,
    padding: IntOrTuple,
    dilation: IntOrTuple,
    ceil_mode: bool,
    return_indices: bool,
    nsp: int,
) -> Any:
    name = f"max_pool{nsp}d"
    batched = _batched(input, nsp, name)
    x = input if batched else input.unsqueeze(0)
    attrs = _geometry(name, kernel_size, stride, padding, dilation, nsp)
    y, index = op.MaxPool(x, ceil_mode=int(ceil_mode), **attrs)
    if not batched:
        y, index = y.squeeze(0), index.squeeze(0)
    if not return_indices:
        return y
    # ONNX counts over the whole tensor, PyTorch within each (sample, channel) plane.
    plane = math.prod(x.shape[2:])
    return y, index % plane


def max_pool1d(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """The maximum of each window over ``[N, C, L]`` (or ``[C, L]``); one ONNX MaxPool node.

    With ``return_indices`` also each maximum's position along ``L``, as PyTorch.

    Raises:
        RuntimeError: a bad rank, a non-positive kernel or stride, or a padding larger than
            half the effective kernel.
    """
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 1)


def max_pool2d(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    dilation: IntOrTuple = 1,
    ceil_mode: bool = False,
    return_indices: bool = False,
) -> Any:
    """:func:`max_pool1d` over ``[N, C, H, W]``; indices are flat within each ``H x W`` plane."""
    return _max_pool(input, kernel_size, stride, padding, dilation, ceil_mode, return_indices, 2)


def _avg_pool(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None,
    padding: IntOrTuple,
    ceil_mode: bool,
    count_include_pad: bool,
    divisor_override: int | None,
    nsp: int,
) -> Tensor:
    name = f"avg_pool{nsp}d"
    batched = _batched(input, nsp, name)
    x = input if batched else input.unsqueeze(0)
    attrs = _geometry(name, kernel_size, stride, padding, 1, nsp)
    del attrs["dilations"]
    if divisor_override is not None and divisor_override <= 0:
        raise RuntimeError("divisor must be not zero")
    include = count_include_pad or divisor_override is not None
    y = op.AveragePool(x, ceil_mode=int(ceil_mode), count_include_pad=int(include), **attrs)
    if divisor_override is not None:
        # The window sums are the averages times the taps each counted.
        sizes = tuple(int(d) for d in x.shape[2:])
        geometry = PoolAttrs(
            kernel_shape=attrs["kernel_shape"],
            pads=attrs["pads"],
            strides=attrs["strides"],
            ceil_mode=int(ceil_mode),
        )
        window = geometry.pool_window(sizes)
        counts = tap_counts(sizes, window, True)
        y = y * (counts / divisor_override).astype(x._data.dtype)
    return y if batched else y.squeeze(0)


def avg_pool1d(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """The mean of each window over ``[N, C, L]`` (or ``[C, L]``); one ONNX AveragePool node.

    Raises:
        RuntimeError: a bad rank, a non-positive kernel or stride, or a padding larger than
            half the kernel.
    """
    return _avg_pool(input, kernel_size, stride, padding, ceil_mode, count_include_pad, None, 1)


def avg_pool2d(
    input: Tensor,
    kernel_size: IntOrTuple,
    stride: IntOrTuple | None = None,
    padding: IntOrTuple = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
    divisor_override: int | None = None,
) -> Tensor:
    """:func:`avg_pool1d` over ``[N, C, H, W]``; ``divisor_override`` replaces the tap count."""
    return _avg_pool(
        input, kernel_size, stride, padding, ceil_mode, count_include_pad, divisor_override, 2
    )


# ---------------------------------------------------------------- adaptive pools


def _bounds(size: int, out: int) -> list[tuple[int, int]]:
    """PyTorch's adaptive windows: ``[floor(i size / out), ceil((i + 1) size / out))``."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _output_sizes(
    output_size: int | Sequence[int | None] | None, x: Tensor, nsp: int, name: str
) -> tuple[Any, ...]:
    """The output size per spatial axis; None keeps the input's size."""
    sizes = (output_size,) * nsp if not isinstance(output_size, Sequence) else tuple(output_size)
    if len(sizes) != nsp:
        raise ValueError(f"{name}: output_size must have {nsp} elements, got {output_size!r}")
    spatial = x.shape[2:]
    out = tuple(s if o is None else int(o) for o, s in zip(sizes, spatial, strict=True))
    if any(isinstance(o, int) and o <= 0 for o in out):
        raise RuntimeError(f"{name}: output_size must be positive, got {list(out)}")
    return out


def _averaging_matrix(size: int, out: int, dtype: np.dtype) -> np.ndarray:
    """``[size, out]``: column ``i`` averages window ``i``."""
    m = np.zeros((size, out), dtype)
    for i, (s, e) in enumerate(_bounds(size, out)):
        m[s:e, i] = 1.0 / (e - s)
    return m


def _adaptive_avg(input: Tensor, output_size: Any, nsp: int) -> Tensor:
    name = f"adaptive_avg_pool{nsp}d"
    batched = _batched(input, nsp, name)
    x = input if batched else input.unsqueeze(0)
    out = _output_sizes(output_size, x, nsp, name)
    if all(o == 1 for o in out):
        y = op.GlobalAveragePool(x)
    else:
        sizes = tuple(int(d) for d in x.shape[2:])
        if all(s % o == 0 for s, o in zip(sizes, out, strict=True)):
            k = [s // o for s, o in zip(sizes, out, strict=True)]
            y = op.AveragePool(x, kernel_shape=k, strides=k)
        else:
            dtype = x._data.dtype
            y = op.MatMul(x, _averaging_matrix(sizes[-1], out[-1], dtype))
            if nsp == 2:
                y = op.MatMul(_averaging_matrix(sizes[0], out[0], dtype).T.copy(), y)
    return y if batched else y.squeeze(0)


def adaptive_avg_pool1d(input: Tensor, output_size: int | Sequence[int]) -> Tensor:
    """Average ``[N, C, L]`` (or ``[C, L]``) over ``output_size`` windows, as PyTorch.

    An output of 1 is one GlobalAveragePool node; an ``L`` divisible by ``output_size`` one
    AveragePool; other sizes one MatMul with a constant averaging matrix.

    Raises:
        RuntimeError: a bad rank or a non-positive output size.
    """
    return _adaptive_avg(input, output_size, 1)


def adaptive_avg_pool2d(input: Tensor, output_size: Any) -> Tensor:
    """:func:`adaptive_avg_pool1d` over ``[N, C, H, W]``; ``output_size`` an int or a pair.

    A None in the pair keeps that input size.
    """
    return _adaptive_avg(input, output_size, 2)


def adaptive_max_pool1d(
    input: Tensor, output_size: int | Sequence[int], return_indices: bool = False
) -> Any:
    """The maximum of each of ``output_size`` windows over ``[N, C, L]`` (or ``[C, L]``).

    An output of 1 is one GlobalMaxPool node, an ``L`` divisible by ``output_size`` one
    MaxPool, other sizes one maximum per window. ``return_indices`` also gives each
    maximum's position along ``L``.

    Raises:
        RuntimeError: a bad rank or a non-positive output size.
    """
    name = "adaptive_max_pool1d"
    batched = _batched(input, 1, name)
    x = input if batched else input.unsqueeze(0)
    (out,) = _output_sizes(output_size, x, 1, name)
    if out == 1 and not return_indices:
        y = op.GlobalMaxPool(x)
        return y if batched else y.squeeze(0)
    size = int(x.shape[-1])
    if size % out == 0:
        k = size // out
        return max_pool1d(input, k, k, return_indices=return_indices)
    values, indices = [], []
    for s, e in _bounds(size, out):
        v, i = x[..., s:e].max(-1, keepdim=True)
        values.append(v)
        indices.append(i + s)
    y, index = cat(values, -1), cat(indices, -1)
    if not batched:
        y, index = y.squeeze(0), index.squeeze(0)
    return (y, index) if return_indices else y
