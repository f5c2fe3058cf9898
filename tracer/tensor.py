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
from tracer._symint import is_symbolic
from tracer._tensor_base import to_array, wrap


class Tensor(MathMixin, ReduceMixin, ShapeMixin, IndexingMixin, InplaceMixin):
    """An n-dimensional array that runs eagerly on NumPy and records ops for autograd.

    ``Tensor(data)`` copies ``data`` into a float32 tensor, as ``torch.Tensor(data)`` does;
    use :func:`tensor` to keep integer and bool dtypes.
    """

    __slots__ = ()

    def __init__(self, data: Any = (), requires_grad: bool = False) -> None:
        if isinstance(data, _tensor_base.TensorBase):
            data._read_into_python("Tensor(tensor)")
        self._data = to_array(data, np.dtype(np.float32)).copy()
        self._node, self._index, self._version, self.grad = None, 0, None, None
        self._requires_grad = False
        if requires_grad:
            self.requires_grad = True

    # While tracing, reading an input-dependent value into NumPy would bake the example's
    # values into the graph as a constant: these raise TraceError naming the line instead.

    def numpy(self) -> np.ndarray:
        """The underlying array, without a copy.

        Raises:
            RuntimeError: the tensor requires grad (as in PyTorch: detach it first).
            TraceError: while tracing, the values depend on the traced inputs.
        """
        self._read_into_python("numpy()")
        return super().numpy()

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        self._read_into_python("numpy.asarray() or numpy.array()")
        return super().__array__(dtype, copy)

    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        # ``array <op> tensor``: NumPy's operator calls the ufunc; the tensor's reflected
        # operator answers, as it would if NumPy had deferred to it.
        if method == "__call__" and not kwargs and len(inputs) == 2 and inputs[1] is self:
            reflected = _REFLECTED.get(ufunc)
            if reflected is not None and not isinstance(inputs[0], _tensor_base.TensorBase):
                return getattr(self, reflected)(inputs[0])
        self._read_into_python(f"numpy.{ufunc.__name__}")
        raise TypeError(
            f"operand 'Tensor' does not support ufuncs (numpy.{ufunc.__name__}); use the "
            "tensor's methods or tracer's functions"
        )


_tensor_base.TENSOR_CLASS = Tensor

# The ufunc each ``ndarray`` operator calls, and the tensor's operator for it with the
# array on the left.
_REFLECTED: dict[Any, str] = {
    np.add: "__radd__",
    np.subtract: "__rsub__",
    np.multiply: "__rmul__",
    np.true_divide: "__rtruediv__",
    np.floor_divide: "__rfloordiv__",
    np.remainder: "__rmod__",
    np.power: "__rpow__",
    np.matmul: "__rmatmul__",
    np.less: "__gt__",
    np.less_equal: "__ge__",
    np.greater: "__lt__",
    np.greater_equal: "__le__",
    np.equal: "__eq__",
    np.not_equal: "__ne__",
}


def tensor(data: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A new tensor holding a copy of ``data``.

    Python floats give float32, ints int64, bools bool; arrays and tensors keep their dtype.
    While tracing, a list of sizes holding ``SymInt``s gives the recorded int64 tensor of
    those sizes.

    Raises:
        DTypeError: ``data`` has a dtype graphcap does not support.
        RuntimeError: ``requires_grad`` on a non-floating dtype.
        TraceError: while tracing, ``data`` is a tensor whose values depend on the traced
            inputs (the copy would be a constant).
    """
    if isinstance(data, _tensor_base.TensorBase):  # a copy of a traced value: a constant
        data._read_into_python("tracer.tensor(tensor)")
    elif isinstance(data, list | tuple) and is_symbolic(data):  # sizes of a trace: recorded
        from tracer._shape import symbolic_shape

        sizes = symbolic_shape(data)
        return sizes if dtype is None else sizes.to(dtype)
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
