"""In-place methods of ``tracer.Tensor`` (``add_``, ``x += y``, ...), PyTorch semantics.

Each one computes the new value with registry ops (usually the out-of-place method) and
writes it into the tensor's memory through ``update_inplace``, which bumps the version
counter and moves the tensor onto the new autograd history (nodes recorded earlier keep
the edges they were recorded with). The tensor keeps its dtype: an update whose result
type is of a higher kind (a float result for an int tensor) raises, as in PyTorch, while
fills and copies convert their value to the tensor's dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ir import dtypes
from ir.errors import DTypeError, ShapeError
from ir.ops.registry import ints, op
from tracer import _state
from tracer._math import cast, const
from tracer._node import Node
from tracer._promote import result_type
from tracer._tensor_base import TensorBase, wrap

if TYPE_CHECKING:
    from tracer.tensor import Tensor

_TRUE = np.asarray(True)
_TRUE.flags.writeable = False


def update_inplace(
    target: TensorBase,
    what: str,
    compute: Callable[[TensorBase], Any],
    others: Sequence[Any],
    reads_target: bool = True,
) -> Any:
    """Write ``compute(old target)`` into ``target``'s memory; the core of every in-place op.

    ``compute`` is any composition of registry ops; ``others`` are the other values it uses
    (tensors among them decide whether the update is recorded). When it is, ``compute`` gets
    a stand-in for the old ``target`` that carries its history (a copy of its data when
    ``reads_target``, i.e. when some vjp in ``compute`` reads the old values), and ``target``
    moves onto the result's history; nodes recorded earlier keep the edges to the old one,
    fixed when they ran. When ``target`` is a recorded view, the tensor it views moves too,
    onto a scatter of the new values (PyTorch's CopySlices).

    Raises:
        RuntimeError: ``target`` is a leaf that requires grad, or a view of one, and grad
            mode is on.
        DTypeError: the result's dtype cannot be cast to ``target``'s.
        ShapeError: the result's shape does not fit ``target``'s.
    """
    graph = _state.grad_enabled and (
        target._requires_grad or any(isinstance(x, TensorBase) and x._requires_grad for x in others)
    )
    chain: list[Node] = []
    if graph:
        _check_not_leaf(target, what, "")
        chain, base = _views(target)
        if chain:
            _check_not_leaf(base, what, "a view of ")
    source: TensorBase = target
    if graph:
        source = _stand_in(target, target._data.copy() if reads_target else target._data)
    result = compute(source)
    if _state.tracer is not None:
        _state.tracer.alias(target, result)
    try:
        np.copyto(target._data, result._data, casting="same_kind")
    except TypeError:
        raise DTypeError(
            f"in-place {what} gives {result._data.dtype}, which can't be cast to the "
            f"tensor's dtype {target._data.dtype}"
        ) from None
    except ValueError as err:
        raise ShapeError(f"in-place {what}: {err}") from None
    if graph and chain:
        _rebase_viewed(base, chain, result)
    target._bump_version()
    if graph:
        target._node, target._index = result._node, result._index
        target._requires_grad = result._requires_grad
    return target


def _check_not_leaf(t: TensorBase, what: str, view: str) -> None:
    if t._requires_grad and t._node is None:
        raise RuntimeError(
            f"{view}a leaf tensor that requires grad is being used in an in-place operation "
            f"({what}); wrap it in no_grad() or use the out-of-place op"
        )


def _stand_in(t: TensorBase, data: np.ndarray) -> TensorBase:
    """A tensor over ``data`` with ``t``'s history and a version counter of its own."""
    s = wrap(data)
    s._node, s._index, s._requires_grad = t._node, t._index, t._requires_grad
    return s


def _views(t: TensorBase) -> tuple[list[Node], TensorBase]:
    """The recorded view ops from the tensor whose memory ``t`` views, last first, and it."""
    chain: list[Node] = []
    node = t._node
    while node is not None and node.op.view and node.inputs is not None:
        base = node.inputs[0]
        if not isinstance(base, TensorBase) or not np.may_share_memory(base._data, t._data):
            break  # a view op that had to copy (Reshape of a strided tensor)
        chain.append(node)
        t, node = base, base._node
    return chain, t


def _rebase_viewed(base: TensorBase, chain: list[Node], new: Any) -> None:
    """Move ``base`` onto ``old base with the viewed elements replaced by new``."""
    positions: Any = np.arange(base._data.size, dtype=np.int64).reshape(base._data.shape)
    for node in reversed(chain):
        assert node.inputs is not None
        rest = [x._data if isinstance(x, TensorBase) else x for x in node.inputs[1:]]
        positions = node.op.kernel(positions, *rest, **node.attrs)
    old = op.Reshape(_stand_in(base, base._data), ints([-1]))  # ScatterND reads no data
    scattered = op.ScatterND(
        old, ints(positions.reshape(-1, 1)), op.Reshape(unversioned(new), ints([-1]))
    )
    out = op.Reshape(scattered, ints(base._data.shape))
    base._node, base._index, base._requires_grad = out._node, out._index, out._requires_grad


def unversioned(value: Any) -> Any:
    """An alias of ``value`` (same data and history) with a version counter of its own.

    For operands whose values no vjp reads (what an overwrite writes): a later in-place
    change to them, or to the tensor they view, must not fail the backward's version check.
    """
    if not isinstance(value, TensorBase) or value._version is None:
        return value
    alias = wrap(value._data)
    alias._node, alias._index = value._node, value._index
    alias._requires_grad = value._requires_grad
    return alias


def _requires_grad(x: Any) -> bool:
    return isinstance(x, TensorBase) and x._requires_grad


def _check_result(self: TensorBase, result: np.dtype) -> None:
    """PyTorch's rule: an in-place result may not be of a higher kind than the tensor."""
    own = self._data.dtype
    if dtypes.category(result) > dtypes.category(own):
        raise DTypeError(f"result type {result} can't be cast to the desired output type {own}")


def _binary(self: TensorBase, name: str, other: Any, reads_self: bool) -> Any:
    """``self = self <name> other`` in place, ``<name>`` an out-of-place method."""
    if not isinstance(other, TensorBase | int | float | bool | np.number | np.bool_):
        got = type(other).__name__
        raise TypeError(f"{name}_: expected a tensor or a Python number, got {got}")
    _check_result(self, result_type(self, other))
    return update_inplace(self, f"{name}_", lambda s: getattr(s, name)(other), (other,), reads_self)


def _fill_value(self: TensorBase, value: Any) -> Any:
    """``value`` (a number or tensor) converted to ``self``'s dtype, as copies do."""
    if isinstance(value, TensorBase):
        return cast(value, self._data.dtype)
    if isinstance(value, np.ndarray | list | tuple):
        return np.asarray(value, dtype=self._data.dtype)
    return const(value, self._data.dtype)


def _overwrite(self: TensorBase, name: str, where: Any, value: Any) -> Any:
    """Write ``value`` where ``where`` holds (a registry Where), keeping ``self``'s shape.

    The old values get a zero gradient where overwritten; ``value`` gets the rest.
    """
    shape = tuple(self._data.shape)
    for what, s in (("mask", where), ("value", value)):
        try:
            fits = np.broadcast_shapes(tuple(s.shape), shape) == shape
        except ValueError:
            fits = False
        if not fits:
            raise ShapeError(
                f"{name}: {what} of shape {list(s.shape)} does not broadcast to the tensor's "
                f"shape {list(shape)}"
            )
    # Where's vjp reads only the condition, so the old values need no copy.
    value = unversioned(value)
    return update_inplace(
        self, name, lambda s: op.Where(where, value, s), (where, value), reads_target=False
    )


def _floating_only(self: TensorBase, name: str) -> None:
    if self._data.dtype.kind != "f":
        raise DTypeError(f"{name} is only implemented for floating-point tensors, not {self.dtype}")


class InplaceMixin(TensorBase):
    """In-place methods of ``tracer.Tensor``."""

    __slots__ = ()

    # ------------------------------------------------------------ arithmetic

    def add_(self, other: Any, alpha: float = 1) -> Tensor:
        """``self += alpha * other`` in place; ``other`` broadcasts to ``self``.

        Raises:
            DTypeError: the result type is of a higher kind than ``self``'s dtype.
            RuntimeError: ``self`` is a leaf that requires grad (outside ``no_grad``).
        """
        if alpha != 1:
            other = other * alpha
        return _binary(self, "add", other, reads_self=False)

    def sub_(self, other: Any, alpha: float = 1) -> Tensor:
        """``self -= alpha * other`` in place (see :meth:`add_`)."""
        if alpha != 1:
            other = other * alpha
        return _binary(self, "sub", other, reads_self=False)

    def mul_(self, other: Any) -> Tensor:
        """``self *= other`` in place (see :meth:`add_`)."""
        return _binary(self, "mul", other, reads_self=_requires_grad(other))

    def div_(self, other: Any) -> Tensor:
        """``self /= other`` in place; true division, so integer tensors raise DTypeError."""
        _check_result(self, dtypes.float32 if self._data.dtype.kind != "f" else self._data.dtype)
        return _binary(self, "div", other, reads_self=_requires_grad(other))

    def pow_(self, exponent: Any) -> Tensor:
        """``self **= exponent`` in place (see :meth:`add_`)."""
        return _binary(self, "pow", exponent, reads_self=True)

    def __iadd__(self, other: Any) -> Tensor:
        return self.add_(other)

    def __isub__(self, other: Any) -> Tensor:
        return self.sub_(other)

    def __imul__(self, other: Any) -> Tensor:
        return self.mul_(other)

    def __itruediv__(self, other: Any) -> Tensor:
        return self.div_(other)

    # ------------------------------------------------------------ unary

    def exp_(self) -> Tensor:
        """``self = exp(self)`` in place; floating-point tensors only."""
        _check_result(self, dtypes.float32)
        return update_inplace(self, "exp_", lambda s: op.Exp(s), (), reads_target=False)

    def neg_(self) -> Tensor:
        """``self = -self`` in place.

        Raises:
            DTypeError: ``self`` is a bool tensor.
        """
        if self._data.dtype == dtypes.bool_:
            raise DTypeError("negation, the `-` operator, on a bool tensor is not supported")
        return update_inplace(self, "neg_", lambda s: op.Neg(s), (), reads_target=False)

    def clamp_(self, min: Any = None, max: Any = None) -> Tensor:
        """Clamp ``self`` into ``[min, max]`` in place (see ``clamp``).

        Raises:
            ValueError: both bounds are None.
            DTypeError: a bound of a higher kind than ``self``'s dtype (float bounds on ints).
        """
        bounds = [b for b in (min, max) if b is not None]
        if bounds:
            _check_result(self, result_type(self, *bounds))

        def clamped(s: Any) -> Any:
            return s.clamp(min, max)

        return update_inplace(self, "clamp_", clamped, tuple(bounds), reads_target=True)

    # ------------------------------------------------------------ fills and copies

    def fill_(self, value: Any) -> Tensor:
        """Set every element to ``value`` (a number or a 0-d tensor), converted to the dtype.

        Raises:
            RuntimeError: ``value`` is a tensor with dimensions.
        """
        if isinstance(value, TensorBase) and value._data.ndim:
            raise RuntimeError(
                "fill_ only supports 0-dimension value tensor but got tensor with "
                f"{value._data.ndim} dimensions"
            )
        return _overwrite(self, "fill_", _TRUE, _fill_value(self, value))

    def zero_(self) -> Tensor:
        """Set every element to zero."""
        return self.fill_(0)

    def masked_fill_(self, mask: TensorBase, value: Any) -> Tensor:
        """Set the elements where ``mask`` (bool, broadcast to ``self``) is True to ``value``.

        Raises:
            DTypeError: ``mask`` is not a bool tensor.
            RuntimeError: ``value`` is a tensor with dimensions.
            ShapeError: ``mask`` does not broadcast to ``self``'s shape.
        """
        if not isinstance(mask, TensorBase) or mask._data.dtype != dtypes.bool_:
            raise DTypeError(
                f"masked_fill_ only supports boolean masks, but got {getattr(mask, 'dtype', mask)}"
            )
        if isinstance(value, TensorBase) and value._data.ndim:
            raise RuntimeError(
                "masked_fill_ only supports a 0-dimension value tensor, but got one with "
                f"{value._data.ndim} dimension(s)"
            )
        return _overwrite(self, "masked_fill_", mask, _fill_value(self, value))

    def copy_(self, src: Any) -> Tensor:
        """Copy ``src`` (broadcast to ``self``, converted to its dtype) into ``self``.

        Gradients flow to ``src``; the old values get none.

        Raises:
            ShapeError: ``src`` does not broadcast to ``self``'s shape.
        """
        return _overwrite(self, "copy_", _TRUE, _fill_value(self, src))

    # ------------------------------------------------------------ random fills

    def uniform_(self, a: float = 0.0, b: float = 1.0) -> Tensor:
        """Fill with samples from U[a, b), drawn from the generator ``manual_seed`` seeds."""
        _floating_only(self, "uniform_")
        from tracer._creation import default_generator

        draw = default_generator().uniform(a, b, self._data.shape)
        return _overwrite(self, "uniform_", _TRUE, draw.astype(self._data.dtype))

    def normal_(self, mean: float = 0.0, std: float = 1.0) -> Tensor:
        """Fill with samples from N(mean, std²), drawn from the generator ``manual_seed`` seeds."""
        _floating_only(self, "normal_")
        from tracer._creation import default_generator

        draw = default_generator().normal(mean, std, self._data.shape)
        return _overwrite(self, "normal_", _TRUE, draw.astype(self._data.dtype))
