"""Arithmetic for tensors: Python operators with PyTorch promotion, unary math, activations.

Each method promotes its operands as PyTorch does (``tracer._promote``), inserting Casts,
then applies one registry op. Python numbers become cached 0-d constants of the computed
dtype, so the recorded graph holds ONNX-typed constants.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.errors import DTypeError
from ir.ops.registry import OpDef, op
from tracer._legacy_args import scalar_first
from tracer._promote import result_type, scalar_dtype
from tracer._symint import SymInt
from tracer._tensor_base import TensorBase, to_array, wrap

if TYPE_CHECKING:
    from tracer.tensor import Tensor

_CONSTS: dict[np.dtype, dict[Any, np.ndarray]] = {}
# The eager funnel, as ``op.X(tensor, ...)`` reaches it through the registry's bind hook.
_bind = TensorBase.__graphcap_bind__
_NO_ATTRS: Mapping[str, Any] = MappingProxyType({})


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
    return op.Cast(x, to=D.to_onnx(dtype))


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
        b = wrap(to_array(b))  # a constant operand, as PyTorch accepts arrays
        return operands(a, b)
    if isinstance(b, SymInt):  # a dynamic size: its recorded 0-d int64 tensor
        return operands(a, b.tensor)
    own = a._data.dtype
    kind = own.kind
    if (type(b) is float and kind == "f") or (type(b) is int and kind in "fiu"):
        return a, const(b, own)
    theirs = scalar_dtype(b)
    if D.category(theirs) > D.category(own):
        return cast(a, theirs), const(b, theirs)
    return a, const(b, own)


def binary(opdef: OpDef, a: TensorBase, b: Any, reverse: bool = False) -> Any:
    """``opdef(a, b)`` (``opdef(b, a)`` when ``reverse``), promoted as PyTorch does.

    The path of every operator: it hands the op to the bind hook that ``opdef(a, b)``
    reaches (``a`` is a tensor), without ``OpDef.__call__``'s dispatch.
    """
    if not reverse and isinstance(b, TensorBase) and a._data.dtype is b._data.dtype:
        return _bind(opdef, (a, b), _NO_ATTRS)
    try:
        x, y = operands(a, b)
    except TypeError:
        return NotImplemented
    return _bind(opdef, (y, x) if reverse else (x, y), _NO_ATTRS)


def _operator(opdef: OpDef) -> Callable[[TensorBase, Any], Tensor]:
    """``tensor <op> other``: :func:`binary`, reached in one call when the dtypes agree."""

    def method(self: TensorBase, other: Any) -> Tensor:
        if isinstance(other, TensorBase) and self._data.dtype is other._data.dtype:
            return _bind(opdef, (self, other), _NO_ATTRS)
        return binary(opdef, self, other)

    method.__doc__ = f"``self {opdef.op_type} other`` with PyTorch promotion and broadcasting."
    return method


def _unary(opdef: OpDef, doc: str, as_float: bool = False) -> Callable[[TensorBase], Tensor]:
    """A unary math method ``opdef(self)``, reached in one call as the operators are.

    With ``as_float``, integer and bool tensors compute in float32, as in PyTorch.
    """

    def method(self: TensorBase) -> Tensor:
        x = self if not as_float or self._data.dtype.kind == "f" else floating(self)
        return _bind(opdef, (x,), _NO_ATTRS)

    method.__doc__ = doc + (" (integers compute in float32)." if as_float else ".")
    return method


def floating(x: TensorBase) -> TensorBase:
    """``x`` cast to float32 when it is an integer or bool tensor (PyTorch's true division)."""
    return x if x._data.dtype.kind == "f" else cast(x, D.float32)


def method(opdef: OpDef, a: TensorBase, b: Any, reverse: bool = False) -> Any:
    """``binary`` for named methods and functions: a bad operand raises instead of deferring.

    Raises:
        TypeError: ``b`` is neither a tensor nor a Python number.
    """
    out = binary(opdef, a, b, reverse)
    if out is NotImplemented:
        raise TypeError(
            f"{opdef.op_type}: expected a tensor or a Python number, got {type(b).__name__}"
        )
    return out


def to_bool(x: TensorBase) -> TensorBase:
    """``x != 0`` as a bool tensor (a Cast), or ``x`` when already bool."""
    return cast(x, D.bool_)


def _logical(opdef: OpDef, a: TensorBase, b: Any, reverse: bool = False) -> Any:
    # ONNX And/Or/Xor/Not take bools only; PyTorch's bitwise ops on integers are not mapped.
    other_bool = isinstance(b, bool) or (isinstance(b, TensorBase) and b._data.dtype == D.bool_)
    if a._data.dtype != D.bool_ or not other_bool:
        if not isinstance(b, TensorBase | bool | int):
            return NotImplemented
        raise DTypeError(
            f"{opdef.op_type} on {a._data.dtype} and {getattr(b, 'dtype', type(b).__name__)}: "
            "only bool tensors are supported (bitwise ops on integers are not); use "
            "logical_and/or/xor"
        )
    return binary(opdef, a, b, reverse)


def _int_pow_check(base: TensorBase, exponent: Any) -> None:
    if base._data.dtype.kind in "iub" and type(exponent) is int and exponent < 0:
        raise RuntimeError("Integers to negative integer powers are not allowed.")


class MathMixin(TensorBase):
    """Operators and elementwise math of ``tracer.Tensor``."""

    __slots__ = ()
    # Defining __eq__ would otherwise set __hash__ to None; tensors hash by identity.
    __hash__ = TensorBase.__hash__

    # ------------------------------------------------------------ arithmetic operators

    __add__ = _operator(op.Add)
    __sub__ = _operator(op.Sub)
    __mul__ = _operator(op.Mul)

    def __radd__(self, other: Any) -> Tensor:
        return binary(op.Add, self, other, reverse=True)

    def __rsub__(self, other: Any) -> Tensor:
        return binary(op.Sub, self, other, reverse=True)

    def __rmul__(self, other: Any) -> Tensor:
        return binary(op.Mul, self, other, reverse=True)

    def __truediv__(self, other: Any) -> Tensor:
        return binary(op.Div, floating(self), other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return binary(op.Div, floating(self), other, reverse=True)

    def __floordiv__(self, other: Any) -> Tensor:
        return _floor_divide(self, other, reverse=False)

    def __rfloordiv__(self, other: Any) -> Tensor:
        return _floor_divide(self, other, reverse=True)

    def __mod__(self, other: Any) -> Tensor:
        return _remainder(self, other, reverse=False)

    def __rmod__(self, other: Any) -> Tensor:
        return _remainder(self, other, reverse=True)

    def __pow__(self, exponent: Any) -> Tensor:
        _int_pow_check(self, exponent)
        return binary(op.Pow, self, exponent)

    def __rpow__(self, base: Any) -> Tensor:
        return binary(op.Pow, self, base, reverse=True)

    def __matmul__(self, other: Any) -> Tensor:
        return binary(op.MatMul, self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return binary(op.MatMul, self, other, reverse=True)

    __neg__ = _unary(op.Neg, "Elementwise ``-x``")

    def __pos__(self) -> Tensor:
        return self  # type: ignore[return-value]

    def __abs__(self) -> Tensor:
        return self.abs()

    # ------------------------------------------------------------ comparisons and logic

    def __eq__(self, other: Any) -> Tensor:  # type: ignore[override]
        return binary(op.Equal, self, other)

    def __ne__(self, other: Any) -> Tensor:  # type: ignore[override]
        out = binary(op.Equal, self, other)
        return out if out is NotImplemented else op.Not(out)

    def __lt__(self, other: Any) -> Tensor:
        return binary(op.Less, self, other)

    def __le__(self, other: Any) -> Tensor:
        return binary(op.LessOrEqual, self, other)

    def __gt__(self, other: Any) -> Tensor:
        return binary(op.Greater, self, other)

    def __ge__(self, other: Any) -> Tensor:
        return binary(op.GreaterOrEqual, self, other)

    def __and__(self, other: Any) -> Tensor:
        return _logical(op.And, self, other)

    def __rand__(self, other: Any) -> Tensor:
        return _logical(op.And, self, other, reverse=True)

    def __or__(self, other: Any) -> Tensor:
        return _logical(op.Or, self, other)

    def __ror__(self, other: Any) -> Tensor:
        return _logical(op.Or, self, other, reverse=True)

    def __xor__(self, other: Any) -> Tensor:
        return _logical(op.Xor, self, other)

    def __rxor__(self, other: Any) -> Tensor:
        return _logical(op.Xor, self, other, reverse=True)

    def __invert__(self) -> Tensor:
        if self._data.dtype != D.bool_:
            raise DTypeError(f"~ on {self._data.dtype}: only bool tensors are supported")
        return op.Not(self)

    def eq(self, other: Any) -> Tensor:
        """Elementwise ``self == other`` (bool), after promotion."""
        return method(op.Equal, self, other)

    def ne(self, other: Any) -> Tensor:
        """Elementwise ``self != other`` (bool), after promotion."""
        return op.Not(method(op.Equal, self, other))

    def lt(self, other: Any) -> Tensor:
        """Elementwise ``self < other`` (bool), after promotion."""
        return method(op.Less, self, other)

    def le(self, other: Any) -> Tensor:
        """Elementwise ``self <= other`` (bool), after promotion."""
        return method(op.LessOrEqual, self, other)

    def gt(self, other: Any) -> Tensor:
        """Elementwise ``self > other`` (bool), after promotion."""
        return method(op.Greater, self, other)

    def ge(self, other: Any) -> Tensor:
        """Elementwise ``self >= other`` (bool), after promotion."""
        return method(op.GreaterOrEqual, self, other)

    def logical_not(self) -> Tensor:
        """Elementwise ``not x`` of the truth values (nonzero is True)."""
        return op.Not(to_bool(self))

    def logical_and(self, other: TensorBase) -> Tensor:
        """Elementwise ``x and y`` of the truth values."""
        return op.And(to_bool(self), to_bool(other))

    def logical_or(self, other: TensorBase) -> Tensor:
        """Elementwise ``x or y`` of the truth values."""
        return op.Or(to_bool(self), to_bool(other))

    def logical_xor(self, other: TensorBase) -> Tensor:
        """Elementwise ``x xor y`` of the truth values."""
        return op.Xor(to_bool(self), to_bool(other))

    def isnan(self) -> Tensor:
        """Elementwise test for NaN (always False for integers)."""
        if self._data.dtype.kind != "f":
            return method(op.Equal, self, self) & False
        return op.IsNaN(self)

    def isinf(self) -> Tensor:
        """Elementwise test for +-inf (always False for integers)."""
        if self._data.dtype.kind != "f":
            return method(op.Equal, self, self) & False
        return op.IsInf(self)

    def isfinite(self) -> Tensor:
        """Elementwise test for values that are neither inf nor NaN."""
        return (self.isnan() | self.isinf()).logical_not()

    # ------------------------------------------------------------ named arithmetic

    def add(self, *args: Any, alpha: float = 1) -> Tensor:
        """``self + alpha * other``, promoted (also the legacy ``add(alpha, other)``)."""
        (other,), alpha = scalar_first("add", args, "alpha", alpha, 1)
        return method(op.Add, self, other if alpha == 1 else other * alpha)

    def sub(self, *args: Any, alpha: float = 1) -> Tensor:
        """``self - alpha * other``, promoted (also the legacy ``sub(alpha, other)``)."""
        (other,), alpha = scalar_first("sub", args, "alpha", alpha, 1)
        return method(op.Sub, self, other if alpha == 1 else other * alpha)

    def mul(self, other: Any) -> Tensor:
        """Elementwise product."""
        return method(op.Mul, self, other)

    def div(self, other: Any, *, rounding_mode: str | None = None) -> Tensor:
        """Elementwise division: true division, or rounded "trunc" / "floor".

        Raises:
            ValueError: an unknown ``rounding_mode``.
        """
        if rounding_mode is None:
            return method(op.Div, floating(self), other)
        if rounding_mode == "floor":
            return _floor_divide(self, other, reverse=False)
        if rounding_mode == "trunc":
            x, y = operands(self, other)
            q = op.Div(x, y)
            return q if q._data.dtype.kind != "f" else q.trunc()
        raise ValueError(
            f"div: rounding_mode must be None, 'trunc' or 'floor', not {rounding_mode!r}"
        )

    def true_divide(self, other: Any) -> Tensor:
        """Elementwise true division (integers divide as float32)."""
        return self.div(other)

    def floor_divide(self, other: Any) -> Tensor:
        """Elementwise division rounded toward -inf (Python's ``//``)."""
        return _floor_divide(self, other, reverse=False)

    def remainder(self, other: Any) -> Tensor:
        """Python's ``%``: the remainder has the sign of the divisor."""
        return _remainder(self, other, reverse=False)

    def fmod(self, other: Any) -> Tensor:
        """C's ``fmod``: the remainder has the sign of the dividend."""
        x, y = operands(self, other)
        return op.Mod(x, y, fmod=1)

    def pow(self, exponent: Any) -> Tensor:
        """Elementwise ``self ** exponent``, promoted as PyTorch does.

        Raises:
            RuntimeError: an integer tensor raised to a negative Python int.
        """
        _int_pow_check(self, exponent)
        return method(op.Pow, self, exponent)

    def maximum(self, other: Any) -> Tensor:
        """Elementwise maximum (NaN propagates)."""
        return method(op.Max, self, other)

    def minimum(self, other: Any) -> Tensor:
        """Elementwise minimum (NaN propagates)."""
        return method(op.Min, self, other)

    def matmul(self, other: Tensor) -> Tensor:
        """Matrix product with NumPy/PyTorch broadcasting of batch dims."""
        return method(op.MatMul, self, other)

    def dot(self, other: Tensor) -> Tensor:
        """Inner product of two 1-d tensors, a 0-d tensor.

        Raises:
            RuntimeError: an input is not 1-d.
        """
        if self._data.ndim != 1 or other._data.ndim != 1:
            raise RuntimeError(
                f"1D tensors expected, but got {self._data.ndim}D and {other._data.ndim}D tensors"
            )
        return method(op.MatMul, self, other)

    # ------------------------------------------------------------ unary math

    neg = _unary(op.Neg, "Elementwise ``-x``")
    abs = _unary(op.Abs, "Elementwise absolute value")
    sign = _unary(op.Sign, "Elementwise sign: -1, 0 or 1 in ``x``'s dtype")
    exp = _unary(op.Exp, "Elementwise e**x", as_float=True)
    log = _unary(op.Log, "Elementwise natural logarithm", as_float=True)
    sqrt = _unary(op.Sqrt, "Elementwise square root", as_float=True)
    reciprocal = _unary(op.Reciprocal, "Elementwise ``1 / x``", as_float=True)
    sin = _unary(op.Sin, "Elementwise sine", as_float=True)
    cos = _unary(op.Cos, "Elementwise cosine", as_float=True)
    tanh = _unary(op.Tanh, "Elementwise hyperbolic tangent", as_float=True)
    sigmoid = _unary(op.Sigmoid, "Elementwise logistic ``1 / (1 + exp(-x))``", as_float=True)
    erf = _unary(op.Erf, "Elementwise Gauss error function", as_float=True)
    relu = _unary(op.Relu, "Elementwise max(x, 0)")

    def rsqrt(self) -> Tensor:
        """Elementwise ``1 / sqrt(x)`` (integers compute in float32)."""
        return op.Reciprocal(op.Sqrt(floating(self)))

    def floor(self) -> Tensor:
        """Elementwise round toward -inf; integers are returned unchanged (a copy)."""
        return op.Floor(self) if self._data.dtype.kind == "f" else _copy(self)

    def ceil(self) -> Tensor:
        """Elementwise round toward +inf; integers are returned unchanged (a copy)."""
        return op.Ceil(self) if self._data.dtype.kind == "f" else _copy(self)

    def trunc(self) -> Tensor:
        """Elementwise round toward zero; integers are returned unchanged (a copy)."""
        if self._data.dtype.kind != "f":
            return _copy(self)
        return op.Where(self < 0, self.ceil(), self.floor())

    def round(self, *, decimals: int = 0) -> Tensor:
        """Elementwise round half to even, to ``decimals`` decimal places."""
        if self._data.dtype.kind != "f":
            return _copy(self)
        if decimals == 0:
            return op.Round(self)
        scale = 10.0**decimals
        return op.Round(self * scale) / scale

    def clamp(self, min: Any = None, max: Any = None) -> Tensor:
        """Elementwise ``min(max(x, min), max)``; ``min``/``max`` are numbers or tensors.

        The dtype is promoted with the bounds (an int tensor clamped to 0.5 is float32).

        Raises:
            ValueError: both bounds are None.
        """
        if min is None and max is None:
            raise ValueError("clamp: at least one of 'min' or 'max' must not be None")
        dtype = result_type(self, *(b for b in (min, max) if b is not None))
        x = cast(self, dtype)
        if isinstance(min, TensorBase) or isinstance(max, TensorBase):
            if min is not None:
                x = method(op.Max, x, min)
            return x if max is None else method(op.Min, x, max)
        lo = None if min is None else const(min, dtype)
        hi = None if max is None else const(max, dtype)
        return op.Clip(x, lo, hi)

    clip = clamp

    def masked_fill(self, mask: TensorBase, value: Any) -> Tensor:
        """``value`` where ``mask`` is True, else ``self``; ``mask`` broadcasts to ``self``.

        Raises:
            DTypeError: ``mask`` is not a bool tensor.
        """
        if mask._data.dtype != D.bool_:
            raise DTypeError(f"masked_fill only supports boolean masks, but got {mask._data.dtype}")
        if isinstance(value, TensorBase):
            if value._data.ndim:
                raise RuntimeError(
                    "masked_fill only supports a 0-dimension value tensor, but got one with "
                    f"{value._data.ndim} dimension(s)"
                )
            fill: Any = cast(value, self._data.dtype)
        else:
            fill = const(value, self._data.dtype)
        return op.Where(mask, fill, self)


def _copy(x: TensorBase) -> Tensor:
    return op.Identity(x)


def _floor_divide(a: TensorBase, b: Any, reverse: bool) -> Any:
    try:
        x, y = operands(a, b)
    except TypeError:
        return NotImplemented
    if reverse:
        x, y = y, x
    if np.dtype(x.dtype).kind == "f":
        return op.Floor(op.Div(x, y))
    # Integer Div truncates; x - (x mod y) is an exact multiple of y, so it floors.
    rem = op.Mod(x, y, fmod=0)
    return op.Div(op.Sub(x, rem), y)


def _remainder(a: TensorBase, b: Any, reverse: bool) -> Any:
    try:
        x, y = operands(a, b)
    except TypeError:
        return NotImplemented
    if reverse:
        x, y = y, x
    if np.dtype(x.dtype).kind != "f":
        return op.Mod(x, y, fmod=0)
    # ONNX Mod on floats must be fmod; Python's % is x - floor(x / y) * y.
    q = op.Floor(op.Div(x, y))
    return op.Sub(x, op.Mul(q, y))
