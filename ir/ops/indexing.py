"""Indexing ops: Gather(Elements|ND), Scatter(Elements|ND), Slice, NonZero and Trilu.

Indices may be negative (counted from the end of their axis), as ONNX allows. Gradients that
send values back to indexed positions are zeros plus ``ScatterND``/``ScatterElements`` with
``reduction="add"``, so duplicate indices (an embedding lookup) accumulate.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.dims import Expr
from ir.errors import ShapeError, UnsupportedOpError
from ir.ops.grad_util import known_value, shape_of
from ir.ops.infer import check_dtype, const_ints, normalize_axis, same_dtype
from ir.ops.registry import (
    AttrInput,
    InferContext,
    Legacy,
    OpDef,
    VjpContext,
    ints,
    op,
    register,
    scalar,
)
from ir.types import Dim, TensorType

_INDEX = (D.int32, D.int64)
_REDUCE: dict[str, np.ufunc | None] = {
    "none": None,
    "add": np.add,
    "mul": np.multiply,
    "max": np.maximum,
    "min": np.minimum,
}


def _zeros(like: Any, shape: Any) -> Any:
    """Zeros of ``like``'s dtype and the shape ``shape`` (an int64 operand)."""
    return op.Expand(scalar(0, like), shape)


def _int64(indices: Any) -> Any:
    return indices if indices.dtype == D.int64 else op.Cast(indices, to=D.to_onnx(D.int64))


def _transpose(x: Any, perm: Any) -> Any:
    perm = [int(p) for p in perm]
    return x if perm == sorted(perm) else op.Transpose(x, perm=perm)


def _permuted_shape(x: Any, perm: list[int]) -> Any:
    dims = [x.shape[p] for p in perm]
    if all(isinstance(d, int) for d in dims):
        return ints(dims)
    return op.Gather(op.Shape(x), ints(perm), axis=0)


# ---------------------------------------------------------------- Gather


def _gather(data: np.ndarray, indices: np.ndarray, *, axis: int = 0) -> np.ndarray:
    return np.take(data, indices, axis=normalize_axis(axis, data.ndim, "Gather axis"))


def _gather_infer(
    ctx: InferContext, data: TensorType, indices: TensorType, *, axis: int = 0
) -> TensorType:
    check_dtype(indices, _INDEX, "Gather indices")
    if data.shape is None or indices.shape is None:
        return TensorType(data.dtype, None)
    a = normalize_axis(axis, len(data.shape), "Gather axis")
    return TensorType(data.dtype, (*data.shape[:a], *indices.shape, *data.shape[a + 1 :]))


def _gather_vjp(ctx: VjpContext, g: Any, data: Any, indices: Any, *, axis: int) -> list[Any]:
    a, q = normalize_axis(axis, data.ndim), indices.ndim
    # Move the gathered axis to the front and flatten the index dims, so ScatterElements
    # adds each index's slice of g there. ScatterElements, not ScatterND: onnxruntime 1.31's
    # multi-threaded CPU ScatterND(reduction="add") loses updates to repeated indices (an
    # embedding's repeated tokens); its ScatterElements adds them all.
    g_front = _transpose(g, [*range(a, a + q), *range(a), *range(a + q, g.ndim)])
    perm = [a, *range(a), *range(a + 1, data.ndim)]
    zeros = _zeros(g, _permuted_shape(data, perm))
    rest = [g_front.shape[i] for i in range(q, g_front.ndim)]
    if all(isinstance(d, int) for d in rest):
        flat_shape = ints([-1, *rest])
    else:
        flat_shape = op.Concat(ints([-1]), op.Shape(g_front, start=q), axis=0)
    flat = op.Reshape(g_front, flat_shape)
    index = op.Reshape(_int64(indices), ints([-1, *[1] * len(rest)]))
    index = op.Expand(index, op.Shape(flat))
    summed = op.ScatterElements(zeros, index, flat, axis=0, reduction="add")
    return [_transpose(summed, np.argsort(perm)), None]


register(OpDef("Gather", 13, _gather, _gather_infer, _gather_vjp, saves="others", symbolic=True))


# ---------------------------------------------------------------- GatherElements / ScatterElements


def _element_index(indices: np.ndarray, axis: int) -> tuple[np.ndarray, ...]:
    """NumPy index of ``indices`` along ``axis``, each element's own coordinates elsewhere."""
    grid: list[np.ndarray] = list(np.indices(indices.shape, sparse=True))
    grid[axis] = indices
    return tuple(grid)


def _gather_elements(data: np.ndarray, indices: np.ndarray, *, axis: int = 0) -> np.ndarray:
    if indices.ndim != data.ndim:
        raise ShapeError(f"GatherElements: indices rank {indices.ndim} != data rank {data.ndim}")
    return data[_element_index(indices, normalize_axis(axis, data.ndim))]


def _gather_elements_infer(
    ctx: InferContext, data: TensorType, indices: TensorType, *, axis: int = 0
) -> TensorType:
    check_dtype(indices, _INDEX, "GatherElements indices")
    return TensorType(data.dtype, indices.shape)


def _gather_elements_vjp(
    ctx: VjpContext, g: Any, data: Any, indices: Any, *, axis: int
) -> list[Any]:
    zeros = _zeros(g, shape_of(data))
    return [op.ScatterElements(zeros, indices, g, axis=axis, reduction="add"), None]


def _reduce_fn(op_type: str, reduction: str) -> np.ufunc | None:
    if reduction not in _REDUCE:
        raise ValueError(f"{op_type}: reduction {reduction!r} is not one of {list(_REDUCE)}")
    return _REDUCE[reduction]


def _scatter_elements(
    data: np.ndarray,
    indices: np.ndarray,
    updates: np.ndarray,
    *,
    axis: int = 0,
    reduction: str = "none",
) -> np.ndarray:
    fn = _reduce_fn("ScatterElements", reduction)
    if indices.shape != updates.shape or indices.ndim != data.ndim:
        raise ShapeError(
            f"ScatterElements: indices {list(indices.shape)} and updates {list(updates.shape)} "
            f"must have one shape, of data's rank {data.ndim}"
        )
    out = data.copy()
    where = _element_index(indices, normalize_axis(axis, data.ndim))
    if fn is None:
        out[where] = updates
    else:
        fn.at(out, where, updates)
    return out


def _scatter_infer(
    ctx: InferContext, data: TensorType, indices: TensorType, updates: TensorType, **attrs: Any
) -> TensorType:
    same_dtype((data, updates), "data and updates")
    check_dtype(indices, _INDEX, "indices")
    return data


def _scatter_grads(
    ctx: VjpContext,
    g: Any,
    data: Any,
    updates: Any,
    reduction: str,
    gather: Callable[[Any], Any],
    scatter: Callable[[Any, Any, str], Any],
) -> list[Any]:
    """Gradients of data and updates shared by ScatterElements and ScatterND.

    ``gather(t)`` reads ``t`` at the scattered positions; ``scatter(t, u, r)`` scatters
    ``u`` into ``t`` there with reduction ``r``.
    """
    need_data, need_updates = ctx.needs_input_grad[0], ctx.needs_input_grad[2]
    if reduction in ("none", "add"):
        gd = g if reduction == "add" else scatter(g, _zeros(g, shape_of(updates)), "none")
        return [gd if need_data else None, None, gather(g) if need_updates else None]
    if reduction == "mul":
        if need_updates:
            raise UnsupportedOpError(
                "the gradient of a reduction='mul' scatter with respect to updates is not "
                "supported (it needs the product of the other updates at each position)"
            )
        # out = data * (product of the updates at each position): scatter-multiply g.
        return [scatter(g, updates, "mul"), None, None]
    # max/min: the gradient goes to the entries equal to the result, split evenly on ties
    # (as PyTorch's scatter_reduce with include_self=True).
    out = scatter(data, updates, reduction)
    picked = gather(out)
    if reduction == "max":
        lost_data, lost_updates = op.Greater(out, data), op.Greater(picked, updates)
    else:
        lost_data, lost_updates = op.Greater(data, out), op.Greater(updates, picked)
    zero, one = scalar(0, g), scalar(1, g)
    won_data, won_updates = op.Where(lost_data, zero, one), op.Where(lost_updates, zero, one)
    share = op.Div(g, scatter(won_data, won_updates, "add"))
    gd = op.Mul(share, won_data) if need_data else None
    gu = op.Mul(gather(share), won_updates) if need_updates else None
    return [gd, None, gu]


def _scatter_elements_vjp(
    ctx: VjpContext, g: Any, data: Any, indices: Any, updates: Any, *, axis: int, reduction: str
) -> list[Any]:
    def gather(t: Any) -> Any:
        return op.GatherElements(t, indices, axis=axis)

    def scatter(t: Any, u: Any, r: str) -> Any:
        return op.ScatterElements(t, indices, u, axis=axis, reduction=r)

    return _scatter_grads(ctx, g, data, updates, reduction, gather, scatter)


register(
    OpDef(
        "GatherElements",
        13,
        _gather_elements,
        _gather_elements_infer,
        _gather_elements_vjp,
        saves="others",
    )
)
# `reduction` (16) took "add" and "mul" first, "max" and "min" from 18.
_REDUCTIONS = Legacy(
    values=(
        ("reduction", "add", 16),
        ("reduction", "mul", 16),
        ("reduction", "max", 18),
        ("reduction", "min", 18),
    )
)
register(
    OpDef(
        "ScatterElements",
        18,
        _scatter_elements,
        _scatter_infer,
        _scatter_elements_vjp,
        legacy=_REDUCTIONS,
    )
)


# ---------------------------------------------------------------- GatherND / ScatterND


def _gather_nd(data: np.ndarray, indices: np.ndarray, *, batch_dims: int = 0) -> np.ndarray:
    b, k = batch_dims, indices.shape[-1] if indices.ndim else 0
    if not 0 <= b < min(data.ndim, indices.ndim) or not 1 <= k <= data.ndim - b:
        raise ShapeError(
            f"GatherND: data {list(data.shape)}, indices {list(indices.shape)} and batch_dims "
            f"{b} need b < min(ranks) and 1 <= indices.shape[-1] <= data rank - b"
        )
    if data.shape[:b] != indices.shape[:b]:
        raise ShapeError(f"GatherND: batch dims {data.shape[:b]} != {indices.shape[:b]}")
    batch = int(np.prod(data.shape[:b], dtype=np.int64))
    flat = data.reshape((batch, *data.shape[b:]))
    index = indices.reshape((batch, *indices.shape[b:]))
    rows = np.arange(batch).reshape((batch,) + (1,) * (index.ndim - 2))
    out = flat[(rows, *np.moveaxis(index, -1, 0))]
    return out.reshape((*indices.shape[:-1], *data.shape[b + k :]))


def _gather_nd_infer(
    ctx: InferContext, data: TensorType, indices: TensorType, *, batch_dims: int = 0
) -> TensorType:
    check_dtype(indices, (D.int64,), "GatherND indices")
    if data.shape is None or indices.shape is None or not isinstance(indices.shape[-1], int):
        return TensorType(data.dtype, None)
    k = indices.shape[-1]
    return TensorType(data.dtype, (*indices.shape[:-1], *data.shape[batch_dims + k :]))


def _batch_coords(indices: Any, b: int) -> Any:
    """``indices`` with the batch coordinates put in front of each index tuple."""
    shape = tuple(indices.shape)
    if not all(isinstance(d, int) for d in shape):
        raise UnsupportedOpError("GatherND with batch_dims > 0: the gradient needs static indices")
    grid = np.moveaxis(np.indices(shape[:b]), 0, -1)  # (*batch, b)
    grid = grid.reshape((*shape[:b], *(1,) * (len(shape) - 1 - b), b))
    grid = np.broadcast_to(grid, (*shape[:-1], b)).astype(np.int64)
    return op.Concat(grid, indices, axis=-1)


def _gather_nd_vjp(
    ctx: VjpContext, g: Any, data: Any, indices: Any, *, batch_dims: int
) -> list[Any]:
    index = indices if batch_dims == 0 else _batch_coords(indices, batch_dims)
    return [op.ScatterND(_zeros(g, shape_of(data)), index, g, reduction="add"), None]


def _scatter_nd(
    data: np.ndarray, indices: np.ndarray, updates: np.ndarray, *, reduction: str = "none"
) -> np.ndarray:
    fn = _reduce_fn("ScatterND", reduction)
    k = indices.shape[-1] if indices.ndim else 0
    expected = (*indices.shape[:-1], *data.shape[k:])
    if not 1 <= k <= data.ndim or updates.shape != expected:
        raise ShapeError(
            f"ScatterND: data {list(data.shape)} and indices {list(indices.shape)} need "
            f"updates of shape {list(expected)}, got {list(updates.shape)}"
        )
    out = data.copy()
    where = tuple(np.moveaxis(indices, -1, 0))
    if fn is None:
        out[where] = updates
    else:
        fn.at(out, where, updates)
    return out


def _scatter_nd_vjp(
    ctx: VjpContext, g: Any, data: Any, indices: Any, updates: Any, *, reduction: str
) -> list[Any]:
    def gather(t: Any) -> Any:
        return op.GatherND(t, indices)

    def scatter(t: Any, u: Any, r: str) -> Any:
        return op.ScatterND(t, indices, u, reduction=r)

    return _scatter_grads(ctx, g, data, updates, reduction, gather, scatter)


register(OpDef("GatherND", 13, _gather_nd, _gather_nd_infer, _gather_nd_vjp, saves="others"))
register(OpDef("ScatterND", 18, _scatter_nd, _scatter_infer, _scatter_nd_vjp, legacy=_REDUCTIONS))


# ---------------------------------------------------------------- Slice

_TO_END = 2**31 - 1  # an end at least this large slices a dimension of unknown size to its end


def _clamp(d: int, start: int, end: int, step: int) -> tuple[int, int]:
    """ONNX's effective start and end; ``end`` may be -1 (before the first element)."""
    start, end = start + d if start < 0 else start, end + d if end < 0 else end
    if step > 0:
        return min(max(start, 0), d), min(max(end, 0), d)
    return min(max(start, 0), d - 1), min(max(end, -1), d - 1)


def _slice_args(
    rank: int, starts: Any, ends: Any, axes: Any, steps: Any
) -> list[tuple[int, int, int, int]]:
    """``(axis, start, end, step)`` per sliced axis, before clamping."""
    s, e = ([int(v) for v in np.asarray(x).reshape(-1)] for x in (starts, ends))
    a = list(range(len(s))) if axes is None else [int(v) for v in np.asarray(axes).reshape(-1)]
    st = [1] * len(s) if steps is None else [int(v) for v in np.asarray(steps).reshape(-1)]
    if not len(s) == len(e) == len(a) == len(st):
        raise ShapeError(
            f"Slice: starts, ends, axes and steps differ in length: {s}, {e}, {a}, {st}"
        )
    a = [normalize_axis(x, rank, "Slice axis") for x in a]
    if len(set(a)) != len(a) or 0 in st:
        raise ShapeError(f"Slice: axes {a} must not repeat and steps {st} must not be 0")
    return list(zip(a, s, e, st, strict=True))


def _slice(
    data: np.ndarray, starts: Any, ends: Any, axes: Any = None, steps: Any = None
) -> np.ndarray:
    index = [slice(None)] * data.ndim
    for a, s, e, step in _slice_args(data.ndim, starts, ends, axes, steps):
        lo, hi = _clamp(data.shape[a], s, e, step)
        index[a] = slice(lo, hi if hi >= 0 else None, step)  # basic slicing: a view of data
    return data[tuple(index)]


def _slice_infer(
    ctx: InferContext,
    data: TensorType,
    starts: TensorType,
    ends: TensorType,
    axes: TensorType | None = None,
    steps: TensorType | None = None,
) -> TensorType:
    check_dtype(starts, _INDEX, "Slice starts")
    if data.shape is None:
        return TensorType(data.dtype, None)
    unknown = TensorType(data.dtype, (None,) * len(data.shape))
    values = [const_ints(ctx, i) for i in range(5)]
    if values[1] is None or values[2] is None:  # symbolic bounds (x[:n], table[:seq])
        return _symbolic_slice(ctx, data, axes, steps) or unknown
    if any(v is None and t is not None for v, t in zip(values[3:], (axes, steps), strict=True)):
        return unknown
    out = list(data.shape)
    for a, s, e, step in _slice_args(len(out), *values[1:]):
        d = out[a]
        if isinstance(d, int):
            out[a] = len(range(*_clamp(d, s, e, step), step))
        elif not (s == 0 and step == 1 and e >= _TO_END):
            out[a] = None
    return TensorType(data.dtype, tuple(out))


def _symbolic_slice(
    ctx: InferContext, data: TensorType, axes: TensorType | None, steps: TensorType | None
) -> TensorType | None:
    """Unit-step slices whose bounds are dimension expressions: length ``end - start``.

    Bounds are taken to lie within the axis (a negative expression, ``-n``, counts from
    the end), as the tracer records for the user. A length that comes out as a constant
    although a bound or the size is symbolic is left unknown: it holds for some sizes only.
    """
    assert data.shape is not None
    starts, ends = ctx.dims(1), ctx.dims(2)
    given_axes = None if axes is None else const_ints(ctx, 3)
    given_steps = None if steps is None else const_ints(ctx, 4)
    if starts is None or ends is None or len(starts) != len(ends):
        return None
    if (axes is not None and given_axes is None) or (steps is not None and given_steps is None):
        return None
    rank = len(data.shape)
    picked = range(len(starts)) if given_axes is None else given_axes
    out = list(data.shape)
    for i, a in enumerate(picked):
        if given_steps is not None and given_steps[i] != 1:
            out[normalize_axis(a, rank, "Slice axis")] = None
            continue
        a = normalize_axis(a, rank, "Slice axis")
        out[a] = _span(out[a], starts[i], ends[i])
    return TensorType(data.dtype, tuple(out))


def _span(d: Dim, s: Dim, e: Dim) -> Dim:
    """``end - start`` of a unit-step slice of an axis of size ``d`` (see _symbolic_slice)."""
    if d is None or s is None or e is None:
        return None
    if isinstance(d, int) and isinstance(s, int) and isinstance(e, int):
        return len(range(*_clamp(d, s, e, 1)))
    start, end = Expr.of(s), Expr.of(d if isinstance(e, int) and e >= _TO_END else e)
    if start.is_negative():
        start = start + Expr.of(d)
    if end.is_negative():
        end = end + Expr.of(d)
    length = (end - start).to_dim()
    return None if isinstance(length, int) else length


def _slice_vjp(
    ctx: VjpContext, g: Any, data: Any, starts: Any, ends: Any, axes: Any = None, steps: Any = None
) -> list[Any]:
    shape = tuple(data.shape)
    static = all(isinstance(d, int) for d in shape)
    given = [known_value(v) for v in (starts, ends, axes, steps)]
    known = all(
        v is not None or x is None for v, x in zip(given, (starts, ends, axes, steps), strict=True)
    )
    if static and known:
        args = _slice_args(len(shape), *given)
        if all(step == 1 for *_, step in args):
            # A unit-step slice is a crop, whose adjoint is zero padding.
            begin, end = [0] * len(shape), [0] * len(shape)
            for a, s, e, _ in args:
                lo, hi = _clamp(shape[a], s, e, 1)
                begin[a], end[a] = lo, shape[a] - lo - len(range(lo, hi))
            return [op.Pad(g, ints(begin + end)), None, None, None, None]
    # Any steps: slice the flat positions of data the same way and scatter g to them.
    if static:
        size = int(np.prod(shape, dtype=np.int64))
        positions, flat_shape = np.arange(size, dtype=np.int64).reshape(shape), ints([size])
        if known:  # all constant: the positions are sliced now
            starts, ends, axes, steps = given
    else:
        count = op.Size(data)
        positions = op.Reshape(op.Range(ints(0), count, ints(1)), shape_of(data))
        flat_shape = op.Reshape(count, ints([1]))
    picked = op.Reshape(op.Slice(positions, starts, ends, axes, steps), ints([-1]))
    flat = op.ScatterElements(_zeros(g, flat_shape), picked, op.Reshape(g, ints([-1])), axis=0)
    return [op.Reshape(flat, shape_of(data)), None, None, None, None]


_SLICE_10 = tuple(
    AttrInput(name, i, "ints", 10) for i, name in enumerate(("starts", "ends", "axes"), 1)
)
register(
    OpDef(
        "Slice",
        13,
        _slice,
        _slice_infer,
        _slice_vjp,
        saves="others",
        view=True,
        symbolic=True,
        legacy=Legacy(inputs=_SLICE_10),
    )
)


# ---------------------------------------------------------------- NonZero / Trilu


def _nonzero(x: np.ndarray) -> np.ndarray:
    if x.ndim == 0:
        return np.zeros((0, int(np.count_nonzero(x))), dtype=np.int64)
    return np.asarray(np.nonzero(x), dtype=np.int64).reshape(x.ndim, -1)


def _nonzero_infer(ctx: InferContext, x: TensorType) -> TensorType:
    value = ctx.value(0)
    if value is not None:  # the count depends on the values: known only for a constant
        return TensorType(D.int64, _nonzero(np.asarray(value)).shape)
    return TensorType(D.int64, (None if x.shape is None else len(x.shape), None))


def _trilu(x: np.ndarray, k: np.ndarray | None = None, *, upper: int = 1) -> np.ndarray:
    if x.ndim < 2:
        raise ShapeError(f"Trilu: input must have rank >= 2, got shape {list(x.shape)}")
    diagonal = 0 if k is None else int(np.asarray(k).reshape(()))
    return np.triu(x, diagonal) if upper else np.tril(x, diagonal)


def _trilu_infer(
    ctx: InferContext, x: TensorType, k: TensorType | None = None, *, upper: int = 1
) -> TensorType:
    if k is not None:
        check_dtype(k, (D.int64,), "Trilu k")
    if x.shape is not None and len(x.shape) < 2:
        raise ShapeError(f"Trilu: input must have rank >= 2, got {x}")
    return x


def _trilu_vjp(ctx: VjpContext, g: Any, x: Any, k: Any = None, *, upper: int) -> list[Any]:
    kept = op.Trilu(g, upper=upper) if k is None else op.Trilu(g, k, upper=upper)
    return [kept, None]


register(
    OpDef("NonZero", 13, _nonzero, _nonzero_infer, None, no_vjp="its output is integer coordinates")
)
register(OpDef("Trilu", 14, _trilu, _trilu_infer, _trilu_vjp, saves="others"))
