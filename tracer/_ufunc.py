"""NumPy ufuncs on eager tensors: ``np.exp(t)``, ``np.maximum(t, 0)``, ``array * t``.

The ufuncs that are tensor methods or operators (arithmetic, comparisons, ``exp``,
``tanh``, ...) run as those, so the result is a tensor that autograd follows. Any other
ufunc, or a ufunc method (``np.add.reduce``) or keyword (``out=``, ``where=``), runs in
NumPy on the tensors' values and returns tensors, as PyTorch does; like PyTorch it refuses
tensors that require grad, whose history it would drop. All of it is in this one function,
so a capture-time guard can sit in front of it.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import numpy as np

from tracer._tensor_base import TensorBase, to_array, wrap

_METHODS: dict[str, Callable[..., Any]] = {
    "add": operator.add,
    "subtract": operator.sub,
    "multiply": operator.mul,
    "true_divide": operator.truediv,
    "divide": operator.truediv,
    "floor_divide": operator.floordiv,
    "remainder": operator.mod,
    "power": operator.pow,
    "matmul": operator.matmul,
    "equal": operator.eq,
    "not_equal": operator.ne,
    "less": operator.lt,
    "less_equal": operator.le,
    "greater": operator.gt,
    "greater_equal": operator.ge,
    "negative": operator.neg,
    "positive": operator.pos,
    "absolute": operator.abs,
    "maximum": lambda a, b: _tensor(a).maximum(b),
    "minimum": lambda a, b: _tensor(a).minimum(b),
    "fmod": lambda a, b: _tensor(a).fmod(b),
    "logical_and": lambda a, b: _tensor(a).logical_and(_tensor(b)),
    "logical_or": lambda a, b: _tensor(a).logical_or(_tensor(b)),
    "logical_xor": lambda a, b: _tensor(a).logical_xor(_tensor(b)),
}
_UNARY = frozenset(
    {
        *("exp", "log", "sqrt", "sin", "cos", "tanh", "sign", "floor", "ceil", "trunc"),
        *("reciprocal", "square", "logical_not", "isnan", "isinf", "isfinite"),
    }
)


def _tensor(x: Any) -> Any:
    """``x`` as a tensor (arrays and numbers become constants)."""
    return x if isinstance(x, TensorBase) else wrap(to_array(x))


def _operand(x: Any) -> Any:
    """Python numbers stay numbers (weak types, as PyTorch's); the rest become tensors."""
    if isinstance(x, np.generic):
        return x.item()
    return x if isinstance(x, int | float | bool) else _tensor(x)


def _numpy_value(x: Any, ufunc: np.ufunc) -> Any:
    if not isinstance(x, TensorBase):
        return x
    x._read_into_python(f"numpy.{ufunc.__name__}")
    if x._requires_grad:
        raise RuntimeError(
            f"numpy.{ufunc.__name__} would drop the autograd history of a tensor that requires "
            "grad; use its tensor method (graphcap maps the arithmetic and math ufuncs onto "
            "them), or tensor.detach() first"
        )
    return x._data


def _as_tensors(out: Any) -> Any:
    if isinstance(out, tuple):
        return tuple(_as_tensors(o) for o in out)
    if isinstance(out, np.ndarray | np.generic) and out.dtype.kind in "biuf":
        return wrap(to_array(np.asarray(out)))
    return out


def array_ufunc(self: TensorBase, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
    """``Tensor.__array_ufunc__``: NumPy hands every ufunc with a tensor operand here."""
    name = ufunc.__name__
    if method == "__call__" and not kwargs:
        if name in _METHODS:
            operands = [_operand(x) for x in inputs]
            return _METHODS[name](*operands)
        if name in _UNARY and len(inputs) == 1:
            return getattr(_tensor(inputs[0]), name)()
    outs = kwargs.get("out") or ()
    if any(isinstance(o, TensorBase) for o in (outs if isinstance(outs, tuple) else (outs,))):
        raise TypeError(f"numpy.{name}(..., out=tensor) is not supported; assign the result")
    values = [_numpy_value(x, ufunc) for x in inputs]
    return _as_tensors(getattr(ufunc, method)(*values, **kwargs))
