"""Specs of ``ir/ops/linalg.py``."""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import NUMERIC, OpSpec, Sample, rand


def _matmul(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    pairs = [
        ((3, 4), (4, 5)),
        ((2, 3, 4), (4, 5)),
        ((2, 3, 2, 4), (4, 5)),
        ((4,), (4, 5)),
        ((3, 4), (4,)),
        ((4,), (4,)),
        ((2, 1, 3, 4), (5, 4, 2)),
    ]
    return [Sample((rand(rng, a, dtype), rand(rng, b, dtype))) for a, b in pairs]


def _gemm(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def r(*shape: int) -> np.ndarray:
        return rand(rng, shape, dtype)

    # Integer Gemm keeps alpha = beta = 1: scaling ints by a float has no agreed rounding.
    scale = {"alpha": 0.5, "beta": -1.5} if dtype.kind == "f" else {}
    return [
        Sample((r(3, 4), r(4, 5))),
        Sample((r(3, 4), r(4, 5), r(3, 5))),
        Sample((r(4, 3), r(4, 5), r(5)), {"transA": 1, **scale}),
        Sample((r(3, 4), r(5, 4), r(3, 1)), {"transB": 1, **scale}),
        Sample((r(4, 3), r(5, 4), r()), {"transA": 1, "transB": 1}),
        Sample((r(3, 4), r(4, 5), r(1, 5)), {"alpha": 2.0} if dtype.kind == "f" else {}),
        Sample((r(1, 4), r(4, 1), r(1, 1)), scale),
    ]


_EINSUM = [
    ("ij,jk->ik", [(3, 4), (4, 5)]),
    ("ij, jk -> ik", [(2, 3), (3, 2)]),
    ("ij->ji", [(3, 4)]),
    ("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]),
    ("bhqd,bhkd->bhqk", [(2, 2, 3, 4), (2, 2, 5, 4)]),
    ("i,i", [(4,), (4,)]),
    ("ij,j", [(3, 4), (4,)]),
    ("ba", [(3, 4)]),
    ("i,j->ij", [(3,), (4,)]),
    ("ij->i", [(3, 4)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("Ab,bC->AC", [(2, 3), (3, 4)]),
    # An ellipsis summed away ("i...->i") is valid ONNX and the kernel runs it, but
    # onnxruntime 1.31 rejects it, so it has no sample; "ij->i" covers the same vjp path.
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (2, 5, 4, 2)]),
    ("...ij,...jk", [(2, 3, 4), (2, 4, 2)]),
    ("...i,...i->...", [(2, 3), (1, 3)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(4, 4)]),
    ("iij,jk->ik", [(3, 3, 4), (4, 2)]),
    ("ij,ij->", [(3, 4), (3, 4)]),
    ("i->", [(5,)]),
    (",i->i", [(), (3,)]),
]


def _einsum(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample(tuple(rand(rng, s, dtype) for s in shapes), {"equation": eq})
        for eq, shapes in _EINSUM
    ]


SPECS = [
    OpSpec("MatMul", _matmul, dtypes=NUMERIC, rtol=1e-4, atol=1e-5),
    OpSpec(
        "Gemm",
        _gemm,
        dtypes=NUMERIC,
        rtol=1e-4,
        atol=1e-5,
        oracle_skip={
            "onnxruntime/int32": "onnxruntime 1.31 has no int32 Gemm kernel",
            "onnxruntime/int64": "onnxruntime 1.31 has no int64 Gemm kernel",
        },
    ),
    OpSpec("Einsum", _einsum, dtypes=NUMERIC, rtol=1e-4, atol=1e-5),
]
