"""``SymInt``: a dynamic dimension seen from Python code while tracing.

While tracing, ``x.shape[i]`` of a dynamic axis is a ``SymInt``. It carries the example's
size (so eager code keeps running) and the graph computation of that size (``Shape`` and
``Gather``, then whatever arithmetic the code does), so passing it to ``reshape``, ``view``,
``expand``, ``zeros``, ``arange``, ``tril``, ``repeat``, ``F.pad`` or a slice bound
(``x[:n]``) keeps the graph dynamic; ``n / 2``, ``n ** 0.5`` and ``x / n`` are tensors the
graph computes. Turning it into a Python int (``int()``, ``range()``, NumPy) would fix the
size in the graph, so that raises ``TraceError``; comparing it is a Python decision,
recorded in the graph's metadata. Its name is a dimension expression over the user's
symbols, simplified as it is built (``ir.dims``): ``(past + seq) - seq`` is ``past``,
``seq - seq`` is ``0``.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from ir.dims import Expr
from ir.errors import GraphcapError

if TYPE_CHECKING:
    from tracer.tensor import Tensor


_LOOP_HINT = (
    "; to loop over a dynamic axis, use a recurrent layer (nn.LSTM, nn.GRU) or "
    "tracer.while_loop, which become graph loops"
)


class TraceError(GraphcapError, RuntimeError):
    """Eager code did something while tracing that a graph cannot express faithfully."""


class SymInt:
    """A size known at trace time whose graph value stays symbolic.

    Attributes:
        value: the example's size.
        expr: the symbolic expression (``ir.dims.Expr``) over the user's dim names.
    """

    __slots__ = ("_make", "_tensor", "expr", "value")

    def __init__(self, value: int, name: str | Expr, make: Callable[[], Tensor]) -> None:
        self.value = int(value)
        self.expr = name if isinstance(name, Expr) else Expr.of(name)
        self._make = make
        self._tensor: Tensor | None = None

    @property
    def name(self) -> str:
        """The expression as text ("batch", "seq*4", "past+seq")."""
        return self.expr.text

    @property
    def tensor(self) -> Tensor:
        """The recorded 0-d int64 tensor computing this size (built on first use)."""
        if self._tensor is None:
            self._tensor = self._make()
        return self._tensor

    # ------------------------------------------------------------ into Python

    def refused(self, how: str) -> TraceError:
        """The error for turning this size into a Python int by ``how`` (``len()``, ...)."""
        return self._baked(how, _LOOP_HINT)

    def _baked(self, how: str, hint: str = "") -> TraceError:
        from tracer.trace import user_source

        where = user_source() or "an unknown line"
        return TraceError(
            f"{how} of the dynamic dimension '{self.name}' (example size {self.value}) at {where} "
            "would fix that size in the graph. Keep it symbolic: pass it to reshape/view/"
            "expand/zeros/arange/tril or use it as a slice bound (x[:n]) as it is, or use -1"
            f"{hint}; or declare the axis static."
        )

    def __int__(self) -> int:
        raise self._baked("int()")

    def __index__(self) -> int:
        raise self._baked("Using as a Python int (range(), a loop count, NumPy)", _LOOP_HINT)

    def __float__(self) -> float:
        raise self._baked("float()")

    def __bool__(self) -> bool:
        return self._decide("!=", 0, self.value != 0)

    # ------------------------------------------------------------ decisions

    def _decide(self, symbol: str, other: Any, result: bool) -> bool:
        from tracer.trace import record_decision

        rhs = other.name if isinstance(other, SymInt) else repr(other)
        record_decision("shape-branch", f"{self.name} {symbol} {rhs}", result)
        return result

    def _compare(self, other: Any, fn: Callable[[Any, Any], bool], symbol: str) -> Any:
        if not isinstance(other, SymInt | int):
            return NotImplemented
        rhs = other.value if isinstance(other, SymInt) else other
        return self._decide(symbol, other, fn(self.value, rhs))

    def __eq__(self, other: object) -> Any:
        return self._compare(other, operator.eq, "==")

    def __ne__(self, other: object) -> Any:
        return self._compare(other, operator.ne, "!=")

    def __lt__(self, other: Any) -> Any:
        return self._compare(other, operator.lt, "<")

    def __le__(self, other: Any) -> Any:
        return self._compare(other, operator.le, "<=")

    def __gt__(self, other: Any) -> Any:
        return self._compare(other, operator.gt, ">")

    def __ge__(self, other: Any) -> Any:
        return self._compare(other, operator.ge, ">=")

    def __hash__(self) -> int:
        return hash(self.value)

    # ------------------------------------------------------------ arithmetic

    def _arith(self, other: Any, fn: Callable[[Any, Any], Any], swap: bool) -> Any:
        if isinstance(other, SymInt):
            value, theirs = other.value, other.expr
        elif isinstance(other, float):
            return self._as_tensor(other, fn, swap)
        elif isinstance(other, int) and not isinstance(other, bool):
            if (fn is operator.mul and other == 1) or (fn is operator.add and other == 0):
                return self  # x*1, 1*x, x+0: no node, and the symbol stays readable
            if fn is operator.sub and other == 0 and not swap:
                return self
            value, theirs = other, Expr.of(other)
        else:
            return NotImplemented
        a, b = (value, self.value) if swap else (self.value, value)
        left, right = (theirs, self.expr) if swap else (self.expr, theirs)
        expr = _EXPR_OPS[fn](left, right)
        if expr.constant is not None:  # the symbols cancel (seq - seq): a plain int
            return expr.constant
        this = self

        def make() -> Tensor:
            from tracer._tensor_base import wrap

            # An int becomes a 0-d int64 constant; a SymInt brings its recorded tensor.
            theirs = (
                other.tensor if isinstance(other, SymInt) else wrap(np.asarray(other, np.int64))
            )
            return fn(theirs, this.tensor) if swap else fn(this.tensor, theirs)

        return SymInt(fn(a, b), expr, make)

    def _as_tensor(self, other: Any, fn: Callable[[Any, Any], Any], swap: bool) -> Any:
        """``fn`` on the recorded size tensor: float results are graph values, not sizes."""
        if isinstance(other, bool) or not isinstance(other, int | float | SymInt):
            return NotImplemented
        theirs = other.tensor if isinstance(other, SymInt) else other
        return fn(theirs, self.tensor) if swap else fn(self.tensor, theirs)

    def __truediv__(self, other: Any) -> Any:
        return self._as_tensor(other, operator.truediv, False)

    def __rtruediv__(self, other: Any) -> Any:
        return self._as_tensor(other, operator.truediv, True)

    def __pow__(self, other: Any) -> Any:
        return self._as_tensor(other, operator.pow, False)

    def __rpow__(self, other: Any) -> Any:
        return self._as_tensor(other, operator.pow, True)

    def __add__(self, other: Any) -> Any:
        return self._arith(other, operator.add, False)

    def __radd__(self, other: Any) -> Any:
        return self._arith(other, operator.add, True)

    def __sub__(self, other: Any) -> Any:
        return self._arith(other, operator.sub, False)

    def __rsub__(self, other: Any) -> Any:
        return self._arith(other, operator.sub, True)

    def __mul__(self, other: Any) -> Any:
        return self._arith(other, operator.mul, False)

    def __rmul__(self, other: Any) -> Any:
        return self._arith(other, operator.mul, True)

    def __floordiv__(self, other: Any) -> Any:
        return self._arith(other, operator.floordiv, False)

    def __rfloordiv__(self, other: Any) -> Any:
        return self._arith(other, operator.floordiv, True)

    def __mod__(self, other: Any) -> Any:
        return self._arith(other, operator.mod, False)

    def __neg__(self) -> Any:
        return self._arith(-1, operator.mul, True)

    def __repr__(self) -> str:
        return f"SymInt({self.name}={self.value})"


_EXPR_OPS: dict[Callable[[Any, Any], Any], Callable[[Expr, Expr], Expr]] = {
    operator.add: Expr.__add__,
    operator.sub: Expr.__sub__,
    operator.mul: Expr.__mul__,
    operator.floordiv: Expr.floordiv,
    operator.mod: Expr.mod,
}


def is_symbolic(values: Any) -> bool:
    """Whether a size or a sequence of sizes holds a ``SymInt``."""
    if isinstance(values, SymInt):
        return True
    return isinstance(values, list | tuple) and any(isinstance(v, SymInt) for v in values)
