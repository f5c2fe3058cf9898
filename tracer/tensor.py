"""``tracer.Tensor`` and the functions that make tensors."""

from __future__ import annotations

from typing import Any

import numpy as np

from tracer import _tensor_base
from tracer._indexing import IndexingMixin
from tracer._inplace import InplaceMixin
from tracer._math import MathMixin
from tracer._reduce import ReduceMixin
from tracer._shape import ShapeMixin
from tracer._tensor_base import to_array, wrap


class Tensor(MathMixin, ReduceMixin, ShapeMixin, IndexingMixin, InplaceMixin):
    """An n-dimensional array that runs eagerly on NumPy and records ops for autograd.

    ``Tensor(data)`` copies ``data`` into a float32 tensor, as ``torch.Tensor(data)`` does;
    use :func:`tensor` to keep integer and bool dtypes.
    """

    __slots__ = ()

    def __init__(self, data: Any = (), requires_grad: bool = False) -> None:
        self._data = to_array(data, np.dtype(np.float32)).copy()
        self._node, self._index, self._version, self.grad = None, 0, None, None
        self._requires_grad = False
        if requires_grad:
            self.requires_grad = True


_tensor_base.TENSOR_CLASS = Tensor


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data``.

    Python floats give float32, ints int64, bools bool; arrays and tensors keep their dtype.

    Raises:
        DTypeError: ``data`` has a dtype graphcap does not support.
        RuntimeError: ``requires_grad`` on a non-floating dtype.
    """
    t = wrap(to_array(data, None if dtype is None else np.dtype(dtype)).copy())
    if requires_grad:
        t.requires_grad = True
    return t


def as_tensor(data: Any, dtype: Any = None) -> Tensor:
    """``data`` as a tensor, sharing memory with an array or tensor of the same dtype."""
    if isinstance(data, Tensor) and (dtype is None or np.dtype(dtype) == data.dtype):
        return data
    return wrap(to_array(data, None if dtype is None else np.dtype(dtype)))


def from_numpy(array: np.ndarray) -> Tensor:
    """A tensor sharing ``array``'s memory: writes to either show in both.

    Raises:
        TypeError: ``array`` is not a NumPy array.
        DTypeError: its dtype is not supported.
    """
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy expects a numpy.ndarray, got {type(array).__name__}")
    return wrap(to_array(array))
