"""Image and detection ops.

Resize, GridSample, AffineGrid, Col2Im, CenterCropPad, RoiAlign, NonMaxSuppression, MaxUnpool.

Resize is separable: along each resized axis the output is a constant matrix (output size x
input size) times the input, so the kernel applies one matrix per axis and the vjp applies
their transposes with ``MatMul``, in every mode (nearest, linear, cubic, antialiased).
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.errors import ShapeError, UnsupportedOpError
from ir.ops.grad_util import known_value, shape_of
from ir.ops.infer import normalize_axis
from ir.ops.registry import InferContext, OpDef, VjpContext, ints, op, register, scalar
from ir.types import Dim, TensorType


def _along(g: Any, w: np.ndarray, axis: int) -> Any:
    """``g`` with axis ``axis`` contracted against the rows of ``w`` (a registry MatMul)."""
    perm = [*range(axis), *range(axis + 1, g.ndim), axis]
    moved = op.MatMul(op.Transpose(g, perm=perm), w)
    return op.Transpose(moved, perm=[int(i) for i in np.argsort(perm)])


# ---------------------------------------------------------------- Resize

_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")


def _resize_axes(
    shape: tuple[int, ...],
    roi: np.ndarray | None,
    scales: np.ndarray | None,
    sizes: np.ndarray | None,
    axes: list[int] | None,
    policy: str,
) -> list[tuple[int, int, float, tuple[float, float] | None]]:
    """(axis, output size, scale, roi pair) of every axis, ONNX Resize-19's rules."""
    rank = len(shape)
    picked = list(range(rank)) if axes is None else [normalize_axis(a, rank) for a in axes]
    roi = None if roi is None or roi.size == 0 else roi.reshape(-1).astype(np.float64)
    have_sizes = sizes is not None and sizes.size > 0
    if not have_sizes and (scales is None or scales.size == 0):
        raise ShapeError("Resize: one of scales and sizes must be given")
    given = (sizes if have_sizes else scales).reshape(-1)  # type: ignore[union-attr]
    if len(given) != len(picked):
        raise ShapeError(f"Resize: {len(given)} scales/sizes for {len(picked)} axes")
    scale = [1.0] * rank
    out = list(shape)
    for i, a in enumerate(picked):
        if have_sizes:
            out[a] = int(given[i])
            scale[a] = out[a] / shape[a]
        else:
            scale[a] = float(given[i])
            out[a] = int(scale[a] * shape[a])
    if have_sizes and policy != "stretch":
        if policy not in ("not_larger", "not_smaller"):
            raise ShapeError(f"Resize: keep_aspect_ratio_policy {policy!r} is unknown")
        pick = min if policy == "not_larger" else max
        common = pick(scale[a] for a in picked)
        for a in picked:
            scale[a], out[a] = common, int(common * shape[a] + 0.5)
    plan = []
    for i, a in enumerate(picked):
        pair = None if roi is None else (float(roi[i]), float(roi[len(picked) + i]))
        plan.append((a, out[a], scale[a], pair))
    return plan


def _source_coords(
    mode: str, n_out: int, n_in: int, scale: float, roi: tuple[float, float] | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Input coordinate of each output index, and which ones extrapolate (crop mode)."""
    y = np.arange(n_out, dtype=np.float64)
    width = scale * n_in
    if mode == "align_corners":
        return (np.zeros(n_out) if width == 1 else y * (n_in - 1) / (width - 1)), None
    if mode == "asymmetric":
        return y / scale, None
    if mode == "pytorch_half_pixel":
        return (np.full(n_out, -0.5) if width == 1 else (y + 0.5) / scale - 0.5), None
    if mode == "half_pixel":
        return (y + 0.5) / scale - 0.5, None
    if mode == "half_pixel_symmetric":
        offset = n_in / 2 * (1 - n_out / width)
        return offset + (y + 0.5) / scale - 0.5, None
    if mode == "tf_crop_and_resize":
        if roi is None:
            raise ShapeError("Resize: tf_crop_and_resize needs the roi input")
        lo, hi = roi
        x = (
            np.full(n_out, (hi - lo) * (n_in - 1) / 2)
            if width == 1
            else y * (hi - lo) * (n_in - 1) / (width - 1)
        )
        x = x + lo * (n_in - 1)
        return x, (x < 0) | (x > n_in - 1)
    raise ShapeError(f"Resize: coordinate_transformation_mode {mode!r} is unknown")


def _coeffs(mode: str, ratio: np.ndarray, scale: float, a: float, antialias: int) -> np.ndarray:
    """Weights of the taps around each coordinate, one row per output index.

    ``ratio`` is in (0, 1]: the distance past the tap just left of the coordinate.
    """
    r = ratio[:, None]
    if antialias and mode in ("linear", "cubic"):
        s = min(scale, 1.0)
        reach = 1.0 if mode == "linear" else 2.0
        start = int(np.floor(-reach / s) + 1)
        t = (np.arange(start, 2 - start) - r) * s
        w = np.clip(1 - np.abs(t), 0, 1) if mode == "linear" else _cubic(np.abs(t), a)
        return w / w.sum(axis=1, keepdims=True)
    if mode == "linear":
        return np.concatenate([1 - r, r], axis=1)
    if mode == "cubic":
        return _cubic(np.abs(np.arange(-1, 3) - r), a)
    raise ShapeError(f"Resize: mode {mode!r} is unknown")


def _cubic(t: np.ndarray, a: float) -> np.ndarray:
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return np.where(t <= 1, near, np.where(t < 2, far, 0.0))


def _nearest_index(x: np.ndarray, n_in: int, nearest_mode: str) -> np.ndarray:
    base = np.floor(x)
    frac = x - base
    if nearest_mode == "round_prefer_floor":
        up = frac > 0.5
    elif nearest_mode == "round_prefer_ceil":
        up = frac >= 0.5
    elif nearest_mode == "floor":
        up = np.zeros_like(frac, dtype=bool)
    elif nearest_mode == "ceil":
        up = frac > 0
    else:
        raise ShapeError(f"Resize: nearest_mode {nearest_mode!r} is not one of {_NEAREST}")
    return np.clip(base + up, 0, n_in - 1).astype(np.intp)


def _axis_matrix(
    n_in: int, n_out: int, scale: float, roi: tuple[float, float] | None, attrs: dict[str, Any]
) -> tuple[np.ndarray, np.ndarray | None]:
    """The (n_out, n_in) interpolation matrix of one axis and its extrapolated rows."""
    x, outside = _source_coords(attrs["coordinate_transformation_mode"], n_out, n_in, scale, roi)
    w = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    if attrs["mode"] == "nearest":
        if attrs["antialias"]:
            raise UnsupportedOpError("Resize: antialias is not defined for mode='nearest'")
        w[rows, _nearest_index(x, n_in, attrs["nearest_mode"])] = 1.0
    else:
        base = np.floor(x)
        ratio = np.where(x == base, 1.0, x - base)
        c = _coeffs(attrs["mode"], ratio, scale, attrs["cubic_coeff_a"], attrs["antialias"])
        n = c.shape[1]
        # The n taps nearest the coordinate, ties to the left: they start n/2 - 1 left of
        # the tap just before it (one more when the coordinate is an exact integer).
        left = np.where(x == base, base - 1, base).astype(np.int64)
        taps = left[:, None] + np.arange(n) - (n // 2 - 1)
        if attrs["exclude_outside"]:
            c = np.where((taps < 0) | (taps >= n_in), 0.0, c)
            total = c.sum(axis=1, keepdims=True)
            c = c / np.where(total == 0, 1.0, total)
        np.add.at(w, (np.repeat(rows, n), np.clip(taps, 0, n_in - 1).reshape(-1)), c.reshape(-1))
    if outside is not None:
        w[outside] = 0.0
    return w, outside


def _resize_plan(
    shape: tuple[int, ...], roi: Any, scales: Any, sizes: Any, attrs: dict[str, Any]
) -> list[tuple[int, np.ndarray, np.ndarray | None]]:
    """(axis, matrix, extrapolated rows) of every axis that is not left as it is."""
    plan = []
    for axis, n_out, scale, pair in _resize_axes(
        shape, roi, scales, sizes, attrs["axes"], attrs["keep_aspect_ratio_policy"]
    ):
        n_in = shape[axis]
        trivial_roi = pair is None or (math.isclose(pair[0], 0) and math.isclose(pair[1], 1))
        if math.isclose(scale, 1.0) and n_out == n_in and trivial_roi:
            continue  # the identity, as in ONNX's reference
        w, outside = _axis_matrix(n_in, n_out, scale, pair, attrs)
        plan.append((axis, w, outside))
    return plan


def _resize(
    x: np.ndarray,
    roi: np.ndarray | None = None,
    scales: np.ndarray | None = None,
    sizes: np.ndarray | None = None,
    *,
    antialias: int = 0,
    axes: list[int] | None = None,
    coordinate_transformation_mode: str = "half_pixel",
    cubic_coeff_a: float = -0.75,
    exclude_outside: int = 0,
    extrapolation_value: float = 0.0,
    keep_aspect_ratio_policy: str = "stretch",
    mode: str = "nearest",
    nearest_mode: str = "round_prefer_floor",
) -> np.ndarray:
    attrs = dict(locals())
    plan = _resize_plan(x.shape, roi, scales, sizes, attrs)
    y = x.astype(np.float64)
    for axis, w, outside in plan:
        if mode == "nearest":  # a gather: exact, and inf/nan stay where they are
            y = np.take(y, np.argmax(w, axis=1), axis=axis)
        else:
            y = np.moveaxis(np.tensordot(w, y, axes=([1], [axis])), 0, axis)
        if outside is not None and outside.any():
            where = outside.reshape((-1,) + (1,) * (y.ndim - axis - 1))
            y = np.where(where, extrapolation_value, y)
    if x.dtype.kind in "iu":
        info = np.iinfo(x.dtype)
        y = np.clip(np.round(y), info.min, info.max)
    return np.asarray(y).astype(x.dtype)


def _resize_infer(
    ctx: InferContext,
    x: TensorType,
    roi: TensorType | None = None,
    scales: TensorType | None = None,
    sizes: TensorType | None = None,
    **attrs: Any,
) -> TensorType:
    if x.shape is None:
        return TensorType(x.dtype, None)
    rank = len(x.shape)
    sc, sz, r = ctx.value(2), ctx.value(3), ctx.value(1)
    known = (sz is not None and sz.size) or (sc is not None and sc.size)
    if not known or not x.is_static:
        axes = range(rank) if attrs["axes"] is None else attrs["axes"]
        resized = {normalize_axis(a, rank) for a in axes}
        return TensorType(
            x.dtype, tuple(None if i in resized else d for i, d in enumerate(x.shape))
        )
    shape = tuple(int(d) for d in x.shape)  # type: ignore[arg-type]
    out: list[Dim] = list(shape)
    for axis, n_out, _, _ in _resize_axes(
        shape, r, sc, sz, attrs["axes"], attrs["keep_aspect_ratio_policy"]
    ):
        out[axis] = n_out
    return TensorType(x.dtype, tuple(out))


def _resize_vjp(
    ctx: VjpContext,
    g: Any,
    x: Any,
    roi: Any = None,
    scales: Any = None,
    sizes: Any = None,
    **attrs: Any,
) -> list[Any]:
    given = [known_value(v) for v in (roi, scales, sizes)]
    if not all(isinstance(d, int) for d in x.shape) or any(
        v is None and c is not None for v, c in zip(given, (roi, scales, sizes), strict=True)
    ):
        raise UnsupportedOpError(
            "Resize: the gradient needs a static input shape and constant roi, scales and sizes"
        )
    roi_v, scales_v, sizes_v = given
    plan = _resize_plan(tuple(x.shape), roi_v, scales_v, sizes_v, attrs)
    for axis, w, _ in reversed(plan):
        g = _along(g, w.astype(x.dtype), axis)
    return [g, None, None, None]


register(OpDef("Resize", 19, _resize, _resize_infer, _resize_vjp, saves="none"))


# ---------------------------------------------------------------- GridSample


def _reflect(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    """Coordinates folded back into [lo, hi] by reflecting at the borders."""
    span = hi - lo
    below, above = v < lo, v > hi
    dx = np.where(below, lo - v, v - hi)
    with np.errstate(divide="ignore", invalid="ignore"):
        n = np.trunc(dx / span) if span > 0 else np.zeros_like(dx)
    r = dx - n * span
    even = n % 2 == 0
    low_side = np.where(even, lo + r, hi - r)
    high_side = np.where(even, hi - r, lo + r)
    return np.where(below, low_side, np.where(above, high_side, v))


def _grid_taps(
    u: np.ndarray, d: int, align_corners: int, mode: str, padding_mode: str
) -> list[tuple[np.ndarray, np.ndarray]]:
    """(index, weight) of each tap along one spatial axis; weight 0 where a tap reads padding."""
    x = (u + 1) / 2 * (d - 1) if align_corners else ((u + 1) * d - 1) / 2
    if mode == "nearest":
        x = np.rint(x)
    lo, hi = (0.0, d - 1.0) if align_corners else (-0.5, d - 0.5)
    if padding_mode == "border":
        x = np.where((x < lo) | (x > hi), np.clip(x, 0, d - 1), x)
    elif padding_mode == "reflection":
        x = _reflect(x, lo, hi)
    elif padding_mode != "zeros":
        raise ShapeError(f"GridSample: padding_mode {padding_mode!r} is unknown")
    if mode == "nearest":
        taps = [(np.trunc(x), np.ones_like(x))]
    else:
        base = np.floor(x)
        t = x - base
        if mode == "linear":
            taps = [(base, 1 - t), (base + 1, t)]
        elif mode == "cubic":
            w = _cubic(np.abs(np.stack([t + 1, t, 1 - t, 2 - t])), -0.75)
            taps = [(base + k - 1, w[k]) for k in range(4)]
        else:
            raise ShapeError(f"GridSample: mode {mode!r} is unknown")
    out = []
    for i, w in taps:
        if padding_mode == "zeros":
            w = np.where((i >= 0) & (i <= d - 1), w, 0.0)
        elif padding_mode == "reflection":
            i = np.trunc(_reflect(i, lo, hi))
        out.append((np.clip(i, 0, d - 1).astype(np.intp), w))
    return out


def _grid_sample(
    x: np.ndarray,
    grid: np.ndarray,
    *,
    align_corners: int = 0,
    mode: str = "linear",
    padding_mode: str = "zeros",
) -> np.ndarray:
    n, c, *dims = x.shape
    nd = len(dims)
    if grid.ndim != nd + 2 or grid.shape[-1] != nd or grid.shape[0] != n:
        raise ShapeError(
            f"GridSample: grid {list(grid.shape)} does not fit X {list(x.shape)}; expected "
            f"[{n}, ..., {nd}] with {nd} spatial axes"
        )
    g = grid.astype(np.float64)
    # grid's last axis lists coordinates innermost axis first (x, y, z).
    taps = [
        _grid_taps(g[..., nd - 1 - i], d, align_corners, mode, padding_mode)
        for i, d in enumerate(dims)
    ]
    batch = np.arange(n).reshape((n,) + (1,) * (grid.ndim - 2))
    xt = np.moveaxis(x.astype(np.float64), 1, -1)  # (N, *D, C): a gather reads channel rows
    y = np.zeros((*grid.shape[:-1], c))
    for combo in itertools.product(*taps):
        w = np.prod([wk for _, wk in combo], axis=0)
        y += w[..., None] * xt[(batch, *(ik for ik, _ in combo))]
    return np.moveaxis(y, -1, 1).astype(x.dtype)


def _grid_sample_infer(
    ctx: InferContext, x: TensorType, grid: TensorType, **attrs: Any
) -> TensorType:
    if x.shape is None or grid.shape is None:
        return TensorType(x.dtype, None)
    if len(grid.shape) != len(x.shape):
        raise ShapeError(f"GridSample: X {list(x.shape)} and grid {list(grid.shape)} ranks differ")
    return TensorType(x.dtype, (x.shape[0], x.shape[1], *grid.shape[1:-1]))


def _grid_vjp_taps(
    u: Any, d: int, align_corners: int, mode: str, padding_mode: str
) -> tuple[list[tuple[Any, Any, Any]], Any]:
    """Registry-op form of ``_grid_taps`` (linear and nearest, zeros and border padding).

    Returns (index, weight, d weight / d coordinate) per tap, and d coordinate / d ``u``.
    """
    scale = (d - 1) / 2 if align_corners else d / 2
    x = op.Add(op.Mul(u, scalar(scale, u)), scalar((d - 1) / 2, u))
    if mode == "nearest":
        x = op.Round(x)
    dx = scalar(scale, u)
    if padding_mode == "border":
        inside = op.And(op.GreaterOrEqual(x, scalar(0.0, u)), op.LessOrEqual(x, scalar(d - 1.0, u)))
        dx = op.Mul(op.Cast(inside, to=D.to_onnx(u.dtype)), dx)
        x = op.Clip(x, scalar(0.0, u), scalar(d - 1.0, u))
    base = op.Floor(x)
    i0 = op.Cast(base, to=D.to_onnx(D.int64))
    if mode == "nearest":
        taps = [(i0, op.Expand(scalar(1.0, u), shape_of(u)), 0.0)]
    else:
        t = op.Sub(x, base)
        i1 = op.Add(i0, ints(1))
        taps = [(i0, op.Sub(scalar(1.0, u), t), -1.0), (i1, t, 1.0)]
    out = []
    for i, w, dw in taps:
        if padding_mode == "zeros":
            valid = op.And(op.GreaterOrEqual(i, ints(0)), op.LessOrEqual(i, ints(d - 1)))
            w = op.Mul(w, op.Cast(valid, to=D.to_onnx(u.dtype)))
            dw_t = op.Cast(valid, to=D.to_onnx(u.dtype)) if dw else None
        else:
            dw_t = op.Expand(scalar(1.0, u), shape_of(u)) if dw else None
        clamped = op.Max(op.Min(i, ints(d - 1)), ints(0))
        out.append((clamped, w, dw_t if dw_t is None else op.Mul(dw_t, scalar(dw, u))))
    return out, dx


def _grid_sample_vjp(
    ctx: VjpContext, g: Any, x: Any, grid: Any, *, align_corners: int, mode: str, padding_mode: str
) -> list[Any]:
    if mode not in ("linear", "nearest") or padding_mode not in ("zeros", "border"):
        raise UnsupportedOpError(
            f"GridSample: the gradient supports mode linear/nearest with padding zeros/border, "
            f"not mode={mode!r}, padding_mode={padding_mode!r}"
        )
    if not all(isinstance(s, int) for s in (*x.shape, *grid.shape)):
        raise UnsupportedOpError("GridSample: the gradient needs static X and grid shapes")
    n, _c, *dims = x.shape
    nd = len(dims)
    to_last = [0, *range(2, nd + 2), 1]
    xt, gt = op.Transpose(x, perm=to_last), op.Transpose(g, perm=to_last)
    taps = []
    for i, d in enumerate(dims):
        u = op.Gather(grid, ints(nd - 1 - i), axis=-1)
        taps.append(_grid_vjp_taps(u, d, align_corners, mode, padding_mode))
    batch = np.broadcast_to(np.arange(n).reshape((n,) + (1,) * (nd + 1)), (n, *grid.shape[1:-1], 1))
    gx = op.Expand(scalar(0.0, x), shape_of(xt)) if ctx.needs_input_grad[0] else None
    d_coord: list[Any] = [None] * nd
    for combo in itertools.product(*(t for t, _ in taps)):
        index = op.Concat(batch, *(op.Unsqueeze(i, ints([-1])) for i, _, _ in combo), axis=-1)
        weights = [w for _, w, _ in combo]
        if gx is not None:
            upd = op.Mul(gt, op.Unsqueeze(_product(weights), ints([-1])))
            gx = op.ScatterND(gx, index, upd, reduction="add")
        if ctx.needs_input_grad[1] and mode == "linear":
            dot = op.ReduceSum(op.Mul(gt, op.GatherND(xt, index)), ints([-1]), keepdims=0)
            for k, (_, _, dw) in enumerate(combo):
                term = op.Mul(dot, _product([dw, *weights[:k], *weights[k + 1 :]]))
                d_coord[k] = term if d_coord[k] is None else op.Add(d_coord[k], term)
    ggrid = None
    if ctx.needs_input_grad[1]:
        if mode == "nearest":
            ggrid = op.Expand(scalar(0.0, grid), shape_of(grid))
        else:
            parts = [op.Mul(d_coord[i], taps[i][1]) for i in reversed(range(nd))]
            ggrid = op.Concat(*(op.Unsqueeze(p, ints([-1])) for p in parts), axis=-1)
    if gx is not None:
        gx = op.Transpose(gx, perm=[0, nd + 1, *range(1, nd + 1)])
    return [gx, ggrid]


def _product(values: list[Any]) -> Any:
    out = values[0]
    for v in values[1:]:
        out = op.Mul(out, v)
    return out


register(OpDef("GridSample", 22, _grid_sample, _grid_sample_infer, _grid_sample_vjp, saves="all"))
