"""Attention-family ops of opset 23: RMSNormalization, RotaryEmbedding, Attention.

These are native ONNX ops that runtimes fuse, so they are registry ops with their own vjp
rules, written with registry ops (second order included). RotaryEmbedding's schema allows
float16/float/bfloat16 only; graphcap also runs it in float64 (gradient checks, float64
models), which ONNX runtimes do not accept.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from ir.dtypes import FLOATING, INTEGER, bool_, from_onnx, int64, to_onnx
from ir.errors import ShapeError, UnsupportedOpError
from ir.ops.grad_util import unbroadcast
from ir.ops.infer import check_dtype, normalize_axis, same_dtype
from ir.ops.linalg import swap_last
from ir.ops.registry import InferContext, OpDef, VjpContext, ints, op, register, scalar
from ir.types import Dim, TensorType

_EPSILON = float(np.float32(1e-5))  # ONNX stores the default as a float32

# ---------------------------------------------------------------- RMSNormalization


def _rms_norm(
    x: np.ndarray,
    scale: np.ndarray,
    *,
    axis: int = -1,
    epsilon: float = _EPSILON,
    stash_type: int = 1,
) -> np.ndarray:
    axes = tuple(range(normalize_axis(axis, x.ndim), x.ndim))
    # In the wider of X's and the stash type, as LayerNormalization (float64 stays float64).
    work = x.astype(np.promote_types(x.dtype, from_onnx(stash_type)), copy=False)
    inv = 1 / np.sqrt(np.mean(work * work, axis=axes, keepdims=True) + epsilon)
    return ((work * inv).astype(x.dtype) * scale).astype(x.dtype, copy=False)


def _rms_norm_infer(
    ctx: InferContext,
    x: TensorType,
    scale: TensorType,
    *,
    axis: int = -1,
    epsilon: float = _EPSILON,
    stash_type: int = 1,
) -> TensorType:
    # ONNX's function body multiplies the X-typed result by scale, so one dtype for both.
    same_dtype((x, scale), "RMSNormalization X and scale")
    check_dtype(x, FLOATING, "RMSNormalization X")
    if x.shape is not None:
        normalize_axis(axis, len(x.shape))
    return x


def _rms_norm_vjp(
    ctx: VjpContext, g: Any, x: Any, scale: Any, *, axis: int, epsilon: float, stash_type: int
) -> list[Any]:
    # y = x * inv * scale with inv = (mean(x^2) + eps)^-1/2, recomputed with registry ops.
    axes = ints(list(range(normalize_axis(axis, x.ndim), x.ndim)))
    mean_sq = op.ReduceMean(op.Mul(x, x), axes, keepdims=1)
    inv = op.Reciprocal(op.Sqrt(op.Add(mean_sq, scalar(epsilon, x))))
    xhat = op.Mul(x, inv)
    gx = gscale = None
    if ctx.needs_input_grad[1]:
        gscale = unbroadcast(op.Mul(g, xhat), scale)
    if ctx.needs_input_grad[0]:
        gh = op.Mul(g, scale)
        proj = op.ReduceMean(op.Mul(gh, xhat), axes, keepdims=1)
        gx = op.Mul(inv, op.Sub(gh, op.Mul(xhat, proj)))
    return [gx, gscale]


register(OpDef("RMSNormalization", 23, _rms_norm, _rms_norm_infer, _rms_norm_vjp))


# ---------------------------------------------------------------- RotaryEmbedding


def _rotary(
    x: np.ndarray,
    cos_cache: np.ndarray,
    sin_cache: np.ndarray,
    position_ids: np.ndarray | None = None,
    *,
    interleaved: int = 0,
    num_heads: int | None = None,
    rotary_embedding_dim: int = 0,
) -> np.ndarray:
    # Work in [batch, seq, heads, head_size]; 4-D X is [batch, heads, seq, head_size].
    if x.ndim == 4:
        work = x.transpose(0, 2, 1, 3)
    elif x.ndim == 3:
        if not num_heads or x.shape[2] % num_heads:
            raise ShapeError(
                f"RotaryEmbedding: 3-D X {list(x.shape)} needs num_heads dividing its last dim, "
                f"got num_heads={num_heads}"
            )
        work = x.reshape(*x.shape[:2], num_heads, x.shape[2] // num_heads)
    else:
        raise ShapeError(f"RotaryEmbedding: X must be 3-D or 4-D, got {list(x.shape)}")
    rot = rotary_embedding_dim or work.shape[3]
    cos, sin = (
        (cos_cache, sin_cache)
        if position_ids is None
        else (
            cos_cache[position_ids],
            sin_cache[position_ids],
        )
    )
    if cos.shape[-1] != rot // 2 or sin.shape[-1] != rot // 2 or rot % 2 or rot > work.shape[3]:
        raise ShapeError(
            f"RotaryEmbedding: caches' last dim must be rotary_embedding_dim/2 = {rot // 2} "
            f"(head size {work.shape[3]}); got {list(cos.shape)} and {list(sin.shape)}"
        )
    cos, sin = cos[:, :, None, :], sin[:, :, None, :]  # broadcast over heads
    part = work[..., :rot]
    x1, x2 = (part[..., 0::2], part[..., 1::2]) if interleaved else np.split(part, 2, axis=-1)
    real, imag = cos * x1 - sin * x2, sin * x1 + cos * x2
    if interleaved:
        rotated = np.stack([real, imag], axis=-1).reshape(part.shape)
    else:
        rotated = np.concatenate([real, imag], axis=-1)
    out = np.concatenate([rotated, work[..., rot:]], axis=-1).astype(x.dtype, copy=False)
    return out.transpose(0, 2, 1, 3).copy() if x.ndim == 4 else out.reshape(x.shape)


def _rotary_infer(
    ctx: InferContext,
    x: TensorType,
    cos_cache: TensorType,
    sin_cache: TensorType,
    position_ids: TensorType | None = None,
    *,
    interleaved: int = 0,
    num_heads: int | None = None,
    rotary_embedding_dim: int = 0,
) -> TensorType:
    same_dtype((x, cos_cache, sin_cache), "RotaryEmbedding X, cos_cache and sin_cache")
    check_dtype(x, FLOATING, "RotaryEmbedding X")
    if position_ids is not None:
        check_dtype(position_ids, (int64,), "RotaryEmbedding position_ids")
    if x.shape is not None and len(x.shape) not in (3, 4):
        raise ShapeError(f"RotaryEmbedding: X must be 3-D or 4-D, got {x}")
    return x


def _rotary_vjp(
    ctx: VjpContext,
    g: Any,
    x: Any,
    cos_cache: Any,
    sin_cache: Any,
    position_ids: Any = None,
    **attrs: Any,
) -> list[Any]:
    if any(ctx.needs_input_grad[1:3]):
        raise UnsupportedOpError(
            "RotaryEmbedding: no gradient for cos_cache/sin_cache (precomputed tables); "
            "only X is differentiable"
        )
    # The op rotates each pair by an angle; its transpose rotates by minus that angle.
    given = {k: v for k, v in attrs.items() if v is not None}
    gx = op.RotaryEmbedding(g, cos_cache, op.Neg(sin_cache), position_ids, **given)
    return [gx, None, None, None]


register(OpDef("RotaryEmbedding", 23, _rotary, _rotary_infer, _rotary_vjp, saves="others"))


# ---------------------------------------------------------------- Attention: kernel


def _split_heads_np(x: np.ndarray, heads: int | None, what: str) -> np.ndarray:
    """[batch, seq, heads * size] as [batch, heads, seq, size]."""
    if not heads or x.shape[2] % heads:
        raise ShapeError(
            f"Attention: 3-D {what} {list(x.shape)} needs q_num_heads/kv_num_heads dividing "
            f"its last dim, got {heads}"
        )
    return x.reshape(*x.shape[:2], heads, x.shape[2] // heads).transpose(0, 2, 1, 3)


def _sqrt_scale(scale: float | None, head_size: int, dtype: np.dtype) -> Any:
    # Q and K are each scaled by sqrt(scale), in Q's dtype, as ONNX's function body does.
    s = 1 / np.sqrt(head_size) if scale is None else scale
    return np.dtype(dtype).type(np.sqrt(s))


def _bias_np(
    mask: np.ndarray | None, is_causal: int, q_len: int, total: int, past: int, dtype: np.dtype
) -> np.ndarray | None:
    """The additive attention bias (0 or -inf, or a float mask), or None when there is none."""
    bias = None
    if mask is not None:
        m = np.where(mask, 0, -np.inf) if mask.dtype == bool_ else mask
        m = np.asarray(m).astype(dtype, copy=False)
        pad = total - m.shape[-1]  # a mask may leave out trailing keys: they are masked
        if pad < 0:
            raise ShapeError(
                f"Attention: attn_mask {list(m.shape)} covers more than the {total} keys"
            )
        bias = np.pad(m, [(0, 0)] * (m.ndim - 1) + [(0, pad)], constant_values=-np.inf)
    if is_causal:  # bottom-right aligned: query i sees key j iff j <= i + past
        allowed = np.arange(total)[None, :] <= np.arange(q_len)[:, None] + past
        causal = np.where(allowed, 0, -np.inf).astype(dtype)
        bias = causal if bias is None else bias + causal
    return bias


def _softmax_rows(x: np.ndarray) -> np.ndarray:
    top = np.max(x, axis=-1, keepdims=True)
    e = np.exp(x - np.where(np.isneginf(top), 0, top))  # an all -inf row stays NaN-free
    total = np.sum(e, axis=-1, keepdims=True)
    return e / np.where(total == 0, 1, total)


def _attention(
    q: np.ndarray,
    k: np.ndarray,
    v: np.ndarray,
    attn_mask: np.ndarray | None = None,
    past_key: np.ndarray | None = None,
    past_value: np.ndarray | None = None,
    *,
    is_causal: int = 0,
    kv_num_heads: int | None = None,
    q_num_heads: int | None = None,
    qk_matmul_output_mode: int = 0,
    scale: float | None = None,
    softcap: float = 0.0,
    softmax_precision: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if not q.ndim == k.ndim == v.ndim or q.ndim not in (3, 4):
        raise ShapeError(f"Attention: Q, K, V must all be 3-D or 4-D, got {q.shape, k.shape}")
    if (past_key is None) != (past_value is None):
        raise ValueError("Attention: past_key and past_value must be given together")
    _check_mode(qk_matmul_output_mode)
    dtype = q.dtype
    q4, k4, v4 = (
        (
            _split_heads_np(q, q_num_heads, "Q"),
            _split_heads_np(k, kv_num_heads, "K"),
            _split_heads_np(v, kv_num_heads, "V"),
        )
        if q.ndim == 3
        else (q, k, v)
    )
    present_k = k4 if past_key is None else np.concatenate([past_key, k4], axis=2)
    present_v = v4 if past_value is None else np.concatenate([past_value, v4], axis=2)
    reps = _group_size(q4.shape[1], present_k.shape[1])
    kr, vr = np.repeat(present_k, reps, axis=1), np.repeat(present_v, reps, axis=1)
    s = _sqrt_scale(scale, q4.shape[3], dtype)
    scores = np.matmul(q4 * s, np.swapaxes(kr * s, -1, -2))
    capped = softcap * np.tanh(scores / softcap) if softcap > 0 else scores
    past = 0 if past_key is None else past_key.shape[2]
    bias = _bias_np(attn_mask, is_causal, q4.shape[2], present_k.shape[2], past, dtype)
    logits = capped if bias is None else capped + bias
    work = dtype if softmax_precision is None else from_onnx(softmax_precision)
    probs = _softmax_rows(logits.astype(work, copy=False))
    if bias is not None:  # a row with every key masked gives zeros (ONNX's errata)
        probs = np.where(np.isneginf(np.max(bias, axis=-1, keepdims=True)), 0, probs)
    probs = probs.astype(dtype, copy=False)
    y = np.matmul(probs, vr)
    if q.ndim == 3:
        y = y.transpose(0, 2, 1, 3).reshape(*y.shape[:1], y.shape[2], -1)
    qk = (scores, capped, logits, probs)[qk_matmul_output_mode]
    return (
        y.astype(dtype, copy=False),
        present_k.copy(),
        present_v.copy(),
        np.asarray(qk).astype(dtype),
    )


def _check_mode(mode: int) -> None:
    if mode not in (0, 1, 2, 3):
        raise ValueError(f"Attention: qk_matmul_output_mode must be 0, 1, 2 or 3, got {mode}")


def _group_size(q_heads: Dim, kv_heads: Dim) -> int:
    """How many query heads share each key/value head (grouped-query attention)."""
    if not isinstance(q_heads, int) or not isinstance(kv_heads, int):
        if q_heads == kv_heads:
            return 1
        raise UnsupportedOpError(
            f"Attention: head counts must be static for grouped-query attention, got "
            f"{q_heads!r} query and {kv_heads!r} key/value heads"
        )
    if kv_heads <= 0 or q_heads % kv_heads:
        raise ShapeError(
            f"Attention: {q_heads} query heads are not a multiple of {kv_heads} key/value heads"
        )
    return q_heads // kv_heads


# ---------------------------------------------------------------- Attention: shape rule


def _mul(a: Dim, b: Dim) -> Dim:
    return a * b if isinstance(a, int) and isinstance(b, int) else None


def _div(a: Dim, b: Dim) -> Dim:
    return a // b if isinstance(a, int) and isinstance(b, int) and b else None


def _agree(what: str, *dims: Dim) -> None:
    """Refuse fixed sizes that differ (symbols and unknown sizes agree with anything)."""
    sizes = {d for d in dims if isinstance(d, int)}
    if len(sizes) > 1:
        raise ShapeError(f"Attention: {what} sizes differ: {list(dims)}")


def _check_cache(name: str, t: TensorType, batch: Dim, heads: Dim, head: Dim) -> None:
    """A KV cache is (batch, kv_heads, past, head size), whatever the rank of Q."""
    if t.shape is None:
        return
    if len(t.shape) != 4:
        raise ShapeError(
            f"Attention: {name} must be 4-D (batch, kv_heads, past, head size), got {t}"
        )
    b, h, _, d = t.shape
    _agree(f"{name} batch (and Q's)", b, batch)
    _agree(f"{name} heads (and K's)", h, heads)
    _agree(f"{name} head size (and K's or V's)", d, head)


def _attention_infer(
    ctx: InferContext,
    q: TensorType,
    k: TensorType,
    v: TensorType,
    attn_mask: TensorType | None = None,
    past_key: TensorType | None = None,
    past_value: TensorType | None = None,
    *,
    is_causal: int = 0,
    kv_num_heads: int | None = None,
    q_num_heads: int | None = None,
    qk_matmul_output_mode: int = 0,
    scale: float | None = None,
    softcap: float = 0.0,
    softmax_precision: int | None = None,
) -> tuple[TensorType, TensorType, TensorType, TensorType]:
    dtype = same_dtype((q, k, v, past_key, past_value), "Attention Q, K, V and caches")
    check_dtype(q, FLOATING, "Attention Q")
    if attn_mask is not None and attn_mask.dtype != dtype:
        check_dtype(attn_mask, {bool_, *INTEGER}, "Attention attn_mask (bool or Q's dtype)")
    _check_mode(qk_matmul_output_mode)
    if (past_key is None) != (past_value is None):
        raise ValueError("Attention: past_key and past_value must be given together")
    if q.shape is None or k.shape is None or v.shape is None:
        return (TensorType(dtype, None),) * 4
    if not len(q.shape) == len(k.shape) == len(v.shape) or len(q.shape) not in (3, 4):
        raise ShapeError(f"Attention: Q, K, V must all be 3-D or 4-D, got {q}, {k}, {v}")
    if len(q.shape) == 4:
        batch, heads, q_len, _ = q.shape
        kv_heads, kv_len, head = k.shape[1], k.shape[2], k.shape[3]
        v_head = v.shape[3]
    else:
        batch, q_len, kv_len = q.shape[0], q.shape[1], k.shape[1]
        heads, kv_heads = q_num_heads, kv_num_heads
        head, v_head = _div(k.shape[2], kv_heads), _div(v.shape[2], kv_heads)
    _agree("K and V batch", k.shape[0], v.shape[0], q.shape[0])
    _agree("K and V sequence", k.shape[-2], v.shape[-2])
    total: Dim = kv_len
    if past_key is not None and past_value is not None:
        _check_cache("past_key", past_key, batch, kv_heads, head)
        _check_cache("past_value", past_value, batch, kv_heads, v_head)
        past = None if past_key.shape is None else past_key.shape[2]
        if past_value.shape is not None:
            _agree("past_key and past_value sequence", past, past_value.shape[2])
        total = kv_len + past if isinstance(kv_len, int) and isinstance(past, int) else None
    y_shape: tuple[Dim, ...] = (batch, heads, q_len, v_head)
    if len(q.shape) == 3:
        same = heads == kv_heads and heads is not None
        y_shape = (batch, q_len, v.shape[2] if same else _mul(heads, v_head))
    return (
        TensorType(dtype, y_shape),
        TensorType(dtype, (batch, kv_heads, total, head)),
        TensorType(dtype, (batch, kv_heads, total, v_head)),
        TensorType(dtype, (batch, heads, q_len, total)),
    )


# ---------------------------------------------------------------- Attention: vjp


def _shape(*parts: Any) -> Any:
    """A shape input from ints and ``(value, axis)`` pairs; a constant when all are static."""
    dims = [p if isinstance(p, int) else p[0].shape[p[1]] for p in parts]
    if all(isinstance(d, int) for d in dims):
        return ints(dims)
    pieces = [
        ints([d]) if isinstance(d, int) else op.Gather(op.Shape(p[0]), ints([p[1]]), axis=0)
        for p, d in zip(parts, dims, strict=True)
    ]
    return pieces[0] if len(pieces) == 1 else op.Concat(*pieces, axis=0)


def _dim(x: Any, axis: int) -> Any:
    """Axis ``axis`` of ``x`` as a 1-element int64 input."""
    return _shape((x, axis))


def _split_heads(x: Any, heads: int) -> Any:
    """[batch, seq, heads * size] as [batch, heads, seq, size]."""
    return op.Transpose(op.Reshape(x, ints([0, 0, heads, -1])), perm=[0, 2, 1, 3])


def _merge_heads(x: Any) -> Any:
    """[batch, heads, seq, size] as [batch, seq, heads * size]."""
    return op.Reshape(op.Transpose(x, perm=[0, 2, 1, 3]), ints([0, 0, -1]))


def _repeat_heads(x: Any, reps: int) -> Any:
    """Each of the heads of [batch, heads, seq, size] ``reps`` times in a row (GQA)."""
    if reps == 1:
        return x
    wide = op.Expand(op.Unsqueeze(x, ints([2])), ints([1, 1, reps, 1, 1]))
    return op.Reshape(wide, _shape((x, 0), x.shape[1] * reps, (x, 2), (x, 3)))


def _sum_heads(g: Any, reps: int, like: Any) -> Any:
    """The transpose of :func:`_repeat_heads`: sum each group of ``reps`` heads."""
    if reps == 1:
        return g
    grouped = op.Reshape(g, _shape((like, 0), like.shape[1], reps, (like, 2), (like, 3)))
    return op.ReduceSum(grouped, ints([2]), keepdims=0)


def _scale_ops(scale: float | None, q4: Any) -> Any:
    head = q4.shape[3]
    if scale is not None or isinstance(head, int):
        return np.asarray(_sqrt_scale(scale, head, q4.dtype))
    size = op.Cast(_dim(q4, 3), to=to_onnx(q4.dtype))
    return op.Pow(size, scalar(-0.25, q4))  # sqrt(1 / sqrt(head_size))


def _bias_ops(mask: Any, is_causal: int, q4: Any, kp: Any, past_key: Any) -> Any:
    """:func:`_bias_np` with registry ops, symbolic lengths included."""
    zero, neg_inf = scalar(0.0, q4), scalar(-np.inf, q4)
    bias = None
    if mask is not None:
        m = mask
        if mask.dtype == bool_:
            m = op.Where(mask, zero, neg_inf)
        elif mask.dtype != q4.dtype:
            m = op.Cast(mask, to=to_onnx(q4.dtype))
        if mask.shape[-1] != kp.shape[2]:  # masked trailing keys (a no-op pad if equal)
            width = op.Sub(_dim(kp, 2), _dim(mask, mask.ndim - 1))
            m = op.Pad(m, op.Concat(ints([0]), width, axis=0), neg_inf, ints([mask.ndim - 1]))
        bias = m
    if is_causal:
        past = 0 if past_key is None else past_key.shape[2]
        k = ints(past) if isinstance(past, int) else op.Squeeze(_dim(past_key, 2), ints([0]))
        ones = op.Expand(scalar(1.0, q4), _shape((q4, 2), (kp, 2)))
        allowed = op.Cast(op.Trilu(ones, k, upper=0), to=to_onnx(bool_))
        causal = op.Where(allowed, zero, neg_inf)
        bias = causal if bias is None else op.Add(bias, causal)
    return bias


def _guarded_softmax(logits: Any, bias: Any) -> Any:
    """Softmax over keys; a row whose bias is all -inf gives zeros (and zero gradients)."""
    if bias is None:
        return op.Softmax(logits, axis=-1)
    zero = scalar(0.0, logits)
    dead = op.Equal(op.ReduceMax(bias, ints([-1]), keepdims=1), scalar(-np.inf, logits))
    return op.Where(dead, zero, op.Softmax(op.Where(dead, zero, logits), axis=-1))


def _add(a: Any, b: Any) -> Any:
    return b if a is None else a if b is None else op.Add(a, b)


def _split_cache(g: Any, past: Any) -> tuple[Any, Any]:
    """A present-cache gradient [.., past + new, ..] as (past part, new part) along axis 2."""
    if past is None:
        return None, g
    n = ints([past.shape[2]]) if isinstance(past.shape[2], int) else _dim(past, 2)
    end = ints([np.iinfo(np.int64).max])
    axis = ints([2])
    return op.Slice(g, ints([0]), n, axis), op.Slice(g, n, end, axis)


class _Forward(NamedTuple):
    """The forward pass, recomputed with registry ops for the vjp (4-D, heads split)."""

    kp: Any  # present key and value: [batch, kv_heads, past + new, size]
    vp: Any
    vr: Any  # present value with each head repeated for its query group
    qs: Any  # Q and (repeated) present key, each times sqrt(scale)
    ks: Any
    s: Any  # sqrt(scale)
    reps: int  # query heads per key/value head
    tanh: Any  # tanh(scores / softcap), None without a softcap
    probs: Any


def _forward_ops(
    q4: Any, k4: Any, v4: Any, mask: Any, past_key: Any, past_value: Any, attrs: dict[str, Any]
) -> _Forward:
    kp = k4 if past_key is None else op.Concat(past_key, k4, axis=2)
    vp = v4 if past_value is None else op.Concat(past_value, v4, axis=2)
    reps = _group_size(q4.shape[1], kp.shape[1])
    s = _scale_ops(attrs["scale"], q4)
    qs, ks = op.Mul(q4, s), op.Mul(_repeat_heads(kp, reps), s)
    scores = op.MatMul(qs, swap_last(ks))
    capped, tanh, softcap = scores, None, attrs["softcap"]
    if softcap > 0:
        tanh = op.Tanh(op.Div(scores, scalar(softcap, q4)))
        capped = op.Mul(tanh, scalar(softcap, q4))
    bias = _bias_ops(mask, attrs["is_causal"], q4, kp, past_key)
    probs = _guarded_softmax(capped if bias is None else op.Add(capped, bias), bias)
    return _Forward(kp, vp, _repeat_heads(vp, reps), qs, ks, s, reps, tanh, probs)


def _attention_vjp(
    ctx: VjpContext,
    grads: Any,
    q: Any,
    k: Any,
    v: Any,
    attn_mask: Any = None,
    past_key: Any = None,
    past_value: Any = None,
    **attrs: Any,
) -> list[Any]:
    """Gradients of Q, K, V, a float attn_mask and the caches, through every output.

    The forward is recomputed with registry ops in the inputs' dtype (``softmax_precision``
    only changes rounding), so the rule differentiates again. Bool masks have no gradient.
    """
    gy, g_present_k, g_present_v, g_qk = grads
    needs = [*ctx.needs_input_grad, *[False] * 6][:6]
    heads = (attrs["q_num_heads"], attrs["kv_num_heads"]) if q.ndim == 3 else None
    q4, k4, v4 = (
        (q, k, v)
        if heads is None
        else (
            _split_heads(q, heads[0]),
            _split_heads(k, heads[1]),
            _split_heads(v, heads[1]),
        )
    )
    f = _forward_ops(q4, k4, v4, attn_mask, past_key, past_value, attrs)
    routed = [g_qk if attrs["qk_matmul_output_mode"] == i else None for i in range(4)]

    g_probs = g_vr = None
    if gy is not None:
        gy4 = gy if heads is None else _split_heads(gy, heads[0])
        if needs[0] or needs[1] or needs[3] or needs[4]:
            g_probs = op.MatMul(gy4, swap_last(f.vr))
        if needs[2] or needs[5]:
            g_vr = op.MatMul(swap_last(f.probs), gy4)
    g_probs = _add(g_probs, routed[3])
    g_logits = None
    if g_probs is not None:  # Softmax's rule
        dot = op.ReduceSum(op.Mul(g_probs, f.probs), ints([-1]), keepdims=1)
        g_logits = op.Mul(f.probs, op.Sub(g_probs, dot))
    g_logits = _add(g_logits, routed[2])
    g_scores = _add(g_logits, routed[1])
    if f.tanh is not None and g_scores is not None:  # d(c * tanh(x / c)) = 1 - tanh^2
        g_scores = op.Mul(g_scores, op.Sub(scalar(1.0, q), op.Mul(f.tanh, f.tanh)))
    g_scores = _add(g_scores, routed[0])

    gq = g_kp = None
    if g_scores is not None and needs[0]:
        gq = op.Mul(op.MatMul(g_scores, f.ks), f.s)
        gq = gq if heads is None else _merge_heads(gq)
    if g_scores is not None and (needs[1] or needs[4]):
        g_kp = _sum_heads(op.Mul(op.MatMul(swap_last(g_scores), f.qs), f.s), f.reps, f.kp)
    g_vp = None if g_vr is None else _sum_heads(g_vr, f.reps, f.vp)
    g_past_k, gk = _split_cache(_add(g_kp, g_present_k), past_key)
    g_past_v, gv = _split_cache(_add(g_vp, g_present_v), past_value)
    if heads is not None:
        gk = None if gk is None else _merge_heads(gk)
        gv = None if gv is None else _merge_heads(gv)
    g_mask = None
    if needs[3] and g_logits is not None and attn_mask.dtype == q.dtype:
        g_mask = _mask_grad(g_logits, attn_mask, f.kp)
    return [gq, gk, gv, g_mask, g_past_k, g_past_v]


def _mask_grad(g_logits: Any, mask: Any, kp: Any) -> Any:
    """A float mask's gradient: the logits' one, less the padded keys, summed to its shape."""
    if mask.shape[-1] != kp.shape[2]:
        g_logits = op.Slice(g_logits, ints([0]), _dim(mask, mask.ndim - 1), ints([-1]))
    return unbroadcast(g_logits, mask)


register(OpDef("Attention", 23, _attention, _attention_infer, _attention_vjp, num_outputs=4))
