"""Specs of ``ir/ops/nn.py``."""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import F32, F64, FLOATS, I32, I64, NUMERIC, OpSpec, Sample, i64, rand


def _softmax(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (2, 3, 4), dtype)
    return [
        Sample((rand(rng, (5,), dtype),)),
        Sample((rand(rng, (3, 4), dtype),)),
        Sample((rand(rng, (3, 4), dtype),), {"axis": 0}),
        Sample((x,), {"axis": 1}),
        Sample((x,), {"axis": -2}),
        # Large logits: without the max shift exp would overflow. (A spread past ~87 would
        # underflow float32 in onnx.reference's log(softmax), so it stays below that.)
        Sample(((rand(rng, (2, 5), dtype, low=-40, high=40) + 300).astype(dtype),)),
    ]


def _layer_norm(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def r(*shape: int) -> np.ndarray:
        return rand(rng, shape, dtype)

    samples = [
        Sample((r(2, 3, 4), r(4), r(4))),
        Sample((r(2, 3, 4), r(4))),
        Sample((r(2, 3, 4), r(3, 4), r(3, 4)), {"axis": 1}),
        Sample((r(2, 3, 4), r(3, 4)), {"axis": -2, "epsilon": 1e-3}),
        Sample((r(6, 5), r(5), r(5)), {"axis": 0}),
        Sample((r(5), r(5), r(5))),
    ]
    if dtype == F64:
        # stash_type=11 keeps Mean/InvStdDev in float64, so the gradient checks (float64
        # outputs only) cover all three outputs.
        samples += [Sample(s.inputs, {**s.attrs, "stash_type": 11}) for s in samples]
    return samples


def _dropout(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = rand(rng, (3, 4), dtype)
    ratio = np.asarray(0.3, dtype=F32)  # ratio's type (T1) may differ from data's
    ratio_same = np.asarray(0.25, dtype=dtype)
    on, off = np.asarray(True), np.asarray(False)
    # ratio gets no gradient (wrt=(0,)). onnx.reference cannot run a training-mode node
    # whose ratio is omitted, so the default ratio is exercised in inference mode only.
    return [
        Sample((x,)),
        Sample((x, ratio), wrt=(0,)),
        Sample((x, ratio_same, off), wrt=(0,)),
        Sample((rand(rng, (), dtype), None, off)),
        Sample((x, np.asarray(0.0, dtype=dtype), on), wrt=(0,)),
        # Training: a seed attribute fixes the mask, so gradients are checkable.
        Sample((x, ratio, on), {"seed": 7}, wrt=(0,)),
        Sample((rand(rng, (2, 3, 4), dtype), ratio_same, on), {"seed": 3}, wrt=(0,)),
        # No seed: a fresh mask each call, so no finite differences.
        Sample((x, ratio, on), wrt=()),
    ]


def _one_hot(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    values = np.asarray([-0.5, 2.0] if dtype.kind == "f" else [1, 7], dtype=dtype)
    idx = np.asarray([[0, 2, -1], [4, 1, -5]], dtype=np.int64)  # -1 wraps; 4 and -5 are off
    depth = i64(4)
    # Float indices and depth (T1, T2 allow them); only values is differentiable. The
    # (indices, depth) types are ones onnxruntime has kernels for with these values.
    idx_f = np.asarray([1.0, 3.0, -2.0], dtype=F32)
    idx_i32 = np.asarray([3, 0, 1], dtype=I32)
    odd = [
        Sample((idx_f, np.asarray(4.0, dtype=F32), values), wrt=(2,)),
        Sample((idx_i32, np.asarray(5, dtype=I32), values)),
    ]
    if dtype == I64:
        odd = [Sample((idx_f, i64(4), values), wrt=(2,))]
    return [
        Sample((idx, depth, values)),
        Sample((idx, depth, values), {"axis": 0}),
        Sample((idx, depth, values), {"axis": 1}),
        Sample((idx, depth, values), {"axis": -2}),
        *odd,
    ]


SPECS = [
    OpSpec("Softmax", _softmax),
    OpSpec("LogSoftmax", _softmax),
    OpSpec(
        "LayerNormalization",
        _layer_norm,
        rtol=1e-4,
        atol=1e-5,
        oracle_skip={
            "reference/float64": "onnx.reference returns Mean/InvStdDev in X's dtype rather "
            "than stash_type's (onnx shape inference and onnxruntime say float32), and has "
            "no stash_type=11",
            "onnxruntime/float64": "onnxruntime 1.31 has no LayerNormalization kernel for "
            "stash_type=11, which the float64 samples use for the gradient checks",
        },
    ),
    OpSpec("Dropout", _dropout, dtypes=FLOATS, random=True),
    OpSpec(
        "OneHot",
        _one_hot,
        dtypes=NUMERIC,
        oracle_skip={
            "onnxruntime/float64": "onnxruntime 1.31 has no OneHot kernel with float64 values",
            "onnxruntime/int32": "onnxruntime 1.31 has no OneHot kernel with int32 values",
        },
    ),
]
