"""Pooling: MaxPool, AveragePool, LpPool, GlobalAveragePool, GlobalMaxPool; window geometry.

MaxPool, AveragePool and LpPool implement version 22, whose ceil mode drops a last window
that would start in the end padding (as onnxruntime does at every version).

The sliding-window attributes and geometry shared with ``ir/ops/conv.py`` and
``ir/ops/quant.py`` live here: :class:`WindowAttrs` declares auto_pad / dilations /
kernel_shape / pads / strides once, with their defaults and checks (:class:`PoolAttrs` adds
ceil_mode), ``window`` turns them into explicit pads, ``windows`` gives a strided view of
every window, and ``window_adjoint`` spreads a per-window gradient back over the input (a
ConvTranspose), which is the vjp of Conv's input and of the summing pools.

Pool kernels reduce the window view. MaxPool takes the first maximum by one argmax, which
gives its optional Indices output (the flat index into X of that maximum) at the cost of
an index computation on the output's size. AveragePool divides the
sum by the number of taps counted: inside the input, or inside the padded input with
``count_include_pad``, never the taps ``ceil_mode`` adds past the end. LpPool takes
``(sum |x|^p)^(1/p)`` over the taps inside.
With ``ceil_mode`` a last window that would start in the end padding is dropped, as
onnxruntime does and as ONNX states from version 22 of these ops (its shape inference for
the opset-20 versions keeps that window).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ir.dtypes import FLOATING, float16, float32, int8, int64, to_onnx, uint8
from ir.errors import ShapeError, UnsupportedOpError
from ir.ops.grad_util import reduced_count, shape_of
from ir.ops.infer import check_dtype
from ir.ops.registry import InferContext, OpDef, VjpContext, ints, op, register, scalar, with_attrs
from ir.types import Dim, TensorType

AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
Ints = Sequence[int] | None


# ---------------------------------------------------------------- window geometry


@dataclass(frozen=True)
class Window:
    """A sliding window over the spatial axes.

    Attributes:
        kernel: taps per axis.
        strides: step between windows.
        dilations: step between taps.
        begin, end: zero padding before and after each axis.
    """

    kernel: tuple[int, ...]
    strides: tuple[int, ...]
    dilations: tuple[int, ...]
    begin: tuple[int, ...]
    end: tuple[int, ...]

    @property
    def span(self) -> tuple[int, ...]:
        """Extent of one window, dilation included."""
        return tuple((k - 1) * d + 1 for k, d in zip(self.kernel, self.dilations, strict=True))

    @property
    def pads(self) -> list[int]:
        """ONNX ``pads``: every begin, then every end."""
        return [*self.begin, *self.end]

    def out(self, sizes: Sequence[Dim]) -> tuple[Dim, ...]:
        """Number of windows per axis (floor division); None where a size is symbolic."""
        return tuple(
            _count(n, b + e - w, s)
            for n, b, e, w, s in zip(
                sizes, self.begin, self.end, self.span, self.strides, strict=True
            )
        )


def _count(n: Dim, extra: int, s: int) -> Dim:
    if not isinstance(n, int):  # a symbol survives only where windows map 1:1 onto positions
        return n if s == 1 and extra == -1 else None
    count = (n + extra) // s + 1
    if count < 1:
        raise ShapeError(f"a window spans {-extra} positions, more than the {n} (padded) ones")
    return count


def spatial_attr(values: Ints, nsp: int, default: int, name: str) -> tuple[int, ...]:
    """A per-axis attribute (strides, dilations), filled with ``default`` when absent.

    Raises:
        ShapeError: the attribute does not have one entry per spatial axis.
    """
    if values is None or len(values) == 0:
        return (default,) * nsp
    if len(values) != nsp:
        raise ShapeError(f"{name} has {len(values)} entries for {nsp} spatial axes")
    out = tuple(int(v) for v in values)
    if min(out) < 1:
        raise ShapeError(f"{name} must be positive, got {list(out)}")
    return out


def _same_total(n: Dim, span: int, s: int) -> int:
    if isinstance(n, int):
        return max(0, (-(-n // s) - 1) * s + span - n)
    if s == 1:
        return span - 1
    raise UnsupportedOpError(
        f"SAME padding with stride {s} over the symbolic axis {n!r}: its pads depend on the "
        "size, which is not known"
    )


PAD_GROWTH = 16
"""Padding may grow an input at most this many times (or to ``PAD_FLOOR`` elements)."""
PAD_FLOOR = 1 << 24


def windows(x: np.ndarray, win: Window, fill: Any = 0) -> np.ndarray:
    """A read-only view ``(N, C, *out, *kernel)`` of ``x``'s windows, padded with ``fill``.

    Raises:
        ShapeError: the pads would grow ``x`` past ``PAD_GROWTH`` times its size (and past
            ``PAD_FLOOR`` elements): a huge window over a small input, which would allocate
            the padding although the taps there read only ``fill``.
    """
    widths = [(0, 0), (0, 0), *zip(win.begin, win.end, strict=True)]
    padded_shape = [n + b + e for n, (b, e) in zip(x.shape, widths, strict=True)]
    size = math.prod(padded_shape)
    if size > max(PAD_GROWTH * x.size, PAD_FLOOR):
        raise ShapeError(
            f"a window of {list(win.span)} positions with pads {win.pads} would pad the input "
            f"{list(x.shape)} to {padded_shape}; graphcap pads an input at most "
            f"{PAD_GROWTH} times its size (or to {PAD_FLOOR} elements)"
        )
    padded = np.pad(x, widths, constant_values=fill) if any(win.pads) else x
    view = sliding_window_view(padded, win.span, axis=tuple(range(2, x.ndim)))
    steps = (
        *(slice(None, None, s) for s in win.strides),
        *(slice(None, None, d) for d in win.dilations),
    )
    return view[(slice(None), slice(None), *steps)]


def window_adjoint(g: Any, w: Any, x: Any, win: Window, group: int) -> Any:
    """Spread per-window values ``g`` back over ``x``'s positions: a ConvTranspose with ``w``.

    This is the adjoint of ``Conv(x, w)`` over ``win`` (``group`` groups). Positions past
    the last window get zeros: a smaller end pad, else output_padding (a Pad or crop by the
    size difference when sizes are symbolic).
    """
    sizes, outs = tuple(x.shape[2:]), tuple(g.shape[2:])
    attrs: dict[str, Any] = {
        "strides": list(win.strides),
        "dilations": list(win.dilations),
        "group": group,
    }
    if all(isinstance(d, int) for d in (*sizes, *outs)):
        # The last window ends at (out - 1) * stride + span, in padded coordinates.
        ends = [
            (o - 1) * s + span - n - b
            for o, s, span, n, b in zip(outs, win.strides, win.span, sizes, win.begin, strict=True)
        ]
        if min(ends) < 0:
            attrs["output_padding"] = [max(0, -e) for e in ends]
        return op.ConvTranspose(g, w, pads=[*win.begin, *(max(0, e) for e in ends)], **attrs)
    if max(win.strides) == 1:  # every position is read: the pads are the Conv's
        return typed_like(op.ConvTranspose(g, w, pads=win.pads, **attrs), x)
    # The unread tail (< stride) depends on the sizes: crop nothing at the end, then pad or
    # crop the end to x's size.
    gx = op.ConvTranspose(g, w, pads=[*win.begin, *(0,) * len(sizes)], **attrs)
    rest = op.Sub(op.Shape(x), op.Shape(gx))
    return typed_like(op.Pad(gx, op.Concat(ints([0] * x.ndim), rest, axis=0)), x)


def typed_like(v: Any, x: Any) -> Any:
    """``v``, reshaped to ``x``'s shape where its inferred shape says less (symbolic sizes)."""
    return v if tuple(v.shape) == tuple(x.shape) else op.Reshape(v, shape_of(x))


# ---------------------------------------------------------------- pool geometry


@dataclass(frozen=True)
class PoolWindow:
    """A pool's window and its number of windows per axis (``ceil_mode`` applied)."""

    win: Window
    out: tuple[Dim, ...]

    def reach(self, sizes: Sequence[int]) -> Window:
        """``win`` with the end pads grown so that the last (``ceil_mode``) window fits."""
        w = self.win
        end = tuple(
            max(e, (o - 1) * s + span - n - b)
            for e, o, s, span, n, b in zip(
                w.end, self.out, w.strides, w.span, sizes, w.begin, strict=True
            )
        )
        return Window(w.kernel, w.strides, w.dilations, w.begin, end)


# ---------------------------------------------------------------- shared attributes


@dataclass(frozen=True)
class WindowAttrs:
    """The sliding-window attributes of the convolutions and pools, with ONNX's defaults.

    Conv, ConvTranspose, ConvInteger, QLinearConv, MaxPool, AveragePool and LpPool take them
    through ``registry.with_attrs``, so they are declared, defaulted and checked here once.
    Absent lists mean ONNX's defaults (stride and dilation 1, no pads, the kernel from the
    weights).

    Raises:
        ShapeError: ``auto_pad`` is not one of ``AUTO_PADS``.
    """

    auto_pad: str = "NOTSET"
    dilations: Ints = None
    kernel_shape: Ints = None
    pads: Ints = None
    strides: Ints = None

    def __post_init__(self) -> None:
        if self.auto_pad not in AUTO_PADS:
            raise ShapeError(f"auto_pad must be one of {AUTO_PADS}, got {self.auto_pad!r}")

    @property
    def same(self) -> bool:
        """Whether auto_pad asks for SAME padding (``ceil(size / stride)`` windows)."""
        return self.auto_pad in ("SAME_UPPER", "SAME_LOWER")

    def window(self, sizes: Sequence[Dim], kernel: Sequence[int]) -> Window:
        """The window over spatial ``sizes`` (ints, or symbols where allowed).

        SAME_UPPER / SAME_LOWER pad so that there are ``ceil(size / stride)`` windows, the
        odd pad going at the end (UPPER) or the beginning (LOWER); VALID pads nothing;
        NOTSET uses ``pads``.

        Raises:
            ShapeError: malformed attributes, or negative pads.
            UnsupportedOpError: SAME padding of a symbolic axis with a stride above 1 (its
                pads depend on the size).
        """
        nsp = len(kernel)
        if nsp != len(sizes):
            raise ShapeError(f"kernel_shape has {nsp} entries for {len(sizes)} spatial axes")
        if min(kernel, default=1) < 1:
            raise ShapeError(f"kernel_shape must be positive, got {list(kernel)}")
        strides = spatial_attr(self.strides, nsp, 1, "strides")
        dil = spatial_attr(self.dilations, nsp, 1, "dilations")
        kern = tuple(int(k) for k in kernel)
        if self.same:
            begin, end = [], []
            for n, k, s, d in zip(sizes, kern, strides, dil, strict=True):
                total = _same_total(n, (k - 1) * d + 1, s)
                small = total // 2
                begin.append(small if self.auto_pad == "SAME_UPPER" else total - small)
                end.append(total - begin[-1])
            return Window(kern, strides, dil, tuple(begin), tuple(end))
        pads = self.pads
        if self.auto_pad == "VALID" or pads is None or len(pads) == 0:
            return Window(kern, strides, dil, (0,) * nsp, (0,) * nsp)
        if len(pads) != 2 * nsp or min(pads) < 0:
            raise ShapeError(f"pads must be {2 * nsp} non-negative ints, got {list(pads)}")
        p = tuple(int(v) for v in pads)
        return Window(kern, strides, dil, p[:nsp], p[nsp:])

    def same_out(self, sizes: Sequence[Dim], nsp: int) -> tuple[Dim, ...] | None:
        """``ceil(size / stride)`` windows per axis under SAME padding, else None.

        Shape rules use it: it needs no pads, so it also holds for symbolic sizes.
        """
        if not self.same:
            return None
        steps = spatial_attr(self.strides, nsp, 1, "strides")
        return tuple(
            -(-n // s) if isinstance(n, int) else (n if s == 1 else None)
            for n, s in zip(sizes, steps, strict=True)
        )


@dataclass(frozen=True)
class PoolAttrs(WindowAttrs):
    """The pools' window attributes: :class:`WindowAttrs` and ``ceil_mode``."""

    ceil_mode: int = 0

    def pool_window(self, sizes: Sequence[Dim]) -> PoolWindow:
        """The pool's window over spatial ``sizes``.

        With ``ceil_mode`` (explicit or VALID padding) a partial window at the end counts,
        as long as it starts inside the input or its begin padding.

        Raises:
            ShapeError: no kernel_shape, or malformed attributes.
        """
        if not self.kernel_shape:
            raise ShapeError("kernel_shape is required")
        win = self.window(sizes, self.kernel_shape)
        if not self.ceil_mode or self.same:
            return PoolWindow(win, win.out(sizes))
        out = tuple(
            _ceil_count(n, b, e, span, s)
            for n, b, e, span, s in zip(
                sizes, win.begin, win.end, win.span, win.strides, strict=True
            )
        )
        return PoolWindow(win, out)


def _ceil_count(n: Dim, b: int, e: int, span: int, s: int) -> Dim:
    if not isinstance(n, int):
        return None
    if n + b + e < span:
        raise ShapeError(f"a window spans {span} positions, more than the {n + b + e} padded ones")
    count = -(-(n + b + e - span) // s) + 1
    return count - 1 if (count - 1) * s >= n + b else count


def _pool_view(x: np.ndarray, pw: PoolWindow, fill: Any) -> np.ndarray:
    """The ``(N, C, *out, *kernel)`` view of a pool's windows; taps past the input read fill."""
    view = windows(x, pw.reach(x.shape[2:]), fill)
    return view[(slice(None), slice(None), *(slice(0, o) for o in pw.out))]


def _window_axes(nsp: int) -> tuple[int, ...]:
    return tuple(range(2 + nsp, 2 + 2 * nsp))


def tap_counts(sizes: Sequence[int], pw: PoolWindow, include_pad: bool) -> np.ndarray:
    """Taps each window counts, shape ``out``: inside the input, or inside the padded input."""
    ones = np.ones((1, 1, *sizes))
    reach = pw.reach(sizes)
    if include_pad:
        ones = np.pad(
            ones, [(0, 0), (0, 0), *zip(reach.begin, pw.win.end, strict=True)], constant_values=1
        )
        grown = tuple(e - pe for e, pe in zip(reach.end, pw.win.end, strict=True))
        reach = Window(reach.kernel, reach.strides, reach.dilations, (0,) * len(sizes), grown)
    view = windows(ones, reach, 0)[(0, 0, *(slice(0, o) for o in pw.out))]
    return view.sum(axis=tuple(range(len(sizes), 2 * len(sizes))))


def _static_sizes(x: Any, what: str) -> tuple[int, ...]:
    sizes = tuple(x.shape[2:])
    if not all(isinstance(d, int) for d in (x.shape[1], *sizes)):
        raise UnsupportedOpError(
            f"the vjp of {what} needs static channel and spatial sizes, got {list(x.shape)}"
        )
    return sizes


def _spread(g: Any, x: Any, win: Window) -> Any:
    """Each window's value added back to every tap it covers (the adjoint of a window sum)."""
    c = x.shape[1]
    ones = np.ones((c, 1, *win.kernel), dtype=x.dtype)
    return window_adjoint(g, ones, x, win, group=c)


def _pool_shape(x: TensorType, attrs: PoolAttrs) -> TensorType:
    if x.shape is None:
        return TensorType(x.dtype, None)
    if len(x.shape) < 3:
        raise ShapeError(f"pooling needs X of shape (N, C, D1, ...), got {list(x.shape)}")
    if not attrs.kernel_shape:
        raise ShapeError("kernel_shape is required")
    out = attrs.same_out(x.shape[2:], len(attrs.kernel_shape))
    if out is None:
        out = attrs.pool_window(x.shape[2:]).out
    return TensorType(x.dtype, (*x.shape[:2], *out))


def _check_rank(x: np.ndarray, what: str) -> None:
    if x.ndim < 3:
        raise ShapeError(f"{what} needs X of shape (N, C, D1, ...), got {list(x.shape)}")


# ---------------------------------------------------------------- MaxPool

_MAX_POOL_TYPES = FLOATING | {int8, uint8}


@with_attrs(PoolAttrs)
def _max_pool(
    x: np.ndarray, *, attrs: PoolAttrs, storage_order: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    _check_rank(x, "MaxPool")
    pw = attrs.pool_window(x.shape[2:])
    low = -np.inf if x.dtype.kind == "f" else np.iinfo(x.dtype).min
    view = _pool_view(x, pw, np.asarray(low, x.dtype))
    nsp = x.ndim - 2
    taps = view.reshape(*view.shape[: 2 + nsp], -1)
    # The first tap holding the max, in row-major order over the window: one argmax pass
    # gives both outputs (a max, a comparison and a masked argmax took 4 passes).
    first = taps.argmax(axis=-1)
    y = np.take_along_axis(taps, first[..., None], axis=-1)[..., 0]
    inside = _inside(x.shape[2:], pw).reshape(*taps.shape[2:-1], -1)
    chosen = np.take_along_axis(np.broadcast_to(inside, taps.shape), first[..., None], axis=-1)
    if not chosen.all():  # a padding tap ties the max (it is -inf or the int minimum)
        first = ((taps == y[..., None]) & inside).argmax(-1)
    return y, _flat_index(x.shape, pw, first, storage_order)


def _inside(sizes: Sequence[int], pw: PoolWindow) -> np.ndarray:
    """Whether each tap of each window is inside the input: shape ``(*out, *kernel)``."""
    w, nsp = pw.win, len(sizes)
    mask = np.ones((1,) * 2 * nsp, dtype=bool)
    for i, (n, o, k, s, d, b) in enumerate(
        zip(sizes, pw.out, w.kernel, w.strides, w.dilations, w.begin, strict=True)
    ):
        pos = np.arange(o)[:, None] * s + np.arange(k)[None, :] * d - b
        shape = [1] * 2 * nsp
        shape[i], shape[nsp + i] = o, k
        mask = mask & ((pos >= 0) & (pos < n)).reshape(shape)
    return mask


def _flat_index(
    shape: Sequence[int], pw: PoolWindow, tap: np.ndarray, storage_order: int
) -> np.ndarray:
    """Flat index into X of each window's chosen tap (column-major within an image if asked)."""
    n, c, sizes = shape[0], shape[1], shape[2:]
    w, nsp = pw.win, len(sizes)
    offsets = np.unravel_index(tap, w.kernel)
    index = np.zeros(tap.shape, dtype=np.int64)
    order = range(nsp) if storage_order == 0 else range(nsp - 1, -1, -1)
    for i in order:
        grid = np.arange(tap.shape[2 + i]).reshape([-1 if a == i else 1 for a in range(nsp)])
        pos = grid * w.strides[i] + offsets[i] * w.dilations[i] - w.begin[i]
        index = index * sizes[i] + pos
    image = np.arange(n * c, dtype=np.int64).reshape(n, c, *(1,) * nsp)
    return image * int(np.prod(sizes)) + index


@with_attrs(PoolAttrs)
def _max_pool_infer(
    ctx: InferContext, x: TensorType, *, attrs: PoolAttrs, storage_order: int = 0
) -> tuple[TensorType, ...]:
    check_dtype(x, _MAX_POOL_TYPES, "MaxPool X")
    y = _pool_shape(x, attrs)
    return y, TensorType(int64, y.shape)


def _max_pool_vjp(
    ctx: VjpContext, grads: Any, x: Any, *, storage_order: int, **attrs: Any
) -> list[Any]:
    g = grads[0] if isinstance(grads, tuple) else grads
    if g is None or not ctx.needs_input_grad[0]:
        return [None]
    # Each output's gradient goes to the input its Indices name (row-major indices needed).
    index = ctx.outputs[1] if storage_order == 0 else op.MaxPool(x, **attrs)[1]
    flat = op.Reshape(op.Expand(scalar(0, g), shape_of(x)), ints([-1]))
    at = op.Reshape(index, ints([-1]))
    spread = op.ScatterElements(flat, at, op.Reshape(g, ints([-1])), axis=0, reduction="add")
    return [op.Reshape(spread, shape_of(x))]


register(OpDef("MaxPool", 22, _max_pool, _max_pool_infer, _max_pool_vjp, num_outputs=2))


# ---------------------------------------------------------------- AveragePool / LpPool


def _window_sum(x: np.ndarray, pw: PoolWindow) -> np.ndarray:
    work = float32 if x.dtype == float16 else x.dtype
    view = _pool_view(x.astype(work, copy=False), pw, 0)
    return view.sum(axis=_window_axes(x.ndim - 2))


@with_attrs(PoolAttrs)
def _average_pool(x: np.ndarray, *, attrs: PoolAttrs, count_include_pad: int = 0) -> np.ndarray:
    _check_rank(x, "AveragePool")
    pw = attrs.pool_window(x.shape[2:])
    counts = tap_counts(x.shape[2:], pw, bool(count_include_pad))
    return (_window_sum(x, pw) / counts).astype(x.dtype)


@with_attrs(PoolAttrs)
def _float_pool_infer(
    ctx: InferContext, x: TensorType, *, attrs: PoolAttrs, **own: Any
) -> TensorType:
    check_dtype(x, FLOATING, "pool X")
    return _pool_shape(x, attrs)


@with_attrs(PoolAttrs)
def _average_pool_vjp(
    ctx: VjpContext, g: Any, x: Any, *, attrs: PoolAttrs, count_include_pad: int
) -> list[Any]:
    sizes = _static_sizes(x, "AveragePool")
    pw = attrs.pool_window(sizes)
    counts = tap_counts(sizes, pw, bool(count_include_pad)).astype(x.dtype)
    return [_spread(op.Div(g, counts), x, pw.win)]


register(
    OpDef("AveragePool", 22, _average_pool, _float_pool_infer, _average_pool_vjp, saves="none")
)


@with_attrs(PoolAttrs)
def _lp_pool(x: np.ndarray, *, attrs: PoolAttrs, p: int = 2) -> np.ndarray:
    _check_rank(x, "LpPool")
    pw = attrs.pool_window(x.shape[2:])
    total = _window_sum(np.abs(x) ** p, pw)
    return (total ** (1.0 / p)).astype(x.dtype)


@with_attrs(PoolAttrs)
def _lp_pool_vjp(ctx: VjpContext, g: Any, x: Any, *, attrs: PoolAttrs, p: int) -> list[Any]:
    # d y / d x_i = y^(1-p) |x_i|^(p-1) sign(x_i), summed over the windows holding x_i.
    pw = attrs.pool_window(_static_sizes(x, "LpPool"))
    y = ctx.outputs[0]
    scaled = g if p == 1 else op.Mul(g, op.Pow(y, scalar(float(1 - p), y)))
    local = x if p == 2 else op.Mul(op.Sign(x), op.Pow(op.Abs(x), scalar(float(p - 1), x)))
    return [op.Mul(_spread(scaled, x, pw.win), local)]


register(OpDef("LpPool", 22, _lp_pool, _float_pool_infer, _lp_pool_vjp))


# ---------------------------------------------------------------- global pools


def _spatial_axes(rank: int) -> tuple[int, ...]:
    return tuple(range(2, rank))


def _global_average_pool(x: np.ndarray) -> np.ndarray:
    _check_rank(x, "GlobalAveragePool")
    return np.mean(x, axis=_spatial_axes(x.ndim), keepdims=True).astype(x.dtype)


def _global_max_pool(x: np.ndarray) -> np.ndarray:
    _check_rank(x, "GlobalMaxPool")
    return np.max(x, axis=_spatial_axes(x.ndim), keepdims=True)


def _global_infer(ctx: InferContext, x: TensorType) -> TensorType:
    check_dtype(x, FLOATING, "global pool X")
    if x.shape is None:
        return x
    if len(x.shape) < 3:
        raise ShapeError(f"global pooling needs X of shape (N, C, D1, ...), got {list(x.shape)}")
    return TensorType(x.dtype, (*x.shape[:2], *(1,) * (len(x.shape) - 2)))


def _global_average_pool_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    axes = ints(list(_spatial_axes(x.ndim)))
    return [op.Expand(op.Div(g, reduced_count(x, axes)), shape_of(x))]


def _global_max_pool_vjp(ctx: VjpContext, g: Any, x: Any) -> list[Any]:
    # The gradient goes to the maxima, split evenly between ties.
    axes = ints(list(_spatial_axes(x.ndim)))
    hit = op.Cast(op.Equal(x, ctx.outputs[0]), to=to_onnx(x.dtype))
    return [op.Mul(hit, op.Div(g, op.ReduceSum(hit, axes, keepdims=1)))]


register(
    OpDef(
        "GlobalAveragePool",
        1,
        _global_average_pool,
        _global_infer,
        _global_average_pool_vjp,
        saves="none",
    )
)
register(OpDef("GlobalMaxPool", 1, _global_max_pool, _global_infer, _global_max_pool_vjp))
