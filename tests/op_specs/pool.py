"""Specs of ``ir/ops/pool.py``: MaxPool, AveragePool, LpPool, GlobalAveragePool, GlobalMaxPool."""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.op_specs.common import F32, F64, OpSpec, Sample, rand

I8, U8 = np.dtype(np.int8), np.dtype(np.uint8)

# (x shape, attributes) shared by the windowed pools (kernel_shape is required).
_WINDOWED: list[tuple[tuple[int, ...], dict[str, Any]]] = [
    ((2, 3, 5, 5), {"kernel_shape": [2, 2]}),
    ((1, 2, 6, 7), {"kernel_shape": [3, 2], "strides": [2, 2], "pads": [1, 0, 1, 1]}),
    ((1, 2, 5, 6), {"kernel_shape": [2, 3], "strides": [2, 2], "ceil_mode": 1}),
    ((1, 1, 7, 7), {"kernel_shape": [2, 2], "dilations": [2, 3], "strides": [1, 2]}),
    ((1, 2, 5, 7), {"kernel_shape": [3, 3], "strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((1, 2, 6, 5), {"kernel_shape": [2, 3], "strides": [2, 1], "auto_pad": "SAME_LOWER"}),
    ((1, 2, 7, 6), {"kernel_shape": [3, 2], "strides": [2, 3], "auto_pad": "VALID"}),
    ((2, 2, 9), {"kernel_shape": [3], "strides": [2], "pads": [1, 1]}),
    (
        (1, 2, 4, 5, 3),
        {"kernel_shape": [2, 2, 2], "strides": [2, 2, 1], "pads": [0, 1, 0, 1, 0, 1]},
    ),
    # ceil_mode where the last window would start inside the end padding: it is dropped.
    (
        (1, 1, 4, 6),
        {"kernel_shape": [2, 2], "strides": [2, 2], "pads": [0, 0, 1, 1], "ceil_mode": 1},
    ),
]


def _away_from_zero(
    rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype
) -> np.ndarray:
    """Values with |x| in [0.3, 2): Lp pools have a kink at 0."""
    sign = np.where(rng.random(shape) < 0.5, -1.0, 1.0)
    return (sign * rng.uniform(0.3, 2.0, shape)).astype(dtype)


def _max_pool(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    # Not _WINDOWED[0]: with unit strides and dilations onnx.reference 1.23 takes a path that
    # returns wrong Indices (and cannot pad integers); onnxruntime and ONNX's conformance
    # cases (maxpool_2d_default, maxpool_with_argmax_2d_precomputed_pads) cover it.
    if dtype.kind in "iu":  # wide range: few ties (both oracles take the first max anyway)
        return [
            Sample((rng.integers(0 if dtype == U8 else -100, 100, xs).astype(dtype),), a)
            for xs, a in _WINDOWED[1:4]
        ]
    samples = [Sample((rand(rng, xs, dtype),), a) for xs, a in _WINDOWED[1:]]
    x = rand(rng, (2, 2, 4, 5), dtype)
    samples.append(Sample((x,), {"kernel_shape": [2, 2], "strides": [1, 2], "storage_order": 1}))
    return samples


def _average_pool(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    samples = [Sample((rand(rng, xs, dtype),), a) for xs, a in _WINDOWED]
    for xs, a in (_WINDOWED[1], _WINDOWED[2], _WINDOWED[4], _WINDOWED[8], _WINDOWED[9]):
        samples.append(Sample((rand(rng, xs, dtype),), {**a, "count_include_pad": 1}))
    return samples


def _lp_pool(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    samples = [Sample((_away_from_zero(rng, xs, dtype),), a) for xs, a in _WINDOWED]
    return samples + [
        Sample((_away_from_zero(rng, (1, 2, 5, 5), dtype),), {"kernel_shape": [2, 2], "p": p})
        for p in (1, 3)
    ]


def _global(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [Sample((rand(rng, s, dtype),)) for s in [(2, 3, 5), (2, 3, 4, 5), (1, 2, 3, 2, 2)]]


def _global_4d(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    # 4-D only: onnx.reference 1.23's GlobalMaxPool reduces axes (rank - 2, rank - 1), which
    # are the spatial axes only for 4-D inputs; the kernel is the same for every rank.
    return [Sample((rand(rng, s, dtype),)) for s in [(2, 3, 4, 5), (1, 4, 3, 3)]]


def _no_f64(op_type: str) -> dict[str, str]:
    return {"onnxruntime/float64": f"onnxruntime 1.31 has no float64 {op_type} kernel"}


SPECS = [
    OpSpec("MaxPool", _max_pool, dtypes=(F32, F64, I8, U8)),
    OpSpec("AveragePool", _average_pool, oracle_skip=_no_f64("AveragePool")),
    OpSpec(
        "LpPool",
        _lp_pool,
        oracle_skip={
            **_no_f64("LpPool"),
            "reference": "onnx.reference 1.23 computes LpPool as an average over the taps inside "
            "the input times the kernel size, which rescales windows cut by padding or "
            "ceil_mode; onnxruntime and ONNX's LpPool conformance cases sum the taps inside",
        },
    ),
    OpSpec("GlobalAveragePool", _global, oracle_skip=_no_f64("GlobalAveragePool")),
    OpSpec("GlobalMaxPool", _global_4d, oracle_skip=_no_f64("GlobalMaxPool")),
]
