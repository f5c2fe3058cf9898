"""Specs of ``ir/ops/microsoft``: onnxruntime's ``com.microsoft`` contrib ops.

onnxruntime is the oracle (onnx.reference implements no ``com.microsoft`` op). Several of
these ops have no float64 kernel in onnxruntime; graphcap runs them in float64 too, for the
gradient checks.
"""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import F32, F64, OpSpec, Sample, rand, unary_samples

MS = "com.microsoft"
I32 = np.dtype(np.int32)
_NO_REFERENCE = {"reference": "onnx.reference implements no com.microsoft op"}
_NO_ORT_DOUBLE = {
    **_NO_REFERENCE,
    "onnxruntime/float64": "onnxruntime's kernel of this op has no float64 (schema type T)",
}


def _r(rng: np.random.Generator, dtype: np.dtype, *shape: int) -> np.ndarray:
    return rand(rng, shape, dtype, low=-1.0, high=1.0)


def _ids(values: object) -> np.ndarray:
    return np.asarray(values, dtype=I32)


def _bias_gelu(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    r = lambda *s: _r(rng, dtype, *s)  # noqa: E731
    return [Sample((r(2, 3, 4), r(4))), Sample((r(5, 4), r(4))), Sample((r(4), r(4)))]


def _fast_gelu(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    r = lambda *s: _r(rng, dtype, *s)  # noqa: E731
    return [Sample((r(2, 3, 4), r(4))), Sample((r(2, 3, 4),)), Sample((r(5),))]


def _quick_gelu(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        *unary_samples(rng, dtype),
        Sample((_r(rng, dtype, 3, 4),), {"alpha": 1.0}),
        Sample((_r(rng, dtype, 3, 4),), {"alpha": -0.5}),
    ]


def _fused_matmul(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    r = lambda *s: _r(rng, dtype, *s)  # noqa: E731
    return [
        Sample((r(3, 4), r(4, 5))),
        Sample((r(4, 3), r(4, 5)), {"transA": 1, "alpha": 0.5}),
        Sample((r(3, 4), r(5, 4)), {"transB": 1}),
        Sample((r(2, 4, 3), r(1, 5, 4)), {"transA": 1, "transB": 1, "alpha": -2.0}),
        Sample((r(2, 3, 4), r(4, 5))),  # batch broadcast
        Sample((r(2, 3, 4), r(3, 4, 5)), {"transBatchA": 1}),  # A [2,3,4] -> [3,2,4]
        Sample((r(2, 3, 4), r(4, 2, 5)), {"transBatchB": 1}),  # B [4,2,5] -> [2,4,5]
        Sample((r(4, 2, 3, 5), r(2, 3, 4, 6)), {"transBatchA": 1, "transA": 1}),
        Sample((r(4), r(4, 5)), {"transA": 1}),  # a 1-D input is never transposed
    ]


def _skip_norm(rng: np.random.Generator, dtype: np.dtype, beta: bool) -> list[Sample]:
    r = lambda *s: _r(rng, dtype, *s)  # noqa: E731
    x, skip, gamma = r(2, 3, 4), r(2, 3, 4), r(4) + 1
    tail = [r(4)] if beta else []  # SkipLayerNormalization's beta precedes its bias
    return [
        Sample((x, skip, gamma, *tail, r(4))),
        Sample((x, skip, gamma)),
        Sample((x, r(1, 3, 4), gamma, *tail), {"epsilon": 1e-3}),
        Sample((x, r(3, 4), gamma, *tail)),
        Sample((r(6, 4), r(6, 4), gamma, *tail, r(4))),  # 2-D [tokens, hidden]
    ]


def _simplified(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    r = lambda *s: _r(rng, dtype, *s)  # noqa: E731
    # stash_type 11 (float64) keeps inv_std_var float64, for the float64 gradient checks.
    stash = {"stash_type": 11} if dtype == F64 else {}
    return [
        Sample((r(2, 3, 4), r(4)), stash),
        Sample((r(2, 3, 4), r(3, 4)), {"axis": 1, "epsilon": 1e-3, **stash}),
        Sample((r(6, 5), r(6, 5)), {"axis": 0, **stash}),
    ]


def _embed(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    r = lambda *s: _r(rng, dtype, *s)  # noqa: E731
    ids, segments = _ids([[1, 2, 7, 0], [4, 5, 0, 0]]), _ids([[0, 0, 1, 1], [0, 1, 1, 0]])
    words, positions, types, gamma, beta = r(8, 4), r(6, 4), r(2, 4), r(4) + 1, r(4)
    mask = _ids([[1, 1, 1, 0], [1, 0, 2, 1]])  # mask_index counts the ones
    return [
        Sample((ids, segments, words, positions, types, gamma, beta, mask)),
        Sample((ids, None, words, positions, None, gamma, beta)),
        Sample((ids, segments, words, positions, types, gamma, beta, None, _ids([[3, 1, 0, 2]]))),
        Sample(
            (ids, segments, words, positions, types, gamma, beta, mask, _ids([[5, 4, 3, 2]] * 2)),
            {"epsilon": 1e-3},
        ),
    ]


def _attention(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    r = lambda *s: _r(rng, dtype, *s)  # noqa: E731
    x, w, b = r(2, 3, 8), r(8, 24), r(24)
    heads = {"num_heads": 2}
    past = r(2, 2, 2, 2, 4)  # [2, batch, heads, past, head_size]
    raw = _ids([[1, 1, 0], [1, 0, 1]])
    return [
        Sample((x, w, b), heads),
        Sample((x, w, b), {**heads, "scale": 0.3}),
        Sample((x, w, b, _ids([3, 2])), heads),  # end positions
        Sample((x, w, b, _ids([3, 2, 0, 1])), heads),  # end, then start positions
        Sample((x, w, b, raw), {**heads, "mask_filter_value": -50.0}),
        Sample((x, w, b, _ids(rng.random((2, 3, 3)) < 0.7)), heads),  # [batch, seq, total]
        Sample((x, w, b, _ids([[0, 0, 0], [1, 1, 1]])), heads),  # a fully masked row
        Sample((x, w, b), {**heads, "unidirectional": 1}),
        Sample((x, w, b, _ids([[1, 1, 1, 1, 0], [1] * 5]), past), {**heads, "unidirectional": 1}),
        Sample((x, w, b, None, None, r(1, 2, 3, 3)), heads),  # attention_bias
    ]


def _mha(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    # Causal samples are in tests/ir/test_microsoft_ops.py: their qk output holds the float's
    # lowest value (onnxruntime's causal mask), which the finite-difference checks overflow on.
    r = lambda *s: _r(rng, dtype, *s)  # noqa: E731
    q, k, v, b = r(2, 3, 8), r(2, 4, 8), r(2, 4, 8), r(24)
    heads = {"num_heads": 2}
    past_k, past_v = r(2, 2, 2, 4), r(2, 2, 2, 4)
    return [
        Sample((q, k, v), heads),
        Sample((q, k, v, b), {**heads, "scale": 0.5}),
        Sample((q, k, v, None, _ids([4, 2])), heads),
        Sample((q, k, v, b, _ids([[1, 1, 0, 1], [1, 0, 0, 0]])), heads),
        Sample((q, k, v, None, _ids(rng.random((2, 3, 4)) < 0.7)), heads),
        Sample((q, k, v, None, None, r(2, 2, 3, 4)), {**heads, "mask_filter_value": -30.0}),
        Sample((q, k, v, b, None, None, past_k, past_v), heads),
        Sample((q, r(2, 2, 5, 4), r(2, 2, 5, 4), b), heads),  # key, value split into heads
    ]


def _dq_lstm(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    r = lambda *s: _r(rng, dtype, *s)  # noqa: E731
    x, hidden = r(4, 2, 3), 5

    def weights(dirs: int, k: int, kind: type, per_channel: bool) -> tuple[np.ndarray, ...]:
        w = rng.integers(-100 if kind is np.int8 else 20, 100, (dirs, k, 4 * hidden), dtype=kind)
        shape = (dirs, 4 * hidden) if per_channel else (dirs,)
        scale = rng.uniform(0.002, 0.006, shape).astype(dtype)
        # onnxruntime requires int8 weights to be symmetric (zero point 0).
        zero = np.zeros(shape) if kind is np.int8 else rng.integers(50, 70, shape)
        return w, scale, zero.astype(kind)

    def sample(dirs: int, kind: type, per_channel: bool, extra: tuple, **attrs: object) -> Sample:
        w, ws, wz = weights(dirs, 3, kind, per_channel)
        rw, rs, rz = weights(dirs, hidden, kind, per_channel)
        b, seq, h0, c0 = (*extra, None, None, None, None)[:4]
        return Sample(
            (x, w, rw, b, seq, h0, c0, None, ws, wz, rs, rz), {"hidden_size": hidden, **attrs}
        )

    return [
        sample(1, np.int8, False, ()),
        sample(1, np.uint8, True, (r(1, 8 * hidden),)),
        sample(
            2,
            np.int8,
            True,
            (r(2, 8 * hidden), _ids([4, 2]), r(2, 2, hidden), r(2, 2, hidden)),
            direction="bidirectional",
        ),
        sample(1, np.int8, False, (None, None, r(1, 2, hidden)), direction="reverse", clip=0.5),
    ]


SPECS = [
    OpSpec(
        "DynamicQuantizeLSTM",
        _dq_lstm,
        dtypes=(F32,),
        domain=MS,
        grad_order=0,
        oracle_skip={
            **_NO_REFERENCE,
            "onnxruntime": "onnxruntime needs the weights' scales and zero points as constants, "
            "which the one-node oracle models feed as inputs; tests/ir/test_microsoft_ops.py "
            "compares with them as initializers",
        },
    ),
    OpSpec(
        "Gelu",
        unary_samples,
        domain=MS,
        oracle_skip={
            **_NO_REFERENCE,
            "onnxruntime/float64": "onnxruntime's schema allows double, but it runs the op "
            "through a function body whose Erf has no float64 kernel",
        },
    ),
    OpSpec(
        "BiasGelu",
        _bias_gelu,
        domain=MS,
        oracle_skip={
            **_NO_REFERENCE,
            "onnxruntime/float64": "onnxruntime's schema allows double; its CPU provider has no "
            "float64 kernel",
        },
    ),
    OpSpec("FastGelu", _fast_gelu, domain=MS, oracle_skip=_NO_REFERENCE, atol=1e-5),
    OpSpec("QuickGelu", _quick_gelu, domain=MS, oracle_skip=_NO_REFERENCE, atol=1e-5),
    OpSpec(
        "FusedMatMul", _fused_matmul, domain=MS, oracle_skip=_NO_REFERENCE, rtol=1e-4, atol=1e-5
    ),
    OpSpec(
        "SkipLayerNormalization",
        lambda rng, dtype: _skip_norm(rng, dtype, beta=True),
        dtypes=(F32, F64),
        domain=MS,
        rtol=1e-4,
        atol=1e-5,
        oracle_skip=_NO_ORT_DOUBLE,
    ),
    OpSpec(
        "SkipSimplifiedLayerNormalization",
        lambda rng, dtype: _skip_norm(rng, dtype, beta=False),
        dtypes=(F32, F64),
        domain=MS,
        rtol=1e-4,
        atol=1e-5,
        oracle_skip=_NO_ORT_DOUBLE,
    ),
    OpSpec(
        "SimplifiedLayerNormalization",
        _simplified,
        rtol=1e-4,
        atol=1e-5,
        oracle_skip={
            "reference": "onnxruntime's op (in the default domain): onnx.reference lacks it",
            "onnxruntime/float64": "its float64 samples use stash_type=11 (for the gradient "
            "checks), which onnxruntime's kernel does not implement",
        },
    ),
    OpSpec(
        "EmbedLayerNormalization",
        _embed,
        dtypes=(F32, F64),
        domain=MS,
        rtol=1e-4,
        atol=1e-5,
        oracle_skip=_NO_ORT_DOUBLE,
    ),
    OpSpec(
        "Attention",
        _attention,
        dtypes=(F32, F64),
        domain=MS,
        rtol=1e-4,
        atol=1e-5,
        oracle_skip=_NO_ORT_DOUBLE,
    ),
    OpSpec(
        "MultiHeadAttention",
        _mha,
        dtypes=(F32, F64),
        domain=MS,
        rtol=1e-4,
        atol=1e-5,
        oracle_skip=_NO_ORT_DOUBLE,
    ),
]
