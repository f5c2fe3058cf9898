"""``embedding_bag`` of ``tracer.nn.functional`` (re-exported there), PyTorch's semantics.

ONNX has no EmbeddingBag, so it is composed: the rows are gathered (``Gather``), a
``[bags, T]`` weight matrix is built from the offsets with comparisons (so the offsets may
be a graph input), and "sum"/"mean" are one ``MatMul`` of it with the rows; "max" masks the
rows and takes ``ReduceMax``. Positions holding ``padding_idx`` are left out of their bag
(and of its count for "mean"); an empty bag gives zeros.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ir.errors import DTypeError
from ir.ops.registry import op
from tracer._creation import arange
from tracer._functions import where

if TYPE_CHECKING:
    from tracer.tensor import Tensor

_MODES = ("sum", "mean", "max")


def _check_indices(input: Tensor, n: int, name: str) -> None:
    data = input._data
    if data.dtype.kind not in "iu":
        raise DTypeError(f"{name}: expected integer indices (int64 or int32), got {data.dtype}")
    if data.size and (data.min() < 0 or data.max() >= n):
        raise IndexError(
            f"{name}: index out of range: indices must be in [0, {n}), got values in "
            f"[{data.min()}, {data.max()}]"
        )


def _check_offsets(offsets: Tensor, size: int, include_last_offset: bool) -> None:
    data = offsets._data
    if offsets.ndim != 1 or data.dtype.kind not in "iu":
        raise ValueError(
            f"offsets has to be a 1D integer Tensor, got {data.dtype} of shape {list(data.shape)}"
        )
    if include_last_offset and data.size < 1:
        raise ValueError("include_last_offset: number of offsets should be at least 1")
    if data.size and data[0] != 0:
        raise ValueError(
            "offsets[0] has to be 0, i.e., the first sequence in the mini-batch has to start "
            f"from position 0. However, got {data[0]}"
        )
    if data.size and data[-1] > size:
        raise ValueError(
            f"offsets[-1] can not be greater than input's length ({size}), but got {data[-1]}"
        )
    if (data[1:] < data[:-1]).any():
        raise ValueError(f"offsets must be non-decreasing, got {data.tolist()}")


def _bag_mask(offsets: Tensor, size: Any, include_last_offset: bool) -> Tensor:
    """``[bags, size]`` bool: position ``t`` belongs to bag ``b``.

    Bag ``b`` holds the positions after its start and before the next; written as "the
    number of starts at or before ``t``, minus one, is ``b``" so no size is read into Python.
    With ``include_last_offset`` the last offset ends the last bag. (PyTorch documents it
    as the input's length; given a smaller one, its "sum" and "max" stop there too but its
    "mean" still divides by the count up to the input's end; here "mean" counts the bag.)
    """
    starts = offsets[:-1] if include_last_offset else offsets
    t = arange(size, dtype=offsets.dtype)
    bag = (starts.unsqueeze(1) <= t).to(offsets.dtype).sum(0) - 1
    keep = arange(starts.shape[0], dtype=offsets.dtype).unsqueeze(1) == bag
    if include_last_offset:
        keep = keep.logical_and(t < offsets[-1:])
    return keep


def _reduce_bags(rows: Tensor, keep: Tensor, weights: Tensor | None, mode: str) -> Tensor:
    """Reduce ``rows`` (``[T, D]``, shared, or ``[B, T, D]``) over the mask ``keep`` ``[B, T]``."""
    dtype = rows.dtype
    if mode == "max":
        picked = rows if rows.ndim == 3 else rows.unsqueeze(0)
        masked = where(keep.unsqueeze(-1), picked, float("-inf"))
        top = masked.amax(-2)
        return where(keep.any(-1, keepdim=True), top, 0.0).to(dtype)
    w = keep.to(dtype)
    if weights is not None:
        w = w * weights
    if mode == "mean":
        w = w / keep.to(dtype).sum(-1, keepdim=True).clamp(min=1.0)
    if rows.ndim == 2:
        return w.matmul(rows)
    return w.unsqueeze(-2).matmul(rows).squeeze(-2)


def embedding_bag(
    input: Tensor,
    weight: Tensor,
    offsets: Tensor | None = None,
    max_norm: float | None = None,
    norm_type: float = 2,
    scale_grad_by_freq: bool = False,
    mode: str = "mean",
    sparse: bool = False,
    per_sample_weights: Tensor | None = None,
    include_last_offset: bool = False,
    padding_idx: int | None = None,
) -> Tensor:
    """Sums, means or maxima of bags of embeddings, without the intermediate ``[T, D]`` rows.

    ``input`` is ``[B, L]`` (each row a bag; ``offsets`` None) or 1-D with ``offsets``
    marking where each bag starts (``include_last_offset``: the last offset closes the last
    bag). ``per_sample_weights`` (``input``'s shape, mode "sum" only) scales each row.

    Returns:
        ``[B, embedding_dim]``.

    Raises:
        ValueError: an unknown mode, offsets that do not fit the input, or
            ``per_sample_weights`` with another mode or shape.
        IndexError: an index or ``padding_idx`` out of range.
        NotImplementedError: ``max_norm``, ``scale_grad_by_freq`` or ``sparse``.
    """
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding_bag: max_norm, scale_grad_by_freq and sparse")
    if mode not in _MODES:
        raise ValueError(f"mode has to be one of sum, mean or max, got {mode!r}")
    if per_sample_weights is not None:
        if mode != "sum":
            raise NotImplementedError(
                "embedding_bag: per_sample_weights was not None. per_sample_weights is only "
                f"supported for mode='sum' (got mode='{mode}')."
            )
        if tuple(per_sample_weights.shape) != tuple(input.shape):
            raise ValueError(
                f"embedding_bag: If per_sample_weights ({list(per_sample_weights.shape)}) is "
                f"not None, then it must have the same shape as the input ({list(input.shape)})"
            )
    n = int(weight.shape[0])
    _check_indices(input, n, "embedding_bag")
    rows = op.Gather(weight, input, axis=0)
    if input.ndim == 2:
        if offsets is not None:
            raise ValueError("if input is 2D, then offsets has to be None")
        keep = input == input  # every position of every row
    elif input.ndim == 1:
        if offsets is None:
            raise ValueError("offsets has to be a 1D Tensor but got None")
        _check_offsets(offsets, int(input._data.shape[0]), include_last_offset)
        keep = _bag_mask(offsets, input.shape[0], include_last_offset)
    else:
        raise ValueError(
            f"input has to be 1D or 2D Tensor, but got Tensor of dimension {input.ndim}"
        )
    if padding_idx is not None:
        if not -n <= padding_idx < n:
            raise IndexError(f"padding_idx must be within the number of embeddings {n}")
        keep = keep.logical_and(input != padding_idx % n)
    return _reduce_bags(rows, keep, per_sample_weights, mode)
