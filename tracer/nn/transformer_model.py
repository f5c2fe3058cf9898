"""``TransformerDecoder`` and ``Transformer`` (encoder-decoder), as ``torch.nn``'s.

Keys are PyTorch's (``encoder.layers.0.self_attn.in_proj_weight``, ``decoder.norm.weight``,
...), so ``state_dict``s move by name. ``Transformer`` re-draws every matrix with Xavier
uniform after building, as PyTorch does.
"""

from __future__ import annotations

import copy
from typing import Any

import tracer
from tracer.nn import init
from tracer.nn._factory import param_dtype
from tracer.nn.attention import causal_mask
from tracer.nn.containers import ModuleList
from tracer.nn.layers import LayerNorm
from tracer.nn.module import Module
from tracer.nn.transformer import (
    Activation,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from tracer.tensor import Tensor

__all__ = ["Transformer", "TransformerDecoder"]


class TransformerDecoder(Module):
    """A stack of ``num_layers`` copies of ``decoder_layer``, then an optional norm.

    Args:
        decoder_layer: the layer to copy (deep copies: the layers do not share weights).
        num_layers: how many layers.
        norm: an optional final module (usually ``LayerNorm``).
    """

    def __init__(
        self, decoder_layer: TransformerDecoderLayer, num_layers: int, norm: Module | None = None
    ) -> None:
        super().__init__()
        self.layers = ModuleList([copy.deepcopy(decoder_layer) for _ in range(num_layers)])
        self.num_layers = num_layers
        self.norm = norm

    def forward(
        self,
        tgt: Tensor,
        memory: Tensor,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        """Run ``tgt`` through every layer attending to ``memory``.

        Arguments as :meth:`TransformerDecoderLayer.forward`'s; ``tgt_is_causal=None``
        means "not known", and the given ``tgt_mask`` is applied as it is.
        """
        x = tgt
        for layer in self.layers:
            x = layer(
                x, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
                tgt_key_padding_mask=tgt_key_padding_mask,
                memory_key_padding_mask=memory_key_padding_mask,
                tgt_is_causal=bool(tgt_is_causal), memory_is_causal=memory_is_causal,
            )  # fmt: skip
        return x if self.norm is None else self.norm(x)


class Transformer(Module):
    """The encoder-decoder of "Attention Is All You Need", as ``torch.nn.Transformer``.

    Args:
        d_model: model width.
        nhead: attention heads.
        num_encoder_layers: encoder layers.
        num_decoder_layers: decoder layers.
        dim_feedforward: hidden width of the feed-forward blocks.
        dropout: dropout probability.
        activation: ``"relu"``, ``"gelu"`` or a callable.
        custom_encoder: a module to use instead of the built encoder.
        custom_decoder: a module to use instead of the built decoder.
        layer_norm_eps: LayerNorm epsilon.
        batch_first: inputs are ``[batch, seq, feature]``.
        norm_first: pre-norm layers.
        bias: whether the linear layers and LayerNorms have biases.
        device: ``None`` or ``"cpu"``.
        dtype: the parameters' dtype (float32 by default).
    """

    def __init__(
        self,
        d_model: int = 512,
        nhead: int = 8,
        num_encoder_layers: int = 6,
        num_decoder_layers: int = 6,
        dim_feedforward: int = 2048,
        dropout: float = 0.1,
        activation: Activation = "relu",
        custom_encoder: Any = None,
        custom_decoder: Any = None,
        layer_norm_eps: float = 1e-5,
        batch_first: bool = False,
        norm_first: bool = False,
        bias: bool = True,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        dt = param_dtype(device, dtype)
        if custom_encoder is not None:
            self.encoder = custom_encoder
        else:
            encoder_layer = TransformerEncoderLayer(
                d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                batch_first, norm_first, bias, dtype=dt,
            )  # fmt: skip
            norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dt)
            self.encoder = TransformerEncoder(encoder_layer, num_encoder_layers, norm)
        if custom_decoder is not None:
            self.decoder = custom_decoder
        else:
            decoder_layer = TransformerDecoderLayer(
                d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                batch_first, norm_first, bias, dtype=dt,
            )  # fmt: skip
            norm = LayerNorm(d_model, eps=layer_norm_eps, bias=bias, dtype=dt)
            self.decoder = TransformerDecoder(decoder_layer, num_decoder_layers, norm)
        self._reset_parameters()
        self.d_model = d_model
        self.nhead = nhead
        self.batch_first = batch_first

    def _reset_parameters(self) -> None:
        for p in self.parameters():
            if p.ndim > 1:
                init.xavier_uniform_(p)

    def forward(
        self,
        src: Tensor,
        tgt: Tensor,
        src_mask: Tensor | None = None,
        tgt_mask: Tensor | None = None,
        memory_mask: Tensor | None = None,
        src_key_padding_mask: Tensor | None = None,
        tgt_key_padding_mask: Tensor | None = None,
        memory_key_padding_mask: Tensor | None = None,
        src_is_causal: bool | None = None,
        tgt_is_causal: bool | None = None,
        memory_is_causal: bool = False,
    ) -> Tensor:
        """Encode ``src``, then decode ``tgt`` attending to the encoding.

        Args:
            src: ``[src_seq, batch, d_model]`` (batch first if ``batch_first``).
            tgt: ``[tgt_seq, batch, d_model]``.
            src_mask: encoder self-attention mask ``[src_seq, src_seq]``.
            tgt_mask: decoder self-attention mask ``[tgt_seq, tgt_seq]``.
            memory_mask: cross-attention mask ``[tgt_seq, src_seq]``.
            src_key_padding_mask: ``[batch, src_seq]``, True at padded positions.
            tgt_key_padding_mask: ``[batch, tgt_seq]``.
            memory_key_padding_mask: ``[batch, src_seq]``.
            src_is_causal: ``src_mask`` is the causal mask.
            tgt_is_causal: ``tgt_mask`` is the causal mask.
            memory_is_causal: ``memory_mask`` is the causal mask.

        Returns:
            ``[tgt_seq, batch, d_model]`` (batch first if ``batch_first``).

        Raises:
            RuntimeError: batch sizes of ``src`` and ``tgt`` differ, or a width other than
                ``d_model``.
        """
        batch_axis = 0 if self.batch_first else 1
        if src.ndim == 3 and src.shape[batch_axis] != tgt.shape[batch_axis]:
            raise RuntimeError("the batch number of src and tgt must be equal")
        if src.shape[-1] != self.d_model or tgt.shape[-1] != self.d_model:
            raise RuntimeError("the feature number of src and tgt must be equal to d_model")
        memory = self.encoder(
            src, mask=src_mask, src_key_padding_mask=src_key_padding_mask, is_causal=src_is_causal
        )
        return self.decoder(
            tgt, memory, tgt_mask=tgt_mask, memory_mask=memory_mask,
            tgt_key_padding_mask=tgt_key_padding_mask,
            memory_key_padding_mask=memory_key_padding_mask, tgt_is_causal=tgt_is_causal,
            memory_is_causal=memory_is_causal,
        )  # fmt: skip

    @staticmethod
    def generate_square_subsequent_mask(sz: int, device: Any = None, dtype: Any = None) -> Tensor:
        """A ``[sz, sz]`` float mask: ``-inf`` above the diagonal, 0 elsewhere (PyTorch's)."""
        param_dtype(device, None)
        return causal_mask(sz, dtype=dtype or tracer.float32)
