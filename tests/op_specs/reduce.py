"""Specs of ``ir/ops/reduce.py``."""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import NUMERIC, OpSpec, Sample, i64, rand


def reduce_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    """Axes none/one/several/negative, keepdims on and off, and the noop flag."""
    x = rand(rng, (2, 3, 4), dtype)
    return [
        Sample((x,)),
        Sample((x, i64([1])), {"keepdims": 0}),
        Sample((x, i64([0, -1])), {"keepdims": 1}),
        Sample((x, i64([])), {"keepdims": 0}),
        Sample((x, i64([])), {"noop_with_empty_axes": 1}),
        Sample((rand(rng, (5,), dtype), i64([0])), {"keepdims": 0}),
    ]


SPECS = [
    OpSpec("ReduceSum", reduce_samples, dtypes=NUMERIC),
]
