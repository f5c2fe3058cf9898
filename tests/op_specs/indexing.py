"""Specs of ``ir/ops/indexing.py``."""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import BOOL, F32, F64, I32, I64, OpSpec, Sample, i64, rand

ANY = (F32, F64, I64, BOOL)
NUMBERS = (F32, F64, I32, I64)


def i32(values: object) -> np.ndarray:
    return np.asarray(values, dtype=np.int32)


def _gather(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (5, 4), dtype)
    return [
        Sample((x, i64([0, 2, 4]))),
        Sample((x, i64([[-1, 0], [3, -4]])), {"axis": 1}),
        Sample((x, i64(2))),  # a scalar index removes the axis
        Sample((x, i64(-1)), {"axis": -1}),
        # The embedding lookup: repeated ids must accumulate their gradients.
        Sample((rand(rng, (6, 3), dtype), i32([[1, 4, 1, 0], [4, 1, 1, 5]]))),
        Sample((rand(rng, (2, 3, 4), dtype), i64([[2, 0, 2]])), {"axis": 1}),
        Sample((rand(rng, (2, 3, 4), dtype), i32([3, 3, -1, 0, 3])), {"axis": -1}),
    ]


def _gather_elements(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (3, 4), dtype)
    return [
        Sample((x, i64([[0, 2, -1, 1], [2, 2, 0, -3]]))),
        Sample((x, i32([[3, 3], [0, -1], [1, 1]])), {"axis": 1}),
        Sample((x, i64([[1, 1, 1, 1], [1, 1, 1, 1], [2, 0, 2, 0]]))),
        Sample((rand(rng, (2, 3, 4), dtype), i64(rng.integers(-4, 4, (2, 3, 5)))), {"axis": 2}),
        # A negative axis only in int32, whose reference run is skipped (see the spec).
        *([Sample((x, i64([[1, 0], [-1, 3], [2, 2]])), {"axis": -1})] if dtype == I32 else []),
    ]


def _gather_nd(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (2, 3, 4), dtype)
    return [
        Sample((rand(rng, (2, 2), dtype), i64([[0, 0], [1, 1]]))),
        Sample((x, i64([[1], [0], [1]]))),  # slices, one of them twice
        Sample((x, i64([[0, 1], [1, -1], [0, 1]]))),
        Sample((x, i64([[[1, 2, 3]], [[0, 0, -1]]]))),
        Sample((x, i64([[1], [2]])), {"batch_dims": 1}),
        Sample((x, i64([[[0, 1], [2, 3], [0, 1]], [[1, 0], [1, 0], [2, 2]]])), {"batch_dims": 1}),
        Sample((x, i64([[[3], [0], [3]], [[1], [1], [-2]]])), {"batch_dims": 2}),
    ]


def _scatter_elements(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (3, 4), dtype)
    unique = i64([[1, 0, 2, -1], [0, 2, 1, 0]])  # no column repeats a row
    repeated = i64([[1, 1, 2, 0], [1, 2, 2, 0]])

    def u(shape: tuple[int, ...]) -> np.ndarray:
        return rand(rng, shape, dtype)

    samples = [
        Sample((x, unique, u((2, 4)))),
        Sample((x, i32([[3, 0], [-1, 1], [2, 1]]), u((3, 2))), {"axis": 1}),
        Sample((x, repeated, u((2, 4))), {"reduction": "add"}),
        Sample((x, repeated, u((2, 4))), {"reduction": "max"}),
        Sample((x, repeated, u((2, 4))), {"reduction": "min"}),
        # mul: only data is differentiated (the updates' gradient is not supported).
        Sample((x, repeated, u((2, 4))), {"reduction": "mul"}, wrt=(0,)),
        Sample((x, i64([[1, 0, 2, 0]]), u((1, 4))), {"reduction": "mul"}, wrt=(0,)),
        Sample((rand(rng, (2, 3, 4), dtype), i64([[[2], [0]]]), u((1, 2, 1))), {"axis": -1}),
    ]
    return samples


def _scatter_nd(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (4, 3), dtype)

    def u(shape: tuple[int, ...]) -> np.ndarray:
        return rand(rng, shape, dtype)

    repeated = i64([[1], [3], [1]])
    return [
        Sample((x, i64([[1], [-1]]), u((2, 3)))),
        Sample((x, i64([[0, 2], [3, 0], [1, -1]]), u((3,)))),
        Sample((rand(rng, (2, 3, 4), dtype), i64([[[0, 1]], [[1, 2]]]), u((2, 1, 4)))),
        Sample((x, repeated, u((3, 3))), {"reduction": "add"}),
        Sample((x, i64([[2, 1], [2, 1], [0, 0]]), u((3,))), {"reduction": "add"}),
        Sample((x, repeated, u((3, 3))), {"reduction": "max"}),
        Sample((x, repeated, u((3, 3))), {"reduction": "min"}),
        Sample((x, repeated, u((3, 3))), {"reduction": "mul"}, wrt=(0,)),
    ]


def _slice(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (4, 5, 6), dtype)
    big = np.iinfo(np.int64).max
    return [
        Sample((x, i64([1]), i64([3]))),
        Sample((x, i64([0, 1]), i64([-1, 1000]), i64([0, 2]))),
        Sample((x, i32([1, -2]), i32([2**31 - 1, 6]), i32([-1, 1]))),  # int32 operands
        Sample((x, i64([-1]), i64([-1000]), i64([1]), i64([-1]))),  # reversed
        Sample((x, i64([5, 1]), i64([0, 6]), i64([-1, 1]), i64([-2, 3]))),
        Sample((x, i64([10]), i64([20]), i64([0]))),  # empty
        Sample((x, i64([0]), i64([big]), i64([-2]), i64([1]))),
        Sample((x, i64([-100, 2]), i64([big, -big - 1]), i64([0, 1]), i64([2, -1]))),
    ]


def _nonzero(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def sparse(*shape: int) -> np.ndarray:
        return (rand(rng, shape, dtype) * (rng.random(shape) < 0.5)).astype(dtype)

    return [
        Sample((sparse(3, 4),)),
        Sample((sparse(2, 3, 2),)),
        Sample((sparse(5),)),
        Sample((np.zeros((2, 3), dtype),)),
        # 0-d inputs only in float64, which onnxruntime skips (see the spec).
        *(
            [Sample((np.asarray(1, dtype),)), Sample((np.asarray(0, dtype),))]
            if dtype == F64
            else []
        ),
    ]


def _trilu(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (4, 5), dtype)
    return [
        Sample((x,)),
        Sample((x,), {"upper": 0}),
        Sample((x, i64(1))),
        Sample((x, i64(-2)), {"upper": 0}),
        Sample((rand(rng, (2, 3, 3), dtype), i64(0)), {"upper": 0}),
        Sample((x, i64(10))),
        Sample((rand(rng, (3, 2), dtype), i64(-1))),
    ]


SPECS = [
    OpSpec("Gather", _gather, dtypes=ANY),
    OpSpec(
        "GatherElements",
        _gather_elements,
        dtypes=(*ANY, I32),
        oracle_skip={
            "reference/int32": "onnx.reference's GatherElements slices shapes with the raw axis, "
            "so a negative axis raises there; the int32 samples carry the negative-axis case"
        },
    ),
    OpSpec("GatherND", _gather_nd, dtypes=ANY),
    OpSpec("ScatterElements", _scatter_elements, dtypes=NUMBERS),
    OpSpec("ScatterND", _scatter_nd, dtypes=NUMBERS),
    OpSpec("Slice", _slice, dtypes=ANY),
    OpSpec(
        "NonZero",
        _nonzero,
        dtypes=ANY,
        grad_order=0,
        oracle_skip={
            "onnxruntime/float64": "onnxruntime has no float64 NonZero kernel; it also gives "
            "a 0-d input shape [1, n] where the ONNX spec says [0, n], so the 0-d samples are "
            "float64 only"
        },
    ),
    OpSpec("Trilu", _trilu, dtypes=ANY),
]
