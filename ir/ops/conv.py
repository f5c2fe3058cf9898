"""Convolutions and image normalisations.

Conv and ConvTranspose (1-D, 2-D and 3-D, groups, auto_pad, dilations, output_padding and
output_shape); BatchNormalization, InstanceNormalization and LRN.

The kernels are vectorised im2col: ``sliding_window_view`` gathers the windows, one
batched ``matmul`` per group contracts them (in float64, see ``_matmul_dtype``); ConvTranspose
adds each tap's products at its strided offset (col2im). Each op is the other's adjoint, which gives
the vjp rules: the gradient of Conv's input is a ConvTranspose of the output gradient with
the same weights, the gradient of its weights is a Conv of the input with the output
gradient (roles swapped: batch and channels exchange places, strides and dilations too).
The window attributes and geometry (auto_pad, pads, output sizes) are shared with
``ir/ops/pool.py`` (:class:`~ir.ops.pool.WindowAttrs`); :class:`ConvAttrs` adds ``group``,
and ConvInteger and QLinearConv (``ir/ops/quant.py``) take the same attributes.

BatchNormalization's outputs follow ``training_mode``, as in ONNX: ``(Y,)`` in inference,
``(Y, running_mean, running_var)`` in training (Y then uses the batch statistics).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ir.dtypes import FLOATING, float16, float32, float64, to_onnx
from ir.errors import ShapeError, UnsupportedOpError
from ir.ops.grad_util import reduced_count, shape_of
from ir.ops.infer import check_dtype, same_dtype
from ir.ops.pool import Ints, Window, WindowAttrs, spatial_attr, typed_like, window_adjoint, windows
from ir.ops.registry import InferContext, OpDef, VjpContext, ints, op, register, scalar, with_attrs
from ir.types import Dim, TensorType

# ---------------------------------------------------------------- Conv


@dataclass(frozen=True)
class ConvAttrs(WindowAttrs):
    """The attributes of Conv, ConvInteger and QLinearConv: the window's and ``group``."""

    group: int = 1


def _kernel(w_shape: Sequence[Dim], kernel_shape: Ints) -> tuple[Dim, ...]:
    """The kernel's spatial shape: W's, which the optional attribute must repeat."""
    kernel = tuple(w_shape[2:])
    if kernel_shape is not None and len(kernel_shape) and tuple(kernel_shape) != kernel:
        raise ShapeError(f"kernel_shape {list(kernel_shape)} differs from W's {list(kernel)}")
    return kernel


def _conv_window(x_sizes: Sequence[Dim], w_shape: Sequence[Dim], attrs: WindowAttrs) -> Window:
    kernel = _kernel(w_shape, attrs.kernel_shape)
    if not all(isinstance(k, int) for k in kernel):
        raise UnsupportedOpError(f"weights with a symbolic kernel shape {list(kernel)}")
    return attrs.window(x_sizes, kernel)  # type: ignore[arg-type]


def _check_groups(what: str, c: Dim, wc: Dim, m: Dim, group: int, transpose: bool) -> None:
    if group < 1:
        raise ShapeError(f"{what}: group must be positive, got {group}")
    ok_c = (
        not isinstance(c, int)
        or not isinstance(wc, int)
        or (c == wc if transpose else c == wc * group)
    )
    if not ok_c or (isinstance(m, int) and m % group):
        raise ShapeError(
            f"{what}: X has {c} channels, W has shape starting [{m if not transpose else wc}, "
            f"...] and group={group}: channels must split evenly into the groups"
        )


def _matmul_dtype(dtype: np.dtype) -> np.dtype:
    # Accumulate in float64: BLAS sums a float32 product's columns in different orders, so
    # equal filters would give outputs differing in the last bit, which models built from
    # constant weights (ONNX's light models) amplify into different predictions.
    return float64 if dtype in (float16, float32) else dtype


def conv(x: np.ndarray, w: np.ndarray, b: np.ndarray | None, attrs: ConvAttrs) -> np.ndarray:
    """ONNX Conv of ``x`` with ``w`` (and bias ``b``); the kernel of Conv and the quantized convs.

    Raises:
        ShapeError: ranks, channels, groups or window attributes that do not fit.
    """
    if x.ndim < 3 or w.ndim != x.ndim:
        raise ShapeError(f"Conv: X {list(x.shape)} and W {list(w.shape)} need one rank >= 3")
    n, c = x.shape[:2]
    m, cg = w.shape[:2]
    group = attrs.group
    _check_groups("Conv", c, cg, m, group, transpose=False)
    win = _conv_window(x.shape[2:], w.shape, attrs)
    nsp, work = x.ndim - 2, _matmul_dtype(x.dtype)
    view = windows(x, win)  # (N, C, *out, *k)
    out = view.shape[2 : 2 + nsp]
    sp, kp = range(3, 3 + nsp), range(3 + nsp, 3 + 2 * nsp)
    # im2col: (G, N*out, Cg*k), the one copy of the windows; then one matmul per group.
    cols = view.reshape(n, group, cg, *view.shape[2:]).transpose(1, 0, *sp, 2, *kp)
    cols = cols.reshape(group, -1, cg * int(np.prod(win.kernel))).astype(work, copy=False)
    wm = w.reshape(group, m // group, -1).transpose(0, 2, 1).astype(work, copy=False)
    y = np.matmul(cols, wm).reshape(group, n, *out, m // group)
    y = y.transpose(1, 0, 1 + nsp + 1, *range(2, 2 + nsp)).reshape(n, m, *out)
    if b is not None:
        y = y + b.reshape(-1, *(1,) * nsp)
    return np.ascontiguousarray(y, dtype=x.dtype)


@with_attrs(ConvAttrs)
def _conv(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *, attrs: ConvAttrs
) -> np.ndarray:
    return conv(x, w, b, attrs)


def conv_shape(x: TensorType, w: TensorType, attrs: ConvAttrs) -> tuple[Dim, ...] | None:
    """Conv's output shape (None when a rank is unknown); the quantized convs share it.

    Raises:
        ShapeError: ranks, channels, groups or window attributes that do not fit.
    """
    if x.shape is None or w.shape is None:
        return None
    if len(x.shape) < 3 or len(w.shape) != len(x.shape):
        raise ShapeError(f"Conv: X {list(x.shape)} and W {list(w.shape)} need one rank >= 3")
    _check_groups("Conv", x.shape[1], w.shape[1], w.shape[0], attrs.group, transpose=False)
    kernel = _kernel(w.shape, attrs.kernel_shape)
    if not all(isinstance(k, int) for k in kernel):  # weights computed in a vjp rule
        return (x.shape[0], w.shape[0], *(None,) * len(kernel))
    out = attrs.same_out(x.shape[2:], len(kernel))
    if out is None:
        out = _conv_window(x.shape[2:], w.shape, attrs).out(x.shape[2:])
    return (x.shape[0], w.shape[0], *out)


@with_attrs(ConvAttrs)
def _conv_infer(
    ctx: InferContext,
    x: TensorType,
    w: TensorType,
    b: TensorType | None = None,
    *,
    attrs: ConvAttrs,
) -> TensorType:
    dtype = same_dtype((x, w, b), "Conv X, W and B")
    check_dtype(x, FLOATING, "Conv X")
    return TensorType(dtype, conv_shape(x, w, attrs))


def conv_weight_grad(x: Any, g: Any, kernel: Sequence[int], win: Window, group: int) -> Any:
    """Gradient of ``Conv(x, w)`` with respect to ``w`` (kernel ``kernel``): a Conv of ``x``.

    Batch and channels swap places (``x`` becomes ``(C/G, G*N, ...)``, ``g`` the weights
    ``(M, N, ...)``), strides and dilations too; trailing windows past the kernel are cut.
    """
    nsp = len(kernel)
    swap = [1, 0, *range(2, 2 + nsp)]
    xt = op.Transpose(x, perm=swap)  # (C, N, *sp)
    if group > 1:
        cg = x.shape[1] // group
        xt = op.Reshape(xt, _dims_with([group, cg], xt, 1))
        xt = op.Transpose(xt, perm=[1, 0, *range(2, 3 + nsp)])  # (Cg, G, N, *sp)
        xt = op.Reshape(xt, _dims_with([cg, -1], xt, 3))
    gw = op.Conv(
        xt,
        op.Transpose(g, perm=swap),
        group=group,
        pads=win.pads,
        strides=list(win.dilations),
        dilations=list(win.strides),
    )
    if tuple(gw.shape[2:]) != tuple(kernel):
        axes = list(range(2, 2 + nsp))
        gw = op.Slice(gw, ints([0] * nsp), ints(list(kernel)), ints(axes))
    gw = op.Transpose(gw, perm=swap)
    full = (g.shape[1], x.shape[1] // group if isinstance(x.shape[1], int) else None, *kernel)
    if tuple(gw.shape) != full and all(isinstance(d, int) for d in full):
        gw = op.Reshape(gw, ints(list(full)))  # symbolic sizes hid the weights' static shape
    return gw


def _dims_with(prefix: list[int], x: Any, start: int) -> Any:
    """``prefix`` followed by ``x``'s dims from ``start`` on, as a Reshape target."""
    rest = tuple(x.shape[start:])
    if all(isinstance(d, int) for d in rest):
        return ints([*prefix, *rest])
    tail = op.Slice(op.Shape(x), ints([start]), ints([x.ndim]))
    return op.Concat(ints(prefix), tail, axis=0)


def _bias_grad(g: Any) -> Any:
    return op.ReduceSum(g, ints([0, *range(2, g.ndim)]), keepdims=0)


@with_attrs(ConvAttrs)
def _conv_vjp(
    ctx: VjpContext, g: Any, x: Any, w: Any, b: Any = None, *, attrs: ConvAttrs
) -> list[Any]:
    win = _conv_window(tuple(x.shape[2:]), tuple(w.shape), attrs)
    group, need = attrs.group, ctx.needs_input_grad
    return [
        window_adjoint(g, w, x, win, group) if need[0] else None,
        conv_weight_grad(x, g, win.kernel, win, group) if need[1] else None,
        _bias_grad(g) if b is not None and need[2] else None,
    ]


register(OpDef("Conv", 11, _conv, _conv_infer, _conv_vjp, saves="others"))


# ---------------------------------------------------------------- ConvTranspose


@dataclass(frozen=True)
class _Transposed:
    """Where ConvTranspose's output lies in its full (unpadded) result.

    ``full`` positions per axis are written; the output is ``out`` positions from
    ``begin`` on (positions past ``full``, from output_padding or output_shape, are zero).
    """

    win: Window  # kernel, strides, dilations; begin and end = begin and full - begin - out
    out: tuple[Dim, ...]


@dataclass(frozen=True)
class ConvTransposeAttrs(ConvAttrs):
    """ConvTranspose's attributes: Conv's, ``output_padding`` and ``output_shape``."""

    output_padding: Ints = None
    output_shape: Ints = None


def _transposed(
    sizes: Sequence[int], kernel: Sequence[int], attrs: ConvTransposeAttrs
) -> _Transposed:
    nsp = len(kernel)
    s = spatial_attr(attrs.strides, nsp, 1, "strides")
    d = spatial_attr(attrs.dilations, nsp, 1, "dilations")
    output_padding, output_shape = attrs.output_padding, attrs.output_shape
    extra = (0,) * nsp if not output_padding else tuple(int(v) for v in output_padding)
    if len(extra) != nsp or min(extra) < 0:
        raise ShapeError(f"output_padding must be {nsp} non-negative ints, got {list(extra)}")
    span = [(k - 1) * dd + 1 for k, dd in zip(kernel, d, strict=True)]
    full = [ss * (n - 1) + w for n, ss, w in zip(sizes, s, span, strict=True)]
    grown = [f + e for f, e in zip(full, extra, strict=True)]  # output_padding included
    if output_shape or attrs.same:
        out = (
            [int(v) for v in output_shape][-nsp:]
            if output_shape
            else [n * ss for n, ss in zip(sizes, s, strict=True)]
        )
        # Negative totals are clamped (as onnxruntime does): the output grows at the end.
        totals = [max(0, g - o) for g, o in zip(grown, out, strict=True)]
        begin = [t // 2 if attrs.auto_pad == "SAME_UPPER" else t - t // 2 for t in totals]
    else:
        win = attrs.window(sizes, kernel)
        begin = list(win.begin)
        out = [g - bb - e for g, bb, e in zip(grown, win.begin, win.end, strict=True)]
    if min(out) < 1:
        raise ShapeError(f"ConvTranspose: the output would have spatial shape {out}")
    end = [f - bb - o for f, bb, o in zip(full, begin, out, strict=True)]
    return _Transposed(Window(tuple(kernel), s, d, tuple(begin), tuple(end)), tuple(out))


@with_attrs(ConvTransposeAttrs)
def _conv_transpose(
    x: np.ndarray, w: np.ndarray, b: np.ndarray | None = None, *, attrs: ConvTransposeAttrs
) -> np.ndarray:
    if x.ndim < 3 or w.ndim != x.ndim:
        raise ShapeError(
            f"ConvTranspose: X {list(x.shape)} and W {list(w.shape)} need one rank >= 3"
        )
    n, c = x.shape[:2]
    mg, group = w.shape[1], attrs.group
    _check_groups("ConvTranspose", c, w.shape[0], mg * group, group, transpose=True)
    kernel = _kernel(w.shape, attrs.kernel_shape)
    t = _transposed(x.shape[2:], kernel, attrs)  # type: ignore[arg-type]
    nsp, work, cg = x.ndim - 2, _matmul_dtype(x.dtype), c // group
    # One matmul per group gives every (input position, output channel, tap) product.
    cols = x.reshape(n, group, cg, -1).transpose(1, 0, 3, 2).reshape(group, -1, cg)
    cols = np.matmul(cols.astype(work, copy=False), w.reshape(group, cg, -1).astype(work))
    cols = cols.reshape(group, n, *x.shape[2:], mg, *kernel)
    cols = cols.transpose(1, 0, 2 + nsp, *range(2, 2 + nsp), *range(3 + nsp, 3 + 2 * nsp))
    y = _col2im(cols.reshape(n, group * mg, *x.shape[2:], *kernel), t)
    if b is not None:
        y += b.reshape(-1, *(1,) * nsp)
    return y.astype(x.dtype, copy=False)


def _col2im(cols: np.ndarray, t: _Transposed) -> np.ndarray:
    """Add each tap's columns ``(N, M, *sizes, *kernel)`` at its strided offset, then crop."""
    nsp = len(t.out)
    sizes = cols.shape[2 : 2 + nsp]
    s, d = t.win.strides, t.win.dilations
    full = [ss * (i - 1) + w for ss, i, w in zip(s, sizes, t.win.span, strict=True)]
    acc = np.zeros((*cols.shape[:2], *full), dtype=cols.dtype)
    for tap in np.ndindex(*t.win.kernel):
        where = tuple(
            slice(k * dd, k * dd + ss * (i - 1) + 1, ss)
            for k, dd, ss, i in zip(tap, d, s, sizes, strict=True)
        )
        acc[(slice(None), slice(None), *where)] += cols[(Ellipsis, *tap)]
    # The output starts `begin` into the result; positions past its end stay zero.
    y = np.zeros((*cols.shape[:2], *t.out), dtype=cols.dtype)
    keep = [max(0, min(o, f - b)) for o, f, b in zip(t.out, full, t.win.begin, strict=True)]
    src = tuple(slice(b, b + k) for b, k in zip(t.win.begin, keep, strict=True))
    y[(slice(None), slice(None), *(slice(0, k) for k in keep))] = acc[
        (slice(None), slice(None), *src)
    ]
    return y


@with_attrs(ConvTransposeAttrs)
def _conv_transpose_infer(
    ctx: InferContext,
    x: TensorType,
    w: TensorType,
    b: TensorType | None = None,
    *,
    attrs: ConvTransposeAttrs,
) -> TensorType:
    dtype = same_dtype((x, w, b), "ConvTranspose X, W and B")
    check_dtype(x, FLOATING, "ConvTranspose X")
    if x.shape is None or w.shape is None:
        return TensorType(dtype, None)
    if len(x.shape) < 3 or len(w.shape) != len(x.shape):
        raise ShapeError(
            f"ConvTranspose: X {list(x.shape)} and W {list(w.shape)} need one rank >= 3"
        )
    mg, group = w.shape[1], attrs.group
    m = mg * group if isinstance(mg, int) else None
    _check_groups("ConvTranspose", x.shape[1], w.shape[0], m, group, transpose=True)
    kernel = _kernel(w.shape, attrs.kernel_shape)
    if not all(isinstance(k, int) for k in kernel):
        out: tuple[Dim, ...] = (None,) * len(kernel)
    elif attrs.output_shape:
        out = tuple(int(v) for v in attrs.output_shape)[-len(kernel) :]
    else:
        out = _transposed_geometry(x.shape[2:], kernel, attrs).out  # type: ignore[arg-type]
    return TensorType(dtype, (x.shape[0], m, *out))


@with_attrs(ConvTransposeAttrs)
def _conv_transpose_vjp(
    ctx: VjpContext, g: Any, x: Any, w: Any, b: Any = None, *, attrs: ConvTransposeAttrs
) -> list[Any]:
    t = _transposed_geometry(tuple(x.shape[2:]), tuple(w.shape[2:]), attrs)
    group = attrs.group
    # The output seen as a Conv's padded input: pads (begin, end); a negative end means
    # the output runs past the written positions, so the Conv reads fewer (cut below).
    win = Window(
        t.win.kernel,
        t.win.strides,
        t.win.dilations,
        t.win.begin,
        tuple(max(0, e) for e in t.win.end),
    )
    need = ctx.needs_input_grad
    gx = gw = None
    if need[0]:
        gx = op.Conv(
            g,
            w,
            group=group,
            pads=win.pads,
            strides=list(win.strides),
            dilations=list(win.dilations),
        )
        over = [-e // s if e < 0 else 0 for e, s in zip(t.win.end, win.strides, strict=True)]
        if any(over):
            nsp = len(over)
            ends = [-o if o else np.iinfo(np.int64).max for o in over]
            gx = op.Slice(gx, ints([0] * nsp), ints(ends), ints(list(range(2, 2 + nsp))))
        gx = typed_like(gx, x)
    if need[1]:
        gw = conv_weight_grad(g, x, win.kernel, win, group)
    gb = _bias_grad(g) if b is not None and need[2] else None
    return [gx, gw, gb]


def _transposed_geometry(
    sizes: Sequence[Dim], kernel: Sequence[int], attrs: ConvTransposeAttrs
) -> _Transposed:
    """The geometry, symbolic sizes allowed where the pads do not depend on them.

    Without output_shape they do not: the output has ``stride * (size - 1) + out(1)``
    positions, ``out(1)`` being the output for a size of 1 (a symbol survives when that is
    the size itself).

    Raises:
        UnsupportedOpError: output_shape with symbolic sizes.
    """
    static = [n for n in sizes if isinstance(n, int)]
    if len(static) == len(sizes):
        return _transposed(static, kernel, attrs)
    if attrs.output_shape:
        raise UnsupportedOpError(
            f"ConvTranspose with output_shape over symbolic spatial sizes {list(sizes)}: "
            "its pads depend on the sizes"
        )
    probe = _transposed((1,) * len(sizes), kernel, attrs)
    out = [
        s * (n - 1) + cast(int, o) if isinstance(n, int) else (n if s == 1 and o == 1 else None)
        for n, s, o in zip(sizes, probe.win.strides, probe.out, strict=True)
    ]
    return _Transposed(probe.win, tuple(out))


register(
    OpDef(
        "ConvTranspose",
        11,
        _conv_transpose,
        _conv_transpose_infer,
        _conv_transpose_vjp,
        saves="others",
    )
)


# ---------------------------------------------------------------- BatchNormalization

_EPSILON = float(np.float32(1e-5))  # ONNX stores the defaults as float32
_MOMENTUM = float(np.float32(0.9))


def _per_channel(p: np.ndarray, rank: int) -> np.ndarray:
    return p.reshape(-1, *(1,) * (rank - 2))


def _batch_norm(
    x: np.ndarray,
    scale: np.ndarray,
    b: np.ndarray,
    input_mean: np.ndarray,
    input_var: np.ndarray,
    *,
    epsilon: float = _EPSILON,
    momentum: float = _MOMENTUM,
    training_mode: int = 0,
) -> tuple[np.ndarray, ...]:
    if x.ndim < 2:
        raise ShapeError(f"BatchNormalization: X must be (N, C, ...), got shape {list(x.shape)}")
    mean, var = input_mean, input_var
    if training_mode:
        axes = (0, *range(2, x.ndim))
        mean, var = np.mean(x, axis=axes), np.var(x, axis=axes)
    r = x.ndim

    def chan(p: np.ndarray) -> np.ndarray:
        return _per_channel(p, r)

    y = chan(scale) * (x - chan(mean)) / np.sqrt(chan(var) + epsilon) + chan(b)
    if not training_mode:
        return (y.astype(x.dtype, copy=False),)
    t2 = input_mean.dtype
    running_mean = input_mean * momentum + mean.astype(t2) * (1 - momentum)
    running_var = input_var * momentum + var.astype(t2) * (1 - momentum)
    return y.astype(x.dtype, copy=False), running_mean.astype(t2), running_var.astype(t2)


def _batch_norm_infer(
    ctx: InferContext,
    x: TensorType,
    scale: TensorType,
    b: TensorType,
    input_mean: TensorType,
    input_var: TensorType,
    *,
    epsilon: float = _EPSILON,
    momentum: float = _MOMENTUM,
    training_mode: int = 0,
) -> tuple[TensorType, ...]:
    for t, what in ((x, "X"), (scale, "scale"), (input_mean, "input_mean")):
        check_dtype(t, FLOATING, f"BatchNormalization {what}")
    same_dtype((scale, b), "BatchNormalization scale and B")
    same_dtype((input_mean, input_var), "BatchNormalization input_mean and input_var")
    if x.shape is not None and len(x.shape) < 2:
        raise ShapeError(f"BatchNormalization: X must be (N, C, ...), got shape {list(x.shape)}")
    y = TensorType(x.dtype, x.shape)
    if not training_mode:
        return (y,)
    stats = TensorType(input_mean.dtype, None if x.shape is None else (x.shape[1],))
    return y, stats, stats


def _cast_like(v: Any, like: Any) -> Any:
    return v if v.dtype == like.dtype else op.Cast(v, to=to_onnx(like.dtype))


def _stat_axes(x: Any) -> np.ndarray:
    return ints([0, *range(2, x.ndim)])


def _channel(p: Any, x: Any) -> Any:
    """A per-channel vector ``(C,)`` in ``x``'s dtype, shaped ``(C, 1, ...)`` to broadcast."""
    p = _cast_like(p, x)
    return op.Unsqueeze(p, ints(list(range(1, x.ndim - 1)))) if x.ndim > 2 else p


def _normalized_grad(g_hat: Any, xhat: Any, inv: Any, axes: Any) -> Any:
    """Gradient through ``xhat = (x - mean) * inv`` with mean/var taken over ``axes``."""
    m1 = op.ReduceMean(g_hat, axes, keepdims=1)
    m2 = op.ReduceMean(op.Mul(g_hat, xhat), axes, keepdims=1)
    return op.Mul(inv, op.Sub(op.Sub(g_hat, m1), op.Mul(xhat, m2)))


def _batch_norm_vjp(
    ctx: VjpContext,
    grads: Any,
    x: Any,
    scale: Any,
    b: Any,
    input_mean: Any,
    input_var: Any,
    *,
    epsilon: float,
    momentum: float,
    training_mode: int,
) -> list[Any]:
    grads = grads if isinstance(grads, tuple) else (grads,)
    if training_mode:
        return _batch_norm_training_vjp(ctx, grads, x, scale, input_mean, momentum, epsilon)
    gy, need = grads[0], ctx.needs_input_grad
    if gy is None:
        return [None] * 5
    # y = (x - mean) * coef + b with coef = scale / sqrt(var + eps), per channel.
    axes = _stat_axes(x)
    inv = op.Reciprocal(op.Sqrt(op.Add(_cast_like(input_var, x), scalar(epsilon, x))))
    coef = op.Mul(_cast_like(scale, x), inv)
    gx = op.Mul(gy, _channel(coef, x)) if need[0] else None
    gs = gb = gm = gv = None
    if need[1] or need[4]:
        xhat = op.Mul(op.Sub(x, _channel(input_mean, x)), _channel(inv, x))
        total = op.ReduceSum(op.Mul(gy, xhat), axes, keepdims=0)
        gs = _cast_like(total, scale) if need[1] else None
        if need[4]:  # d inv / d var = -inv^3 / 2
            half = op.Mul(op.Mul(coef, inv), scalar(-0.5, x))
            gv = _cast_like(op.Mul(total, half), input_var)
    if need[2] or need[3]:
        total = op.ReduceSum(gy, axes, keepdims=0)
        gb = _cast_like(total, b) if need[2] else None
        gm = _cast_like(op.Neg(op.Mul(total, coef)), input_mean) if need[3] else None
    return [gx, gs, gb, gm, gv]


def _batch_norm_training_vjp(
    ctx: VjpContext,
    grads: tuple[Any, ...],
    x: Any,
    scale: Any,
    input_mean: Any,
    momentum: float,
    epsilon: float,
) -> list[Any]:
    """Training mode: Y uses the batch statistics, which also feed the running ones."""
    gy, g_rm, g_rv = (*grads, None, None)[:3]
    need, axes = ctx.needs_input_grad, _stat_axes(x)
    d = op.Sub(x, op.ReduceMean(x, axes, keepdims=1))
    var = op.ReduceMean(op.Mul(d, d), axes, keepdims=1)
    inv = op.Reciprocal(op.Sqrt(op.Add(var, scalar(epsilon, x))))
    xhat = op.Mul(d, inv)
    gx = gs = gb = None
    if gy is not None:
        if need[0]:
            gx = _normalized_grad(op.Mul(gy, _channel(scale, x)), xhat, inv, axes)
        if need[1]:
            gs = _cast_like(op.ReduceSum(op.Mul(gy, xhat), axes, keepdims=0), scale)
        if need[2]:
            gb = _cast_like(op.ReduceSum(gy, axes, keepdims=0), scale)
    rest = op.Div(scalar(1 - momentum, x), reduced_count(x, axes))
    if need[0] and g_rm is not None:  # running_mean gets (1 - momentum) * mean(x)
        term = op.Expand(op.Mul(_channel(g_rm, x), rest), shape_of(x))
        gx = term if gx is None else op.Add(gx, term)
    if need[0] and g_rv is not None:  # running_var gets (1 - momentum) * var(x), biased
        term = op.Mul(op.Mul(_channel(g_rv, x), rest), op.Mul(d, scalar(2.0, x)))
        gx = term if gx is None else op.Add(gx, term)
    m = scalar(momentum, input_mean)
    gm = op.Mul(g_rm, m) if need[3] and g_rm is not None else None
    gv = op.Mul(g_rv, m) if need[4] and g_rv is not None else None
    return [gx, gs, gb, gm, gv]


register(
    OpDef(
        "BatchNormalization", 15, _batch_norm, _batch_norm_infer, _batch_norm_vjp, num_outputs=None
    )
)


# ---------------------------------------------------------------- InstanceNormalization


def _instance_norm(
    x: np.ndarray, scale: np.ndarray, b: np.ndarray, *, epsilon: float = _EPSILON
) -> np.ndarray:
    if x.ndim < 3:
        raise ShapeError(f"InstanceNormalization: X must be (N, C, D1, ...), got {list(x.shape)}")
    axes = tuple(range(2, x.ndim))
    mean = np.mean(x, axis=axes, keepdims=True)
    var = np.var(x, axis=axes, keepdims=True)
    y = _per_channel(scale, x.ndim) * (x - mean) / np.sqrt(var + epsilon)
    return (y + _per_channel(b, x.ndim)).astype(x.dtype, copy=False)


def _instance_norm_infer(
    ctx: InferContext, x: TensorType, scale: TensorType, b: TensorType, *, epsilon: float = _EPSILON
) -> TensorType:
    same_dtype((x, scale, b), "InstanceNormalization input, scale and B")
    check_dtype(x, FLOATING, "InstanceNormalization input")
    if x.shape is not None and len(x.shape) < 3:
        raise ShapeError(f"InstanceNormalization: X must be (N, C, D1, ...), got {list(x.shape)}")
    return x


def _instance_norm_vjp(
    ctx: VjpContext, g: Any, x: Any, scale: Any, b: Any, *, epsilon: float
) -> list[Any]:
    axes = ints(list(range(2, x.ndim)))
    d = op.Sub(x, op.ReduceMean(x, axes, keepdims=1))
    var = op.ReduceMean(op.Mul(d, d), axes, keepdims=1)
    inv = op.Reciprocal(op.Sqrt(op.Add(var, scalar(epsilon, x))))
    xhat = op.Mul(d, inv)
    need, outer = ctx.needs_input_grad, _stat_axes(x)
    gx = _normalized_grad(op.Mul(g, _channel(scale, x)), xhat, inv, axes) if need[0] else None
    gs = op.ReduceSum(op.Mul(g, xhat), outer, keepdims=0) if need[1] else None
    gb = op.ReduceSum(g, outer, keepdims=0) if need[2] else None
    return [gx, gs, gb]


register(
    OpDef("InstanceNormalization", 6, _instance_norm, _instance_norm_infer, _instance_norm_vjp)
)


# ---------------------------------------------------------------- LRN


def _lrn_reach(size: int) -> tuple[int, int]:
    """Channels summed before and after each channel."""
    return (size - 1) // 2, size // 2  # floor((size-1)/2), ceil((size-1)/2)


def _lrn(
    x: np.ndarray,
    *,
    alpha: float = float(np.float32(1e-4)),
    beta: float = 0.75,
    bias: float = 1.0,
    size: int | None = None,
) -> np.ndarray:
    if size is None or size < 1:
        raise ShapeError(f"LRN: size must be a positive int, got {size}")
    if x.ndim < 2:
        raise ShapeError(f"LRN: X must be (N, C, ...), got shape {list(x.shape)}")
    # Channels past either end add zeros: a window wider than the channels reads no more.
    reach = max(x.shape[1] - 1, 0)
    before, after = (min(r, reach) for r in _lrn_reach(size))
    sq = np.pad(np.square(x), [(0, 0), (before, after)] + [(0, 0)] * (x.ndim - 2))
    total = sliding_window_view(sq, before + after + 1, axis=1).sum(axis=-1)
    return (x / (bias + (alpha / size) * total) ** beta).astype(x.dtype, copy=False)


def _lrn_infer(ctx: InferContext, x: TensorType, **attrs: Any) -> TensorType:
    check_dtype(x, FLOATING, "LRN X")
    if attrs.get("size") is None:
        raise ShapeError("LRN: the size attribute is required")
    return x


def _channel_window(t: Any, size: int, adjoint: bool) -> Any:
    """Sum over LRN's channel window (a Conv along channels), or its adjoint (ConvTranspose)."""
    before, after = _lrn_reach(size)
    t = op.Unsqueeze(t, ints([1]))  # channels become the first spatial axis
    nsp = t.ndim - 2
    w = np.ones((1, 1, size, *(1,) * (nsp - 1)), dtype=t.dtype)
    pads = [before, *(0,) * (nsp - 1), after, *(0,) * (nsp - 1)]
    summed = op.ConvTranspose(t, w, pads=pads) if adjoint else op.Conv(t, w, pads=pads)
    return op.Squeeze(summed, ints([1]))


def _lrn_vjp(
    ctx: VjpContext, g: Any, x: Any, *, alpha: float, beta: float, bias: float, size: int
) -> list[Any]:
    # y = x * s^-beta with s = bias + alpha/size * window_sum(x^2).
    s = op.Add(
        scalar(bias, x), op.Mul(scalar(alpha / size, x), _channel_window(op.Mul(x, x), size, False))
    )
    direct = op.Mul(g, op.Pow(s, scalar(-beta, x)))
    through = op.Mul(op.Mul(g, x), op.Pow(s, scalar(-beta - 1, x)))
    spread = _channel_window(through, size, True)
    coef = scalar(-2 * beta * alpha / size, x)
    return [op.Add(direct, op.Mul(op.Mul(spread, x), coef))]


register(OpDef("LRN", 13, _lrn, _lrn_infer, _lrn_vjp))
