"""Specs of ``ir/ops/reduce.py``."""

from __future__ import annotations

from typing import Any

import numpy as np

from tests.op_specs.common import BOOL, FLOATS, I32, NUMERIC, OpSpec, Sample, i64, positive, rand


def reduce_samples(
    rng: np.random.Generator, dtype: np.dtype, gen: Any = rand, empty: bool = True
) -> list[Sample]:
    """Axes none/one/several/negative, keepdims on and off, the noop flag, an empty set."""
    x = gen(rng, (2, 3, 4), dtype)
    out = [
        Sample((x,)),
        Sample((x, i64([1])), {"keepdims": 0}),
        Sample((x, i64([0, -1])), {"keepdims": 1}),
        Sample((x, i64([])), {"keepdims": 0}),
        Sample((x, i64([])), {"noop_with_empty_axes": 1}),
        Sample((x,), {"noop_with_empty_axes": 1}),
        Sample((gen(rng, (5,), dtype), i64([0])), {"keepdims": 0}),
    ]
    # Reducing an empty axis gives the reduction's identity. keepdims=1 and axis >= 0 only:
    # else onnxruntime 1.31 keeps the empty axis in its output; and no bools, of which it
    # refuses empty maxima (test_reduce_max_empty_set_bool, a conformance case, has them).
    if empty and dtype != BOOL:
        out.append(Sample((np.zeros((2, 0, 4), dtype), i64([1])), wrt=()))
    return out


def _off_zero(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Values away from 0, the kink of |x| (finite differences)."""
    x = rand(rng, shape, dtype)
    return np.where(np.abs(x) < 0.1, x + np.asarray(0.3, dtype), x).astype(dtype)


def _distinct(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    """Values without ties (floats) so max/min/top-k have one well-defined winner."""
    if dtype.kind == "f":
        n = int(np.prod(shape))
        return (rng.permutation(n).reshape(shape) * 0.37 - n * 0.15).astype(dtype)
    return rand(rng, shape, dtype)


def _extremum_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    samples = reduce_samples(rng, dtype)
    x = _distinct(rng, (2, 3, 4), dtype)
    return [
        Sample((x if s.inputs[0].size else s.inputs[0], *s.inputs[1:]), s.attrs, s.wrt)
        for s in samples
    ]  # type: ignore[union-attr]


def _prod_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    # Magnitudes away from 0 keep the float products well conditioned.
    out = []
    for s in reduce_samples(rng, dtype):
        x = s.inputs[0]
        assert x is not None
        x = np.where(np.abs(x) < 0.3, np.full_like(x, 1), x).astype(dtype)
        out.append(Sample((x, *s.inputs[1:]), s.attrs, s.wrt))
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
    # An empty mean is undefined in ONNX (0/0): no empty-set sample.
    OpSpec("ReduceMean", lambda r, d: reduce_samples(r, d, empty=False), dtypes=NUMERIC),
    OpSpec("ReduceMax", _extremum_samples, dtypes=(*NUMERIC, BOOL)),
    OpSpec("ReduceMin", _extremum_samples, dtypes=(*NUMERIC, BOOL)),
    OpSpec("ReduceProd", _prod_samples, dtypes=NUMERIC),
    OpSpec("ReduceL2", reduce_samples),
    OpSpec("ReduceLogSumExp", _logsumexp_samples),
    OpSpec("ReduceL1", lambda r, d: reduce_samples(r, d, _off_zero), dtypes=NUMERIC),
    OpSpec(
        "ReduceSumSquare",
        reduce_samples,
        dtypes=NUMERIC,
        oracle_skip={"reference/int32": "onnx.reference's ReduceSumSquare returns int64 for int32"},
    ),
    OpSpec("ReduceLogSum", lambda r, d: reduce_samples(r, d, positive), dtypes=FLOATS),
    OpSpec("ArgMax", _arg_samples, dtypes=NUMERIC, grad_order=0),
    OpSpec("ArgMin", _arg_samples, dtypes=NUMERIC, grad_order=0),
    OpSpec("CumSum", _cumsum_samples, dtypes=NUMERIC),
    OpSpec("TopK", _topk_samples, dtypes=NUMERIC),
]
