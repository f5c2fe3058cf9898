"""Arithmetic for tensors: Python operators with PyTorch promotion, unary math, activations.

Each method promotes its operands as PyTorch does (``tracer._promote``), inserting Casts,
then applies one registry op. Python numbers become cached 0-d constants of the computed
dtype, so the recorded graph holds ONNX-typed constants.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ir import dtypes as D
from ir.ops.registry import OpDef, get
from tracer._promote import result_type, scalar_dtype
from tracer._tensor_base import TensorBase, apply, apply_binary, apply_unary

if TYPE_CHECKING:
    from tracer.tensor import Tensor

_CONSTS: dict[np.dtype, dict[Any, np.ndarray]] = {}


def const(value: Any, dtype: np.dtype) -> np.ndarray:
    """A read-only 0-d array of ``value`` in ``dtype``, cached for common numbers."""
    cache = _CONSTS.get(dtype)
    if cache is None:
        cache = _CONSTS[dtype] = {}
    c = cache.get(value)
    if c is None:
        c = np.asarray(value, dtype=dtype)
        c.flags.writeable = False
        # 0.0 == -0.0 as dict keys: cache neither, so the sign of zero is never swapped.
        if len(cache) < 1024 and value != 0:
            cache[value] = c
    return c


def cast(x: TensorBase, dtype: np.dtype) -> Tensor:
    """``x`` converted to ``dtype`` (a registry Cast), or ``x`` itself when it already is."""
    if x._data.dtype == dtype:
        return x  # type: ignore[return-value]
    return apply(_CAST, (x,), {"to": D.to_onnx(dtype)})


def operands(a: TensorBase, b: Any) -> tuple[Any, Any]:
    """``a`` and ``b`` promoted to their common dtype; numbers become constants.

    Raises:
        TypeError: ``b`` is neither a tensor nor a Python number.
    """
    if isinstance(b, TensorBase):
        if a._data.dtype != b._data.dtype:
            dtype = result_type(a, b)
            return cast(a, dtype), cast(b, dtype)
        return a, b
    if isinstance(b, np.ndarray):
        raise TypeError("mix tensors with NumPy arrays through tracer.as_tensor(array)")
    own = a._data.dtype
    kind = own.kind
    if (type(b) is float and kind == "f") or (type(b) is int and kind in "fiu"):
        return a, const(b, own)
    theirs = scalar_dtype(b)
    if D.category(theirs) > D.category(own):
        return cast(a, theirs), const(b, theirs)
    return a, const(b, own)


def binary(op: OpDef, a: TensorBase, b: Any, reverse: bool = False) -> Any:
    """Apply the binary registry ``op`` to ``a`` and ``b`` (swapped when ``reverse``)."""
    if not reverse and isinstance(b, TensorBase) and a._data.dtype is b._data.dtype:
        return apply_binary(op, a, b)
    try:
        x, y = operands(a, b)
    except TypeError:
        return NotImplemented
    return apply(op, (y, x) if reverse else (x, y), {})


def unary(op: OpDef, x: TensorBase, **attrs: Any) -> Any:
    """Apply a unary registry ``op``."""
    if attrs:
        return apply(op, (x,), attrs)
    return apply_unary(op, x)


def floating(x: TensorBase) -> TensorBase:
    """``x`` cast to float32 when it is an integer or bool tensor (PyTorch's true division)."""
    return x if x._data.dtype.kind == "f" else cast(x, D.float32)


_CAST = get("Cast")
_ADD, _SUB, _MUL, _DIV = get("Add"), get("Sub"), get("Mul"), get("Div")
_NEG, _EXP, _LOG, _TANH, _RELU = get("Neg"), get("Exp"), get("Log"), get("Tanh"), get("Relu")
_GREATER, _MATMUL = get("Greater"), get("MatMul")


class MathMixin(TensorBase):
    """Operators and elementwise math of ``tracer.Tensor``."""

    __slots__ = ()

    def __add__(self, other: Any) -> Tensor:
        return binary(_ADD, self, other)

    def __radd__(self, other: Any) -> Tensor:
        return binary(_ADD, self, other, reverse=True)

    def __sub__(self, other: Any) -> Tensor:
        return binary(_SUB, self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return binary(_SUB, self, other, reverse=True)

    def __mul__(self, other: Any) -> Tensor:
        return binary(_MUL, self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return binary(_MUL, self, other, reverse=True)

    def __truediv__(self, other: Any) -> Tensor:
        return binary(_DIV, floating(self), other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return binary(_DIV, floating(self), other, reverse=True)

    def __neg__(self) -> Tensor:
        return unary(_NEG, self)

    def __gt__(self, other: Any) -> Tensor:
        return binary(_GREATER, self, other)

    def __matmul__(self, other: Any) -> Tensor:
        return binary(_MATMUL, self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return binary(_MATMUL, self, other, reverse=True)

    def exp(self) -> Tensor:
        """Elementwise e**x."""
        return unary(_EXP, floating(self))

    def log(self) -> Tensor:
        """Elementwise natural logarithm."""
        return unary(_LOG, floating(self))

    def tanh(self) -> Tensor:
        """Elementwise hyperbolic tangent."""
        return unary(_TANH, floating(self))

    def relu(self) -> Tensor:
        """Elementwise max(x, 0)."""
        return unary(_RELU, self)

    def matmul(self, other: Tensor) -> Tensor:
        """Matrix product with NumPy/PyTorch broadcasting of batch dims."""
        return binary(_MATMUL, self, other)
