"""Specs of ``ir/ops/conv.py``: Conv, ConvTranspose, and the image normalisations."""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.op_specs.common import OpSpec, Sample, positive, rand

# (x shape, w shape, with bias, attributes)
_CONV: list[tuple[tuple[int, ...], tuple[int, ...], bool, dict[str, Any]]] = [
    ((2, 3, 5, 5), (4, 3, 3, 3), True, {}),
    (
        (1, 2, 7, 6),
        (3, 2, 2, 3),
        False,
        {"pads": [1, 0, 2, 1], "strides": [2, 1], "dilations": [1, 2]},
    ),
    ((2, 4, 5, 6), (6, 2, 3, 3), True, {"group": 2, "pads": [1, 1, 1, 1], "strides": [2, 2]}),
    ((1, 3, 5, 5), (3, 1, 3, 3), False, {"group": 3, "auto_pad": "SAME_UPPER"}),
    ((1, 2, 6, 7), (2, 2, 3, 2), False, {"auto_pad": "SAME_LOWER", "strides": [2, 2]}),
    ((1, 2, 7, 5), (2, 2, 2, 2), True, {"auto_pad": "VALID", "strides": [2, 3]}),
    # Strides leave positions unread (output_padding in the input gradient) and the weight
    # gradient's windows run past the kernel (cut off).
    ((1, 1, 6, 6), (2, 1, 2, 2), False, {"strides": [3, 3], "kernel_shape": [2, 2]}),
    ((2, 3, 9), (4, 3, 3), True, {"strides": [2], "pads": [1, 2]}),
    ((1, 2, 9), (2, 2, 2), False, {"strides": [4]}),
    ((1, 2, 4, 5, 3), (2, 2, 2, 3, 2), False, {"pads": [1, 0, 1, 0, 1, 1], "strides": [1, 2, 1]}),
    ((1, 4, 5, 5), (4, 2, 2, 2), True, {"group": 2, "dilations": [2, 2], "strides": [1, 2]}),
]


def _conv(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample(
            (rand(rng, xs, dtype), rand(rng, ws, dtype), rand(rng, ws[:1], dtype) if b else None), a
        )
        for xs, ws, b, a in _CONV
    ]


# (x shape, w shape, with bias, attributes). onnx.reference 1.23 mishandles groups unless
# C == M == group without bias, and output_shape smaller than the full result; the Conv
# gradient checks run ConvTranspose with general groups and pads.
_CONV_T: list[tuple[tuple[int, ...], tuple[int, ...], bool, dict[str, Any]]] = [
    ((2, 3, 3, 4), (3, 2, 3, 3), True, {}),
    (
        (2, 3, 4, 5),
        (3, 2, 3, 3),
        True,
        {"strides": [2, 3], "pads": [1, 0, 0, 2], "output_padding": [1, 2], "dilations": [1, 2]},
    ),
    ((1, 2, 3, 3), (2, 2, 3, 3), False, {"strides": [2, 2], "auto_pad": "SAME_UPPER"}),
    ((1, 2, 3, 4), (2, 1, 2, 3), False, {"strides": [2, 2], "auto_pad": "SAME_LOWER"}),
    ((1, 2, 3, 3), (2, 2, 3, 3), False, {"strides": [3, 2], "output_shape": [9, 7]}),
    ((1, 3, 4, 4), (3, 1, 3, 3), False, {"group": 3, "strides": [2, 1], "pads": [1, 1, 0, 1]}),
    ((2, 2, 5), (2, 3, 3), True, {"strides": [2], "pads": [2, 1]}),
    ((1, 2, 2, 3, 2), (2, 1, 2, 2, 3), False, {"strides": [2, 1, 2], "pads": [0, 1, 1, 1, 0, 0]}),
    (
        (1, 1, 3, 3),
        (1, 2, 2, 2),
        False,
        {"auto_pad": "VALID", "strides": [3, 3], "kernel_shape": [2, 2]},
    ),
]


def _conv_transpose(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample(
            (
                rand(rng, xs, dtype),
                rand(rng, ws, dtype),
                rand(rng, (ws[1] * a.get("group", 1),), dtype) if b else None,
            ),
            a,
        )
        for xs, ws, b, a in _CONV_T
    ]


def _batch_norm(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def params(c: int) -> tuple[np.ndarray, ...]:
        return (
            rand(rng, (c,), dtype),
            rand(rng, (c,), dtype),
            rand(rng, (c,), dtype),
            positive(rng, (c,), dtype),
        )

    return [
        Sample((rand(rng, (2, 3, 4, 5), dtype), *params(3))),
        Sample((rand(rng, (4, 3), dtype), *params(3)), {"epsilon": 1e-3}),
        Sample((rand(rng, (2, 2, 5), dtype), *params(2)), {"momentum": 0.5}),
        Sample((rand(rng, (2, 2, 2, 3, 2), dtype), *params(2))),
        Sample((rand(rng, (3, 2, 4), dtype), *params(2)), {"training_mode": 1, "momentum": 0.7}),
        Sample((rand(rng, (4, 3), dtype), *params(3)), {"training_mode": 1, "epsilon": 1e-2}),
    ]


def _instance_norm(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def r(*shape: int) -> np.ndarray:
        return rand(rng, shape, dtype)

    return [
        Sample((r(2, 3, 5), r(3), r(3))),
        Sample((r(2, 3, 4, 3), r(3), r(3)), {"epsilon": 1e-2}),
        Sample((r(1, 2, 3, 2, 2), r(2), r(2))),
    ]


def _lrn(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    # N == C: onnx.reference 1.23 loops over N where it means C. Odd sizes: onnxruntime 1.31
    # refuses even ones (ONNX allows them; the kernel sums floor((size-1)/2) channels before).
    return [
        Sample((rand(rng, (5, 5, 3, 4), dtype),), {"size": 3}),
        Sample(
            (rand(rng, (4, 4, 2, 3), dtype),), {"size": 1, "alpha": 0.1, "beta": 0.5, "bias": 2.0}
        ),
        Sample((rand(rng, (6, 6, 2, 2), dtype),), {"size": 5, "alpha": 0.3, "bias": 1.5}),
    ]


_NO_F64 = "onnxruntime 1.31 has no float64 {} kernel"

SPECS = [
    OpSpec(
        "Conv",
        _conv,
        rtol=1e-4,
        atol=1e-5,
        oracle_skip={"onnxruntime/float64": _NO_F64.format("Conv")},
    ),
    OpSpec(
        "ConvTranspose",
        _conv_transpose,
        rtol=1e-4,
        atol=1e-5,
        oracle_skip={"onnxruntime/float64": _NO_F64.format("ConvTranspose")},
    ),
    OpSpec("BatchNormalization", _batch_norm, rtol=1e-4, atol=1e-5),
    OpSpec(
        "InstanceNormalization",
        _instance_norm,
        rtol=1e-4,
        atol=1e-5,
        oracle_skip={"onnxruntime/float64": _NO_F64.format("InstanceNormalization")},
    ),
    OpSpec(
        "LRN",
        _lrn,
        rtol=1e-4,
        atol=1e-5,
        oracle_skip={"onnxruntime/float64": _NO_F64.format("LRN")},
    ),
]
