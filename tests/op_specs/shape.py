"""Specs of ``ir/ops/shape.py``."""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import BOOL, F32, F64, I32, I64, OpSpec, Sample, i64, rand

ANY = (F32, F64, I64, BOOL)


def _reshape(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (2, 3, 4), dtype)
    return [
        Sample((x, i64([6, 4]))),
        Sample((x, i64([-1]))),
        Sample((x, i64([0, -1]))),
        Sample((x, i64([4, 0, 2])), {"allowzero": 0}),
        Sample((rand(rng, (), dtype), i64([1, 1]))),
    ]


def _expand(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((rand(rng, (3, 1), dtype), i64([2, 3, 4]))),
        Sample((rand(rng, (4,), dtype), i64([3, 1]))),
        Sample((rand(rng, (), dtype), i64([2, 2]))),
    ]


def _squeeze(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (1, 3, 1, 4), dtype)
    return [Sample((x,)), Sample((x, i64([0]))), Sample((x, i64([-2, 0])))]


def _unsqueeze(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (3, 4), dtype)
    return [
        Sample((x, i64([0]))),
        Sample((x, i64([-1, 0]))),
        Sample((rand(rng, (), dtype), i64([0]))),
    ]


def _shape(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (2, 3, 4), dtype)
    return [Sample((x,)), Sample((x,), {"start": 1}), Sample((x,), {"start": -2, "end": -1})]


def _transpose(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (2, 3, 4), dtype)
    return [Sample((x,)), Sample((x,), {"perm": [1, 0, 2]}), Sample((x,), {"perm": [2, 0, 1]})]


def _concat(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def r(*shape: int) -> np.ndarray:
        return rand(rng, shape, dtype)

    return [
        Sample((r(2, 3), r(2, 1), r(2, 4)), {"axis": 1}),
        Sample((r(2, 3), r(4, 3)), {"axis": 0}),
        Sample((r(2, 3, 2), r(2, 1, 2)), {"axis": -2}),
        Sample((r(3),), {"axis": 0}),
        Sample((r(2, 0), r(2, 3)), {"axis": -1}),
    ]


def _split(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (6, 4), dtype)
    return [
        Sample((x, i64([2, 4])), {"axis": 0}),
        Sample((x, i64([1, 0, 3])), {"axis": -1}),
        Sample((x,), {"num_outputs": 3}),
        Sample((x,), {"axis": 1, "num_outputs": 2}),
        Sample((rand(rng, (7, 2), dtype),), {"num_outputs": 3}),  # uneven: 3, 3, 1
        Sample((x, i64([4])), {"axis": 1}),  # one output
    ]


def _tile(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((rand(rng, (2, 3), dtype), i64([2, 1]))),
        Sample((rand(rng, (2, 3), dtype), i64([1, 3]))),
        Sample((rand(rng, (3,), dtype), i64([4]))),
        Sample((rand(rng, (2, 1, 3), dtype), i64([2, 3, 2]))),
        Sample((rand(rng, (), dtype), i64([]))),
        Sample((rand(rng, (2, 2), dtype), i64([0, 2]))),
    ]


def _pad_constant(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (3, 4), dtype)
    value = np.asarray(rand(rng, (), dtype))
    return [
        Sample((x, i64([1, 2, 0, 1]))),
        Sample((x, i64([1, 0, 2, 1]), value)),
        Sample((rand(rng, (2, 3, 4), dtype), i64([1, 2]), value, i64([-1]))),
        Sample((x, i64([0, 0, 0, 0]))),
        Sample((rand(rng, (2, 3), dtype), i64([2, 1, 0, 1]), None, i64([1, 0]))),
    ]


def _pad(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    samples = _pad_constant(rng, dtype)
    if dtype == I32:
        # Negative pads crop. Only int32 has this sample, so that the reference skip (np.pad
        # rejects negative widths) hides nothing else; onnxruntime still checks it.
        crop = Sample((rand(rng, (3, 4), dtype), i64([-1, 1, 1, -2]), np.asarray(3, dtype)))
        samples.append(crop)
    if dtype == BOOL:
        return samples
    x = rand(rng, (3, 4), dtype)
    for mode in ("reflect", "edge", "wrap"):
        samples += [
            Sample((x, i64([1, 2, 2, 1])), {"mode": mode}),
            Sample((x, i64([2, 0, 1, 2]), None, i64([1, -2])), {"mode": mode}),
            Sample((rand(rng, (2, 3, 4), dtype), i64([0, 1, 0, 0, 2, 1])), {"mode": mode}),
        ]
    return samples


def _size(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [Sample((rand(rng, s, dtype),)) for s in [(2, 3, 4), (), (0, 3)]]


def _range(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def s(*v: float) -> tuple[np.ndarray, ...]:
        return tuple(np.asarray(x, dtype=dtype) for x in v)

    cases = [s(0, 10, 3), s(10, 2, -2), s(3, 3, 1), s(5, 1, 1), s(-4, 7, 1)]
    if dtype.kind == "f":
        cases += [s(0.5, 3.1, 0.7), s(2.25, -1.0, -0.5)]
    return [Sample(c) for c in cases]


def _flatten(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (2, 3, 4), dtype)
    return [
        Sample((x,)),
        *(Sample((x,), {"axis": a}) for a in (0, 2, 3, -1, -3)),
        Sample((rand(rng, (), dtype),), {"axis": 0}),
    ]


def _constant_of_shape(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    del rng, dtype
    return [
        Sample((i64([2, 3]),)),
        Sample((i64([]),)),
        Sample((i64([0, 2]),)),
        Sample((i64([3]),), {"value": np.asarray([1.5], dtype=np.float32)}),
        Sample((i64([2, 2]),), {"value": np.asarray([-7], dtype=np.int64)}),
        Sample((i64([2]),), {"value": np.asarray([2.5], dtype=np.float64)}),
        Sample((i64([1, 2]),), {"value": np.asarray([True])}),
    ]


SPECS = [
    OpSpec("Reshape", _reshape, dtypes=ANY),
    OpSpec("Expand", _expand, dtypes=ANY),
    OpSpec("Squeeze", _squeeze, dtypes=ANY),
    OpSpec("Unsqueeze", _unsqueeze, dtypes=ANY),
    OpSpec("Shape", _shape, dtypes=(F32, I64), grad_order=0),
    OpSpec("Transpose", _transpose, dtypes=ANY),
    OpSpec("Concat", _concat, dtypes=ANY),
    OpSpec("Split", _split, dtypes=ANY),
    OpSpec("Tile", _tile, dtypes=ANY),
    OpSpec(
        "Pad",
        _pad,
        dtypes=(*ANY, I32),
        oracle_skip={
            "reference/int32": "onnx.reference's Pad is np.pad, which rejects negative pads"
        },
    ),
    OpSpec("Size", _size, dtypes=(F32, I64, BOOL), grad_order=0),
    OpSpec("Range", _range, dtypes=(F32, F64, I32, I64), grad_order=0),
    OpSpec("Flatten", _flatten, dtypes=ANY),
    OpSpec(
        "ConstantOfShape",
        _constant_of_shape,
        dtypes=(I64,),
        grad_order=0,
    ),
]
