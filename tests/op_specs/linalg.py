"""Specs of ``ir/ops/linalg.py``."""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import F32, F64, I32, I64, OpSpec, Sample, rand


def _matmul(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    pairs = [((3, 4), (4, 5)), ((2, 3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
             ((2, 1, 3, 4), (5, 4, 2))]
    return [Sample((rand(rng, a, dtype), rand(rng, b, dtype))) for a, b in pairs]


SPECS = [
    OpSpec("MatMul", _matmul, dtypes=(F32, F64, I32, I64), rtol=1e-4, atol=1e-5),
]
