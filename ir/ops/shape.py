"""Shape ops: Reshape, Expand, (Un)Squeeze, Shape, Transpose, Concat, Split, Tile, Pad, Flatten, ...

Shape-like operands (``shape``, ``axes``, ...) are int64 inputs as in opset 13+, so a traced
graph can compute them from ``Shape``. Kernels accept any int sequence for them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.dims import add as dims_add
from ir.dims import sub as dims_sub
from ir.errors import DTypeError, ShapeError, UnsupportedOpError
from ir.ops.grad_util import known_value, shape_of, unbroadcast
from ir.ops.infer import (
    broadcast_shapes,
    check_dtype,
    const_ints,
    normalize_axis,
    same_dtype,
    unknown_dims,
)
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

# ---------------------------------------------------------------- Reshape


def _factors(dims: Sequence[Dim]) -> tuple[int, list[str]] | None:
    """A product of dims as (int part, symbol factors); None when a dim is unknown."""
    num, syms = 1, []
    for d in dims:
        if d is None or (isinstance(d, str) and any(c in d for c in "+-/()")):
            return None
        if isinstance(d, str):
            for part in d.split("*"):
                if part.isdigit():
                    num *= int(part)
                else:
                    syms.append(part)
        else:
            num *= int(d)
    return num, syms


def _quotient(total: Sequence[Dim], known: Sequence[Dim]) -> Dim:
    """``prod(total) / prod(known)`` for symbolic dims, or None when it does not cancel."""
    a, b = _factors(total), _factors(known)
    if a is None or b is None:
        return None
    rest = list(a[1])
    for sym in b[1]:
        if sym not in rest:
            return None
        rest.remove(sym)
    if b[0] == 0 or a[0] % b[0]:
        return None
    num = a[0] // b[0]
    if not rest:
        return num
    return "*".join([*sorted(rest), *([str(num)] if num != 1 else [])])


def _reshape_target(
    in_shape: tuple[Dim, ...], shape: tuple[Dim, ...], allowzero: int
) -> tuple[Dim, ...]:
    out: list[Dim] = [
        in_shape[i] if (s == 0 and not allowzero and i < len(in_shape)) else s
        for i, s in enumerate(shape)
    ]
    if -1 in out:
        known = [d for d in out if d != -1]
        if all(isinstance(d, int) for d in (*in_shape, *known)):
            total = int(np.prod(np.asarray(in_shape, dtype=np.int64)))
            rest = int(np.prod(np.asarray(known, dtype=np.int64)))
            if rest == 0 or total % rest:
                raise ShapeError(f"cannot reshape {list(in_shape)} into {list(shape)}")
            out[out.index(-1)] = total // rest
        else:
            out[out.index(-1)] = _quotient(in_shape, known)
    return tuple(out)


def _reshape(x: np.ndarray, shape: Any, *, allowzero: int = 0) -> np.ndarray:
    target = _reshape_target(
        x.shape, tuple(int(s) for s in np.asarray(shape).reshape(-1)), allowzero
    )
    return np.reshape(x, tuple(int(d) for d in target if d is not None))  # all ints here


def _reshape_infer(
    ctx: InferContext, x: TensorType, shape: TensorType, *, allowzero: int = 0
) -> TensorType:
    value = ctx.dims(1)
    if value is None or x.shape is None:
        rank = shape.shape[0] if shape.shape is not None and shape.shape else None
        return TensorType(x.dtype, unknown_dims(rank, "Reshape's shape input"))
    return TensorType(x.dtype, _reshape_target(x.shape, value, allowzero))


def _reshape_vjp(ctx: VjpContext, g: Any, x: Any, shape: Any, *, allowzero: int) -> list[Any]:
    return [op.Reshape(g, shape_of(x)), None]


# Reshape-5 on takes the shape as an input (Reshape-1's was an attribute).
register(
    OpDef(
        "Reshape",
        19,
        _reshape,
        _reshape_infer,
        _reshape_vjp,
        saves="none",
        view=True,
        symbolic=True,
        reshape=True,
        shape_input=1,
        legacy=Legacy(inputs=(AttrInput("shape", 1, "ints", 5),)),
    )
)


# ---------------------------------------------------------------- Expand


def _expand(x: np.ndarray, shape: Any) -> np.ndarray:
    target = tuple(int(s) for s in np.asarray(shape).reshape(-1))
    return np.broadcast_to(x, np.broadcast_shapes(x.shape, target))


def _expand_infer(ctx: InferContext, x: TensorType, shape: TensorType) -> TensorType:
    value = ctx.dims(1)
    if value is None or x.shape is None:
        rank = shape.shape[0] if shape.shape is not None and shape.shape else None
        if isinstance(rank, int) and x.shape is not None:
            return TensorType(x.dtype, unknown_dims(max(rank, len(x.shape)), "Expand's shape"))
        return TensorType(x.dtype, None)
    return TensorType(x.dtype, broadcast_shapes(x.shape, value))


def _expand_vjp(ctx: VjpContext, g: Any, x: Any, shape: Any) -> list[Any]:
    return [unbroadcast(g, x), None]


register(
    OpDef(
        "Expand",
        13,
        _expand,
        _expand_infer,
        _expand_vjp,
        saves="none",
        view=True,
        symbolic=True,
        shape_input=1,
    )
)


# ---------------------------------------------------------------- Squeeze / Unsqueeze


def _squeeze(x: np.ndarray, axes: Any = None) -> np.ndarray:
    if axes is None:
        return np.squeeze(x)
    picked = tuple(normalize_axis(int(a), x.ndim) for a in np.asarray(axes).reshape(-1))
    for a in picked:
        if x.shape[a] != 1:
            raise ShapeError(f"Squeeze: axis {a} has size {x.shape[a]}, expected 1")
    return np.squeeze(x, axis=picked)


def _squeeze_infer(ctx: InferContext, x: TensorType, axes: TensorType | None = None) -> TensorType:
    if x.shape is None:
        return TensorType(x.dtype, None)
    if axes is None:
        return TensorType(x.dtype, tuple(d for d in x.shape if d != 1))
    value = const_ints(ctx, 1)
    if value is None:
        return TensorType(x.dtype, None)
    drop = {normalize_axis(a, len(x.shape)) for a in value}
    return TensorType(x.dtype, tuple(d for i, d in enumerate(x.shape) if i not in drop))


def _squeeze_vjp(ctx: VjpContext, g: Any, x: Any, axes: Any = None) -> list[Any]:
    return [op.Reshape(g, shape_of(x)), None]


def _unsqueeze_axes(rank: int, axes: tuple[int, ...]) -> list[int]:
    out_rank = rank + len(axes)
    picked = sorted(normalize_axis(a, out_rank) for a in axes)
    if len(set(picked)) != len(picked):
        raise ShapeError(f"Unsqueeze: repeated axes {list(axes)}")
    return picked


def _unsqueeze(x: np.ndarray, axes: Any) -> np.ndarray:
    picked = _unsqueeze_axes(x.ndim, tuple(int(a) for a in np.asarray(axes).reshape(-1)))
    return np.expand_dims(x, tuple(picked))


def _unsqueeze_infer(ctx: InferContext, x: TensorType, axes: TensorType) -> TensorType:
    value = const_ints(ctx, 1)
    if value is None or x.shape is None:
        return TensorType(x.dtype, None)
    picked = set(_unsqueeze_axes(len(x.shape), value))
    dims = iter(x.shape)
    return TensorType(
        x.dtype, tuple(1 if i in picked else next(dims) for i in range(len(x.shape) + len(value)))
    )


def _unsqueeze_vjp(ctx: VjpContext, g: Any, x: Any, axes: Any) -> list[Any]:
    return [op.Squeeze(g, axes), None]


_AXES_13 = Legacy(inputs=(AttrInput("axes", 1, "ints", 13),))
register(
    OpDef(
        "Squeeze",
        13,
        _squeeze,
        _squeeze_infer,
        _squeeze_vjp,
        saves="none",
        view=True,
        symbolic=True,
        reshape=True,
        legacy=_AXES_13,
    )
)
register(
    OpDef(
        "Unsqueeze",
        13,
        _unsqueeze,
        _unsqueeze_infer,
        _unsqueeze_vjp,
        saves="none",
        view=True,
        symbolic=True,
        reshape=True,
        legacy=_AXES_13,
    )
)


# ---------------------------------------------------------------- Shape


def _shape(x: np.ndarray, *, start: int = 0, end: int | None = None) -> np.ndarray:
    return np.asarray(x.shape[start:end], dtype=np.int64)


def _shape_infer(
    ctx: InferContext, x: TensorType, *, start: int = 0, end: int | None = None
) -> TensorType:
    if x.shape is None:
        return TensorType(D.int64, (None,))
    return TensorType(D.int64, (len(x.shape[start:end]),))


register(
    OpDef(
        "Shape",
        19,
        _shape,
        _shape_infer,
        None,
        no_vjp="its output is an integer shape",
        shape_only=True,
    )
)


# ---------------------------------------------------------------- Transpose


def _perm(rank: int, perm: Any) -> tuple[int, ...]:
    return tuple(range(rank - 1, -1, -1)) if perm is None else tuple(int(p) for p in perm)


def _transpose(x: np.ndarray, *, perm: Any = None) -> np.ndarray:
    return np.transpose(x, _perm(x.ndim, perm))


def _transpose_infer(ctx: InferContext, x: TensorType, *, perm: Any = None) -> TensorType:
    if x.shape is None:
        return TensorType(x.dtype, None)
    order = _perm(len(x.shape), perm)
    if sorted(order) != list(range(len(x.shape))):
        raise ShapeError(
            f"Transpose: perm {list(order)} is not a permutation of rank {len(x.shape)}"
        )
    return TensorType(x.dtype, tuple(x.shape[p] for p in order))


def _transpose_vjp(ctx: VjpContext, g: Any, x: Any, *, perm: Any) -> list[Any]:
    order = _perm(x.ndim, perm)
    return [op.Transpose(g, perm=[int(i) for i in np.argsort(order)])]


register(
    OpDef("Transpose", 13, _transpose, _transpose_infer, _transpose_vjp, saves="none", view=True)
)


# ---------------------------------------------------------------- helpers of the ops below


def _prod(dims: tuple[Dim, ...]) -> Dim:
    fixed = [d for d in dims if isinstance(d, int)]
    return math.prod(fixed) if len(fixed) == len(dims) else None


def _merge_dims(dims: list[Dim], what: str) -> Dim:
    """The one size that ``dims`` (which must agree) stand for; None when unknown."""
    fixed = {d for d in dims if isinstance(d, int)}
    if len(fixed) > 1:
        raise ShapeError(f"{what}: dimensions {dims} must be equal")
    if fixed:
        return fixed.pop()
    return dims[0] if len(set(dims)) == 1 else None


# ---------------------------------------------------------------- Concat / Split


def _concat(x: np.ndarray, *rest: np.ndarray, axis: int) -> np.ndarray:
    inputs = (x, *rest)
    if len({a.dtype for a in inputs}) > 1:
        raise DTypeError(
            f"Concat: inputs must share one dtype, got {[str(a.dtype) for a in inputs]}"
        )
    if x.ndim == 0:
        raise ShapeError("Concat: inputs must have at least one dimension, got a 0-d input")
    return np.concatenate(inputs, axis=normalize_axis(axis, x.ndim))


def _concat_infer(ctx: InferContext, *types: TensorType, axis: int) -> TensorType:
    dtype = same_dtype(types, "Concat inputs")
    shapes = [t.shape for t in types if t.shape is not None]
    if len(shapes) != len(types):
        return TensorType(dtype, None)
    rank = len(shapes[0])
    if rank == 0 or any(len(s) != rank for s in shapes):
        raise ShapeError(f"Concat: inputs need one rank >= 1, got shapes {shapes}")
    a = normalize_axis(axis, rank)
    out: list[Dim] = []
    for i in range(rank):
        dims = [s[i] for s in shapes]
        if i != a:
            out.append(_merge_dims(dims, f"Concat axis {i}"))
            continue
        nonzero = [d for d in dims if d != 0]
        out.append(nonzero[0] if len(nonzero) == 1 else _sum_dims(dims))
    return TensorType(dtype, tuple(out))


def _sum_dims(dims: list[Dim]) -> Dim:
    total: Dim = 0
    for d in dims:  # symbolic sizes add up as expressions: cat of past and new is past+new
        total = dims_add(total, d)
    return total


def _concat_vjp(ctx: VjpContext, g: Any, *inputs: Any, axis: int) -> list[Any]:
    if len(inputs) == 1:
        return [g]
    a = normalize_axis(axis, g.ndim)
    sizes = [x.shape[a] for x in inputs]
    if all(isinstance(d, int) for d in sizes):
        split = ints(sizes)
    else:
        split = op.Concat(*(op.Shape(x, start=a, end=a + 1) for x in inputs), axis=0)
    parts = op.Split(g, split, axis=a)
    return [p if need else None for p, need in zip(parts, ctx.needs_input_grad, strict=True)]


def _split_sizes(d: int, split: Any, num_outputs: int | None) -> list[int]:
    if (split is None) == (num_outputs is None):
        raise ShapeError("Split: give exactly one of the `split` input and `num_outputs`")
    if split is not None:
        sizes = [int(s) for s in np.asarray(split).reshape(-1)]
        if sum(sizes) != d or min(sizes, default=0) < 0:
            raise ShapeError(f"Split: sizes {sizes} do not add up to the axis length {d}")
        return sizes
    if num_outputs < 1:  # type: ignore[operator]
        raise ShapeError(f"Split: num_outputs must be >= 1, got {num_outputs}")
    chunk = -(-d // num_outputs)  # type: ignore[operator]  # ceil: only the last chunk is smaller
    sizes = [chunk] * (num_outputs - 1) + [d - chunk * (num_outputs - 1)]  # type: ignore[operator]
    if sizes[-1] < 0:
        raise ShapeError(f"Split: an axis of length {d} cannot be split into {num_outputs} chunks")
    return sizes


def _split(
    x: np.ndarray, split: Any = None, *, axis: int = 0, num_outputs: int | None = None
) -> tuple[np.ndarray, ...]:
    a = normalize_axis(axis, x.ndim)
    sizes = _split_sizes(x.shape[a], split, num_outputs)
    # Copies: a view would share memory with the input while only output 0 shares its version.
    return tuple(p.copy() for p in np.split(x, np.cumsum(sizes)[:-1], axis=a))


_MAX_PARTS = 1 << 16  # parts a `split` input of unknown values may ask for (read from a file)


def _split_infer(
    ctx: InferContext,
    x: TensorType,
    split: TensorType | None = None,
    *,
    axis: int = 0,
    num_outputs: int | None = None,
) -> tuple[TensorType, ...]:
    given = None if split is None else const_ints(ctx, 1)
    dim = None if x.shape is None else x.shape[normalize_axis(axis, len(x.shape))]
    if split is not None and given is None:
        n = split.shape[0] if split.shape else None
        if not isinstance(n, int):
            raise ShapeError("Split: the number of outputs is unknown (`split` has unknown length)")
        if n > _MAX_PARTS:
            raise ShapeError(f"Split: {n} parts, more than graphcap's limit of {_MAX_PARTS}")
        dims = ctx.dims(1)  # symbolic sizes (x.split([past, seq])) keep their names
        sizes: list[Dim] = list(dims) if dims is not None and len(dims) == n else [None] * n
    elif isinstance(dim, int):
        sizes = list(_split_sizes(dim, given, num_outputs))
    else:
        sizes = list(given) if given is not None else [None] * int(num_outputs or 0)
    if x.shape is None:
        return tuple(TensorType(x.dtype, None) for _ in sizes)
    a = normalize_axis(axis, len(x.shape))
    return tuple(TensorType(x.dtype, (*x.shape[:a], s, *x.shape[a + 1 :])) for s in sizes)


def _split_vjp(
    ctx: VjpContext, grads: Any, x: Any, split: Any = None, *, axis: int, num_outputs: int | None
) -> list[Any]:
    grads = grads if isinstance(grads, tuple) else (grads,)
    filled = [
        g if g is not None else op.Expand(scalar(0, x), shape_of(out))
        for g, out in zip(grads, ctx.outputs, strict=True)
    ]
    gx = filled[0] if len(filled) == 1 else op.Concat(*filled, axis=normalize_axis(axis, x.ndim))
    return [gx, None]


register(
    OpDef(
        "Concat",
        13,
        _concat,
        _concat_infer,
        _concat_vjp,
        saves="none",
        symbolic=True,
        nary=True,
        legacy=Legacy(defaults=(("axis", 4, 1),)),  # Concat-1's axis was optional
    )
)
register(
    OpDef(
        "Split",
        18,
        _split,
        _split_infer,
        _split_vjp,
        num_outputs=None,
        saves="none",
        legacy=Legacy(inputs=(AttrInput("split", 1, "ints", 13),)),
    )
)


# ---------------------------------------------------------------- Tile


def _tile(x: np.ndarray, repeats: Any) -> np.ndarray:
    reps = tuple(int(r) for r in np.asarray(repeats).reshape(-1))
    if len(reps) != x.ndim or min(reps, default=0) < 0:
        raise ShapeError(f"Tile: repeats {list(reps)} must be {x.ndim} non-negative counts")
    return np.tile(x, reps)


def _tile_infer(ctx: InferContext, x: TensorType, repeats: TensorType) -> TensorType:
    reps = const_ints(ctx, 1)
    if x.shape is None or reps is None:
        return TensorType(x.dtype, None if x.shape is None else (None,) * len(x.shape))
    if len(reps) != len(x.shape):
        raise ShapeError(f"Tile: {len(reps)} repeats for an input of rank {len(x.shape)}")
    out = [
        d * r if isinstance(d, int) else (d if r == 1 else 0 if r == 0 else None)
        for d, r in zip(x.shape, reps, strict=True)
    ]
    return TensorType(x.dtype, tuple(out))


def _tile_vjp(ctx: VjpContext, g: Any, x: Any, repeats: Any) -> list[Any]:
    if x.ndim == 0:
        return [g, None]
    # grad viewed as (r0, d0, r1, d1, ...): summing the repeat axes folds the copies back.
    pairs = op.Concat(
        op.Unsqueeze(repeats, ints([1])), op.Unsqueeze(shape_of(x), ints([1])), axis=1
    )
    folded = op.Reshape(g, op.Reshape(pairs, ints([-1])))
    return [op.ReduceSum(folded, ints(list(range(0, 2 * x.ndim, 2))), keepdims=0), None]


register(OpDef("Tile", 13, _tile, _tile_infer, _tile_vjp, saves="none"))


# ---------------------------------------------------------------- Pad

_PAD_MODES = ("constant", "reflect", "edge", "wrap")


def _pad_widths(rank: int, pads: Any, axes: Any) -> list[tuple[int, int]]:
    p = [int(v) for v in np.asarray(pads).reshape(-1)]
    if axes is None:
        picked = list(range(rank))
    else:
        picked = [normalize_axis(int(a), rank, "Pad axis") for a in np.asarray(axes).reshape(-1)]
    if len(p) != 2 * len(picked):
        raise ShapeError(f"Pad: {len(p)} pads for {len(picked)} axes; expected {2 * len(picked)}")
    widths = [(0, 0)] * rank
    for i, a in enumerate(picked):
        widths[a] = (p[i], p[len(picked) + i])
    return widths


def _pad(
    data: np.ndarray,
    pads: Any,
    constant_value: Any = None,
    axes: Any = None,
    *,
    mode: str = "constant",
) -> np.ndarray:
    if mode not in _PAD_MODES:
        raise ValueError(f"Pad: mode {mode!r} is not one of {_PAD_MODES}")
    widths = _pad_widths(data.ndim, pads, axes)
    # Negative pads crop (ONNX allows them); numpy.pad only grows, so crop first.
    x = data[
        tuple(
            slice(max(-b, 0), d - max(-e, 0)) for (b, e), d in zip(widths, data.shape, strict=True)
        )
    ]
    grow = [(max(b, 0), max(e, 0)) for b, e in widths]
    if mode != "constant":
        return np.pad(x, grow, mode=mode)  # type: ignore[call-overload]
    fill = np.zeros((), data.dtype) if constant_value is None else np.asarray(constant_value)
    return np.pad(x, grow, mode="constant", constant_values=fill.reshape(()).astype(data.dtype))


def _pad_infer(
    ctx: InferContext,
    data: TensorType,
    pads: TensorType,
    constant_value: TensorType | None = None,
    axes: TensorType | None = None,
    *,
    mode: str = "constant",
) -> TensorType:
    same_dtype((data, constant_value), "Pad data and constant_value")
    if data.shape is None:
        return TensorType(data.dtype, None)
    p = const_ints(ctx, 1)
    ax = None if axes is None else const_ints(ctx, 3)
    if p is None or (axes is not None and ax is None):
        return TensorType(data.dtype, (None,) * len(data.shape))
    widths = _pad_widths(len(data.shape), p, ax)
    return TensorType(
        data.dtype,
        tuple(
            d + b + e if isinstance(d, int) else (d if b == e == 0 else None)
            for d, (b, e) in zip(data.shape, widths, strict=True)
        ),
    )


def _pad_vjp(
    ctx: VjpContext,
    g: Any,
    data: Any,
    pads: Any,
    constant_value: Any = None,
    axes: Any = None,
    *,
    mode: str,
) -> list[Any]:
    if mode != "constant":
        return [_pad_map_vjp(g, data, pads, axes, mode), None, None, None]
    # Padding and cropping are each other's adjoints: pad the grad by -pads.
    gx = op.Pad(g, op.Neg(pads), None, axes, mode="constant")
    gc = None
    if constant_value is not None and ctx.needs_input_grad[2]:
        # Every output element that does not come from data is a copy of constant_value.
        filled = op.Sub(op.ReduceSum(g, keepdims=0), op.ReduceSum(gx, keepdims=0))
        gc = op.Reshape(filled, shape_of(constant_value))
    return [gx, None, gc, None]


def _pad_map_vjp(g: Any, data: Any, pads: Any, axes: Any, mode: str) -> Any:
    """reflect/edge/wrap: each axis gathers input positions; sum the grad back onto them."""
    p, ax = known_value(pads), known_value(axes)
    if p is None or (axes is not None and ax is None) or _prod(tuple(data.shape)) is None:
        raise UnsupportedOpError(
            f"Pad(mode={mode!r}): the gradient needs constant pads and axes and a static "
            "input shape"
        )
    for a, ((b, e), d) in enumerate(zip(_pad_widths(data.ndim, p, ax), data.shape, strict=True)):
        if b == e == 0:
            continue
        source = _pad(np.arange(d), np.asarray([b, e]), mode=mode)  # input index of each output
        onehot = (source[:, None] == np.arange(d)).astype(g.dtype)
        perm = [*range(a), *range(a + 1, data.ndim), a]
        moved = op.MatMul(op.Transpose(g, perm=perm), onehot)
        g = op.Transpose(moved, perm=[int(i) for i in np.argsort(perm)])
    return g


register(
    OpDef(
        "Pad",
        19,
        _pad,
        _pad_infer,
        _pad_vjp,
        saves="none",
        legacy=Legacy(
            inputs=(AttrInput("pads", 1, "ints", 11), AttrInput("value", 2, "like_x", 11)),
            values=(("mode", "wrap", 19),),
        ),
    )
)


# ---------------------------------------------------------------- Size / Range / ConstantOfShape


def _size(x: np.ndarray) -> np.ndarray:
    return np.asarray(x.size, dtype=np.int64)


def _size_infer(ctx: InferContext, x: TensorType) -> TensorType:
    return TensorType(D.int64, ())


def _range(start: np.ndarray, limit: np.ndarray, delta: np.ndarray) -> np.ndarray:
    if len({start.dtype, limit.dtype, delta.dtype}) > 1:
        raise DTypeError(
            f"Range: inputs must share one dtype, got {start.dtype}, {limit.dtype}, {delta.dtype}"
        )
    s, stop, step = (np.asarray(v).reshape(()).item() for v in (start, limit, delta))
    if step == 0:
        raise ValueError("Range: delta must not be 0")
    return np.arange(s, stop, step).astype(start.dtype)


def _range_infer(
    ctx: InferContext, start: TensorType, limit: TensorType, delta: TensorType
) -> TensorType:
    dtype = same_dtype((start, limit, delta), "Range inputs")
    check_dtype(start, (D.float32, D.float64, D.int16, D.int32, D.int64), "Range start")
    values = [ctx.value(i) for i in range(3)]
    if all(v is not None for v in values):
        return TensorType(dtype, _range(*values).shape)  # type: ignore[arg-type]
    # Symbolic bounds with step 1: Range(a, b, 1) has b - a elements (taken to be >= 0).
    first, last, step = (ctx.dims(i) for i in range(3))
    if step == (1,) and first is not None and last is not None:
        return TensorType(dtype, (dims_sub(last[0], first[0]),))
    return TensorType(dtype, (None,))


def _constant_of_shape(shape: np.ndarray, *, value: Any = None) -> np.ndarray:
    fill = np.zeros((), np.float32) if value is None else np.asarray(value)
    if fill.size != 1:
        raise ShapeError(f"ConstantOfShape: value must hold one element, got shape {fill.shape}")
    dims = tuple(int(s) for s in np.asarray(shape).reshape(-1))
    if min(dims, default=0) < 0:
        raise ShapeError(f"ConstantOfShape: negative dimension in {list(dims)}")
    return np.full(dims, fill.reshape(()), dtype=fill.dtype)


def _constant_of_shape_infer(
    ctx: InferContext, shape: TensorType, *, value: Any = None
) -> TensorType:
    check_dtype(shape, (D.int64,), "ConstantOfShape shape")
    dtype = D.float32 if value is None else np.asarray(value).dtype
    dims = ctx.dims(0)
    if dims is not None:
        return TensorType(dtype, dims)
    n = shape.shape[0] if shape.shape else None
    return TensorType(dtype, unknown_dims(n, "ConstantOfShape's shape input"))


register(
    OpDef(
        "Size",
        19,
        _size,
        _size_infer,
        None,
        no_vjp="its output is an integer count",
        shape_only=True,
    )
)
register(
    OpDef(
        "Range",
        11,
        _range,
        _range_infer,
        None,
        no_vjp="its inputs are bounds of an index sequence (a step function of them)",
    )
)
register(
    OpDef(
        "ConstantOfShape",
        20,
        _constant_of_shape,
        _constant_of_shape_infer,
        None,
        no_vjp="its only input is an integer shape",
    )
)


# ---------------------------------------------------------------- Flatten


def _flatten_axis(axis: int, rank: int) -> int:
    if not -rank <= axis <= rank:
        raise ShapeError(
            f"Flatten: axis {axis} is out of range for rank {rank} (expected {-rank}..{rank})"
        )
    return axis + rank if axis < 0 else axis


def _flatten(x: np.ndarray, *, axis: int = 1) -> np.ndarray:
    a = _flatten_axis(axis, x.ndim)
    return np.reshape(x, (math.prod(x.shape[:a]), math.prod(x.shape[a:])))


def _flatten_infer(ctx: InferContext, x: TensorType, *, axis: int = 1) -> TensorType:
    if x.shape is None:
        return TensorType(x.dtype, (None, None))
    a = _flatten_axis(axis, len(x.shape))
    return TensorType(x.dtype, (_prod(x.shape[:a]), _prod(x.shape[a:])))


def _flatten_vjp(ctx: VjpContext, g: Any, x: Any, *, axis: int) -> list[Any]:
    return [op.Reshape(g, shape_of(x))]


register(
    OpDef(
        "Flatten",
        13,
        _flatten,
        _flatten_infer,
        _flatten_vjp,
        saves="none",
        view=True,
        symbolic=True,
        reshape=True,
    )
)
