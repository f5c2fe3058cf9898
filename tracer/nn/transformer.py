"""Transformer layers with PyTorch's arguments and keys, and positional embeddings.

``TransformerEncoderLayer``, ``TransformerEncoder`` and ``TransformerDecoderLayer`` follow
``torch.nn`` (post-norm by default, ``norm_first`` for pre-norm; ``self_attn.in_proj_weight``,
``linear1.weight``, ``norm1.weight``, ``layers.0....``), so ``state_dict``s move between the
two by name. ``PositionalEmbedding`` (learned) and ``SinusoidalPositionalEmbedding`` (fixed,
"Attention Is All You Need") add position information to ``[batch, seq, d_model]`` inputs.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import numpy as np

import tracer
from tracer.nn import functional as F  # noqa: N812 - PyTorch's customary name
from tracer.nn._factory import param_dtype
from tracer.nn.attention import MultiheadAttention
from tracer.nn.containers import ModuleList
from tracer.nn.layers import Dropout, LayerNorm, Linear
from tracer.nn.module import Module, Parameter
from tracer.tensor import Tensor

Activation = str | Callable[[Tensor], Tensor]


def _activation(activation: Activation) -> Callable[[Tensor], Tensor]:
    if callable(activation):
        return activation
    if activation == "relu":
        return F.relu
    if activation == "gelu":
        return F.gelu
    raise RuntimeError(f"activation should be relu/gelu, not {activation}")


class _FeedForward:
    """The ``linear2(dropout(activation(linear1(x))))`` block shared by both layer kinds."""

    def _init_ff(
        self: Any,
        d_model: int,
        dim_feedforward: int,
        dropout: float,
        activation: Activation,
        layer_norm_eps: float,
        norm_first: bool,
        bias: bool,
        dtype: Any,
        norms: int,
    ) -> None:
        self.linear1 = Linear(d_model, dim_feedforward, bias=bias).to(dtype)
        self.dropout = Dropout(dropout)
        self.linear2 = Linear(dim_feedforward, d_model, bias=bias).to(dtype)
        self.norm_first = norm_first
        for i in range(1, norms + 1):
            setattr(self, f"norm{i}", LayerNorm(d_model, eps=layer_norm_eps).to(dtype))
        for i in range(1, norms + 1):
            setattr(self, f"dropout{i}", Dropout(dropout))
        self.activation_relu_or_gelu = activation in ("relu", "gelu")
        self.activation = _activation(activation)

    def _ff_block(self: Any, x: Tensor, dropout: Dropout) -> Tensor:
        x = self.linear2(self.dropout(self.activation(self.linear1(x))))
        return dropout(x)


class TransformerEncoderLayer(Module, _FeedForward):
    """Self-attention then a feed-forward block, each with a residual and LayerNorm.

    Args:
        d_model: model width.
        nhead: attention heads.
        dim_feedforward: hidden width of the feed-forward block.
        dropout: dropout probability (attention weights, residual branches, feed-forward).
        activation: ``"relu"``, ``"gelu"`` or a callable.
        layer_norm_eps: LayerNorm epsilon.
        batch_first: inputs are ``[batch, seq, feature]``.
        norm_first: pre-norm (LayerNorm before each block) instead of post-norm.
        bias: whether the linear layers and LayerNorms have biases.
        device: ``None`` or ``"cpu"`` (eager modules live on the CPU).
        dtype: the parameters' dtype (default float32).
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Activation = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        dtype = param_dtype(device, dtype)
        self.self_attn = MultiheadAttention(
            d_model, nhead, dropout=dropout, bias=bias, batch_first=batch_first, dtype=dtype
        )
        self._init_ff(
            d_model, dim_feedforward, dropout, activation, layer_norm_eps, norm_first, bias,
            dtype, 2,
        )  # fmt: skip

    def forward(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool = False,
    ) -> Tensor:
        """Encode ``src``.

        Args:
            src: ``[seq, batch, d_model]`` (``[batch, seq, d_model]`` if ``batch_first``).
            src_mask: ``[seq, seq]`` or ``[batch * nhead, seq, seq]`` attention mask (bool
                True: not allowed, or float added to the scores).
            src_key_padding_mask: ``[batch, seq]``, True at padded positions.
            is_causal: apply the causal mask (``src_mask``, when given, must be it).

        Returns:
            A tensor shaped as ``src``.
        """
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x), self.dropout2)
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x, self.dropout2))

    def _sa_block(
        self, x: Tensor, mask: Tensor | None, key_padding_mask: Tensor | None, is_causal: bool
    ) -> Tensor:
        x = self.self_attn(
            x, x, x, attn_mask=mask, key_padding_mask=key_padding_mask, need_weights=False,
            is_causal=is_causal,
        )[0]  # fmt: skip
        return self.dropout1(x)


class TransformerEncoder(Module):
    """A stack of ``num_layers`` copies of ``encoder_layer``, then an optional norm.

    Args:
        encoder_layer: the layer to copy (deep copies: the layers do not share weights).
        num_layers: how many layers.
        norm: an optional final module (usually ``LayerNorm``).
        enable_nested_tensor: accepted for PyTorch compatibility; ignored.
        mask_check: accepted for PyTorch compatibility; ignored.
    """

    def __init__(
        self,
        encoder_layer: TransformerEncoderLayer,
        num_layers: int,
        norm: Module | None = None,
        enable_nested_tensor: bool = True,
        mask_check: bool = True,
    ) -> None:
        super().__init__()
        del enable_nested_tensor, mask_check
        self.layers = ModuleList([copy.deepcopy(encoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self,
        src: Tensor,
        mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        is_causal: bool | None = None,
    ) -> Tensor:
        """Run ``src`` through every layer; arguments as ``TransformerEncoderLayer``'s."""
        for layer in self.layers:
            src = layer(
                src, src_mask=mask, src_key_padding_mask=src_key_padding_mask,
                is_causal=bool(is_causal),
            )  # fmt: skip
        return src if self.norm is None else self.norm(src)


class TransformerDecoderLayer(Module, _FeedForward):
    """Self-attention, cross-attention over ``memory``, then a feed-forward block.

    Arguments as :class:`TransformerEncoderLayer`'s; the parameters are ``self_attn``,
    ``multihead_attn``, ``linear1``, ``linear2`` and ``norm1``..``norm3``, as PyTorch's.
    """

    def __init__(
        self,
        d_model: int,
        nhead: int,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Activation = "relu",
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        dtype = param_dtype(device, dtype)
        kwargs = {"dropout": dropout, "bias": bias, "batch_first": batch_first, "dtype": dtype}
        self.self_attn = MultiheadAttention(d_model, nhead, **kwargs)
        self.multihead_attn = MultiheadAttention(d_model, nhead, **kwargs)
        self._init_ff(
            d_model, dim_feedforward, dropout, activation, layer_norm_eps, norm_first, bias,
            dtype, 3,
        )  # fmt: skip

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool = False,
        memory_is_causal: bool = False,
    ) -> Tensor:
        """Decode ``tgt`` attending to ``memory`` (the encoder's output).

        Args:
            tgt: ``[tgt_seq, batch, d_model]`` (batch first if ``batch_first``).
            memory: ``[src_seq, batch, d_model]``.
            tgt_mask: self-attention mask ``[tgt_seq, tgt_seq]``.
            memory_mask: cross-attention mask ``[tgt_seq, src_seq]``.
            tgt_key_padding_mask: ``[batch, tgt_seq]``, True at padded positions.
            memory_key_padding_mask: ``[batch, src_seq]``, True at padded positions.
            tgt_is_causal: the self-attention is causal.
            memory_is_causal: the cross-attention mask is causal.

        Returns:
            A tensor shaped as ``tgt``.
        """
        x = tgt
        sa = (tgt_mask, tgt_key_padding_mask, tgt_is_causal)
        mha = (memory_mask, memory_key_padding_mask, memory_is_causal)
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), *sa)
            x = x + self._mha_block(self.norm2(x), memory, *mha)
            return x + self._ff_block(self.norm3(x), self.dropout3)
        x = self.norm1(x + self._sa_block(x, *sa))
        x = self.norm2(x + self._mha_block(x, memory, *mha))
        return self.norm3(x + self._ff_block(x, self.dropout3))

    def _sa_block(
        self, x: Tensor, mask: Tensor | None, key_padding_mask: Tensor | None, is_causal: bool
    ) -> Tensor:
        x = self.self_attn(
            x, x, x, attn_mask=mask, key_padding_mask=key_padding_mask, need_weights=False,
            is_causal=is_causal,
        )[0]  # fmt: skip
        return self.dropout1(x)

    def _mha_block(
        self,
        x: Tensor,
        memory: Tensor,
        mask: Tensor | None,
        key_padding_mask: Tensor | None,
        is_causal: bool,
    ) -> Tensor:
        x = self.multihead_attn(
            x, memory, memory, attn_mask=mask, key_padding_mask=key_padding_mask,
            need_weights=False, is_causal=is_causal,
        )[0]  # fmt: skip
        return self.dropout2(x)


class PositionalEmbedding(Module):
    """Learned absolute positions: ``x + weight[:seq]``, ``weight`` ``[max_len, d_model]``.

    Args:
        max_len: the longest sequence it can embed.
        d_model: model width.
        batch_first: inputs are ``[batch, seq, d_model]`` (else ``[seq, batch, d_model]``).
        dtype: the parameter's dtype (default float32).

    ``weight`` starts as N(0, 1), as ``nn.Embedding``'s.
    """

    def __init__(
        self, max_len: int, d_model: int, batch_first: bool = True, dtype: Any = None
    ) -> None:
        super().__init__()
        self.max_len, self.d_model, self.batch_first = max_len, d_model, batch_first
        dtype = tracer.float32 if dtype is None else dtype
        self.weight = Parameter(tracer.empty(max_len, d_model, dtype=dtype))
        with tracer.no_grad():
            self.weight.normal_()

    def forward(self, x: Tensor) -> Tensor:
        """``x`` plus the embedding of each position.

        Raises:
            ValueError: a sequence longer than ``max_len``.
        """
        return x + _positions(self.weight, x, self.batch_first, self.max_len)

    def extra_repr(self) -> str:
        """``max_len`` and ``d_model``."""
        return f"{self.max_len}, {self.d_model}"


class SinusoidalPositionalEmbedding(Module):
    """Fixed sine/cosine positions (Vaswani et al. 2017): ``x + pe[:seq]``.

    ``pe[pos, 2i] = sin(pos / 10000^(2i/d))`` and ``pe[pos, 2i+1] = cos(...)``; ``pe`` is a
    non-persistent buffer (not in the ``state_dict``).

    Args:
        max_len: the longest sequence it can embed.
        d_model: model width.
        batch_first: inputs are ``[batch, seq, d_model]`` (else ``[seq, batch, d_model]``).
        dtype: the buffer's dtype (default float32).
    """

    def __init__(
        self, max_len: int, d_model: int, batch_first: bool = True, dtype: Any = None
    ) -> None:
        super().__init__()
        self.max_len, self.d_model, self.batch_first = max_len, d_model, batch_first
        pos = np.arange(max_len, dtype=np.float64)[:, None]
        freq = np.exp(np.arange(0, d_model, 2, dtype=np.float64) * (-math.log(10000.0) / d_model))
        pe = np.zeros((max_len, d_model))
        pe[:, 0::2] = np.sin(pos * freq)
        pe[:, 1::2] = np.cos(pos * freq)[:, : d_model // 2]
        dtype = tracer.float32 if dtype is None else dtype
        self.register_buffer("pe", tracer.tensor(pe, dtype=dtype), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` plus the encoding of each position.

        Raises:
            ValueError: a sequence longer than ``max_len``.
        """
        return x + _positions(self.pe, x, self.batch_first, self.max_len)

    def extra_repr(self) -> str:
        """``max_len`` and ``d_model``."""
        return f"{self.max_len}, {self.d_model}"


def _positions(table: Tensor, x: Tensor, batch_first: bool, max_len: int) -> Tensor:
    """The first ``seq`` rows of ``table``, shaped to broadcast against ``x``."""
    axis = 1 if batch_first else 0
    seq = x.shape[axis]
    if isinstance(seq, int) and seq > max_len:
        raise ValueError(f"sequence of length {seq} is longer than max_len={max_len}")
    rows = table[:seq]
    return rows if batch_first else rows.unsqueeze(1)
