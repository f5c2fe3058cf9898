"""``MultiheadAttention`` with PyTorch's parameters, masks and results.

Parameters are PyTorch's: ``in_proj_weight`` ``[3 * embed_dim, embed_dim]`` (Xavier
uniform), ``in_proj_bias`` (zeros) and ``out_proj`` (a :class:`~tracer.nn.Linear` whose bias
starts at zero), so ``state_dict``s move between torch and graphcap by name. ``kdim``/``vdim``
other than ``embed_dim`` and ``add_bias_kv``/``add_zero_attn`` are not supported.
"""

from __future__ import annotations

import math
from typing import Any

import tracer
from tracer.nn import functional as F  # noqa: N812 - PyTorch's customary name
from tracer.nn._factory import param_dtype
from tracer.nn.layers import Linear
from tracer.nn.module import Module, Parameter
from tracer.tensor import Tensor


def _additive(mask: Tensor | None, dtype: Any, name: str) -> Tensor | None:
    """A mask as a float tensor to add to the scores (bool True: not allowed, -inf)."""
    if mask is None:
        return None
    if mask.dtype == tracer.bool:
        return tracer.where(mask, float("-inf"), 0.0).to(dtype)
    if not mask.is_floating_point():
        raise TypeError(f"MultiheadAttention: only bool and float {name} are supported")
    return mask.to(dtype)


def causal_mask(size: int, *, dtype: Any = None) -> Tensor:
    """A ``[size, size]`` float mask: ``-inf`` above the diagonal, zero elsewhere.

    It is PyTorch's ``Transformer.generate_square_subsequent_mask``.
    """
    upper = tracer.ones(size, size, dtype=tracer.bool).triu(1)
    return tracer.where(upper, float("-inf"), 0.0).to(dtype or tracer.float32)


class MultiheadAttention(Module):
    """Multi-head attention, ``softmax(Q K^T / sqrt(head_dim) + mask) V``, as PyTorch's.

    Args:
        embed_dim: model width; split into ``num_heads`` heads.
        num_heads: number of heads; must divide ``embed_dim``.
        dropout: dropout probability on the attention weights, in training.
        bias: whether the input and output projections have biases.
        batch_first: inputs and output are ``[batch, seq, feature]`` (else ``[seq, batch,
            feature]``).
        device: ``None`` or ``"cpu"`` (eager modules live on the CPU).
        dtype: the parameters' dtype (default float32).

    Raises:
        ValueError: ``embed_dim`` not divisible by ``num_heads``.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        batch_first: bool = False,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be positive, got {embed_dim} and {num_heads}"
            )
        if embed_dim % num_heads:
            raise ValueError(f"embed_dim {embed_dim} must be divisible by num_heads {num_heads}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.dropout = float(dropout)
        self.batch_first = batch_first
        dtype = param_dtype(device, dtype)
        self.in_proj_weight = Parameter(tracer.empty(3 * embed_dim, embed_dim, dtype=dtype))
        bias_value = Parameter(tracer.empty(3 * embed_dim, dtype=dtype)) if bias else None
        self.register_parameter("in_proj_bias", bias_value)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias).to(dtype)
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # Xavier uniform over [3E, E], as PyTorch: fan_in E, fan_out 3E.
        bound = math.sqrt(6.0 / (4 * self.embed_dim))
        with tracer.no_grad():
            self.in_proj_weight.uniform_(-bound, bound)
            if self.in_proj_bias is not None:
                self.in_proj_bias.zero_()
            if self.out_proj.bias is not None:
                self.out_proj.bias.zero_()

    def extra_repr(self) -> str:
        """``embed_dim``, ``num_heads`` and the non-default options."""
        return (
            f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
            f"batch_first={self.batch_first}"
        )

    def _project(self, x: Tensor, index: int) -> Tensor:
        """Project ``x`` ``[seq, batch, E]`` with the ``index``-th third of ``in_proj``."""
        e = self.embed_dim
        w = self.in_proj_weight[index * e : (index + 1) * e]
        b = None if self.in_proj_bias is None else self.in_proj_bias[index * e : (index + 1) * e]
        return F.linear(x, w, b)

    def _heads(self, x: Tensor) -> Tensor:
        """``[seq, batch, E]`` -> ``[batch, heads, seq, head_dim]``."""
        seq, batch = x.shape[0], x.shape[1]
        return x.reshape(seq, batch, self.num_heads, self.head_dim).permute(1, 2, 0, 3)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        need_weights: bool = True,
        attn_mask: Tensor | None = None,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Attend from ``query`` to ``key``/``value``.

        Args:
            query: ``[L, N, E]`` (``[N, L, E]`` if ``batch_first``) or unbatched ``[L, E]``.
            key: ``[S, N, E]`` (or ``[N, S, E]``, or ``[S, E]``).
            value: as ``key``.
            key_padding_mask: ``[N, S]`` (or ``[S]``): bool True marks keys to ignore; a
                float mask is added to the scores.
            need_weights: also return the attention weights.
            attn_mask: ``[L, S]`` or ``[N * num_heads, L, S]``, bool (True: not allowed) or
                float (added to the scores).
            average_attn_weights: average the returned weights over the heads.
            is_causal: ``attn_mask`` is the causal mask (with no ``attn_mask``, the causal
                mask is applied; PyTorch requires the mask).

        Returns:
            ``(output, weights)``: ``output`` shaped as ``query``; ``weights`` ``[N, L, S]``
            (``[N, num_heads, L, S]`` if not averaged; without ``N`` when unbatched) or None
            when ``need_weights`` is False. The weights are taken before dropout.

        Raises:
            ValueError: inputs of the wrong rank or width.
        """
        batched = query.ndim == 3
        if query.ndim not in (2, 3) or key.ndim != query.ndim or value.ndim != query.ndim:
            raise ValueError(
                "MultiheadAttention: query, key and value must all be 3-D (batched) or 2-D "
                f"(unbatched), got {query.ndim}-D, {key.ndim}-D and {value.ndim}-D"
            )
        if query.shape[-1] != self.embed_dim:
            raise ValueError(
                f"MultiheadAttention: expected query of width {self.embed_dim}, "
                f"got {query.shape[-1]}"
            )
        if not batched:
            query, key, value = query.unsqueeze(1), key.unsqueeze(1), value.unsqueeze(1)
            if key_padding_mask is not None:
                key_padding_mask = key_padding_mask.unsqueeze(0)
        elif self.batch_first:
            query, key, value = query.transpose(0, 1), key.transpose(0, 1), value.transpose(0, 1)
        out, weights = self._attend(
            query, key, value, key_padding_mask, need_weights, attn_mask, is_causal
        )
        if weights is not None and average_attn_weights:
            weights = weights.mean(dim=1)
        if not batched:
            return out.squeeze(1), None if weights is None else weights.squeeze(0)
        if self.batch_first:
            out = out.transpose(0, 1)
        return out, weights

    def _attend(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None,
        need_weights: bool,
        attn_mask: Tensor | None,
        is_causal: bool,
    ) -> tuple[Tensor, Tensor | None]:
        """Attention on ``[seq, batch, E]`` inputs; weights per head ``[N, H, L, S]``."""
        seq, batch = query.shape[0], query.shape[1]
        q, k, v = (self._heads(self._project(x, i)) for i, x in enumerate((query, key, value)))
        p = self.dropout if self.training else 0.0
        dtype = q.dtype
        kpm = _additive(key_padding_mask, dtype, "key_padding_mask")
        if kpm is not None:
            kpm = kpm.reshape(batch, 1, 1, kpm.shape[-1])
        if is_causal and kpm is None and not need_weights:
            mask = None  # the attention kernel applies the causal mask itself
        else:
            if is_causal and attn_mask is None:
                attn_mask = causal_mask(q.shape[2], dtype=dtype)
            is_causal = False
            mask = _additive(attn_mask, dtype, "attn_mask")
            if mask is not None and mask.ndim == 3:
                mask = mask.reshape(batch, self.num_heads, mask.shape[1], mask.shape[2])
            if kpm is not None:
                mask = kpm if mask is None else mask + kpm
        weights = None
        if need_weights:
            scores = (q * math.sqrt(1.0 / self.head_dim)).matmul(k.transpose(-2, -1))
            if mask is not None:
                scores = scores + mask
            weights = scores.softmax(-1)
            attn = weights if p == 0.0 else F.dropout(weights, p, training=True)
            out = attn.matmul(v)
        else:
            out = F.scaled_dot_product_attention(q, k, v, mask, dropout_p=p, is_causal=is_causal)
        out = out.permute(2, 0, 1, 3).reshape(seq, batch, self.embed_dim)
        return self.out_proj(out), weights
