"""Grid, patch and detection ops: AffineGrid, Col2Im, CenterCropPad, MaxUnpool, RoiAlign, NMS.

The companion of ``ir/ops/image.py`` (Resize, GridSample). Gradients: AffineGrid (a MatMul
with the constant base grid), Col2Im (a gather of the image back into blocks), CenterCropPad
(its own inverse) and MaxUnpool (a gather at the indices). RoiAlign and NonMaxSuppression
have none (see their ``no_vjp``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.errors import ShapeError
from ir.ops.grad_util import shape_of
from ir.ops.infer import const_ints, normalize_axis
from ir.ops.registry import InferContext, OpDef, VjpContext, ints, op, register
from ir.types import Dim, TensorType

# ---------------------------------------------------------------- AffineGrid


def _base_grid(dims: tuple[int, ...], align_corners: int) -> np.ndarray:
    """Homogeneous normalised coordinates (x, y[, z], 1) of every position, flattened."""
    axes = []
    for s in dims:
        if align_corners:
            axes.append(np.linspace(-1.0, 1.0, s) if s > 1 else np.full(1, -1.0))
        else:
            axes.append((2 * np.arange(s) + 1) / s - 1)
    mesh = np.meshgrid(*axes, indexing="ij")
    # Coordinates are listed innermost axis first (x is the width axis).
    cols = [m.reshape(-1) for m in reversed(mesh)] + [np.ones(int(np.prod(dims)))]
    return np.stack(cols, axis=1)


def _affine_grid(theta: np.ndarray, size: np.ndarray, *, align_corners: int = 0) -> np.ndarray:
    n, _, *dims = (int(v) for v in size.reshape(-1))
    nd = len(dims)
    if theta.shape != (n, nd, nd + 1):
        raise ShapeError(
            f"AffineGrid: theta {list(theta.shape)} does not fit size {list(size)}; "
            f"expected [{n}, {nd}, {nd + 1}]"
        )
    base = _base_grid(tuple(dims), align_corners)
    grid = np.matmul(base, np.swapaxes(theta.astype(np.float64), 1, 2))
    return grid.reshape((n, *dims, nd)).astype(theta.dtype)


def _affine_grid_infer(
    ctx: InferContext, theta: TensorType, size: TensorType, *, align_corners: int = 0
) -> TensorType:
    dims = const_ints(ctx, 1)
    if dims is not None:
        return TensorType(theta.dtype, (dims[0], *dims[2:], len(dims) - 2))
    if theta.shape is None or not isinstance(theta.shape[1], int):
        return TensorType(theta.dtype, None)
    nd = theta.shape[1]
    return TensorType(theta.dtype, (theta.shape[0], *([None] * nd), nd))


def _affine_grid_vjp(
    ctx: VjpContext, g: Any, theta: Any, size: Any, *, align_corners: int
) -> list[Any]:
    dims = tuple(g.shape[1:-1])
    if not all(isinstance(d, int) for d in dims):
        raise ShapeError("AffineGrid: the gradient needs static spatial sizes")
    nd = len(dims)
    base = _base_grid(dims, align_corners).astype(theta.dtype)  # (P, nd + 1)
    flat = op.Reshape(g, ints([0, -1, nd]))  # (N, P, nd)
    return [op.MatMul(op.Transpose(flat, perm=[0, 2, 1]), base), None]


register(OpDef("AffineGrid", 20, _affine_grid, _affine_grid_infer, _affine_grid_vjp, saves="none"))


# ---------------------------------------------------------------- Col2Im


def _col2im_index(
    image: tuple[int, ...],
    block: tuple[int, ...],
    dilations: list[int] | None,
    pads: list[int] | None,
    strides: list[int] | None,
) -> np.ndarray:
    """(kernel offset, block position) -> flat image index, ``prod(image)`` when outside."""
    nd = len(image)
    dil = dilations or [1] * nd
    pad = pads or [0] * (2 * nd)
    st = strides or [1] * nd
    counts = [
        (image[i] + pad[i] + pad[i + nd] - dil[i] * (block[i] - 1) - 1) // st[i] + 1
        for i in range(nd)
    ]
    offsets = np.indices(block).reshape(nd, -1, 1)  # (nd, K, 1)
    places = np.indices(counts).reshape(nd, 1, -1)  # (nd, 1, L)
    pos = places * np.asarray(st).reshape(nd, 1, 1) - np.asarray(pad[:nd]).reshape(nd, 1, 1)
    pos = pos + offsets * np.asarray(dil).reshape(nd, 1, 1)
    limit = np.asarray(image).reshape(nd, 1, 1)
    inside = np.all((pos >= 0) & (pos < limit), axis=0)
    flat = np.ravel_multi_index(tuple(np.clip(pos, 0, limit - 1)), image)
    return np.where(inside, flat, int(np.prod(image)))


def _col2im(
    x: np.ndarray,
    image_shape: np.ndarray,
    block_shape: np.ndarray,
    *,
    dilations: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> np.ndarray:
    image = tuple(int(v) for v in image_shape.reshape(-1))
    block = tuple(int(v) for v in block_shape.reshape(-1))
    index = _col2im_index(image, block, dilations, pads, strides)
    k, blocks = index.shape
    n, ck, length = x.shape
    if ck % k or length != blocks:
        raise ShapeError(
            f"Col2Im: input {list(x.shape)} does not fit {k} kernel offsets and {blocks} blocks"
        )
    c = ck // k
    out = np.zeros((n, c, int(np.prod(image)) + 1), dtype=x.dtype)
    np.add.at(out, (slice(None), slice(None), index), x.reshape(n, c, k, length))  # type: ignore[arg-type]
    return out[..., :-1].reshape((n, c, *image))


def _col2im_infer(
    ctx: InferContext, x: TensorType, image_shape: TensorType, block_shape: TensorType, **_: Any
) -> TensorType:
    image, block = const_ints(ctx, 1), const_ints(ctx, 2)
    if x.shape is None:
        return TensorType(x.dtype, None)
    ck = x.shape[1]
    c: Dim = ck // int(np.prod(block)) if block is not None and isinstance(ck, int) else None
    if image is None:
        n_img = image_shape.shape[0] if image_shape.shape else None
        if not isinstance(n_img, int):
            return TensorType(x.dtype, None)
        return TensorType(x.dtype, (x.shape[0], c, *([None] * n_img)))
    return TensorType(x.dtype, (x.shape[0], c, *image))


def _col2im_vjp(
    ctx: VjpContext,
    g: Any,
    x: Any,
    image_shape: Any,
    block_shape: Any,
    *,
    dilations: list[int] | None,
    pads: list[int] | None,
    strides: list[int] | None,
) -> list[Any]:
    image, block = tuple(g.shape[2:]), np.asarray(block_shape).reshape(-1)
    if not all(isinstance(d, int) for d in image) or block.dtype == object:
        raise ShapeError("Col2Im: the gradient needs a static image and a constant block shape")
    index = _col2im_index(image, tuple(int(b) for b in block), dilations, pads, strides)
    flat = op.Reshape(g, ints([0, 0, -1]))
    padded = op.Pad(flat, ints([0, 0, 0, 0, 0, 1]))  # one zero column for outside positions
    taken = op.Gather(padded, index.astype(np.int64), axis=2)  # (N, C, K, L)
    return [op.Reshape(taken, ints([0, -1, index.shape[1]])), None, None]


register(OpDef("Col2Im", 18, _col2im, _col2im_infer, _col2im_vjp, saves="none"))


# ---------------------------------------------------------------- CenterCropPad


def _crop_pad_axes(rank: int, n: int, axes: list[int] | None) -> list[int]:
    picked = list(range(rank)) if axes is None else [normalize_axis(a, rank) for a in axes]
    if len(picked) != n:
        raise ShapeError(f"CenterCropPad: shape has {n} entries for {len(picked)} axes")
    return picked


def _center_crop_pad(x: np.ndarray, shape: np.ndarray, *, axes: list[int] | None = None) -> Any:
    sizes = [int(v) for v in shape.reshape(-1)]
    picked = _crop_pad_axes(x.ndim, len(sizes), axes)
    out_shape = list(x.shape)
    src = [slice(None)] * x.ndim
    dst = [slice(None)] * x.ndim
    for a, s in zip(picked, sizes, strict=True):
        d = x.shape[a]
        out_shape[a] = s
        # The centre is kept; an odd difference puts the extra element at the end.
        if s < d:
            src[a] = slice((d - s) // 2, (d - s) // 2 + s)
        elif s > d:
            dst[a] = slice((s - d) // 2, (s - d) // 2 + d)
    out = np.zeros(out_shape, dtype=x.dtype)
    out[tuple(dst)] = x[tuple(src)]
    return out


def _center_crop_pad_infer(
    ctx: InferContext, x: TensorType, shape: TensorType, *, axes: list[int] | None = None
) -> TensorType:
    sizes = const_ints(ctx, 1)
    if x.shape is None:
        return TensorType(x.dtype, None)
    out: list[Dim] = list(x.shape)
    n = len(sizes) if sizes is not None else (shape.shape[0] if shape.shape else None)
    if not isinstance(n, int):
        return TensorType(x.dtype, None)
    for i, a in enumerate(_crop_pad_axes(len(out), n, axes)):
        out[a] = None if sizes is None else sizes[i]
    return TensorType(x.dtype, tuple(out))


def _center_crop_pad_vjp(
    ctx: VjpContext, g: Any, x: Any, shape: Any, *, axes: list[int] | None
) -> list[Any]:
    # Cropping and padding back use the same offset, so the op is its own adjoint.
    n = int(np.prod(shape.shape)) if shape.shape else 1
    picked = _crop_pad_axes(x.ndim, n, axes)
    original = op.Gather(shape_of(x), ints(picked), axis=0)
    return [op.CenterCropPad(g, original, axes=picked), None]


register(
    OpDef(
        "CenterCropPad",
        18,
        _center_crop_pad,
        _center_crop_pad_infer,
        _center_crop_pad_vjp,
        saves="none",
    )
)


# ---------------------------------------------------------------- MaxUnpool

# A stated bound on MaxUnpool's output (512 MiB of float32): its size comes from attributes a
# file sets, and a kernel of 10**9 over a small input would otherwise ask for terabytes.
_MAX_UNPOOL_ELEMENTS = 1 << 27


def _unpooled_shape(
    shape: tuple[Any, ...],
    kernel_shape: list[int],
    pads: list[int] | None,
    strides: list[int] | None,
) -> list[Any]:
    nd = len(kernel_shape)
    pad = pads or [0] * (2 * nd)
    st = strides or [1] * nd
    out = list(shape[:2])
    for i, k in enumerate(kernel_shape):
        d = shape[2 + i]
        out.append((d - 1) * st[i] - pad[i] - pad[nd + i] + k if isinstance(d, int) else None)
    return out


def _max_unpool(
    x: np.ndarray,
    indices: np.ndarray,
    output_shape: np.ndarray | None = None,
    *,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> np.ndarray:
    if not kernel_shape:
        raise ShapeError("MaxUnpool: the kernel_shape attribute is required")
    inferred = _unpooled_shape(x.shape, kernel_shape, pads, strides)
    size = math.prod(inferred)
    if min(inferred, default=0) < 0 or size > _MAX_UNPOOL_ELEMENTS:
        raise ShapeError(
            f"MaxUnpool: kernel_shape {kernel_shape} over {list(x.shape)} gives an output of "
            f"shape {inferred}; graphcap's limit is {_MAX_UNPOOL_ELEMENTS:,} elements"
        )
    flat = np.zeros(size, dtype=x.dtype)
    flat[indices.reshape(-1)] = x.reshape(-1)
    y = flat.reshape(inferred)
    if output_shape is None:
        return y
    # As ONNX's reference: indices address the inferred shape, placed at the start of each axis.
    out = np.zeros([int(v) for v in output_shape.reshape(-1)], dtype=x.dtype)
    out[tuple(slice(0, d) for d in inferred)] = y
    return out


def _max_unpool_infer(
    ctx: InferContext,
    x: TensorType,
    indices: TensorType,
    output_shape: TensorType | None = None,
    *,
    kernel_shape: list[int] | None = None,
    pads: list[int] | None = None,
    strides: list[int] | None = None,
) -> TensorType:
    if output_shape is not None:
        given = const_ints(ctx, 2)
        if given is not None:
            return TensorType(x.dtype, given)
        rank = None if x.shape is None else len(x.shape)
        return TensorType(x.dtype, None if rank is None else (None,) * rank)
    if x.shape is None or not kernel_shape:
        return TensorType(x.dtype, None)
    return TensorType(x.dtype, tuple(_unpooled_shape(x.shape, kernel_shape, pads, strides)))


def _max_unpool_vjp(
    ctx: VjpContext,
    g: Any,
    x: Any,
    indices: Any,
    output_shape: Any = None,
    *,
    kernel_shape: list[int],
    pads: list[int] | None,
    strides: list[int] | None,
) -> list[Any]:
    inferred = _unpooled_shape(tuple(x.shape), kernel_shape, pads, strides)
    if output_shape is not None:
        if not all(isinstance(d, int) for d in inferred):
            raise ShapeError("MaxUnpool: the gradient with output_shape needs a static X shape")
        g = op.Slice(g, ints([0] * len(inferred)), ints(inferred))
    taken = op.Gather(op.Reshape(g, ints([-1])), indices, axis=0)
    return [taken, None, None]


register(OpDef("MaxUnpool", 22, _max_unpool, _max_unpool_infer, _max_unpool_vjp, saves="others"))


# ---------------------------------------------------------------- RoiAlign


def _roi_samples(
    start: float, size: float, bins: int, grid: int, limit: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per (bin, sample): low tap, high tap, their weights (zero outside), as ONNX's kernel."""
    step = size / bins
    c = start + np.arange(bins)[:, None] * step + (np.arange(grid)[None, :] + 0.5) * step / grid
    outside = (c < -1.0) | (c > limit)
    c = np.maximum(c, 0.0)
    low = np.floor(c).astype(np.int64)
    at_end = low >= limit - 1
    low = np.where(at_end, limit - 1, low)
    high = np.where(at_end, limit - 1, low + 1)
    c = np.where(at_end, low, c)
    frac = c - low
    keep = ~outside
    return low, high, np.where(keep, 1 - frac, 0.0), np.where(keep, frac, 0.0)


def _roi_corner(
    img: np.ndarray, yi: np.ndarray, xi: np.ndarray, wy: np.ndarray, wx: np.ndarray
) -> np.ndarray:
    """One weighted corner of every sample point, shape (C, oh, gh, ow, gw)."""
    vals = img[:, yi[:, :, None, None], xi[None, None, :, :]]
    return vals * (wy[:, :, None, None] * wx[None, None, :, :])


ROI_SAMPLES = 1 << 26
"""The most bilinear samples one RoiAlign region may take (channels included)."""


def _roi_align(
    x: np.ndarray,
    rois: np.ndarray,
    batch_indices: np.ndarray,
    *,
    coordinate_transformation_mode: str = "half_pixel",
    mode: str = "avg",
    output_height: int = 1,
    output_width: int = 1,
    sampling_ratio: int = 0,
    spatial_scale: float = 1.0,
) -> np.ndarray:
    _, c, h, w = x.shape
    half = coordinate_transformation_mode == "half_pixel"
    out = np.zeros((len(rois), c, output_height, output_width))
    for r, (roi, b) in enumerate(zip(rois.astype(np.float64), batch_indices, strict=True)):
        x0, y0, x1, y1 = roi * spatial_scale - (0.5 if half else 0.0)
        rw, rh = x1 - x0, y1 - y0
        if not half:
            rw, rh = max(rw, 1.0), max(rh, 1.0)
        gh = sampling_ratio if sampling_ratio > 0 else int(np.ceil(rh / output_height))
        gw = sampling_ratio if sampling_ratio > 0 else int(np.ceil(rw / output_width))
        if c * output_height * gh * output_width * gw > ROI_SAMPLES:
            raise ShapeError(
                f"RoiAlign: roi {r} takes {gh} x {gw} samples in each of {output_height} x "
                f"{output_width} bins over {c} channels, past graphcap's limit of "
                f"{ROI_SAMPLES} samples per roi (sampling_ratio={sampling_ratio})"
            )
        yl, yh, wyl, wyh = _roi_samples(y0, rh, output_height, gh, h)
        xl, xh, wxl, wxh = _roi_samples(x0, rw, output_width, gw, w)
        img = x[int(b)].astype(np.float64)  # (C, H, W)
        parts = [
            _roi_corner(img, yi, xi, wy, wx)
            for yi, wy in ((yl, wyl), (yh, wyh))
            for xi, wx in ((xl, wxl), (xh, wxh))
        ]
        if mode == "avg":
            out[r] = np.sum(parts, axis=0).sum(axis=(2, 4)) / max(gh * gw, 1)
        elif mode == "max":  # ONNX's max mode: the largest weighted corner of any sample
            out[r] = np.max(np.stack(parts), axis=(0, 3, 5)) if gh * gw else 0.0
        else:
            raise ShapeError(f"RoiAlign: mode {mode!r} is not 'avg' or 'max'")
    return out.astype(x.dtype)


def _roi_align_infer(
    ctx: InferContext, x: TensorType, rois: TensorType, batch_indices: TensorType, **attrs: Any
) -> TensorType:
    r = rois.shape[0] if rois.shape else None
    c = x.shape[1] if x.shape else None
    return TensorType(x.dtype, (r, c, attrs["output_height"], attrs["output_width"]))


register(
    OpDef(
        "RoiAlign",
        22,
        _roi_align,
        _roi_align_infer,
        None,
        no_vjp="not implemented: the gradient w.r.t. X is a scatter of the bilinear weights "
        "and is not provided; rois and batch indices select regions",
    )
)


# ---------------------------------------------------------------- NonMaxSuppression


def _corners(boxes: np.ndarray, center_point_box: int) -> np.ndarray:
    """Boxes as (y_min, x_min, y_max, x_max), whichever corner order they came in."""
    if center_point_box:
        xc, yc, bw, bh = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
        return np.stack([yc - bh / 2, xc - bw / 2, yc + bh / 2, xc + bw / 2], axis=1)
    y = np.sort(boxes[:, [0, 2]], axis=1)
    x = np.sort(boxes[:, [1, 3]], axis=1)
    return np.stack([y[:, 0], x[:, 0], y[:, 1], x[:, 1]], axis=1)


def _iou(boxes: np.ndarray) -> np.ndarray:
    """Pairwise intersection over union; 0 where boxes do not overlap or are empty."""
    y0, x0, y1, x1 = (boxes[:, i] for i in range(4))
    ih = np.minimum(y1[:, None], y1[None]) - np.maximum(y0[:, None], y0[None])
    iw = np.minimum(x1[:, None], x1[None]) - np.maximum(x0[:, None], x0[None])
    inter = np.where((ih > 0) & (iw > 0), ih * iw, 0.0)
    area = (y1 - y0) * (x1 - x0)
    union = area[:, None] + area[None] - inter
    ok = (inter > 0) & (area[:, None] > 0) & (area[None] > 0) & (union > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(ok, inter / union, 0.0)


def _non_max_suppression(
    boxes: np.ndarray,
    scores: np.ndarray,
    max_output_boxes_per_class: np.ndarray | None = None,
    iou_threshold: np.ndarray | None = None,
    score_threshold: np.ndarray | None = None,
    *,
    center_point_box: int = 0,
) -> np.ndarray:
    def first(v: np.ndarray | None, default: float) -> float:
        return default if v is None or v.size == 0 else float(v.reshape(-1)[0])

    limit = max(int(first(max_output_boxes_per_class, 0)), 0)
    iou_max = first(iou_threshold, 0.0)
    selected = []
    for b in range(boxes.shape[0]):
        iou = _iou(_corners(boxes[b].astype(np.float64), center_point_box))
        for c in range(scores.shape[1]):
            s = scores[b, c]
            order = np.argsort(-s, kind="stable")  # ties: the lower box index first
            if score_threshold is not None and score_threshold.size:
                order = order[s[order] > first(score_threshold, 0.0)]
            kept: list[int] = []
            for i in order:
                if len(kept) >= limit:
                    break
                if not kept or not np.any(iou[i, kept] > iou_max):
                    kept.append(int(i))
            selected += [(b, c, i) for i in kept]
    return np.asarray(selected, dtype=np.int64).reshape(-1, 3)


def _nms_infer(ctx: InferContext, *types: TensorType | None, **attrs: Any) -> TensorType:
    values = [ctx.value(i) for i in range(len(types))]
    given = [v is not None for v, t in zip(values, types, strict=True) if t is not None]
    if all(given):  # the count depends on the values: known only for constants
        return TensorType(D.int64, _non_max_suppression(*values, **attrs).shape)  # type: ignore[arg-type]
    return TensorType(D.int64, (None, 3))


register(
    OpDef(
        "NonMaxSuppression",
        11,
        _non_max_suppression,
        _nms_infer,
        None,
        no_vjp="its output is integer indices of selected boxes",
    )
)
