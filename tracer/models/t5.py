"""T5 models (``T5Model``, ``T5ForConditionalGeneration``, ``T5EncoderModel``), as ``transformers``.

Checkpoint keys are ``transformers``' (``shared.weight``, ``encoder.block.0.layer.0.
SelfAttention.q.weight``, ...). ``T5ForConditionalGeneration`` implements the
encoder-decoder step protocol of ``tracer.generation`` (``encode``, ``empty_past``,
``step``; see ``docs/generation.md``). The layers and ``T5Config`` are in ``_t5_layers.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

import tracer
from tracer.models._common import BaseModelOutput, Linear, LMOutput, as_long, flat_linear
from tracer.models._config import ConfigError
from tracer.models._pretrained import PreTrainedModel
from tracer.models._t5_layers import (
    T5Attention,
    T5Config,  # re-exported: tracer.models.t5.T5Config
    T5DenseActDense,
    T5DenseGatedActDense,
    T5LayerNorm,
    T5Stack,
)
from tracer.nn import Embedding, Module, init
from tracer.nn import functional as F  # noqa: N812 - PyTorch's name
from tracer.tensor import Tensor


@dataclass
class Seq2SeqModelOutput:
    """The decoder's last states and the encoder's."""

    last_hidden_state: Tensor
    encoder_last_hidden_state: Tensor


class T5PreTrainedModel(PreTrainedModel):
    """T5's loading rules and ``transformers``' initialisation (``initializer_factor``)."""

    config_class = T5Config
    ignored_keys: ClassVar[tuple[str, ...]] = (
        r"^decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias\.",
    )
    tied_keys: ClassVar[dict[str, str]] = {
        "encoder.embed_tokens.weight": "shared.weight",
        "decoder.embed_tokens.weight": "shared.weight",
        "lm_head.weight": "shared.weight",
    }

    def _init_weights(self, module: Module) -> None:
        cfg: Any = self.config
        f, d, ff = cfg.initializer_factor, cfg.d_model, cfg.d_ff
        if isinstance(module, T5LayerNorm):
            init.constant_(module.weight, f)
        elif isinstance(module, T5DenseActDense):
            init.normal_(module.wi.weight, 0.0, f * d**-0.5)
            init.normal_(module.wo.weight, 0.0, f * ff**-0.5)
        elif isinstance(module, T5DenseGatedActDense):
            init.normal_(module.wi_0.weight, 0.0, f * d**-0.5)
            init.normal_(module.wi_1.weight, 0.0, f * d**-0.5)
            init.normal_(module.wo.weight, 0.0, f * ff**-0.5)
        elif isinstance(module, T5Attention):
            kv, h = cfg.d_kv, cfg.num_heads
            init.normal_(module.q.weight, 0.0, f * (d * kv) ** -0.5)
            init.normal_(module.k.weight, 0.0, f * d**-0.5)
            init.normal_(module.v.weight, 0.0, f * d**-0.5)
            init.normal_(module.o.weight, 0.0, f * (h * kv) ** -0.5)
            if module.has_relative_attention_bias:
                init.normal_(module.relative_attention_bias.weight, 0.0, f * d**-0.5)
        elif isinstance(module, T5PreTrainedModel):
            init.normal_(module.shared.weight, 0.0, f)
            if getattr(module, "lm_head", None) is not None:
                init.normal_(module.lm_head.weight, 0.0, f)

    def _encode(self, input_ids: Any, attention_mask: Any) -> tuple[Tensor, Tensor]:
        ids = as_long(input_ids)
        mask = tracer.ones_like(ids) if attention_mask is None else as_long(attention_mask)
        return self.encoder.encode(self.shared(ids), mask), mask


class T5EncoderModel(T5PreTrainedModel):
    """T5's encoder alone (``shared`` and ``encoder``); decoder weights are not loaded."""

    ignored_keys: ClassVar[tuple[str, ...]] = (r"^decoder\.", r"^lm_head\.")

    def __init__(self, config: T5Config) -> None:
        super().__init__(config)
        self.shared = Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, is_decoder=False)
        self.post_init()

    def forward(self, input_ids: Any, attention_mask: Any = None) -> BaseModelOutput:
        """Encoder states ``[B, S, d_model]``; ``attention_mask`` is 1 at real tokens."""
        return BaseModelOutput(self._encode(input_ids, attention_mask)[0])


class T5Model(T5PreTrainedModel):
    """T5's encoder and decoder without the LM head.

    ``forward`` returns a :class:`Seq2SeqModelOutput`.
    """

    def __init__(self, config: T5Config) -> None:
        super().__init__(config)
        self.shared = Embedding(config.vocab_size, config.d_model)
        self.encoder = T5Stack(config, is_decoder=False)
        self.decoder = T5Stack(config, is_decoder=True)
        self._build_head(config)
        self.post_init()

    def _build_head(self, config: T5Config) -> None:
        """No head in the base model."""

    def forward(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        decoder_input_ids: Any = None,
        decoder_attention_mask: Any = None,
        encoder_outputs: Tensor | None = None,
    ) -> Seq2SeqModelOutput:
        """Decoder states ``[B, T, d_model]`` for ``decoder_input_ids`` given the input.

        Args:
            input_ids: int64 ``[B, S]`` (unused when ``encoder_outputs`` is given).
            attention_mask: 0/1 ``[B, S]``.
            decoder_input_ids: int64 ``[B, T]``, starting with the decoder start token.
            decoder_attention_mask: 0/1 ``[B, T]`` (default all 1), with the causal mask.
            encoder_outputs: precomputed encoder states ``[B, S, d_model]``.
        """
        if decoder_input_ids is None:
            raise ValueError(f"{type(self).__name__}.forward needs decoder_input_ids (or labels)")
        if encoder_outputs is None:
            memory, mask = self._encode(input_ids, attention_mask)
        else:
            memory = encoder_outputs
            b, s = memory.shape[0], memory.shape[1]
            mask = (
                tracer.ones(b, s, dtype=tracer.int64)
                if attention_mask is None
                else as_long(attention_mask)
            )
        dec = as_long(decoder_input_ids)
        dmask = (
            tracer.ones_like(dec)
            if decoder_attention_mask is None
            else as_long(decoder_attention_mask)
        )
        cross = self.decoder.cross_kv(memory)
        hidden, _ = self.decoder.decode(self.shared(dec), dmask, cross, mask, None)
        return Seq2SeqModelOutput(hidden, memory)


class T5ForConditionalGeneration(T5Model):
    """T5 with its LM head: ``forward(..., labels=None)`` returns an :class:`LMOutput`.

    With ``labels`` ``[B, T]`` (and no ``decoder_input_ids``) the decoder reads the labels
    shifted right behind ``decoder_start_token_id``, and ``loss`` is the cross entropy
    over labels that are not -100, as ``transformers`` computes it.
    """

    def _build_head(self, config: T5Config) -> None:
        tied = config.tie_word_embeddings
        self.lm_head = None if tied else Linear(config.d_model, config.vocab_size, bias=False)

    @classmethod
    def _adapt_config(cls, config: Any, arrays: dict[str, np.ndarray]) -> Any:
        head, emb = arrays.get("lm_head.weight"), arrays.get("shared.weight")
        # transformers ties the head unless the checkpoint's differs from the embeddings.
        config.tie_word_embeddings = head is None or (emb is not None and np.array_equal(head, emb))
        return config

    def _logits(self, hidden: Tensor) -> Tensor:
        if self.config.scale_decoder_outputs:
            hidden = hidden * (self.config.d_model**-0.5)
        if self.lm_head is not None:
            return self.lm_head(hidden)
        return flat_linear(hidden, self.shared.weight)

    def _shift_right(self, labels: Tensor) -> Tensor:
        start = self.config.decoder_start_token_id
        if start is None:
            raise ConfigError(
                "T5: decoder_start_token_id must be set to train from labels (T5 uses 0)"
            )
        shifted = tracer.cat([tracer.full_like(labels[:, :1], start), labels[:, :-1]], dim=1)
        return shifted.masked_fill(shifted == -100, self.config.pad_token_id or 0)

    def forward(  # type: ignore[override]
        self,
        input_ids: Any,
        attention_mask: Any = None,
        decoder_input_ids: Any = None,
        decoder_attention_mask: Any = None,
        encoder_outputs: Tensor | None = None,
        labels: Any = None,
    ) -> LMOutput:
        """Logits ``[B, T, vocab]`` (arguments as :meth:`T5Model.forward`, plus ``labels``)."""
        if labels is not None:
            labels = as_long(labels)
            if decoder_input_ids is None:
                decoder_input_ids = self._shift_right(labels)
        out = super().forward(
            input_ids, attention_mask, decoder_input_ids, decoder_attention_mask, encoder_outputs
        )
        logits = self._logits(out.last_hidden_state)
        loss = None
        if labels is not None:
            v = logits.shape[-1]
            loss = F.cross_entropy(logits.reshape(-1, v), labels.reshape(-1), ignore_index=-100)
        return LMOutput(logits, loss, None, out.encoder_last_hidden_state)

    # ------------------------------------------------------------ generation step protocol

    def encode(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, ...]:
        """The decoder's cross-attention memory: each layer's keys and values of the input.

        Returns ``(k_0, v_0, k_1, v_1, ...)``, each ``[B, num_heads, S, d_kv]``.
        """
        memory, _ = self._encode(input_ids, attention_mask)
        return self.decoder.cross_kv(memory)

    def empty_past(self, batch_size: int) -> tuple[Tensor, ...]:
        """A self-attention cache of no positions: ``[B, num_heads, 0, d_kv]`` per k and v."""
        cfg: Any = self.config
        shape = (batch_size, cfg.num_heads, 0, cfg.d_kv)
        return tuple(tracer.zeros(*shape) for _ in range(2 * cfg.num_decoder_layers))

    def step(
        self,
        decoder_input_ids: Tensor,
        memory: tuple[Tensor, ...],
        memory_mask: Tensor,
        past: tuple[Tensor, ...],
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One decoding step: the last position's logits ``[B, vocab]`` and the grown cache.

        Args:
            decoder_input_ids: int64 ``[B, T]`` new decoder tokens (positions ``P..P+T-1``).
            memory: what :meth:`encode` returned.
            memory_mask: the encoder's 0/1 ``[B, S]`` attention mask.
            past: the flat self-attention cache of ``P`` positions.
        """
        b, t = decoder_input_ids.shape
        self_mask = tracer.ones(b, past[0].shape[2] + t, dtype=tracer.int64)
        embeds = self.shared(decoder_input_ids)
        hidden, present = self.decoder.decode(embeds, self_mask, memory, memory_mask, past)
        return self._logits(hidden[:, -1]), present
