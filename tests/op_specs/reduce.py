"""Specs of ``ir/ops/reduce.py``."""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import I32, NUMERIC, OpSpec, Sample, i64, rand


def reduce_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    """Axes none/one/several/negative, keepdims on and off, and the noop flag."""
    x = rand(rng, (2, 3, 4), dtype)
    return [
        Sample((x,)),
        Sample((x, i64([1])), {"keepdims": 0}),
        Sample((x, i64([0, -1])), {"keepdims": 1}),
        Sample((x, i64([])), {"keepdims": 0}),
        Sample((x, i64([])), {"noop_with_empty_axes": 1}),
        Sample((x,), {"noop_with_empty_axes": 1}),
        Sample((rand(rng, (5,), dtype), i64([0])), {"keepdims": 0}),
    ]


def _distinct(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Values without ties (floats) so max/min/top-k have one well-defined winner."""
    if dtype.kind == "f":
        n = int(np.prod(shape))
        return (rng.permutation(n).reshape(shape) * 0.37 - n * 0.15).astype(dtype)
    return rand(rng, shape, dtype)


def _extremum_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    samples = reduce_samples(rng, dtype)
    x = _distinct(rng, (2, 3, 4), dtype)
    return [Sample((x, *s.inputs[1:]), s.attrs) for s in samples]


def _prod_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    # Magnitudes away from 0 keep the float products well conditioned.
    out = []
    for s in reduce_samples(rng, dtype):
        x = s.inputs[0]
        assert x is not None
        x = np.where(np.abs(x) < 0.3, np.full_like(x, 1), x).astype(dtype)
        out.append(Sample((x, *s.inputs[1:]), s.attrs))
    if dtype.kind == "f":
        with_zero = rand(rng, (3, 4), dtype)
        with_zero[1, 2] = 0
        out.append(Sample((with_zero, i64([1])), {"keepdims": 0}))
    return out


def _logsumexp_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    wide = rand(rng, (3, 5), dtype, low=-30, high=30)
    return [*reduce_samples(rng, dtype), Sample((wide, i64([-1])))]


def _arg_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = _distinct(rng, (2, 3, 4), dtype)
    ties = np.asarray([[1, 3, 3, 0], [2, 2, 1, 2]], dtype=dtype)
    return [
        Sample((x,)),
        Sample((x,), {"axis": 1, "keepdims": 0}),
        Sample((x,), {"axis": -1}),
        Sample((ties,), {"axis": 1}),
        Sample((ties,), {"axis": 1, "select_last_index": 1}),
        Sample((ties,), {"axis": -1, "keepdims": 0, "select_last_index": 1}),
        Sample((rand(rng, (5,), dtype),), {"keepdims": 0}),
    ]


def _cumsum_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (3, 4), dtype)
    return [
        Sample((x, i64(0))),
        Sample((x, i64(1)), {"exclusive": 1}),
        Sample((x, i64(-1)), {"reverse": 1}),
        Sample((x, np.asarray(0, dtype=I32)), {"exclusive": 1, "reverse": 1}),
        Sample((rand(rng, (2, 3, 4), dtype), i64(1))),
        Sample((rand(rng, (5,), dtype), i64(0)), {"reverse": 1}),
    ]


def _topk_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = _distinct(rng, (3, 5), dtype)
    ties = np.asarray([[1, 3, 3, 0, 3], [2, 2, 1, 2, 0]], dtype=dtype)
    return [
        Sample((x, i64([2]))),
        Sample((x, i64([3])), {"axis": 0, "largest": 0}),
        Sample((x, i64([5])), {"axis": -1, "largest": 1}),
        Sample((_distinct(rng, (2, 4, 3), dtype), i64([2])), {"axis": 1}),
        # Ties check the lower-index-first rule; a gradient there is not well defined.
        Sample((ties, i64([3])), wrt=()),
        Sample((ties, i64([4])), {"largest": 0}, wrt=()),
    ]


SPECS = [
    OpSpec("ReduceSum", reduce_samples, dtypes=NUMERIC),
    OpSpec("ReduceMean", reduce_samples, dtypes=NUMERIC),
    OpSpec("ReduceMax", _extremum_samples, dtypes=NUMERIC),
    OpSpec("ReduceMin", _extremum_samples, dtypes=NUMERIC),
    OpSpec("ReduceProd", _prod_samples, dtypes=NUMERIC),
    OpSpec("ReduceL2", reduce_samples),
    OpSpec("ReduceLogSumExp", _logsumexp_samples),
    OpSpec("ArgMax", _arg_samples, dtypes=NUMERIC, grad_order=0),
    OpSpec("ArgMin", _arg_samples, dtypes=NUMERIC, grad_order=0),
    OpSpec("CumSum", _cumsum_samples, dtypes=NUMERIC),
    OpSpec("TopK", _topk_samples, dtypes=NUMERIC),
]
