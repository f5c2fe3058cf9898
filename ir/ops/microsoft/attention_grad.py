"""The vjp rules of ``com.microsoft`` ``Attention`` and ``MultiHeadAttention``.

Each rule recomputes, with registry ops, what its op adds around ONNX ``Attention`` (the
projections and biases, the heads split, the masks as an additive bias), calls ONNX
``Attention``'s vjp rule on 4-D Q, K, V, and takes the gradients back through the
projections. Masks and ids are integers: they get no gradient.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.errors import UnsupportedOpError
from ir.ops import attention, linalg  # noqa: F401  (register the ops whose rules serve here)
from ir.ops.grad_util import shape_of, unbroadcast
from ir.ops.microsoft.common import opt_add, sub_ctx
from ir.ops.registry import VjpContext, get, ints, op, scalar

_ONNX_ATTENTION, _MATMUL = get("Attention"), get("MatMul")
_FILTER = -10000.0
_END = np.iinfo(np.int64).max


def split_heads(x: Any, n: int) -> Any:
    """``[batch, seq, n * size]`` as ``[batch, n, seq, size]``."""
    return op.Transpose(op.Reshape(x, ints([0, 0, n, -1])), perm=[0, 2, 1, 3])


def merge_heads(x: Any) -> Any:
    """``[batch, n, seq, size]`` as ``[batch, seq, n * size]``."""
    return op.Reshape(op.Transpose(x, perm=[0, 2, 1, 3]), ints([0, 0, -1]))


def _cols(x: Any, start: int, stop: int) -> Any:
    return op.Slice(x, ints([start]), ints([stop]), ints([-1]))


def _zeros_like(x: Any) -> Any:
    return op.Expand(scalar(0.0, x), shape_of(x))


def _mask_bias(mask: Any, batch: Any, keys_of: Any, fill: float | None, like: Any) -> Any:
    """A mask as the additive float bias the forward used, ``[batch, 1, seq or 1, total]``."""
    if mask is None:
        return None
    total = op.Gather(op.Shape(keys_of), ints([2]), axis=0)
    keys = op.Unsqueeze(op.Range(ints(0), op.Squeeze(total, ints([0])), ints(1)), ints([0]))
    if mask.ndim == 1:
        bound = op.Cast(mask, to=7)
        if mask.shape[0] == batch:
            masked = op.GreaterOrEqual(keys, op.Unsqueeze(bound, ints([1])))
        elif isinstance(batch, int) and mask.shape[0] == 2 * batch:
            end = op.Unsqueeze(_cols(bound, 0, batch), ints([1]))
            start = op.Unsqueeze(_cols(bound, batch, 2 * batch), ints([1]))
            masked = op.Or(op.GreaterOrEqual(keys, end), op.Less(keys, start))
        else:
            raise UnsupportedOpError(
                f"com.microsoft attention vjp: with the symbolic batch {batch!r}, a 1-D mask "
                f"of {mask.shape[0]} could be end positions or end and start positions; "
                "it needs a static batch size"
            )
        masked = op.Unsqueeze(masked, ints([1]))
    else:
        masked = op.LessOrEqual(mask, np.asarray(0, dtype=mask.dtype))
        if mask.ndim == 2:
            masked = op.Unsqueeze(masked, ints([1]))
    value = scalar(_FILTER if fill is None else fill, like)
    return op.Unsqueeze(op.Where(masked, value, scalar(0.0, like)), ints([1]))


def _onnx_vjp(
    ctx: VjpContext,
    grads: tuple[Any, ...],
    qkv4: tuple[Any, Any, Any],
    bias: Any,
    past: tuple[Any, Any],
    **attrs: Any,
) -> list[Any]:
    """ONNX Attention's vjp on 4-D Q, K, V with an additive ``bias`` and caches ``past``.

    ``attrs``: ``is_causal``, ``scale`` and ``qk_matmul_output_mode`` of the forward.
    """
    needs = [True, True, True, bias is not None, past[0] is not None, past[1] is not None]
    full = {"kv_num_heads": None, "q_num_heads": None, "softcap": 0.0, "softmax_precision": None}
    vjp = _ONNX_ATTENTION.vjp
    assert vjp is not None
    return list(vjp(sub_ctx(ctx, needs), grads, *qkv4, bias, *past, **full, **attrs))


def _filled(grads: list[Any], likes: list[Any]) -> list[Any]:
    """Gradients with None replaced by zeros (when any is given), for a Concat."""
    if all(g is None for g in grads):
        return grads
    return [_zeros_like(x) if g is None else g for g, x in zip(grads, likes, strict=True)]


def attention_vjp(ctx: VjpContext, grads: Any, *inputs: Any, **attrs: Any) -> list[Any]:
    """Gradients of ``Attention``'s input, weights, bias, past and attention_bias."""
    x, w, bias, mask, past, attention_bias = [*inputs, *[None] * 6][:6]
    needs = [*ctx.needs_input_grad, *[False] * 7][:7]
    n = attrs["num_heads"]
    hidden = w.shape[1]
    sizes = attrs["qkv_hidden_sizes"] or [hidden // 3] * 3
    qkv = op.MatMul(x, w) if bias is None else op.Add(op.MatMul(x, w), bias)
    cuts = [0, sizes[0], sizes[0] + sizes[1], hidden]
    parts = [split_heads(_cols(qkv, cuts[i], cuts[i + 1]), n) for i in range(3)]
    past_kv: tuple[Any, Any] = (None, None)
    if past is not None:
        past_kv = (_row(past, 0), _row(past, 1))
    keys = parts[1] if past is None else op.Concat(past_kv[0], parts[1], axis=2)
    total_bias = opt_add(
        _mask_bias(mask, x.shape[0], keys, attrs["mask_filter_value"], x), attention_bias
    )
    g_out, g_present = grads
    g_pk = g_pv = None
    if g_present is not None:
        g_pk, g_pv = _row(g_present, 0), _row(g_present, 1)
    gy4 = None if g_out is None else split_heads(g_out, n)
    gq4, gk4, gv4, g_bias, g_past_k, g_past_v = _onnx_vjp(
        ctx,
        (gy4, g_pk, g_pv, None),
        (parts[0], parts[1], parts[2]),
        total_bias,
        past_kv,
        is_causal=attrs["unidirectional"],
        scale=attrs["scale"],
        qk_matmul_output_mode=0,
    )
    heads_grads = _filled([gq4, gk4, gv4], parts)
    gx = gw = gb = None
    if heads_grads[0] is not None:
        g_qkv = op.Concat(*[merge_heads(g) for g in heads_grads], axis=-1)
        gx, gw = _MATMUL.vjp(sub_ctx(ctx, needs[:2]), g_qkv, x, w)  # type: ignore[misc]
        gb = unbroadcast(g_qkv, bias) if bias is not None and needs[2] else None
    g_past = None
    if past is not None and needs[4]:
        pair = _filled([g_past_k, g_past_v], list(past_kv))
        if pair[0] is not None:
            g_past = op.Concat(*[op.Unsqueeze(g, ints([0])) for g in pair], axis=0)
    g_ab = None
    if attention_bias is not None and needs[5] and g_bias is not None:
        g_ab = unbroadcast(g_bias, attention_bias)
    return [gx, gw, gb, None, g_past, g_ab, None]


def _row(x: Any, i: int) -> Any:
    """``x[i]`` (a past or present cache's keys, 0, or values, 1)."""
    return op.Squeeze(op.Slice(x, ints([i]), ints([i + 1]), ints([0])), ints([0]))


def mha_vjp(ctx: VjpContext, grads: Any, *inputs: Any, **attrs: Any) -> list[Any]:
    """Gradients of ``MultiHeadAttention``'s query, key, value, bias, attention_bias, caches."""
    query, key, value, bias, mask, attention_bias, past_key, past_value = [
        *inputs,
        *[None] * 8,
    ][:8]
    needs = [*ctx.needs_input_grad, *[False] * 10][:10]
    n, d = attrs["num_heads"], query.shape[-1]
    b_parts: list[Any] = [None] * 3
    if bias is not None:
        b_parts = [_cols(bias, 0, d), _cols(bias, d, 2 * d), _cols(bias, 2 * d, _END)]
    q4 = split_heads(query if b_parts[0] is None else op.Add(query, b_parts[0]), n)
    split = [key.ndim == 3, value.ndim == 3]
    k4 = split_heads(opt_add(key, b_parts[1]), n) if split[0] else key
    v4 = split_heads(opt_add(value, b_parts[2]), n) if split[1] else value
    keys = k4 if past_key is None else op.Concat(past_key, k4, axis=2)
    total_bias = opt_add(
        _mask_bias(mask, query.shape[0], keys, attrs["mask_filter_value"], query), attention_bias
    )
    g_out, g_pk, g_pv, g_qk = grads
    gy4 = None if g_out is None else split_heads(g_out, n)
    gq4, gk4, gv4, g_bias, g_past_k, g_past_v = _onnx_vjp(
        ctx,
        (gy4, g_pk, g_pv, g_qk),
        (q4, k4, v4),
        total_bias,
        (past_key, past_value),
        is_causal=attrs["unidirectional"],
        scale=attrs["scale"],
        qk_matmul_output_mode=2,
    )
    gq = None if gq4 is None else merge_heads(gq4)
    gk = merge_heads(gk4) if split[0] and gk4 is not None else gk4
    gv = merge_heads(gv4) if split[1] and gv4 is not None else gv4
    gb = None
    if bias is not None and needs[3]:
        pieces = [gq, gk if split[0] else None, gv if split[1] else None]
        sums = [
            None if g is None else unbroadcast(g, b) for g, b in zip(pieces, b_parts, strict=True)
        ]
        filled = _filled(sums, b_parts)
        gb = None if filled[0] is None else op.Concat(*filled, axis=0)
    g_ab = None
    if attention_bias is not None and needs[5] and g_bias is not None:
        g_ab = unbroadcast(g_bias, attention_bias)
    return [gq, gk, gv, gb, None, g_ab, g_past_k, g_past_v, None, None]
