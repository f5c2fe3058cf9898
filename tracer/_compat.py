"""Tensor methods PyTorch code touches that are not math: devices, ``.data``, ``type()``, pickling.

Eager tensors live on the CPU: ``.device`` is ``device("cpu")``, ``.cpu()`` and
``pin_memory()`` return the tensor itself, and ``.cuda()`` raises the one error that says
where CUDA runs in graphcap (compiled and exported graphs).
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

import numpy as np

from tracer import _device, _state
from tracer._math import cast
from tracer._tensor_base import TensorBase, wrap
from tracer._tensor_types import dtype_of_type, type_name

if TYPE_CHECKING:
    from tracer.tensor import Tensor


def _rebuild(data: np.ndarray, requires_grad: bool, cls: type) -> Any:
    """Unpickle a tensor: a leaf over ``data`` (``Parameter``s stay ``Parameter``s)."""
    t = wrap(data)
    if cls is not type(t):
        return cls(t, requires_grad)
    if requires_grad:
        t.requires_grad = True
    return t


class CompatMixin(TensorBase):
    """Devices, ``.data``, ``type()`` and pickling for ``tracer.Tensor``."""

    __slots__ = ()

    # ------------------------------------------------------------ devices

    @property
    def device(self) -> _device.device:  # type: ignore[override]
        """``device("cpu")``: eager tensors live in host memory."""
        return _device.CPU

    @property
    def is_cuda(self) -> bool:
        """False: eager tensors live in host memory."""
        return False

    def get_device(self) -> int:
        """-1, PyTorch's answer for a CPU tensor."""
        return -1

    def cpu(self, memory_format: Any = None) -> Tensor:
        """This tensor (it is already on the CPU)."""
        return self  # type: ignore[return-value]

    def cuda(self, device: Any = None, non_blocking: bool = False, **kwargs: Any) -> Tensor:
        """Raises: eager tensors live on the CPU (the error says where CUDA runs instead).

        Raises:
            DeviceError: always.
        """
        raise _device.device_error("cuda" if device is None else device, "Tensor.cuda()")

    def pin_memory(self, device: Any = None) -> Tensor:
        """This tensor: pinning matters only for copies to a GPU, which eager tensors never make."""
        return self  # type: ignore[return-value]

    def is_pinned(self, device: Any = None) -> bool:
        """False: nothing is pinned (see :meth:`pin_memory`)."""
        return False

    # ------------------------------------------------------------ layout questions

    @property
    def is_sparse(self) -> bool:
        """False: every tensor is a dense NumPy array."""
        return False

    @property
    def is_quantized(self) -> bool:
        """False: graphcap has no quantized tensors."""
        return False

    @property
    def is_meta(self) -> bool:
        """False: every tensor holds data."""
        return False

    def is_complex(self) -> bool:
        """False: graphcap has no complex dtypes."""
        return False

    def is_contiguous(self, memory_format: Any = None) -> bool:
        """True: layout never changes results here (``contiguous()`` returns the tensor)."""
        return True

    def nelement(self) -> int:
        """Number of elements (``numel()``)."""
        return int(self._data.size)

    def ndimension(self) -> int:
        """Number of axes (``dim()``)."""
        return int(self._data.ndim)

    # ------------------------------------------------------------ .data and type()

    @property
    def data(self) -> Tensor:
        """A tensor over the same memory, cut from autograd, with its own version counter.

        Writes through it (``p.data.add_(...)``, ``p.data[0] = 1``) change this tensor and
        are not recorded, as PyTorch's ``.data``; prefer ``detach()`` or ``no_grad()``.
        """
        t = wrap(self._data)
        if _state.tracer is not None:
            _state.tracer.detach(t, self)
        return t

    @data.setter
    def data(self, value: TensorBase) -> None:
        if not isinstance(value, TensorBase):
            raise TypeError(f"data must be set to a tensor, got {type(value).__name__}")
        self._data = value._data
        self._bump_version()

    def type(self, dtype: Any = None, non_blocking: bool = False, **kwargs: Any) -> Any:
        """Without ``dtype``, the type name (``"torch.FloatTensor"``); else a converted tensor.

        ``dtype`` may be a dtype, a legacy type (``tracer.LongTensor``) or its name
        (``"torch.LongTensor"``). Returns ``self`` when the dtype does not change.

        Raises:
            DeviceError: a CUDA type (``"torch.cuda.FloatTensor"``).
            TypeError: something that names no tensor type.
        """
        if dtype is None:
            return type_name(self._data.dtype)
        return cast(self, dtype_of_type(dtype))

    # ------------------------------------------------------------ pickling

    def __deepcopy__(self, memo: dict[int, Any]) -> Tensor:
        # A copy of the data (a leaf, as PyTorch's deepcopy of leaves gives), with .grad.
        new = _rebuild(np.array(self._data), self._requires_grad, type(self))
        memo[id(self)] = new
        if self.grad is not None:
            new.grad = copy.deepcopy(self.grad, memo)
        return new

    def __reduce__(self) -> tuple[Any, ...]:
        # Data and requires_grad travel, autograd history does not (PyTorch's rule too).
        self._read_into_python("pickling")
        return (_rebuild, (np.array(self._data), self._requires_grad, type(self)))
