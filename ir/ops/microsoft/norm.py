"""``com.microsoft`` normalisations onnxruntime's transformer optimizer fuses.

- ``SkipLayerNormalization(input, skip, gamma, beta?, bias?)``: ONNX ``LayerNormalization``
  over the last axis of ``s = input + skip + bias``. ``input`` is ``[batch, seq, hidden]``
  or ``[tokens, hidden]``; ``skip`` has its shape or broadcasts to it (``[1, seq, hidden]``,
  ``[seq, hidden]``). Outputs: the result, the mean and inverse standard deviation
  (float32, ``[..., 1]``) and ``s`` itself.
- ``EmbedLayerNormalization``: BERT's embeddings: ``s = word[input_ids] +
  position[position_ids] + segment[segment_ids]`` (positions ``0..seq-1`` by default, or
  ``position_ids`` ``[batch or 1, seq]``), then ``LayerNormalization(s)``. Outputs: the
  result, ``mask_index`` (int32 ``[batch]``: how many entries of each row of ``mask`` are 1;
  zeros without a mask) and ``s``. Ids are int32, as onnxruntime requires.

Kernels and vjps are LayerNormalization's and Gather's, around the sums; ``rms`` holds the
RMS variants.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.dtypes import float32, int32, to_onnx
from ir.errors import ShapeError
from ir.ops import indexing, nn  # noqa: F401  (register the ops whose rules serve here)
from ir.ops.grad_util import unbroadcast
from ir.ops.infer import broadcast_shapes
from ir.ops.microsoft.common import DOMAIN, check_last, floats, int32_input, last_dim, sub_ctx
from ir.ops.registry import InferContext, OpDef, VjpContext, get, ints, op, register
from ir.types import Dim, TensorType

_LAYER_NORM, _GATHER = get("LayerNormalization"), get("Gather")
_EPSILON = float(np.float32(1e-12))  # onnxruntime's default, stored as a float32


def stats_dtype(dtype: np.dtype) -> np.dtype:
    """The statistics dtype: float32, as onnxruntime; float64 for float64 inputs (graphcap)."""
    return np.promote_types(dtype, float32)


def stash_code(dtype: np.dtype) -> int:
    """The ONNX code of :func:`stats_dtype`, for a ``stash_type`` attribute."""
    return to_onnx(stats_dtype(dtype))


def skip_sum(x: np.ndarray, skip: np.ndarray, bias: np.ndarray | None, what: str) -> np.ndarray:
    """``x + skip + bias`` in ``x``'s dtype, checking that ``skip`` broadcasts to ``x``."""
    if x.ndim not in (2, 3) or np.broadcast_shapes(x.shape, skip.shape) != x.shape:
        raise ShapeError(
            f"{what}: input must be 2-D or 3-D and skip must broadcast to it, got "
            f"{list(x.shape)} and {list(skip.shape)}"
        )
    s = x + skip
    return (s if bias is None else s + bias).astype(x.dtype, copy=False)


def skip_infer(
    x: TensorType, skip: TensorType, params: tuple[TensorType | None, ...], what: str
) -> tuple[TensorType, TensorType, TensorType, TensorType]:
    """The shape rule of the ``Skip*`` ops: the output, mean, inv_std_var and the sum."""
    dtype = floats((x, skip, *params), f"{what} input, skip, gamma, beta and bias")
    stats = stats_dtype(dtype)
    if x.shape is None:
        return TensorType(dtype, None), TensorType(stats, None), TensorType(stats, None), x
    if len(x.shape) not in (2, 3):
        raise ShapeError(f"{what}: input must be 2-D or 3-D, got {x}")
    if skip.shape is not None:
        broadcast_shapes(x.shape, skip.shape)
    for t in params:
        check_last(t, last_dim(x), f"{what} gamma, beta and bias")
    stat = TensorType(stats, (*x.shape[:-1], 1))
    return x, stat, stat, x


def skip_vjp(
    ctx: VjpContext, grads: Any, x: Any, skip: Any, bias: Any, norm: Any
) -> tuple[Any, Any, Any, Any]:
    """Gradients of input, skip and bias, and the ``s`` the norm's vjp saw: (gx, gskip, gb, s).

    ``norm(s)`` gives the gradient of ``s`` through the normalisation (or None).
    """
    s = op.Add(x, skip) if bias is None else op.Add(op.Add(x, skip), bias)
    gs = norm(s)
    if grads[3] is not None:
        gs = grads[3] if gs is None else op.Add(gs, grads[3])
    if gs is None:
        return None, None, None, s
    needs = ctx.needs_input_grad
    return (
        unbroadcast(gs, x) if needs[0] else None,
        unbroadcast(gs, skip) if needs[1] else None,
        unbroadcast(gs, bias) if bias is not None else None,
        s,
    )


# ---------------------------------------------------------------- SkipLayerNormalization


def _skip_layer_norm(
    x: np.ndarray,
    skip: np.ndarray,
    gamma: np.ndarray,
    beta: np.ndarray | None = None,
    bias: np.ndarray | None = None,
    *,
    epsilon: float = _EPSILON,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    s = skip_sum(x, skip, bias, "SkipLayerNormalization")
    stash = stash_code(x.dtype)
    y, mean, inv = _LAYER_NORM.kernel(s, gamma, beta, epsilon=epsilon, stash_type=stash)
    return y, mean, inv, s


def _skip_layer_norm_infer(
    ctx: InferContext,
    x: TensorType,
    skip: TensorType,
    gamma: TensorType,
    beta: TensorType | None = None,
    bias: TensorType | None = None,
    *,
    epsilon: float = _EPSILON,
) -> tuple[TensorType, TensorType, TensorType, TensorType]:
    return skip_infer(x, skip, (gamma, beta, bias), "SkipLayerNormalization")


def _skip_layer_norm_vjp(
    ctx: VjpContext,
    grads: Any,
    x: Any,
    skip: Any,
    gamma: Any,
    beta: Any = None,
    bias: Any = None,
    *,
    epsilon: float,
) -> list[Any]:
    needs = ctx.needs_input_grad
    g_params: list[Any] = [None, None]

    def norm(s: Any) -> Any:
        sub = sub_ctx(ctx, [True, needs[2], beta is not None and needs[3]])
        gs, g_params[0], g_params[1] = _LAYER_NORM.vjp(  # type: ignore[misc]
            sub, grads[:3], s, gamma, beta, axis=-1, epsilon=epsilon, stash_type=stash_code(x.dtype)
        )
        return gs

    gx, gskip, gbias, _ = skip_vjp(ctx, grads, x, skip, bias, norm)
    return [gx, gskip, g_params[0], g_params[1], gbias]


# ---------------------------------------------------------------- EmbedLayerNormalization


def _lookup(table: np.ndarray, ids: np.ndarray, what: str) -> np.ndarray:
    if ids.size and (ids.min() < 0 or ids.max() >= table.shape[0]):
        raise ShapeError(
            f"EmbedLayerNormalization: {what} holds ids outside [0, {table.shape[0]}) (its "
            f"embedding table has {table.shape[0]} rows)"
        )
    return table[ids]


def _positions(ids: np.ndarray, position_ids: np.ndarray | None) -> np.ndarray:
    if position_ids is None:
        return np.broadcast_to(np.arange(ids.shape[1], dtype=np.int64), ids.shape)
    return np.broadcast_to(position_ids, ids.shape)


def _embed_layer_norm(
    input_ids: np.ndarray,
    segment_ids: np.ndarray | None,
    word_embedding: np.ndarray,
    position_embedding: np.ndarray,
    segment_embedding: np.ndarray | None,
    gamma: np.ndarray,
    beta: np.ndarray,
    mask: np.ndarray | None = None,
    position_ids: np.ndarray | None = None,
    *,
    epsilon: float = _EPSILON,
    mask_index_type: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if input_ids.ndim != 2:
        raise ShapeError(f"EmbedLayerNormalization: input_ids must be 2-D, got {input_ids.shape}")
    s = _lookup(word_embedding, input_ids, "input_ids")
    s = s + _lookup(position_embedding, _positions(input_ids, position_ids), "position_ids")
    if segment_ids is not None and segment_embedding is not None:
        s = s + _lookup(segment_embedding, segment_ids, "segment_ids")
    s = s.astype(word_embedding.dtype, copy=False)
    y, _, _ = _LAYER_NORM.kernel(s, gamma, beta, epsilon=epsilon, stash_type=stash_code(s.dtype))
    count = np.zeros(len(input_ids)) if mask is None else np.sum(mask == 1, axis=1)
    return y, count.astype(np.int32), s


def _embed_layer_norm_infer(
    ctx: InferContext,
    input_ids: TensorType,
    segment_ids: TensorType | None,
    word_embedding: TensorType,
    position_embedding: TensorType,
    segment_embedding: TensorType | None,
    gamma: TensorType,
    beta: TensorType,
    mask: TensorType | None = None,
    position_ids: TensorType | None = None,
    **attrs: Any,
) -> tuple[TensorType, TensorType, TensorType]:
    tables = (word_embedding, position_embedding, segment_embedding, gamma, beta)
    dtype = floats(tables, "EmbedLayerNormalization embeddings, gamma and beta")
    for t, what in [(input_ids, "input_ids"), (segment_ids, "segment_ids"), (mask, "mask")]:
        int32_input(t, f"EmbedLayerNormalization {what}")
    int32_input(position_ids, "EmbedLayerNormalization position_ids")
    hidden = last_dim(word_embedding)
    check_last(gamma, hidden, "EmbedLayerNormalization gamma")
    check_last(beta, hidden, "EmbedLayerNormalization beta")
    shape = input_ids.shape
    if shape is not None and len(shape) != 2:
        raise ShapeError(f"EmbedLayerNormalization: input_ids must be 2-D, got {input_ids}")
    batch: Dim = None if shape is None else shape[0]
    out = TensorType(dtype, None if shape is None else (*shape, hidden))
    return out, TensorType(int32, (batch,)), out


def _embed_layer_norm_vjp(
    ctx: VjpContext,
    grads: Any,
    input_ids: Any,
    segment_ids: Any,
    word_embedding: Any,
    position_embedding: Any,
    segment_embedding: Any,
    gamma: Any,
    beta: Any,
    mask: Any = None,
    position_ids: Any = None,
    *,
    epsilon: float,
    mask_index_type: int | None,
) -> list[Any]:
    needs = [*ctx.needs_input_grad, *[False] * 9][:9]
    positions = _position_ops(input_ids, position_ids)
    lookups = [(word_embedding, input_ids, needs[2]), (position_embedding, positions, needs[3])]
    if segment_ids is not None and segment_embedding is not None:
        lookups.append((segment_embedding, segment_ids, needs[4]))
    s = None
    for table, index, _ in lookups:
        part = op.Gather(table, index, axis=0)
        s = part if s is None else op.Add(s, part)
    sub = sub_ctx(ctx, [True, needs[5], needs[6]])
    gy, _, g_sum = grads
    stash = stash_code(word_embedding.dtype)
    gs, g_gamma, g_beta = _LAYER_NORM.vjp(  # type: ignore[misc]
        sub, (gy, None, None), s, gamma, beta, axis=-1, epsilon=epsilon, stash_type=stash
    )
    if g_sum is not None:
        gs = g_sum if gs is None else op.Add(gs, g_sum)
    g_tables: list[Any] = [None, None, None]
    for i, (table, index, need) in enumerate(lookups):
        if need and gs is not None:
            sub = sub_ctx(ctx, [True, False])
            g_tables[i] = _GATHER.vjp(sub, gs, table, index, axis=0)[0]  # type: ignore[misc]
    return [None, None, *g_tables, g_gamma, g_beta, None, None]


def _position_ops(ids: Any, position_ids: Any) -> Any:
    """The position of each token, ``[batch, seq]``, with registry ops."""
    shape = op.Shape(ids)
    if position_ids is not None:
        return op.Expand(position_ids, shape)
    seq = op.Gather(shape, ints([1]), axis=0)
    row = op.Range(ints(0), op.Squeeze(seq, ints([0])), ints(1))
    return op.Expand(op.Unsqueeze(row, ints([0])), shape)


register(
    OpDef(
        "SkipLayerNormalization",
        1,
        _skip_layer_norm,
        _skip_layer_norm_infer,
        _skip_layer_norm_vjp,
        domain=DOMAIN,
        num_outputs=4,
    )
)
register(
    OpDef(
        "EmbedLayerNormalization",
        1,
        _embed_layer_norm,
        _embed_layer_norm_infer,
        _embed_layer_norm_vjp,
        domain=DOMAIN,
        num_outputs=3,
        optional_inputs=(1, 4),  # segment ids and their table
    )
)
