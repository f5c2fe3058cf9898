"""``com.microsoft`` ``Attention`` and ``MultiHeadAttention`` (onnxruntime's fused attention).

Both are ONNX ``Attention`` (opset 23: its kernel and vjp run here) around what they add:

- ``Attention(input, weights, bias?, mask_index?, past?, attention_bias?)``: BERT's
  self-attention with the Q, K, V projections fused: ``input @ weights + bias`` split by
  ``qkv_hidden_sizes`` (three equal parts by default) into ``num_heads`` heads each. ``past``
  ``[2, batch, heads, past_seq, head_size]`` holds the cached keys and values; output 1,
  ``present``, the same with this call's appended.
- ``MultiHeadAttention(query, key?, value?, bias?, key_padding_mask?, attention_bias?,
  past_key?, past_value?)``: the projections done before it; ``bias`` (Q, K, V biases in a
  row) is added to query, key and value. Key and value are ``[batch, kv_seq, hidden]``, or
  already split into heads ``[batch, heads, kv_seq, head_size]`` (then the cache is not
  appended to, and their biases are not added, as onnxruntime does); packed forms (Q, K, V
  in one input) are refused. Outputs: the result, ``present_key``, ``present_value``, and
  ``qk`` (the scaled ``Q K^T`` with the masks and ``attention_bias`` added).

Masks (``mask_index``, ``key_padding_mask``), over the ``total = past + new`` keys: 1-D
``[batch]`` (keys at and after that end position are masked), 1-D ``[2 * batch]`` (end
positions, then start positions: keys before the start are masked too; ``Attention``
only), 2-D ``[batch, total]`` and 3-D ``[batch, seq, total]`` (a key is masked where the
mask is not > 0). A masked key gets ``mask_filter_value`` (-10000 by default) added to its
score, as onnxruntime does, so a fully masked row attends uniformly, not to nothing.
``unidirectional=1`` masks the keys after each query's own position (``past + i``; with
more new keys than queries, onnxruntime's CPU kernel leaves its last query row unmasked,
graphcap masks it like the others).
``attention_bias`` ``[batch or 1, heads, seq, total]`` is added to the scores. ``scale``
defaults to ``1 / sqrt(head_size)``. Refused with a clear error, as not in onnxruntime's CPU
kernels or not meaningful here: 4-D (Megatron) masks, ``do_rotary``,
``past_present_share_buffer`` with ``past_sequence_length``, and ``cache_indirection``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.errors import ShapeError, UnsupportedOpError
from ir.ops import attention  # noqa: F401  (registers ONNX Attention, whose rules serve here)
from ir.ops.microsoft.attention_grad import attention_vjp, mha_vjp
from ir.ops.microsoft.common import DOMAIN, floats, int32_input
from ir.ops.registry import InferContext, OpDef, get, register
from ir.types import Dim, TensorType

_ONNX_ATTENTION = get("Attention")
_FILTER = -10000.0  # onnxruntime's default mask_filter_value


def mask_bias(
    mask: np.ndarray | None, batch: int, q_len: int, total: int, fill: float, dtype: np.dtype
) -> np.ndarray | None:
    """A mask as an additive bias ``[batch, 1, q_len or 1, total]`` (0 or ``fill``)."""
    if mask is None:
        return None
    keys = np.arange(total)
    if mask.ndim == 1 and mask.shape[0] in (batch, 2 * batch):
        masked = keys[None, :] >= mask[:batch, None]
        if mask.shape[0] == 2 * batch:
            masked |= keys[None, :] < mask[batch:, None]
        masked = masked[:, None, :]
    elif mask.ndim == 2 and mask.shape == (batch, total):
        masked = (mask <= 0)[:, None, :]
    elif mask.ndim == 3 and mask.shape == (batch, q_len, total):
        masked = mask <= 0
    elif mask.ndim == 4:
        raise UnsupportedOpError(
            "com.microsoft attention: 4-D (Megatron) masks are not supported (onnxruntime's "
            "CPU kernel refuses them too)"
        )
    else:
        raise ShapeError(
            f"com.microsoft attention: a mask of shape {list(mask.shape)} fits none of "
            f"[batch], [2 * batch], [batch, total], [batch, seq, total] with batch={batch}, "
            f"seq={q_len}, total={total}"
        )
    return np.where(masked, fill, 0).astype(dtype)[:, None]


def _bias_sum(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    return b if a is None else a if b is None else a + b


def heads(x: np.ndarray, n: int, what: str) -> np.ndarray:
    """``[batch, seq, n * size]`` as ``[batch, n, seq, size]``."""
    if x.ndim != 3 or x.shape[2] % n:
        raise ShapeError(f"{what} {list(x.shape)} must be 3-D with a last dim divisible by {n}")
    return x.reshape(*x.shape[:2], n, x.shape[2] // n).transpose(0, 2, 1, 3)


def _merge(y: np.ndarray) -> np.ndarray:
    return y.transpose(0, 2, 1, 3).reshape(y.shape[0], y.shape[2], -1)


def split_sizes(hidden: int, qkv_hidden_sizes: list[int] | None) -> list[int]:
    """The Q, K, V widths of a fused projection of ``hidden`` columns."""
    sizes = list(qkv_hidden_sizes) if qkv_hidden_sizes else [hidden // 3] * 3
    if len(sizes) != 3 or sum(sizes) != hidden or sizes[0] != sizes[1]:
        raise ShapeError(
            f"Attention: qkv_hidden_sizes {sizes} must be 3 sizes (Q and K equal) summing to "
            f"the weights' {hidden} columns"
        )
    return sizes


def refuse(what: str, given: bool) -> None:
    """Raise UnsupportedOpError naming ``what`` when it is ``given``."""
    if given:
        raise UnsupportedOpError(f"com.microsoft attention: {what} is not supported")


# ---------------------------------------------------------------- Attention


def _ms_attention(
    x: np.ndarray,
    weights: np.ndarray,
    bias: np.ndarray | None = None,
    mask_index: np.ndarray | None = None,
    past: np.ndarray | None = None,
    attention_bias: np.ndarray | None = None,
    past_sequence_length: np.ndarray | None = None,
    *,
    num_heads: int,
    do_rotary: int | None = None,
    mask_filter_value: float | None = None,
    past_present_share_buffer: int | None = None,
    qkv_hidden_sizes: list[int] | None = None,
    rotary_embedding_dim: int | None = None,
    scale: float | None = None,
    unidirectional: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    refuse("do_rotary", bool(do_rotary))
    refuse("past_present_share_buffer", bool(past_present_share_buffer))
    refuse("the past_sequence_length input", past_sequence_length is not None)
    sizes = split_sizes(weights.shape[1], qkv_hidden_sizes)
    qkv = np.matmul(x, weights) if bias is None else np.matmul(x, weights) + bias
    q, k, v = np.split(qkv.astype(x.dtype, copy=False), np.cumsum(sizes)[:2], axis=-1)
    q4, k4, v4 = heads(q, num_heads, "Q"), heads(k, num_heads, "K"), heads(v, num_heads, "V")
    past_k = past_v = None
    if past is not None:
        refuse("past with qkv_hidden_sizes giving V another size than K", sizes[1] != sizes[2])
        past_k, past_v = past[0], past[1]
    total = k4.shape[2] + (0 if past_k is None else past_k.shape[2])
    fill = _FILTER if mask_filter_value is None else mask_filter_value
    bias4 = mask_bias(mask_index, x.shape[0], x.shape[1], total, fill, x.dtype)
    y, present_k, present_v, _ = _ONNX_ATTENTION.kernel(
        q4,
        k4,
        v4,
        _bias_sum(bias4, attention_bias),
        past_k,
        past_v,
        is_causal=unidirectional,
        scale=scale,
    )
    return _merge(y), _present(present_k, present_v)


def _present(k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Keys and values stacked; with V heads of another size than K's, an empty head axis."""
    if k.shape == v.shape:
        return np.stack([k, v])
    return np.zeros((2, *k.shape[:3], 0), k.dtype)  # onnxruntime leaves it undefined then


def _ms_attention_infer(
    ctx: InferContext,
    x: TensorType,
    weights: TensorType,
    bias: TensorType | None = None,
    mask_index: TensorType | None = None,
    past: TensorType | None = None,
    attention_bias: TensorType | None = None,
    past_sequence_length: TensorType | None = None,
    *,
    num_heads: int,
    qkv_hidden_sizes: list[int] | None = None,
    **attrs: Any,
) -> tuple[TensorType, TensorType]:
    dtype = floats((x, weights, bias, past, attention_bias), "Attention input, weights, biases")
    int32_input(mask_index, "Attention mask_index")
    if x.shape is None or weights.shape is None:
        return TensorType(dtype, None), TensorType(dtype, None)
    if len(x.shape) != 3 or len(weights.shape) != 2:
        raise ShapeError(f"Attention: input must be 3-D and weights 2-D, got {x} and {weights}")
    batch, seq = x.shape[0], x.shape[1]
    hidden = weights.shape[1]
    if not isinstance(hidden, int):
        return TensorType(dtype, (batch, seq, None)), TensorType(dtype, None)
    q_size, _, v_size = split_sizes(hidden, qkv_hidden_sizes)
    total: Dim = seq
    if past is not None:
        p = None if past.shape is None else past.shape[3]
        total = _plus(p, seq)
    head = q_size // num_heads if q_size == v_size else 0
    return (
        TensorType(dtype, (batch, seq, v_size)),
        TensorType(dtype, (2, batch, num_heads, total, head)),
    )


def _plus(a: Dim, b: Dim) -> Dim:
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if a == 0:
        return b
    return None


# ---------------------------------------------------------------- MultiHeadAttention


def _kv(x: np.ndarray, bias: np.ndarray | None, n: int, what: str) -> tuple[np.ndarray, bool]:
    """Key or value as ``[batch, heads, seq, size]``, with its bias; and whether it was 3-D."""
    if x.ndim == 4:
        return x, False  # already split into heads: onnxruntime adds no bias to it
    if x.ndim != 3:
        raise UnsupportedOpError(
            f"MultiHeadAttention: {what} {list(x.shape)}: only 3-D [batch, seq, hidden] and 4-D "
            "[batch, heads, seq, head_size] forms are supported (packed Q/K/V forms are not)"
        )
    return heads(x if bias is None else x + bias, n, what), True


def _mha(
    query: np.ndarray,
    key: np.ndarray | None = None,
    value: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    key_padding_mask: np.ndarray | None = None,
    attention_bias: np.ndarray | None = None,
    past_key: np.ndarray | None = None,
    past_value: np.ndarray | None = None,
    past_sequence_length: np.ndarray | None = None,
    cache_indirection: np.ndarray | None = None,
    *,
    num_heads: int,
    mask_filter_value: float | None = None,
    scale: float | None = None,
    unidirectional: int = 0,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    refuse("packed QKV (no key or value input)", key is None or value is None)
    refuse("the past_sequence_length input", past_sequence_length is not None)
    refuse("cache_indirection (beam search)", cache_indirection is not None)
    assert key is not None and value is not None
    d = query.shape[-1]
    biases = [None] * 3 if bias is None else np.split(bias, [d, 2 * d])
    q4 = heads(query if biases[0] is None else query + biases[0], num_heads, "query")
    k4, appended = _kv(key, biases[1], num_heads, "key")
    v4, _ = _kv(value, biases[2], num_heads, "value")
    if not appended and past_key is not None:
        raise ShapeError("MultiHeadAttention: 4-D key/value are the cache; past_key must be absent")
    total = k4.shape[2] + (0 if past_key is None else past_key.shape[2])
    fill = _FILTER if mask_filter_value is None else mask_filter_value
    bias4 = mask_bias(key_padding_mask, query.shape[0], query.shape[1], total, fill, query.dtype)
    y, present_k, present_v, qk = _ONNX_ATTENTION.kernel(
        q4,
        k4.astype(query.dtype, copy=False),
        v4.astype(query.dtype, copy=False),
        _bias_sum(bias4, attention_bias),
        past_key,
        past_value,
        is_causal=unidirectional,
        qk_matmul_output_mode=2,  # onnxruntime's qk: the scores with the masks added
        scale=scale,
    )
    lowest = np.finfo(qk.dtype).min  # onnxruntime's causal mask value, where ONNX's is -inf
    return _merge(y), present_k, present_v, np.where(np.isneginf(qk), lowest, qk)


def _mha_infer(
    ctx: InferContext,
    query: TensorType,
    key: TensorType | None = None,
    value: TensorType | None = None,
    bias: TensorType | None = None,
    key_padding_mask: TensorType | None = None,
    attention_bias: TensorType | None = None,
    past_key: TensorType | None = None,
    past_value: TensorType | None = None,
    past_sequence_length: TensorType | None = None,
    cache_indirection: TensorType | None = None,
    *,
    num_heads: int,
    **attrs: Any,
) -> tuple[TensorType, TensorType, TensorType, TensorType]:
    given = (query, key, value, bias, attention_bias, past_key, past_value)
    dtype = floats(given, "MultiHeadAttention query, key, value, biases and caches")
    int32_input(key_padding_mask, "MultiHeadAttention key_padding_mask")
    unknown = TensorType(dtype, None)
    if query.shape is None or key is None or value is None or key.shape is None:
        return unknown, unknown, unknown, unknown
    if len(query.shape) != 3:
        raise UnsupportedOpError(
            f"MultiHeadAttention: query must be 3-D (packed forms are not supported), got {query}"
        )
    batch, seq = query.shape[0], query.shape[1]
    head = _div(query.shape[2], num_heads)
    kv_len = key.shape[2] if len(key.shape) == 4 else key.shape[1]
    past = None if past_key is None or past_key.shape is None else past_key.shape[2]
    total = kv_len if past_key is None else _plus(past, kv_len)
    v_size = None if value.shape is None else value.shape[-1]
    if value.shape is not None and len(value.shape) == 4:
        v_size = _mul(v_size, num_heads)
    v_head = _div(v_size, num_heads)
    return (
        TensorType(dtype, (batch, seq, v_size)),
        TensorType(dtype, (batch, num_heads, total, head)),
        TensorType(dtype, (batch, num_heads, total, v_head)),
        TensorType(dtype, (batch, num_heads, seq, total)),
    )


def _div(a: Dim, b: int) -> Dim:
    return a // b if isinstance(a, int) else None


def _mul(a: Dim, b: int) -> Dim:
    return a * b if isinstance(a, int) else None


register(
    OpDef(
        "Attention",
        1,
        _ms_attention,
        _ms_attention_infer,
        attention_vjp,
        domain=DOMAIN,
        num_outputs=2,
    )
)
register(
    OpDef(
        "MultiHeadAttention",
        1,
        _mha,
        _mha_infer,
        mha_vjp,
        domain=DOMAIN,
        num_outputs=4,
    )
)
