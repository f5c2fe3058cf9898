"""Specs of ``ir/ops/image.py``."""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.op_specs.common import BOOL, F32, I64, OpSpec, Sample, i64, rand


def _f32(values: Any) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)


# (x shape, roi, scales, sizes, attributes); gradients are taken with respect to X only.
_RESIZE: list[tuple[tuple[int, ...], Any, Any, Any, dict[str, Any]]] = [
    ((1, 2, 2, 3), None, [1, 1, 2, 1.5], None, {}),
    ((1, 1, 3, 4), None, None, [1, 1, 5, 7], {"mode": "linear"}),
    ((2, 1, 4, 5), None, [1, 1, 0.6, 0.8], None, {"mode": "linear"}),
    (
        (1, 1, 4, 4),
        None,
        None,
        [1, 1, 6, 3],
        {"mode": "cubic", "coordinate_transformation_mode": "align_corners"},
    ),
    ((1, 2, 5, 4), None, [1, 1, 0.8, 1.5], None, {"mode": "cubic", "exclude_outside": 1}),
    ((1, 1, 6, 7), None, None, [1, 1, 3, 4], {"mode": "linear", "antialias": 1}),
    ((1, 1, 6, 6), None, [1, 1, 0.5, 0.7], None, {"mode": "cubic", "antialias": 1}),
    (
        (1, 1, 4, 5),
        [0, 0, 0.2, 0.1, 1, 1, 1.1, 0.8],
        None,
        [1, 1, 3, 4],
        {
            "mode": "linear",
            "coordinate_transformation_mode": "tf_crop_and_resize",
            "extrapolation_value": 2.5,
        },
    ),
    (
        (2, 3, 4),
        None,
        None,
        [5, 6],
        {"axes": [2, 1], "keep_aspect_ratio_policy": "not_larger", "mode": "linear"},
    ),
    (
        (3, 5),
        None,
        [1.7, 0.5],
        None,
        {"coordinate_transformation_mode": "pytorch_half_pixel", "mode": "linear"},
    ),
    (
        (4, 3),
        None,
        [1.5, 2.0],
        None,
        {"coordinate_transformation_mode": "asymmetric", "nearest_mode": "ceil"},
    ),
    (
        (5,),
        None,
        [0.7],
        None,
        {"coordinate_transformation_mode": "half_pixel_symmetric", "nearest_mode": "floor"},
    ),
    (
        (2, 6),
        None,
        None,
        [3, 4],
        {"nearest_mode": "round_prefer_ceil", "coordinate_transformation_mode": "align_corners"},
    ),
]


def _resize(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    out = []
    for shape, roi, scales, sizes, attrs in _RESIZE:
        if dtype.kind != "f" and attrs.get("mode", "nearest") != "nearest":
            continue
        inputs = (
            rand(rng, shape, dtype, -5, 5),
            None if roi is None else _f32(roi),
            None if scales is None else _f32(scales),
            None if sizes is None else i64(sizes),
        )
        out.append(Sample(inputs, attrs, wrt=(0,)))
    return out


# (x shape, grid shape, attributes)
_GRID: list[tuple[tuple[int, ...], tuple[int, ...], dict[str, Any]]] = [
    ((2, 2, 4, 5), (2, 3, 4, 2), {}),
    ((1, 3, 3, 4), (1, 5, 2, 2), {"align_corners": 1}),
    ((1, 1, 4, 4), (1, 3, 3, 2), {"padding_mode": "border"}),
    ((2, 1, 3, 5), (2, 2, 3, 2), {"padding_mode": "border", "align_corners": 1}),
    ((1, 2, 4, 3), (1, 3, 2, 2), {"mode": "nearest"}),
    ((1, 1, 3, 4, 3), (1, 2, 2, 3, 3), {}),
    ((1, 2, 3, 3, 2), (1, 2, 3, 2, 3), {"padding_mode": "border", "align_corners": 1}),
    ((1, 1, 5, 4), (1, 3, 3, 2), {"mode": "cubic"}),
    ((1, 2, 4, 4), (1, 2, 3, 2), {"padding_mode": "reflection"}),
    ((1, 1, 4, 5), (1, 3, 2, 2), {"mode": "cubic", "padding_mode": "reflection"}),
]
# Modes whose gradient is not implemented: forward checks only.
_NO_GRAD = ("cubic", "reflection")


def _grid_sample(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    out = []
    for xs, gs, attrs in _GRID:
        no_grad = bool(set(attrs.values()) & set(_NO_GRAD))
        wrt = () if no_grad else (0,) if attrs.get("mode") == "nearest" else None
        sample = Sample((rand(rng, xs, dtype), rand(rng, gs, dtype, -1.3, 1.3)), attrs, wrt)
        out.append(sample)
    return out


SPECS: list[OpSpec] = [
    OpSpec(
        "Resize",
        _resize,
        dtypes=(F32, np.dtype(np.float64), np.dtype(np.int32)),
        atol=1e-5,
        oracle_skip={"onnxruntime/float64": "onnxruntime 1.31 has no double Resize kernel"},
    ),
    OpSpec("GridSample", _grid_sample, atol=1e-5),
]


def _affine_grid(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((rand(rng, (2, 2, 3), dtype), i64([2, 3, 4, 5])), {}, wrt=(0,)),
        Sample((rand(rng, (1, 2, 3), dtype), i64([1, 1, 3, 2])), {"align_corners": 1}, wrt=(0,)),
        Sample((rand(rng, (2, 3, 4), dtype), i64([2, 1, 2, 3, 4])), {}, wrt=(0,)),
        Sample((rand(rng, (1, 3, 4), dtype), i64([1, 2, 3, 2, 2])), {"align_corners": 1}, (0,)),
    ]


# (x shape, image shape, block shape, attributes)
_COL2IM: list[tuple[tuple[int, ...], list[int], list[int], dict[str, Any]]] = [
    ((1, 4, 16), [5, 5], [2, 2], {}),
    ((2, 6, 10), [4, 5], [1, 3], {"pads": [1, 0, 0, 1], "strides": [1, 2]}),
    ((1, 8, 4), [5, 4], [2, 2], {"dilations": [2, 1], "strides": [2, 2]}),
    ((1, 6, 18), [3, 4, 4], [1, 3, 2], {"strides": [1, 1, 2], "pads": [0, 1, 0, 0, 0, 0]}),
]


def _col2im(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((rand(rng, xs, dtype), i64(img), i64(blk)), attrs, wrt=(0,))
        for xs, img, blk, attrs in _COL2IM
    ]


def _center_crop_pad(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((rand(rng, (5, 6), dtype), i64([3, 9])), {}, wrt=(0,)),
        Sample((rand(rng, (2, 5, 4), dtype), i64([8, 3])), {"axes": [1, -1]}, wrt=(0,)),
        Sample((rand(rng, (3, 4, 2), dtype), i64([4])), {"axes": [0]}, wrt=(0,)),
        Sample((rand(rng, (4, 3), dtype), i64([4, 3])), {}, wrt=(0,)),
    ]


def _pool_indices(rng: np.random.Generator, shape: tuple[int, ...], k: int) -> np.ndarray:
    """Flat indices MaxPool (kernel k, stride k) could give: one position per window."""
    n, c, h, w = shape
    dy, dx = rng.integers(0, k, size=(2, *shape))
    rows = np.arange(h)[:, None] * k + dy
    cols = np.arange(w)[None, :] * k + dx
    planes = (np.arange(n)[:, None] * c + np.arange(c)[None, :]).reshape(n, c, 1, 1)
    return i64(planes * (h * k) * (w * k) + rows * (w * k) + cols)


def _max_unpool(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    attrs = {"kernel_shape": [2, 2], "strides": [2, 2]}
    return [
        Sample((rand(rng, (1, 2, 2, 3), dtype), _pool_indices(rng, (1, 2, 2, 3), 2)), attrs),
        Sample((rand(rng, (2, 1, 3, 2), dtype), _pool_indices(rng, (2, 1, 3, 2), 2)), attrs),
    ]


def _roi_align(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (2, 3, 6, 7), dtype)
    rois = np.asarray([[0.5, 1.0, 5.2, 4.4], [1.3, 0.2, 3.1, 5.7], [0.0, 0.0, 6.5, 6.0]], dtype)
    batch = i64([0, 1, 1])
    return [
        Sample((x, rois, batch)),
        Sample((x, rois, batch), {"output_height": 2, "output_width": 3, "sampling_ratio": 2}),
        Sample((x, rois * 2, batch), {"mode": "max", "output_height": 3, "spatial_scale": 0.5}),
        Sample(
            (x, rois, batch),
            {"coordinate_transformation_mode": "output_half_pixel", "output_width": 2},
        ),
    ]


def _nms(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    corners = rng.uniform(0, 4, size=(2, 8, 2)).astype(dtype)
    sides = rng.uniform(0.5, 2, size=(2, 8, 2)).astype(dtype)
    boxes = np.concatenate([corners, corners + sides], axis=-1)
    scores = rng.permutation(np.linspace(0.05, 0.95, 2 * 3 * 8)).reshape(2, 3, 8).astype(dtype)
    limits = (i64([4]), np.asarray([0.3], dtype), np.asarray([0.2], dtype))
    return [
        Sample((boxes, scores, *limits)),
        Sample((boxes[:, :, [2, 1, 0, 3]], scores, i64([8]), np.asarray([0.5], dtype))),
        Sample((boxes, scores, *limits), {"center_point_box": 1}),
    ]


_ORT_NONE = "onnxruntime 1.31 has no CPU kernel for {}"

SPECS += [
    OpSpec(
        "AffineGrid",
        _affine_grid,
        oracle_skip={"reference/float64": "onnx.reference 1.23 always returns float32"},
    ),
    OpSpec("Col2Im", _col2im, oracle_skip={"onnxruntime": _ORT_NONE.format("Col2Im-18")}),
    OpSpec("CenterCropPad", _center_crop_pad, dtypes=(F32, np.dtype(np.float64), I64, BOOL)),
    OpSpec("MaxUnpool", _max_unpool, oracle_skip={"onnxruntime": _ORT_NONE.format("MaxUnpool-22")}),
    OpSpec(
        "RoiAlign",
        _roi_align,
        grad_order=0,
        atol=1e-5,
        oracle_skip={"onnxruntime": _ORT_NONE.format("RoiAlign-22")},
    ),
    OpSpec("NonMaxSuppression", _nms, dtypes=(F32,), grad_order=0),
]
