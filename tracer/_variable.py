"""``autograd.Variable``: PyTorch's pre-0.4 wrapper, which today just makes a tensor.

``Variable(t)`` is a tensor over ``t``'s memory, cut from ``t``'s history (so
``Variable(z.data)`` has no ``grad_fn``), with ``requires_grad`` as asked; and every tensor
is an instance of ``Variable``. That is what PyTorch 2 does with old tutorials' code.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from tracer import _state
from tracer._tensor_base import TensorBase, _version_cell, wrap


class _VariableMeta(type):
    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, TensorBase)

    def __call__(cls, data: Any = None, requires_grad: bool = False, volatile: bool = False) -> Any:
        if volatile:
            warnings.warn(
                "volatile was removed and now has no effect; use `with tracer.no_grad():`",
                UserWarning,
                stacklevel=2,
            )
        if data is None:
            data = wrap(np.zeros((0,), np.float32))
        if not isinstance(data, TensorBase):
            raise TypeError(f"Variable data has to be a tensor, but got {type(data).__name__}")
        t = wrap(data._data)
        t._version = _version_cell(data)
        if _state.tracer is not None:
            _state.tracer.detach(t, data)
        if requires_grad:
            t.requires_grad = True
        return t


class Variable(metaclass=_VariableMeta):
    """``Variable(tensor, requires_grad=False)``: a tensor sharing ``tensor``'s memory.

    Raises:
        TypeError: ``data`` is not a tensor.
        RuntimeError: ``requires_grad`` on a non-floating tensor.
    """
