"""Specs of ``ir/ops/attention.py``."""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import F64, OpSpec, Sample, i64, rand

_ONNX_FLOAT = {np.dtype(np.float32): 1, F64: 11}


def _rms_norm(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def r(*shape: int) -> np.ndarray:
        return rand(rng, shape, dtype)

    return [
        Sample((r(2, 3, 4), r(4))),
        Sample((r(2, 3, 4), r(3, 4)), {"axis": 1}),
        Sample((r(2, 3, 4), r(3, 4)), {"axis": -2, "epsilon": 1e-3}),
        Sample((r(2, 3, 4), r(1, 4)), {"axis": -2}),  # scale broadcast along an axis
        Sample((r(6, 5), r(6, 5)), {"axis": 0}),
        Sample((r(5), r(5)), {"stash_type": 1}),
    ]


def _caches(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> tuple:
    angles = rng.uniform(0, 2 * np.pi, size=shape)
    return np.cos(angles).astype(dtype), np.sin(angles).astype(dtype)


def _rotary(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x4 = rand(rng, (2, 2, 3, 8), dtype)  # [batch, heads, seq, head_size]
    x3 = rand(rng, (2, 3, 12), dtype)  # [batch, seq, heads * head_size]
    cos, sin = _caches(rng, (6, 4), dtype)  # [max_position, rotary_dim / 2]
    cos2, sin2 = _caches(rng, (6, 2), dtype)
    cos_b, sin_b = _caches(rng, (2, 3, 4), dtype)  # [batch, seq, rotary_dim / 2]
    pos = i64([[0, 1, 2], [5, 3, 4]])
    # Only X is differentiable: the caches are precomputed tables (wrt=(0,)).
    return [
        Sample((x4, cos, sin, pos), wrt=(0,)),
        Sample((x4, cos, sin, pos), {"interleaved": 1}, wrt=(0,)),
        Sample((x4, cos_b, sin_b), wrt=(0,)),
        Sample((x4, cos_b, sin_b), {"interleaved": 1}, wrt=(0,)),
        Sample((x4, cos2, sin2, pos), {"rotary_embedding_dim": 4}, wrt=(0,)),
        Sample((x4, cos2, sin2, pos), {"rotary_embedding_dim": 4, "interleaved": 1}, wrt=(0,)),
        Sample((x3, cos2, sin2, pos), {"num_heads": 3}, wrt=(0,)),
        Sample(
            (x3, cos2[:3][None].repeat(2, 0), sin2[:3][None].repeat(2, 0)),
            {"num_heads": 3},
            wrt=(0,),
        ),
    ]


def _attention(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def r(*shape: int) -> np.ndarray:
        return rand(rng, shape, dtype, low=-1.0, high=1.0)

    q, k, v = r(2, 2, 3, 4), r(2, 2, 5, 4), r(2, 2, 5, 6)  # 4-D: [batch, heads, seq, size]
    q3, k3, v3 = r(2, 3, 8), r(2, 5, 8), r(2, 5, 6)  # 3-D: [batch, seq, heads * size]
    q_gqa, q3_gqa = r(2, 4, 3, 4), r(2, 3, 16)  # 4 query heads over 2 key/value heads
    heads = {"q_num_heads": 2, "kv_num_heads": 2}
    float_mask = r(3, 5)
    bool_mask = rng.random((2, 1, 3, 5)) < 0.7
    bool_mask[..., 0] = True
    dead_row = bool_mask.copy()
    dead_row[1, 0, 2, :] = False  # a query that sees no key: a zero row
    past_k, past_v = r(2, 2, 2, 4), r(2, 2, 2, 6)
    past_v3 = r(2, 2, 2, 3)  # 3-D V of 6 = 2 heads * 3
    sq, sk, sv = r(2, 2, 4, 4), r(2, 2, 4, 4), r(2, 2, 4, 4)  # square, for causal masks
    precision = _ONNX_FLOAT[dtype]
    return [
        Sample((q, k, v)),
        Sample((q3, k3, v3), heads),
        Sample((q_gqa, k, v)),
        Sample((q3_gqa, k3, v3), {"q_num_heads": 4, "kv_num_heads": 2}),
        Sample((sq, sk, sv), {"is_causal": 1}),
        Sample((q, k, v), {"is_causal": 1}),  # 3 queries, 5 keys: top-left aligned
        Sample((q, k, v, float_mask), {"qk_matmul_output_mode": 2}),
        Sample((q, k, v, bool_mask), {"qk_matmul_output_mode": 3, "scale": 0.3}),
        Sample((q, k, v, dead_row), {"qk_matmul_output_mode": 3}),
        Sample((q, k, v, float_mask), {"softcap": 2.0, "qk_matmul_output_mode": 1}),
        # Mode 1, not 0: with a softcap, onnx.reference returns the capped scores in mode 0
        # too, where ONNX's text, its function body and onnxruntime return the raw ones.
        Sample(
            (q_gqa, k, v, bool_mask), {"is_causal": 1, "softcap": 1.5, "qk_matmul_output_mode": 1}
        ),
        Sample((q3, k3, v3, float_mask), {**heads, "softmax_precision": precision}),
        # Caches: 2 past + 5 new keys; the mask covers all 7; causal is offset by the past.
        Sample((q, k, v, r(3, 7), past_k, past_v), {"is_causal": 1}),
        Sample((q_gqa, k, v, None, past_k, past_v), {"qk_matmul_output_mode": 2}),
        Sample((q3, k3, v3, bool_mask[..., :3].repeat(3, -1)[..., :7], past_k, past_v3), heads),
    ]


SPECS = [
    OpSpec("RMSNormalization", _rms_norm),
    OpSpec(
        "RotaryEmbedding",
        _rotary,
        oracle_skip={
            "reference/float64": "RotaryEmbedding's schema (T) has no double; graphcap runs "
            "float64 for the gradient checks",
            "onnxruntime/float64": "RotaryEmbedding's schema (T) has no double",
        },
    ),
    OpSpec(
        "Attention",
        _attention,
        rtol=1e-4,
        atol=1e-5,
        oracle_skip={
            "onnxruntime/float64": "onnxruntime 1.31 runs float64 Attention through ONNX's "
            "function body in float32 constants: a causal mask with a past cache fails its "
            "type check (double + float Add), and a fully-masked row gives NaN, not zeros",
        },
    ),
]
