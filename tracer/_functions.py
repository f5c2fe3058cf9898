"""Free functions over several tensors that are not methods: cat, stack, where, einsum, ...

Each promotes its operands as PyTorch does and applies registry ops, so the graph records
it. Functions that are methods too (``tracer.sum``, ``tracer.exp``) are the methods
themselves, aliased in ``tracer/__init__.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.errors import DTypeError
from ir.ops.registry import op
from tracer._math import cast, const, method
from tracer._promote import result_type
from tracer._tensor_base import TensorBase

if TYPE_CHECKING:
    from tracer.tensor import Tensor


def _tensors(tensors: Sequence[TensorBase], name: str) -> list[TensorBase]:
    out = list(tensors)
    if not out:
        raise RuntimeError(f"{name}(): expected a non-empty list of tensors")
    for i, t in enumerate(out):
        if not isinstance(t, TensorBase):
            raise TypeError(f"{name}(): item {i} is {type(t).__name__}, expected a tensor")
    return out


def _promote_all(tensors: Sequence[TensorBase]) -> list[TensorBase]:
    dtype = result_type(*tensors)
    return [cast(t, dtype) for t in tensors]


def _axis(rank: int, dim: int) -> int:
    if not -rank <= dim < rank:
        raise IndexError(f"dimension {dim} out of range for rank {rank}")
    return dim % rank


def cat(tensors: Sequence[TensorBase], dim: int = 0) -> Tensor:
    """Concatenate ``tensors`` along ``dim``; their dtypes promote to a common one.

    As in PyTorch, 1-d empty tensors are skipped (they still take part in promotion).

    Raises:
        RuntimeError: an empty list.
        ShapeError: shapes that differ outside ``dim``.
    """
    items = _promote_all(_tensors(tensors, "cat"))
    kept = [t for t in items if t._data.shape != (0,)] or items[:1]
    rank = kept[0]._data.ndim
    if rank == 0:
        raise RuntimeError("zero-dimensional tensor cannot be concatenated")
    return op.Concat(*kept, axis=_axis(rank, dim))


concat = cat
concatenate = cat


def stack(tensors: Sequence[TensorBase], dim: int = 0) -> Tensor:
    """Join equally shaped ``tensors`` along a new dim ``dim``.

    Raises:
        RuntimeError: an empty list, or tensors of different shapes.
    """
    items = _promote_all(_tensors(tensors, "stack"))
    shape = items[0]._data.shape
    for i, t in enumerate(items):
        if t._data.shape != shape:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, but got {list(shape)} at entry 0 "
                f"and {list(t._data.shape)} at entry {i}"
            )
    axes = np.asarray([_axis(len(shape) + 1, dim)], np.int64)
    return op.Concat(*(op.Unsqueeze(t, axes) for t in items), axis=int(axes[0]))


def where(condition: TensorBase, input: Any = None, other: Any = None) -> Any:
    """``input`` where ``condition`` is True, else ``other``; all three broadcast.

    ``input`` and ``other`` may be Python numbers; they promote as PyTorch does.
    ``where(condition)`` alone is ``condition.nonzero(as_tuple=True)``.

    Raises:
        DTypeError: ``condition`` is not a bool tensor.
    """
    if condition._data.dtype != D.bool_:
        raise DTypeError(
            f"where expected condition to be a boolean tensor, but got {condition.dtype}"
        )
    if input is None and other is None:
        idx = op.NonZero(condition)
        split = op.Split(idx, np.ones(idx._data.shape[0], np.int64), axis=0)
        axes = np.asarray([0], np.int64)
        return tuple(op.Squeeze(p, axes) for p in split)
    dtype = result_type(input, other)
    x = cast(input, dtype) if isinstance(input, TensorBase) else const(input, dtype)
    y = cast(other, dtype) if isinstance(other, TensorBase) else const(other, dtype)
    return op.Where(condition, x, y)


def einsum(equation: str, *operands: Any) -> Tensor:
    """Einstein summation, e.g. ``einsum("bij,bjk->bik", a, b)``; operands may be a list.

    Raises:
        RuntimeError: no operands.
    """
    if len(operands) == 1 and isinstance(operands[0], list | tuple):
        operands = tuple(operands[0])
    items = _promote_all(_tensors(operands, "einsum"))
    return op.Einsum(*items, equation=equation.replace(" ", ""))


def maximum(input: Any, other: Any) -> Tensor:
    """Elementwise maximum, promoted as PyTorch does (NaN propagates)."""
    if isinstance(input, TensorBase):
        return method(op.Max, input, other)
    return method(op.Max, other, input, reverse=True)


def minimum(input: Any, other: Any) -> Tensor:
    """Elementwise minimum, promoted as PyTorch does (NaN propagates)."""
    if isinstance(input, TensorBase):
        return method(op.Min, input, other)
    return method(op.Min, other, input, reverse=True)


def pow(input: Any, exponent: Any) -> Tensor:
    """Elementwise ``input ** exponent``; either one may be a Python number."""
    if isinstance(input, TensorBase):
        return input.pow(exponent)  # type: ignore[attr-defined]
    return method(op.Pow, exponent, input, reverse=True)


def broadcast_to(input: TensorBase, size: Sequence[int]) -> Tensor:
    """``input`` broadcast to ``size`` (see ``Tensor.expand``)."""
    return input.expand(*size)  # type: ignore[attr-defined]
