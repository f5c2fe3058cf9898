"""T5's config and layers, as ``transformers`` computes them (the models are in ``t5.py``).

T5 is pre-norm with an RMS LayerNorm, bias-free projections, no attention scaling, and a
relative position bias (bucketed distances, computed in the first layer of each stack and
shared by the rest). ``feed_forward_proj`` is "relu" (T5) or "gated-gelu" (T5 v1.1,
FLAN-T5) and the other "ACT" / "gated-ACT" forms of the supported activations. The LM head
shares ``shared.weight`` and scales the decoder output by ``d_model ** -0.5``, unless the
checkpoint holds its own ``lm_head.weight`` (``tie_word_embeddings: false``, no scaling).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import tracer
from tracer.models._common import (
    Linear,
    activation,
    causal_keep,
    merge_heads,
    padding_keep,
    split_heads,
)
from tracer.models._config import ConfigError, PretrainedConfig
from tracer.nn import Dropout, Embedding, Module, ModuleList, Parameter
from tracer.nn import functional as F  # noqa: N812 - PyTorch's name
from tracer.tensor import Tensor


@dataclasses.dataclass
class T5Config(PretrainedConfig):
    """``transformers.T5Config``'s fields and defaults (t5-small).

    ``dense_act_fn`` and ``is_gated_act`` follow ``feed_forward_proj`` ("gated-gelu" uses
    the tanh GELU, as ``transformers``); ``scale_decoder_outputs`` defaults to
    ``tie_word_embeddings`` as written in the file.

    Raises:
        ConfigError: a ``feed_forward_proj`` not of the form "ACT" or "gated-ACT" with a
            supported activation.
    """

    model_type = "t5"
    is_encoder_decoder = True
    attribute_map: ClassVar[dict[str, str]] = {
        "hidden_size": "d_model",
        "num_attention_heads": "num_heads",
        "num_hidden_layers": "num_layers",
        "head_dim": "d_kv",
    }

    vocab_size: int = 32128
    d_model: int = 512
    d_kv: int = 64
    d_ff: int = 2048
    num_layers: int = 6
    num_decoder_layers: int | None = None
    num_heads: int = 8
    relative_attention_num_buckets: int = 32
    relative_attention_max_distance: int = 128
    dropout_rate: float = 0.1
    layer_norm_epsilon: float = 1e-6
    initializer_factor: float = 1.0
    feed_forward_proj: str = "relu"
    pad_token_id: int | None = 0
    eos_token_id: int | list[int] | None = 1
    scale_decoder_outputs: bool | None = None
    dense_act_fn: str | None = None
    is_gated_act: bool | None = None

    def validate(self) -> None:
        """See the class docstring."""
        super().validate()
        if self.num_decoder_layers is None:
            self.num_decoder_layers = self.num_layers
        if self.scale_decoder_outputs is None:
            self.scale_decoder_outputs = self.tie_word_embeddings
        parts = self.feed_forward_proj.split("-")
        if len(parts) > 2 or (len(parts) == 2 and parts[0] != "gated"):
            raise ConfigError(
                f"T5Config: feed_forward_proj={self.feed_forward_proj!r} is not 'ACT' or "
                "'gated-ACT' (e.g. 'relu', 'gated-gelu')"
            )
        self.is_gated_act = len(parts) == 2
        act = "gelu_new" if self.feed_forward_proj == "gated-gelu" else parts[-1]
        activation("T5Config", "feed_forward_proj", act)
        self.dense_act_fn = act


class T5LayerNorm(Module):
    """RMS normalisation without bias or mean subtraction: ``w * x / sqrt(mean(x^2) + eps)``."""

    def __init__(self, d: int, eps: float) -> None:
        super().__init__()
        self.weight = Parameter(tracer.ones(d))
        self.variance_epsilon = eps

    def forward(self, x: Tensor) -> Tensor:
        """The normalised, scaled ``x``."""
        variance = x.pow(2).mean(-1, keepdim=True)
        return self.weight * (x * (variance + self.variance_epsilon).rsqrt())


class T5DenseActDense(Module):
    """``wo(dropout(act(wi(x))))``."""

    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.wi = Linear(config.d_model, config.d_ff, bias=False)
        self.wo = Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = Dropout(config.dropout_rate)
        self.act = activation("T5Config", "feed_forward_proj", config.dense_act_fn)

    def forward(self, x: Tensor) -> Tensor:
        """The feed-forward block."""
        return self.wo(self.dropout(self.act(self.wi(x))))


class T5DenseGatedActDense(Module):
    """``wo(dropout(act(wi_0(x)) * wi_1(x)))`` (T5 v1.1)."""

    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.wi_0 = Linear(config.d_model, config.d_ff, bias=False)
        self.wi_1 = Linear(config.d_model, config.d_ff, bias=False)
        self.wo = Linear(config.d_ff, config.d_model, bias=False)
        self.dropout = Dropout(config.dropout_rate)
        self.act = activation("T5Config", "feed_forward_proj", config.dense_act_fn)

    def forward(self, x: Tensor) -> Tensor:
        """The gated feed-forward block."""
        return self.wo(self.dropout(self.act(self.wi_0(x)) * self.wi_1(x)))


class T5LayerFF(Module):
    """``x + dropout(ff(layer_norm(x)))``."""

    def __init__(self, config: T5Config) -> None:
        super().__init__()
        gated = T5DenseGatedActDense if config.is_gated_act else T5DenseActDense
        self.DenseReluDense = gated(config)
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)
        self.dropout = Dropout(config.dropout_rate)

    def forward(self, x: Tensor) -> Tensor:
        """The residual feed-forward block."""
        return x + self.dropout(self.DenseReluDense(self.layer_norm(x)))


class T5Attention(Module):
    """Unscaled multi-head attention; the first layer of a stack owns the position bias."""

    def __init__(self, config: T5Config, has_relative_attention_bias: bool, bidirectional: bool):
        super().__init__()
        inner = config.num_heads * config.d_kv
        self.n_heads = config.num_heads
        self.num_buckets = config.relative_attention_num_buckets
        self.max_distance = config.relative_attention_max_distance
        self.bidirectional = bidirectional
        self.dropout = config.dropout_rate
        self.q = Linear(config.d_model, inner, bias=False)
        self.k = Linear(config.d_model, inner, bias=False)
        self.v = Linear(config.d_model, inner, bias=False)
        self.o = Linear(inner, config.d_model, bias=False)
        self.has_relative_attention_bias = has_relative_attention_bias
        if has_relative_attention_bias:
            self.relative_attention_bias = Embedding(self.num_buckets, self.n_heads)

    def bucket(self, relative_position: Tensor) -> Tensor:
        """Mesh TensorFlow's bucket of each (key - query) distance, as ``transformers``."""
        n, buckets = self.num_buckets, tracer.zeros_like(relative_position)
        rp = relative_position
        if self.bidirectional:
            n //= 2
            buckets = (rp > 0).long() * n
            rp = rp.abs()
        else:
            rp = (-rp).clamp(min=0)
        exact = n // 2
        # Distances below `exact` take the small branch; clamping keeps log() finite there.
        scaled = (rp.clamp(min=1).float() / exact).log() / math.log(self.max_distance / exact)
        large = (scaled * (n - exact)).long() + exact
        large = large.clamp(max=n - 1)
        return buckets + tracer.where(rp < exact, rp, large)

    def compute_bias(self, query_length: Any, key_length: Any) -> Tensor:
        """The ``[1, H, T, S]`` bias of the last ``T`` queries over ``S`` keys."""
        q_pos = tracer.arange(key_length - query_length, key_length)
        k_pos = tracer.arange(key_length)
        buckets = self.bucket(k_pos.unsqueeze(0) - q_pos.unsqueeze(1))
        return self.relative_attention_bias(buckets).permute(2, 0, 1).unsqueeze(0)

    def project_kv(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Keys and values ``[B, H, S, d_kv]`` of ``x``."""
        return split_heads(self.k(x), self.n_heads), split_heads(self.v(x), self.n_heads)

    def forward(self, x: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> Tensor:
        """Attention of ``x``'s queries over ``k``/``v`` with the additive ``bias``."""
        q = split_heads(self.q(x), self.n_heads)
        p = self.dropout if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, bias, dropout_p=p, scale=1.0)
        return self.o(merge_heads(a))


class T5LayerSelfAttention(Module):
    """``x + dropout(self_attention(layer_norm(x)))``, with an optional KV cache."""

    def __init__(self, config: T5Config, has_bias: bool, bidirectional: bool) -> None:
        super().__init__()
        self.SelfAttention = T5Attention(config, has_bias, bidirectional)
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)
        self.dropout = Dropout(config.dropout_rate)

    def forward(
        self, x: Tensor, bias: Tensor, past: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The block's output and its keys and values (past included)."""
        h = self.layer_norm(x)
        k, v = self.SelfAttention.project_kv(h)
        if past is not None:
            k, v = tracer.cat([past[0], k], dim=2), tracer.cat([past[1], v], dim=2)
        return x + self.dropout(self.SelfAttention(h, k, v, bias)), k, v


class T5LayerCrossAttention(Module):
    """``x + dropout(attention(layer_norm(x), encoder keys and values))``."""

    def __init__(self, config: T5Config) -> None:
        super().__init__()
        self.EncDecAttention = T5Attention(config, False, True)
        self.layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)
        self.dropout = Dropout(config.dropout_rate)

    def forward(self, x: Tensor, k: Tensor, v: Tensor, bias: Tensor) -> Tensor:
        """Cross-attention over the encoder's keys and values."""
        return x + self.dropout(self.EncDecAttention(self.layer_norm(x), k, v, bias))


class T5Block(Module):
    """Self-attention, (decoder) cross-attention and feed-forward, in ``layer``."""

    def __init__(self, config: T5Config, has_bias: bool, is_decoder: bool) -> None:
        super().__init__()
        layers: list[Module] = [T5LayerSelfAttention(config, has_bias, not is_decoder)]
        if is_decoder:
            layers.append(T5LayerCrossAttention(config))
        layers.append(T5LayerFF(config))
        self.layer = ModuleList(layers)


def _bias_with_mask(bias: Tensor, keep: Tensor) -> Tensor:
    """``bias`` where ``keep``, else -inf: one additive mask for attention."""
    return tracer.where(keep, bias, float("-inf"))


class T5Stack(Module):
    """An encoder or decoder stack; the token embedding is the model's ``shared`` table."""

    def __init__(self, config: T5Config, is_decoder: bool) -> None:
        super().__init__()
        n = config.num_decoder_layers if is_decoder else config.num_layers
        assert n is not None  # T5Config.validate fills it
        self.is_decoder = is_decoder
        self.block = ModuleList([T5Block(config, i == 0, is_decoder) for i in range(n)])
        self.final_layer_norm = T5LayerNorm(config.d_model, config.layer_norm_epsilon)
        self.dropout = Dropout(config.dropout_rate)

    def _attn(self, i: int) -> T5LayerSelfAttention:
        return self.block[i].layer[0]

    def encode(self, embeds: Tensor, attention_mask: Tensor) -> Tensor:
        """Encoder states ``[B, S, d_model]`` of the embedded input."""
        x = self.dropout(embeds)
        s = x.shape[1]
        bias = _bias_with_mask(
            self._attn(0).SelfAttention.compute_bias(s, s), padding_keep(attention_mask)
        )
        for block in self.block:
            x, _, _ = block.layer[0](x, bias)
            x = block.layer[1](x)
        return self.dropout(self.final_layer_norm(x))

    def decode(
        self,
        embeds: Tensor,
        self_mask: Tensor,
        cross: tuple[Tensor, ...],
        memory_mask: Tensor,
        past: tuple[Tensor, ...] | None,
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Decoder states and the grown self-attention cache.

        ``self_mask`` is the 0/1 ``[B, P + T]`` decoder mask; ``cross`` holds each layer's
        encoder keys and values (``k_0, v_0, ...``); ``memory_mask`` is the ``[B, S]``
        encoder mask.
        """
        x = self.dropout(embeds)
        t, total = x.shape[1], self_mask.shape[1]
        bias = self._attn(0).SelfAttention.compute_bias(t, total)
        self_bias = _bias_with_mask(bias, causal_keep(self_mask, t))
        zero = tracer.zeros(1, 1, 1, 1)
        cross_bias = _bias_with_mask(zero, padding_keep(memory_mask))
        present: list[Tensor] = []
        for i, block in enumerate(self.block):
            layer_past = None if past is None else (past[2 * i], past[2 * i + 1])
            x, k, v = block.layer[0](x, self_bias, layer_past)
            x = block.layer[1](x, cross[2 * i], cross[2 * i + 1], cross_bias)
            x = block.layer[2](x)
            present += [k, v]
        return self.dropout(self.final_layer_norm(x)), tuple(present)

    def cross_kv(self, memory: Tensor) -> tuple[Tensor, ...]:
        """Each decoder layer's keys and values of the encoder states."""
        out: list[Tensor] = []
        for block in self.block:
            out += block.layer[1].EncDecAttention.project_kv(memory)
        return tuple(out)
