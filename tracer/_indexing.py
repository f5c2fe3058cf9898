"""Indexing of ``tracer.Tensor``: ``x[key]`` and ``x[key] = value`` with PyTorch's rules.

``x[key]`` lowers to registry ops, so it differentiates and traces like any other op:

- Python ints and slices (steps > 0) become one ``Slice`` for all axes, then one ``Squeeze``
  for the int axes; a 0-d integer tensor acts as an int and becomes a ``Gather``.
- ``None`` (and ``True``/``False``) become one ``Unsqueeze`` at the end.
- Integer tensors, arrays and lists are advanced indices. A single one is a ``Gather`` on its
  axis; several are broadcast together and stacked for a ``GatherND`` on the indexed axes
  (moved to the front by a ``Transpose``). A bool mask stands for the integer indices of its
  ``NonZero``. As in PyTorch (and NumPy), the indexed block replaces the indexed axes when
  the advanced indices are adjacent, and goes first when a slice or ``None`` separates them;
  unlike NumPy, ints do not count as advanced indices there (they are applied first).

``x[key] = value`` scatters into the flattened tensor (``ScatterND``) at the positions
``key`` picks out of ``arange(x.numel())``, written in place (see ``update_inplace``).
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ir import dtypes
from ir.errors import DTypeError, ShapeError
from ir.ops.registry import ints, op
from tracer import _state
from tracer._inplace import unversioned, update_inplace
from tracer._math import cast
from tracer._symint import SymInt, TraceError, is_symbolic
from tracer._tensor_base import TensorBase

if TYPE_CHECKING:
    from tracer.tensor import Tensor

_END = np.iinfo(np.int64).max  # Slice's "to the end", independent of the axis size


@dataclass(slots=True, eq=False)
class _Item:
    """One entry of an index, after ``...`` is expanded.

    ``kind`` is "slice", "int" (a Python int or 0-d integer tensor), "adv" (an integer
    tensor or array), "mask" (a bool tensor or array of ``width`` dims), "none" (None,
    True or False; ``value`` says which).
    """

    kind: str
    value: Any
    width: int = 1
    dim: int = 0  # first axis of the indexed tensor it applies to


def _value_of(x: Any) -> np.ndarray:
    """The concrete values of an index operand (a constant or an eager tensor)."""
    return x._data if isinstance(x, TensorBase) else np.asarray(x)


def _classify(entry: Any) -> _Item:
    """One entry of a user's key as an :class:`_Item` (``dim`` still unset)."""
    if entry is None:
        return _Item("none", True, 0)
    if isinstance(entry, bool | np.bool_):
        return _Item("none", bool(entry), 0)
    if isinstance(entry, slice):
        return _Item("slice", entry)
    if isinstance(entry, TensorBase | np.ndarray | list | tuple):
        arr = entry if isinstance(entry, TensorBase | np.ndarray) else np.asarray(entry)
        if arr.dtype.kind == "f" and arr.size == 0 and not isinstance(entry, TensorBase):
            arr = np.zeros(arr.shape, dtype=np.int64)  # x[[]] selects nothing
        kind = arr.dtype.kind
        if kind == "b" or arr.dtype == dtypes.uint8:  # uint8 masks, as PyTorch still allows
            if arr.ndim == 0:
                return _Item("none", bool(_value_of(arr)), 0)
            if arr.dtype != dtypes.bool_:
                arr = op.Cast(arr, to=dtypes.to_onnx(dtypes.bool_))
            return _Item("mask", arr, arr.ndim)
        if kind in "iu":
            if arr.ndim == 0 and isinstance(entry, TensorBase):
                return _Item("int", arr)
            return _Item("adv", arr)
        raise IndexError(
            f"tensors used as indices must be long, int, byte or bool tensors, got {arr.dtype}"
        )
    try:
        return _Item("int", operator.index(entry))
    except TypeError:
        raise IndexError(
            "only integers, slices (`:`), ellipsis (`...`), None and long or byte tensors "
            f"are valid indices (got {type(entry).__name__})"
        ) from None


def _parse(key: Any, shape: tuple[int, ...]) -> list[_Item]:
    """``key`` as one item per consumed axis or new axis, ``...`` expanded."""
    entries = key if isinstance(key, tuple) else (key,)
    items: list[_Item | None] = []  # None marks the Ellipsis
    for entry in entries:
        if entry is Ellipsis:
            if None in items:
                raise IndexError("an index can only have a single ellipsis ('...')")
            items.append(None)
        else:
            items.append(_classify(entry))
    used = sum(it.width for it in items if it is not None)
    if used > len(shape):
        raise IndexError(f"too many indices for tensor of dimension {len(shape)}")
    fill = [_Item("slice", slice(None)) for _ in range(len(shape) - used)]
    if None in items:
        at = items.index(None)
        items[at : at + 1] = fill
    else:
        items.extend(fill)
    out: list[_Item] = []
    dim = 0
    for it in items:
        assert it is not None
        it.dim = dim
        dim += it.width
        out.append(it)
    return out


def _check_int(i: int, dim: int, size: int) -> int:
    if not -size <= i < size:
        raise IndexError(f"index {i} is out of bounds for dimension {dim} with size {size}")
    return i


def _validate(items: list[_Item], shape: tuple[int, ...]) -> None:
    """PyTorch's IndexErrors for ints and index values out of range and misfit masks."""
    for it in items:
        if it.kind in ("int", "adv"):
            values = _value_of(it.value)
            bad = values[(values >= shape[it.dim]) | (values < -shape[it.dim])]
            if bad.size:
                _check_int(int(bad.reshape(-1)[0]), it.dim, shape[it.dim])
        elif it.kind == "mask":
            mask = _value_of(it.value).shape
            for j, d in enumerate(mask):
                if d != shape[it.dim + j]:
                    raise IndexError(
                        f"The shape of the mask {list(mask)} at index {j} does not "
                        f"match the shape of the indexed tensor {list(shape)} at index {it.dim + j}"
                    )


def _slice_bounds(s: slice) -> tuple[Any, Any, int] | None:
    """(start, end, step) of ``s`` for ``Slice``; None when it keeps the whole axis.

    ``start`` and ``end`` may be ``SymInt`` (``x[:n]`` with a dynamic ``n``).
    """
    step = 1 if s.step is None else operator.index(s.step)
    if step == 0:
        raise ValueError("slice step cannot be zero")
    if step < 0:
        raise ValueError("step must be greater than zero")
    start = 0 if s.start is None else _bound(s.start)
    end = _END if s.stop is None else _bound(s.stop)
    whole = not is_symbolic([start, end]) and start == 0 and end == _END
    if whole and step == 1:
        return None
    return start, end, step


def _bound(b: Any) -> Any:
    return b if isinstance(b, SymInt) else operator.index(b)


def _is_const_int(it: _Item) -> bool:
    return it.kind == "int" and not isinstance(it.value, TensorBase)


def _basic(x: Any, items: list[_Item]) -> Any:
    """Apply the slices and ints: one Slice, one Squeeze, then a Gather per tensor int."""
    starts, ends, axes, steps, dropped = [], [], [], [], []
    for it in items:
        if it.kind == "slice":
            bounds = _slice_bounds(it.value)
        elif _is_const_int(it):
            i = it.value
            bounds = (i, _END if i == -1 else i + 1, 1)
            dropped.append(it.dim)
        else:
            continue
        if bounds is not None:
            starts.append(bounds[0])
            ends.append(bounds[1])
            axes.append(it.dim)
            steps.append(bounds[2])
    if axes:
        x = op.Slice(x, _bounds(starts), _bounds(ends), ints(axes), ints(steps))
    if dropped:
        x = op.Squeeze(x, ints(dropped))
    kept = [it for it in items if it.kind not in ("none",) and not _is_const_int(it)]
    # Tensor ints, last first, so the axes of those before stay put.
    for k in range(len(kept) - 1, -1, -1):
        if kept[k].kind == "int":
            x = op.Gather(x, kept[k].value, axis=sum(it.width for it in kept[:k]))
    return x


def _bounds(values: list[Any]) -> Any:
    """Slice starts or ends: a constant, or a recorded tensor when a bound is a SymInt."""
    if not is_symbolic(values):
        return ints(values)
    from tracer._shape import symbolic_shape

    return symbolic_shape(values)


def _assumptions(items: list[_Item], shape: tuple[Any, ...]) -> None:
    """While tracing, record what constant indices and slice bounds assume of dynamic sizes.

    ``x[:, 5]`` on a dynamic axis needs it longer than 5, and ``table[:n]`` with a dynamic
    ``n`` takes ``n`` to be within the table; ``x[:, -1]`` and ``x[:, 0]`` assume nothing
    beyond a non-empty axis, so they record nothing.
    """
    for it in items:
        size = shape[it.dim] if it.width == 1 and it.dim < len(shape) else None
        if isinstance(size, SymInt) and it.kind in ("int", "adv") and not _is_traced(it.value):
            values = np.asarray(it.value).reshape(-1)
            if values.size:
                high, low = int(values.max()), int(values.min())
                if high >= 1:
                    _assume(f"{size.name} > {high}", size.value > high)
                if low <= -2:
                    _assume(f"{size.name} >= {-low}", size.value >= -low)
        elif isinstance(size, int) and it.kind == "slice":
            for bound in (it.value.start, it.value.stop):
                if isinstance(bound, SymInt) and not bound.expr.is_negative():
                    _assume(f"{bound.name} <= {size}", bound.value <= size)


def _assume(what: str, holds: bool) -> None:
    assert _state.tracer is not None
    _state.tracer.decide("shape-assumption", what, holds)


def _is_traced(value: Any) -> bool:
    return isinstance(value, TensorBase)


def _stacked_indices(advanced: list[_Item]) -> tuple[Any, tuple[int, ...]]:
    """The advanced indices broadcast and stacked on a last axis, and their batch shape."""
    pieces, shapes = [], []
    for it in advanced:
        if it.kind == "mask":
            piece = op.Transpose(op.NonZero(it.value), perm=[1, 0])  # (count, width)
            shapes.append(tuple(piece.shape[:1]))
        else:
            piece = it.value
            if piece.dtype != dtypes.int64:
                piece = op.Cast(piece, to=dtypes.to_onnx(dtypes.int64))
            shapes.append(tuple(piece.shape))
            piece = op.Unsqueeze(piece, ints([-1]))
        pieces.append(piece)
    if len(pieces) == 1:  # nothing to broadcast (a mask's count may be symbolic)
        return pieces[0], shapes[0]
    batch = _broadcast(shapes)
    from tracer._shape import shape_operand

    pieces = [
        p
        if _same(tuple(p.shape[:-1]), batch)
        else op.Expand(p, shape_operand((*batch, p.shape[-1])))
        for p in pieces
    ]
    return (pieces[0] if len(pieces) == 1 else op.Concat(*pieces, axis=-1)), batch


def _broadcast(shapes: list[tuple[Any, ...]]) -> tuple[Any, ...]:
    """NumPy broadcasting of index shapes that may hold SymInts (checked at their values)."""
    try:
        np.broadcast_shapes(*[tuple(_value(d) for d in s) for s in shapes])
    except ValueError:
        shown = ", ".join(str(list(s)) for s in shapes)
        raise IndexError(
            f"shape mismatch: indexing tensors could not be broadcast together with shapes {shown}"
        ) from None
    rank = max(len(s) for s in shapes)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out: list[Any] = []
    for i in range(rank):
        dims = [s[i] for s in padded]
        fixed = [d for d in dims if isinstance(d, int) and d != 1]  # a size a symbol must equal
        symbols = [d for d in dims if isinstance(d, SymInt)]
        out.append(fixed[0] if fixed else symbols[0] if symbols else 1)
    return tuple(out)


def _value(d: Any) -> int:
    return d.value if isinstance(d, SymInt) else int(d)


def _same(a: tuple[Any, ...], b: tuple[Any, ...]) -> bool:
    """Equal sizes, SymInts compared by expression (no recorded decision)."""
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if isinstance(x, SymInt) or isinstance(y, SymInt):
            if not (isinstance(x, SymInt) and isinstance(y, SymInt) and x.expr == y.expr):
                return False
        elif x != y:
            return False
    return True


def _advanced(x: Any, items: list[_Item]) -> tuple[Any, int, bool]:
    """Apply the advanced indices to ``x`` (ints already gone).

    Returns the result, the rank of the indexed block, and whether it stayed in place of
    the indexed axes (adjacent indices) rather than going first.
    """
    kept = [it for it in items if it.kind != "int"]
    advanced = [it for it in kept if it.kind in ("adv", "mask")]
    if not advanced:
        return x, 0, True
    at = kept.index(advanced[0])
    adjacent = kept[at : at + len(advanced)] == advanced
    data = [it for it in kept if it.kind != "none"]
    axis = sum(it.width for it in data[: data.index(advanced[0])])  # leading slice axes
    only = advanced[0]
    if len(advanced) == 1 and only.width == 1:
        index = only.value if only.kind == "adv" else op.Reshape(op.NonZero(only.value), ints([-1]))
        return op.Gather(x, index, axis=axis), index.ndim, True
    index, batch = _stacked_indices(advanced)
    front: list[int] = []
    rest: list[int] = []
    pos = 0
    for it in data:
        (front if it in advanced else rest).extend(range(pos, pos + it.width))
        pos += it.width
    if front + rest != list(range(pos)):
        x = op.Transpose(x, perm=front + rest)
    x = op.GatherND(x, index)
    nb = len(batch)
    if adjacent and axis:
        tail = list(range(nb, x.ndim))
        x = op.Transpose(x, perm=tail[:axis] + list(range(nb)) + tail[axis:])
    return x, nb, adjacent


def _new_axes(x: Any, items: list[_Item], block: int, adjacent: bool) -> Any:
    """Insert the axes of None/True/False; False ones get size 0."""
    layout: list[Any] = []  # per output axis: None for a data axis, else the new-axis item
    placed = False
    for it in items:
        if it.kind == "none":
            layout.append(it)
        elif it.kind == "slice":
            layout.append(None)
        elif it.kind in ("adv", "mask") and not placed:
            placed = True
            if adjacent:
                layout.extend([None] * block)
    if not adjacent:
        layout[:0] = [None] * block
    new = [i for i, e in enumerate(layout) if e is not None]
    if not new:
        return x
    x = op.Unsqueeze(x, ints(new))
    empty = [i for i in new if layout[i].value is False]
    if empty:
        zeros = ints([0] * len(empty))
        x = op.Slice(x, zeros, zeros, ints(empty))
    return x


def index(x: Any, key: Any) -> Any:
    """``x[key]`` with PyTorch's semantics, as registry ops on ``x`` (a tensor or an array).

    Raises:
        IndexError: an index out of range, a mask whose shape does not match, too many
            indices, or an index of an unsupported type.
        ValueError: a slice step that is not positive (PyTorch has no negative steps).
    """
    shape = tuple(x.shape)
    items = _parse(key, shape)
    # Checked at the example's sizes: range checks are no decisions of the user's code.
    _validate(items, tuple(x._data.shape) if isinstance(x, TensorBase) else shape)
    if _state.tracer is not None:
        _assumptions(items, shape)
    x = _basic(x, items)
    x, block, adjacent = _advanced(x, items)
    return _new_axes(x, items, block, adjacent)


class IndexingMixin(TensorBase):
    """Indexing of ``tracer.Tensor``."""

    __slots__ = ()

    def __getitem__(self, key: Any) -> Tensor:
        """``self[key]``: ints, slices (step > 0), None, ``...``, integer and bool indices.

        Basic indexing (ints, slices, None) gives a view sharing memory, as in PyTorch;
        advanced indexing gives a copy. Gradients flow back to ``self``.

        Raises:
            IndexError: an index out of range or of an unsupported type, or a bool mask
                whose shape does not match the indexed axes.
            ValueError: a zero or negative slice step.
        """
        out = index(self, key)
        if out is self:  # x[...] and x[:]: a view, as in PyTorch (0 keeps a dim in Reshape)
            out = op.Reshape(self, ints([0] * self._data.ndim))
        return out

    def masked_select(self, mask: TensorBase) -> Tensor:
        """The elements where ``mask`` is True, as a 1-d tensor (``self`` and ``mask`` broadcast).

        Raises:
            DTypeError: ``mask`` is not a bool tensor.
            ShapeError: shapes that do not broadcast.
        """
        if not isinstance(mask, TensorBase) or mask._data.dtype != dtypes.bool_:
            raise DTypeError(
                f"masked_select: expected a bool mask, got {getattr(mask, 'dtype', type(mask))}"
            )
        try:
            shape = np.broadcast_shapes(self._data.shape, mask._data.shape)
        except ValueError:
            raise ShapeError(
                f"masked_select: shapes {list(self._data.shape)} and {list(mask._data.shape)} "
                "do not broadcast"
            ) from None
        x = self if self._data.shape == shape else self.expand(*shape)  # type: ignore[attr-defined]
        m = mask if mask._data.shape == shape else mask.expand(*shape)  # type: ignore[attr-defined]
        return index(x, m)

    def __setitem__(self, key: Any, value: Any) -> None:
        """``self[key] = value`` in place; ``value`` (a number or tensor) is broadcast.

        The value is converted to ``self``'s dtype (as ``copy_`` does). The write bumps the
        version counter and, under autograd, is differentiable with respect to the old
        ``self`` (zero where overwritten) and to ``value``.

        Raises:
            IndexError: as for indexing.
            ShapeError: ``value`` does not broadcast to the indexed shape.
            RuntimeError: ``self`` is a leaf that requires grad (outside ``no_grad``).
        """
        tracing = _state.tracer is not None
        if tracing and is_symbolic(tuple(self.shape)):
            # The scatter positions below come from the example's sizes.
            raise TraceError(
                "indexed assignment into a tensor with dynamic dims is not captured: its "
                "positions would be fixed to the example's size; use masked_fill, where or "
                "cat instead"
            )
        if _is_basic(key) and not _recorded_write(self, value) and not tracing:
            view = index(self, key)  # basic indexing: a view, written through without a graph
            if view is self or np.may_share_memory(view._data, self._data):
                view.copy_(_value_operand(value, self._data.dtype, tuple(view.shape)))
                return
        shape = tuple(self._data.shape)
        positions = index(np.arange(self._data.size, dtype=np.int64).reshape(shape), key)
        picked = tuple(positions.shape)
        v = _value_operand(value, self._data.dtype, picked)

        # Constant operands are reshaped with NumPy; tensors through registry ops.
        if isinstance(positions, np.ndarray):
            where: Any = positions.reshape(-1, 1)
        else:
            where = op.Reshape(positions, ints([-1, 1]))
        if isinstance(v, np.ndarray):
            updates: Any = np.broadcast_to(v, picked).reshape(-1)
        else:
            updates = op.Reshape(op.Expand(v, ints(picked)), ints([-1]))

        def compute(source: TensorBase) -> Any:
            flat = op.Reshape(source, ints([-1]))
            return op.Reshape(op.ScatterND(flat, where, updates), ints(shape))

        # ScatterND's vjp reads only the indices, so the old values need no copy.
        update_inplace(self, "__setitem__", compute, (v,), reads_target=False)


def _is_basic(key: Any) -> bool:
    """Whether ``key`` holds only ints, slices, None, ``...`` and Python bools."""
    entries = key if isinstance(key, tuple) else (key,)
    return all(
        e is None or e is Ellipsis or isinstance(e, int | slice | np.integer | np.bool_)
        for e in entries
    )


def _recorded_write(target: TensorBase, value: Any) -> bool:
    """Whether writing ``value`` into ``target`` is recorded for autograd."""
    return _state.grad_enabled and (
        target._requires_grad or (isinstance(value, TensorBase) and value._requires_grad)
    )


def _value_operand(value: Any, dtype: np.dtype, picked: tuple[int, ...]) -> Any:
    """``value`` in ``dtype``, its leading 1-axes dropped, checked to broadcast to ``picked``."""
    if isinstance(value, TensorBase):
        v: Any = unversioned(cast(value, dtype))
    else:
        v = np.asarray(value, dtype=dtype)
    lead = 0
    while v.ndim - lead > len(picked) and v.shape[lead] == 1:
        lead += 1
    if lead:
        v = op.Reshape(v, ints(v.shape[lead:]))
    try:
        fits = np.broadcast_shapes(tuple(v.shape), picked) == picked
    except ValueError:
        fits = False
    if not fits:
        raise ShapeError(
            f"shape mismatch: value tensor of shape {list(v.shape)} cannot be broadcast to "
            f"indexing result of shape {list(picked)}"
        )
    return v
