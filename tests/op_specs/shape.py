"""Specs of ``ir/ops/shape.py``."""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import BOOL, F32, F64, I64, OpSpec, Sample, i64, rand

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
    return [Sample((x, i64([0]))), Sample((x, i64([-1, 0]))), Sample((rand(rng, (), dtype), i64([0])))]


def _shape(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (2, 3, 4), dtype)
    return [Sample((x,)), Sample((x,), {"start": 1}), Sample((x,), {"start": -2, "end": -1})]


def _transpose(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (2, 3, 4), dtype)
    return [Sample((x,)), Sample((x,), {"perm": [1, 0, 2]}), Sample((x,), {"perm": [2, 0, 1]})]


SPECS = [
    OpSpec("Reshape", _reshape, dtypes=ANY),
    OpSpec("Expand", _expand, dtypes=ANY),
    OpSpec("Squeeze", _squeeze, dtypes=ANY),
    OpSpec("Unsqueeze", _unsqueeze, dtypes=ANY),
    OpSpec("Shape", _shape, dtypes=(F32, I64), grad_order=0),
    OpSpec("Transpose", _transpose, dtypes=ANY),
]
