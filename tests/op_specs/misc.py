"""Specs of ``ir/ops/misc.py``."""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import BOOL, F32, F64, I32, I64, NUMERIC, OpSpec, Sample, rand

_ALL = (*NUMERIC, BOOL)


def _no_ort(op_type: str, *dtypes: str) -> dict[str, str]:
    return {f"onnxruntime/{t}": f"onnxruntime 1.31 has no {t} {op_type} kernel" for t in dtypes}


def _cast_like_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (3, 4), dtype)
    out = [Sample((x, np.zeros((2,), target))) for target in (F32, F64, I32, I64, BOOL)]
    return [*out, Sample((rand(rng, (), dtype), np.zeros((), dtype)))]


def _eye_like_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((rand(rng, (3, 3), dtype),)),
        Sample((rand(rng, (3, 5), dtype),), {"k": 1}),
        Sample((rand(rng, (4, 2), dtype),), {"k": -2}),
        Sample((rand(rng, (3, 4), dtype),), {"k": 7}),  # off the matrix: all zeros
        Sample((rand(rng, (2, 3), dtype),), {"dtype": 1}),
        Sample((rand(rng, (3, 3), dtype),), {"dtype": 7, "k": -1}),
    ]


def _hardmax_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    ties = np.asarray([[1, 3, 3, 0], [2, 2, 1, 2], [0, 0, 0, 0]], dtype)
    x = rand(rng, (2, 3, 4), dtype)
    return [
        Sample((x,)),
        Sample((x,), {"axis": 0}),
        Sample((x,), {"axis": -2}),
        Sample((ties,)),  # the first of equal maxima wins
        Sample((ties,), {"axis": 0}),
        Sample((rand(rng, (5,), dtype),)),
    ]


def _compress_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (3, 4), dtype)
    cond = np.asarray([True, False, True, True])
    return [
        Sample((x, cond[:3]), {"axis": 0}),
        Sample((x, cond), {"axis": 1}),
        Sample((x, cond), {"axis": -1}),
        Sample((x, np.asarray([False, True])), {"axis": 0}),  # shorter than the axis
        Sample((x, np.asarray([True, False, False, True, True]))),  # flattened
        Sample((rand(rng, (2, 3, 2), dtype), np.asarray([False, True, True])), {"axis": 1}),
        Sample((x, np.zeros(4, bool)), {"axis": 1}),  # nothing kept
    ]


def _depth_to_space_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((rand(rng, (1, 8, 2, 3), dtype),), {"blocksize": 2}),
        Sample((rand(rng, (2, 8, 2, 3), dtype),), {"blocksize": 2, "mode": "CRD"}),
        Sample((rand(rng, (1, 18, 1, 2), dtype),), {"blocksize": 3, "mode": "DCR"}),
        Sample((rand(rng, (1, 18, 2, 1), dtype),), {"blocksize": 3, "mode": "CRD"}),
        Sample((rand(rng, (2, 3, 2, 2), dtype),), {"blocksize": 1}),
    ]


def _space_to_depth_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((rand(rng, (1, 2, 4, 6), dtype),), {"blocksize": 2}),
        Sample((rand(rng, (2, 3, 6, 3), dtype),), {"blocksize": 3}),
        Sample((rand(rng, (1, 1, 2, 2), dtype),), {"blocksize": 2}),
    ]


def _lp_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def x(shape: tuple[int, ...]) -> np.ndarray:
        v = rand(rng, shape, dtype)  # off 0, the kink of |x| (p = 1)
        return np.where(np.abs(v) < 0.1, v + np.asarray(0.3, dtype), v).astype(dtype)

    zeros = np.zeros((2, 3), dtype)
    zeros[1] = x((3,))
    return [
        Sample((x((3, 4)),)),
        Sample((x((3, 4)),), {"p": 1}),
        Sample((x((2, 3, 4)),), {"axis": 1}),
        Sample((x((2, 3, 4)),), {"axis": 0, "p": 1}),
        Sample((x((5,)),), {"p": 2}),
        Sample((zeros,), wrt=()),  # a zero norm gives zeros
        Sample((zeros,), {"p": 1}, wrt=()),
    ]


SPECS = [
    OpSpec("CastLike", _cast_like_samples, dtypes=(F32, F64, I32, I64)),
    OpSpec(
        "EyeLike",
        _eye_like_samples,
        dtypes=_ALL,
        grad_order=0,
        oracle_skip=_no_ort("EyeLike", "bool"),
    ),
    OpSpec("Hardmax", _hardmax_samples, grad_order=0, oracle_skip=_no_ort("Hardmax", "float64")),
    OpSpec("Compress", _compress_samples, dtypes=_ALL),
    OpSpec(
        "DepthToSpace",
        _depth_to_space_samples,
        dtypes=_ALL,
        oracle_skip=_no_ort("DepthToSpace", "int32", "int64", "bool"),
    ),
    OpSpec(
        "SpaceToDepth",
        _space_to_depth_samples,
        dtypes=_ALL,
        oracle_skip=_no_ort("SpaceToDepth", "int32", "int64", "bool"),
    ),
    OpSpec(
        "LpNormalization",
        _lp_samples,
        oracle_skip={
            # It takes the p = 1 norm as sum(x), not sum(|x|): wrong for negative inputs
            # (onnxruntime and ONNX's own conformance cases use |x|).
            "reference": "onnx.reference's LpNormalization p=1 norm omits the absolute value"
        },
    ),
]
