"""Reductions of ``tracer.Tensor``: sum, mean, max, argmax, logsumexp, ... (PyTorch names).

Reduce ops follow ONNX opset 18+: the axes are an int64 input, and an empty list of axes
reduces every axis (as PyTorch's ``dim=()`` does). ``max(dim)``-style methods return a
``(values, indices)`` named tuple, as ``torch.return_types`` do.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.errors import DTypeError
from ir.ops.registry import OpDef, op
from tracer._math import cast, const, floating, method, to_bool
from tracer._tensor_base import TensorBase

if TYPE_CHECKING:
    from tracer.tensor import Tensor

Dims = int | Sequence[int] | None


class ValuesIndices(NamedTuple):
    """``(values, indices)`` of ``max(dim)``, ``min(dim)``, ``topk``, ``sort``."""

    values: Tensor
    indices: Tensor


def axes_operand(dim: Dims) -> np.ndarray | None:
    """``dim`` as the int64 ``axes`` input of a reduce op (None: every axis)."""
    if dim is None:
        return None
    return np.asarray([dim] if isinstance(dim, int) else list(dim), dtype=np.int64)


def _reduce(opdef: OpDef, x: TensorBase, dim: Dims, keepdim: bool) -> Tensor:
    if x._data.ndim == 0 and dim is not None:
        for d in [dim] if isinstance(dim, int) else dim:
            _axis(x, d)
        dim = None  # PyTorch lets a 0-d tensor reduce over dim 0 or -1
    return opdef(x, axes_operand(dim), keepdims=int(keepdim))


def _as_int64(x: TensorBase) -> TensorBase:
    """Bool and integer tensors widened to int64, as PyTorch's sum/prod/cumsum do."""
    return cast(x, D.int64) if x._data.dtype.kind in "biu" else x


def _with_dtype(x: TensorBase, dtype: Any) -> TensorBase:
    return x if dtype is None else cast(x, np.dtype(dtype))


def _require_floating(x: TensorBase, name: str) -> None:
    if x._data.dtype.kind != "f":
        raise DTypeError(
            f"{name}(): input dtype must be floating point, got {x._data.dtype}; "
            "convert it first (x.float()) or pass dtype="
        )


def _axis(x: TensorBase, dim: int) -> int:
    rank = max(x._data.ndim, 1)
    if not -rank <= dim < rank:
        raise IndexError(f"dimension {dim} out of range for a {x._data.ndim}-d tensor")
    return dim % rank


def _arg(opdef: OpDef, x: TensorBase, dim: int | None, keepdim: bool) -> Tensor:
    if dim is None:
        flat = op.Reshape(x, np.asarray([-1], np.int64))
        out = opdef(flat, axis=0, keepdims=0)
        if keepdim:
            return op.Reshape(out, np.ones(x._data.ndim, np.int64))
        return out
    if x._data.ndim == 0:
        _axis(x, dim)
        return _arg(opdef, x, None, False)
    return opdef(x, axis=_axis(x, dim), keepdims=int(keepdim))


def _select(opdef: OpDef, x: TensorBase, dim: int, keepdim: bool) -> ValuesIndices:
    # The values are gathered at the arg index, so ties send the gradient to one element.
    if x._data.ndim == 0:
        _axis(x, dim)
        return ValuesIndices(op.Identity(x), _arg(opdef, x, dim, keepdim))
    axis = _axis(x, dim)
    idx = opdef(x, axis=axis, keepdims=1)
    values = op.GatherElements(x, idx, axis=axis)
    if not keepdim:
        axes = np.asarray([axis], np.int64)
        values = op.Squeeze(values, axes)
        idx = op.Squeeze(idx, axes)
    return ValuesIndices(values, idx)


class ReduceMixin(TensorBase):
    """Reductions of ``tracer.Tensor``."""

    __slots__ = ()

    def sum(self, dim: Dims = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
        """Sum over ``dim`` (every axis when None); bool and int tensors sum as int64."""
        x = _with_dtype(self, dtype) if dtype is not None else _as_int64(self)
        return _reduce(op.ReduceSum, x, dim, keepdim)

    def prod(self, dim: int | None = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
        """Product over ``dim`` (every axis when None); bool and int tensors give int64."""
        x = _with_dtype(self, dtype) if dtype is not None else _as_int64(self)
        return _reduce(op.ReduceProd, x, dim, keepdim)

    def mean(self, dim: Dims = None, keepdim: bool = False, *, dtype: Any = None) -> Tensor:
        """Mean over ``dim`` (every axis when None).

        Raises:
            DTypeError: the tensor is not floating point and no floating ``dtype`` is given.
        """
        x = _with_dtype(self, dtype)
        _require_floating(x, "mean")
        return _reduce(op.ReduceMean, x, dim, keepdim)

    def var(
        self,
        dim: Dims | bool = None,
        unbiased: bool | None = None,
        keepdim: bool = False,
        *,
        correction: float | None = None,
    ) -> Tensor:
        """Variance over ``dim``: ``sum((x - mean)**2) / (N - correction)``.

        ``correction`` defaults to 1 (Bessel's correction); ``unbiased=False`` means 0.
        ``x.var(False)`` is read as ``unbiased=False``, as in PyTorch.

        Raises:
            DTypeError: the tensor is not floating point.
        """
        if isinstance(dim, bool):
            dim, unbiased = None, dim
        _require_floating(self, "var")
        if correction is None:
            correction = 0 if unbiased is False else 1
        axes = axes_operand(dim)
        mean = op.ReduceMean(self, axes, keepdims=1)
        dev = op.Sub(self, mean)
        ss = op.ReduceSum(dev * dev, axes, keepdims=int(keepdim))
        count = self._data.size // max(ss._data.size, 1) if self._data.size else 0
        return op.Div(ss, const(max(count - correction, 0), self._data.dtype))

    def std(
        self,
        dim: Dims | bool = None,
        unbiased: bool | None = None,
        keepdim: bool = False,
        *,
        correction: float | None = None,
    ) -> Tensor:
        """Standard deviation over ``dim``: the square root of :meth:`var`."""
        return self.var(dim, unbiased, keepdim, correction=correction).sqrt()

    def amax(self, dim: Dims = (), keepdim: bool = False) -> Tensor:
        """Maximum over ``dim`` (every axis when empty); ties share the gradient."""
        return _reduce(op.ReduceMax, self, dim, keepdim)

    def amin(self, dim: Dims = (), keepdim: bool = False) -> Tensor:
        """Minimum over ``dim`` (every axis when empty); ties share the gradient."""
        return _reduce(op.ReduceMin, self, dim, keepdim)

    def max(self, dim: Any = None, keepdim: bool = False) -> Any:
        """The maximum: of all elements, ``(values, indices)`` along ``dim``, or elementwise.

        ``x.max()`` is a 0-d tensor; ``x.max(dim)`` a :class:`ValuesIndices`; ``x.max(other)``
        the elementwise maximum with the tensor ``other``.
        """
        if dim is None:
            return _reduce(op.ReduceMax, self, None, False)
        if isinstance(dim, TensorBase):
            return method(op.Max, self, dim)
        return _select(op.ArgMax, self, dim, keepdim)

    def min(self, dim: Any = None, keepdim: bool = False) -> Any:
        """The minimum: of all elements, ``(values, indices)`` along ``dim``, or elementwise."""
        if dim is None:
            return _reduce(op.ReduceMin, self, None, False)
        if isinstance(dim, TensorBase):
            return method(op.Min, self, dim)
        return _select(op.ArgMin, self, dim, keepdim)

    def argmax(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Index (int64) of the first maximum along ``dim``, or in the flattened tensor."""
        return _arg(op.ArgMax, self, dim, keepdim)

    def argmin(self, dim: int | None = None, keepdim: bool = False) -> Tensor:
        """Index (int64) of the first minimum along ``dim``, or in the flattened tensor."""
        return _arg(op.ArgMin, self, dim, keepdim)

    def all(self, dim: Dims = None, keepdim: bool = False) -> Tensor:
        """Whether every element along ``dim`` is nonzero (bool)."""
        return _reduce(op.ReduceMin, to_bool(self), dim, keepdim)

    def any(self, dim: Dims = None, keepdim: bool = False) -> Tensor:
        """Whether some element along ``dim`` is nonzero (bool)."""
        return _reduce(op.ReduceMax, to_bool(self), dim, keepdim)

    def logsumexp(self, dim: Dims, keepdim: bool = False) -> Tensor:
        """``log(sum(exp(x)))`` over ``dim``, computed stably; integers give float32."""
        return _reduce(op.ReduceLogSumExp, floating(self), dim, keepdim)

    def norm(self, p: float | str = "fro", dim: Dims = None, keepdim: bool = False) -> Tensor:
        """Vector p-norm over ``dim`` (every element when None): 2 ("fro"), 1, inf, -inf, p.

        Raises:
            DTypeError: the tensor is not floating point.
        """
        _require_floating(self, "norm")
        if p in ("fro", 2):
            return _reduce(op.ReduceL2, self, dim, keepdim)
        a = op.Abs(self)
        if p == 1:
            return _reduce(op.ReduceSum, a, dim, keepdim)
        if p == float("inf"):
            return _reduce(op.ReduceMax, a, dim, keepdim)
        if p == float("-inf"):
            return _reduce(op.ReduceMin, a, dim, keepdim)
        if p == 0:
            return _reduce(op.ReduceSum, cast(a != 0, self._data.dtype), dim, keepdim)
        if isinstance(p, str):
            raise ValueError(f"norm: unsupported p={p!r}; expected 'fro' or a number")
        return _reduce(op.ReduceSum, a**p, dim, keepdim) ** (1.0 / p)

    def cumsum(self, dim: int, *, dtype: Any = None) -> Tensor:
        """Running sum along ``dim``; bool and int tensors accumulate in int64."""
        x = _with_dtype(self, dtype) if dtype is not None else _as_int64(self)
        if x._data.ndim == 0:
            return op.Identity(x)
        return op.CumSum(x, np.asarray(dim, np.int64))

    def softmax(self, dim: int, dtype: Any = None) -> Tensor:
        """``exp(x) / sum(exp(x))`` along ``dim`` (ONNX Softmax).

        Raises:
            DTypeError: the tensor is not floating point and no floating ``dtype`` is given.
        """
        x = _with_dtype(self, dtype)
        _require_floating(x, "softmax")
        return op.Softmax(x, axis=dim)

    def log_softmax(self, dim: int, dtype: Any = None) -> Tensor:
        """``log(softmax(x))`` along ``dim``, computed stably (ONNX LogSoftmax).

        Raises:
            DTypeError: the tensor is not floating point and no floating ``dtype`` is given.
        """
        x = _with_dtype(self, dtype)
        _require_floating(x, "log_softmax")
        return op.LogSoftmax(x, axis=dim)

    def topk(self, k: int, dim: int = -1, largest: bool = True, sorted: bool = True) -> Any:
        """The ``k`` largest (or smallest) elements along ``dim``, as ``(values, indices)``."""
        out = op.TopK(
            self, np.asarray([k], np.int64), axis=dim, largest=int(largest), sorted=int(sorted)
        )
        return ValuesIndices(*out)

    def sort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Any:
        """Elements sorted along ``dim``, as ``(values, indices)``; equal values keep order."""
        del stable  # TopK orders equal values by index, so the sort is always stable
        n = self._data.shape[_axis(self, dim)] if self._data.ndim else 1
        return self.topk(n, dim, largest=descending, sorted=True)

    def argsort(self, dim: int = -1, descending: bool = False, stable: bool = False) -> Tensor:
        """Indices (int64) that sort the tensor along ``dim``."""
        return self.sort(dim, descending, stable).indices
