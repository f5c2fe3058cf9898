"""``tracer.Tensor`` and the functions that make tensors."""

from __future__ import annotations

from typing import Any

import numpy as np

from tracer import _tensor_base
from tracer._compat import CompatMixin
from tracer._device import check_device
from tracer._indexing import IndexingMixin
from tracer._inplace import InplaceMixin
from tracer._inplace_variants import InplaceVariantsMixin
from tracer._linalg import LinalgMixin
from tracer._math import MathMixin
from tracer._missing import missing_attribute
from tracer._pointwise import PointwiseMixin
from tracer._random import RandomMixin
from tracer._reduce import ReduceMixin
from tracer._shape import ShapeMixin
from tracer._symint import is_symbolic
from tracer._tensor_base import TensorBase, to_array, wrap
from tracer._tensor_types import check_kwargs, legacy_data
from tracer._ufunc import array_ufunc


class Tensor(
    MathMixin,
    ReduceMixin,
    ShapeMixin,
    IndexingMixin,
    InplaceMixin,
    LinalgMixin,
    PointwiseMixin,
    RandomMixin,
    InplaceVariantsMixin,
    CompatMixin,
):
    """An n-dimensional array that runs eagerly on NumPy and records ops for autograd.

    The constructor has ``torch.Tensor``'s legacy meaning: ``Tensor(2, 3)`` is an
    uninitialised (here: zero) 2 x 3 float32 tensor, ``Tensor([1, 2])`` a float32 copy of
    the data, ``Tensor()`` an empty one and ``Tensor(t)`` an alias of the tensor ``t``. Use
    :func:`tensor` to keep integer and bool dtypes or to ask for ``requires_grad``.

    Raises:
        TypeError: a lone number, several non-size arguments, or a keyword other than
            ``device`` (``requires_grad`` belongs to :func:`tensor`).
        DeviceError: a device other than the CPU.
    """

    __slots__ = ()

    # NumPy ufuncs on tensors (np.exp(t), array * t): see tracer._ufunc.
    __array_ufunc__ = array_ufunc

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        check_kwargs("Tensor", kwargs)
        data = legacy_data(args, np.dtype(np.float32), "Tensor")
        self._node, self._index, self.grad = None, 0, None
        self._requires_grad = False
        if isinstance(data, TensorBase):  # an alias: same memory, same version counter
            data._read_into_python("Tensor(tensor)")  # a trace would see a new constant
            self._data = data._data
            self._version = _tensor_base._version_cell(data)
        else:
            self._data, self._version = data, None

    def __getattr__(self, name: str) -> Any:
        # Only reached when normal lookup fails: name the PyTorch API and graphcap's way.
        raise missing_attribute("Tensor", name, dir(Tensor))

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


_tensor_base.TENSOR_CLASS = Tensor


def tensor(
    data: Any, dtype: Any = None, device: Any = None, requires_grad: bool = False, **kwargs: Any
) -> Tensor:
    """A new tensor holding a copy of ``data``.

    Python floats give float32, ints int64, bools bool; arrays and tensors keep their dtype.
    While tracing, a list of sizes holding ``SymInt``s gives the recorded int64 tensor of
    those sizes. ``pin_memory`` is accepted and changes nothing (see ``Tensor.pin_memory``).

    Raises:
        DTypeError: ``data`` has a dtype graphcap does not support.
        RuntimeError: ``requires_grad`` on a non-floating dtype.
        DeviceError: a device other than the CPU.
        TraceError: while tracing, ``data`` is a tensor whose values depend on the traced
            inputs (the copy would be a constant).
    """
    _check_factory_kwargs("tensor", kwargs)
    check_device(device, "tensor()")
    if isinstance(data, TensorBase):  # a copy of a traced value: a constant
        data._read_into_python("tracer.tensor(tensor)")
    elif isinstance(data, list | tuple) and is_symbolic(data):  # sizes of a trace: recorded
        from tracer._shape import symbolic_shape

        sizes = symbolic_shape(data)
        return sizes if dtype is None else sizes.to(dtype)
    t = wrap(to_array(data, None if dtype is None else np.dtype(dtype)).copy())
    if requires_grad:
        t.requires_grad = True
    return t


def as_tensor(data: Any, dtype: Any = None, device: Any = None) -> Tensor:
    """``data`` as a tensor, sharing memory with an array or tensor of the same dtype.

    Raises:
        DeviceError: a device other than the CPU.
    """
    check_device(device, "as_tensor()")
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


def _check_factory_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    extra = sorted(set(kwargs) - {"pin_memory"})
    if extra:
        raise TypeError(f"{name}() got unexpected keyword argument(s) {', '.join(extra)}")
