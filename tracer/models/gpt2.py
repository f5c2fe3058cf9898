"""GPT-2 (``GPT2Model``, ``GPT2LMHeadModel``) as ``transformers`` computes it, with a KV cache.

Parameter names are ``transformers``' (``transformer.h.0.attn.c_attn.weight``, its
``Conv1D`` weights stored ``[in, out]``); the language-model head shares ``wte`` unless the
checkpoint holds a different ``lm_head.weight``. ``GPT2LMHeadModel`` implements the
decoder-only step protocol of ``tracer.generation`` (``empty_past`` and ``step``; see
``docs/generation.md``).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar

import numpy as np

import tracer
from tracer.models._common import (
    BaseModelOutput,
    Linear,
    LMOutput,
    activation,
    as_long,
    causal_keep,
    flat_linear,
    merge_heads,
    split_heads,
)
from tracer.models._config import ConfigError, PretrainedConfig, check_choice
from tracer.models._pretrained import PreTrainedModel
from tracer.nn import Dropout, Embedding, LayerNorm, Module, ModuleList, Parameter, init
from tracer.nn import functional as F  # noqa: N812 - PyTorch's name
from tracer.tensor import Tensor


@dataclasses.dataclass
class GPT2Config(PretrainedConfig):
    """``transformers.GPT2Config``'s fields and defaults (gpt2 small).

    Raises:
        ConfigError: an unsupported ``activation_function``, cross-attention, or an
            ``n_embd`` that ``n_head`` does not divide.
    """

    model_type = "gpt2"
    attribute_map: ClassVar[dict[str, str]] = {
        "hidden_size": "n_embd",
        "max_position_embeddings": "n_positions",
        "num_attention_heads": "n_head",
        "num_hidden_layers": "n_layer",
    }

    vocab_size: int = 50257
    n_positions: int = 1024
    n_embd: int = 768
    n_layer: int = 12
    n_head: int = 12
    n_inner: int | None = None
    activation_function: str = "gelu_new"
    resid_pdrop: float = 0.1
    embd_pdrop: float = 0.1
    attn_pdrop: float = 0.1
    layer_norm_epsilon: float = 1e-5
    initializer_range: float = 0.02
    scale_attn_weights: bool = True
    scale_attn_by_inverse_layer_idx: bool = False
    reorder_and_upcast_attn: bool = False  # float32 only here, where it changes nothing
    add_cross_attention: bool = False
    bos_token_id: int | None = 50256
    eos_token_id: int | list[int] | None = 50256

    def validate(self) -> None:
        """See the class docstring."""
        super().validate()
        activation(type(self).__name__, "activation_function", self.activation_function)
        check_choice(self, "add_cross_attention", (False,))
        if self.n_embd % self.n_head:
            raise ConfigError(
                f"GPT2Config: n_embd={self.n_embd} is not a multiple of n_head={self.n_head}"
            )


class Conv1D(Module):
    """``transformers``' ``Conv1D(nf, nx)``: a linear layer whose weight is ``[nx, nf]``."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = Parameter(tracer.empty(nx, nf))
        self.bias = Parameter(tracer.zeros(nf))

    def forward(self, x: Tensor) -> Tensor:
        """``x @ weight + bias``."""
        if x.ndim <= 2:
            return x.matmul(self.weight) + self.bias
        y = x.reshape(-1, x.shape[-1]).matmul(self.weight) + self.bias  # see flat_linear
        return y.reshape(*x.shape[:-1], self.nf)


class GPT2Attention(Module):
    """Causal self-attention with fused ``c_attn`` projections and a KV cache."""

    def __init__(self, config: GPT2Config, layer_idx: int) -> None:
        super().__init__()
        e = config.n_embd
        self.num_heads = config.n_head
        self.scaling = (e // config.n_head) ** -0.5 if config.scale_attn_weights else 1.0
        if config.scale_attn_by_inverse_layer_idx:
            self.scaling /= float(layer_idx + 1)
        self.c_attn = Conv1D(3 * e, e)
        self.c_proj = Conv1D(e, e)
        self.attn_dropout = Dropout(config.attn_pdrop)
        self.resid_dropout = Dropout(config.resid_pdrop)

    def forward(
        self, x: Tensor, keep: Tensor, past: tuple[Tensor, Tensor] | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """Attention output ``[B, T, E]`` and this layer's keys and values (past included)."""
        e = x.shape[-1]
        q, k, v = self.c_attn(x).split(e, dim=2)
        q, k, v = (split_heads(t, self.num_heads) for t in (q, k, v))
        if past is not None:
            k = tracer.cat([past[0], k], dim=2)
            v = tracer.cat([past[1], v], dim=2)
        p = self.attn_dropout.p if self.training else 0.0
        a = F.scaled_dot_product_attention(q, k, v, keep, dropout_p=p, scale=self.scaling)
        return self.resid_dropout(self.c_proj(merge_heads(a))), k, v


class GPT2MLP(Module):
    """``c_fc``, the activation, ``c_proj`` and dropout."""

    def __init__(self, config: GPT2Config) -> None:
        super().__init__()
        inner = config.n_inner if config.n_inner is not None else 4 * config.n_embd
        self.c_fc = Conv1D(inner, config.n_embd)
        self.c_proj = Conv1D(config.n_embd, inner)
        self.act = activation("GPT2Config", "activation_function", config.activation_function)
        self.dropout = Dropout(config.resid_pdrop)

    def forward(self, x: Tensor) -> Tensor:
        """The feed-forward block."""
        return self.dropout(self.c_proj(self.act(self.c_fc(x))))


class GPT2Block(Module):
    """Pre-norm block: ``x + attn(ln_1(x))``, then ``x + mlp(ln_2(x))``."""

    def __init__(self, config: GPT2Config, layer_idx: int) -> None:
        super().__init__()
        self.ln_1 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.attn = GPT2Attention(config, layer_idx)
        self.ln_2 = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.mlp = GPT2MLP(config)

    def forward(
        self, x: Tensor, keep: Tensor, past: tuple[Tensor, Tensor] | None
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The block's output and its layer's keys and values."""
        a, k, v = self.attn(self.ln_1(x), keep, past)
        x = x + a
        return x + self.mlp(self.ln_2(x)), k, v


class GPT2PreTrainedModel(PreTrainedModel):
    """GPT-2's loading rules and ``transformers``' initialisation."""

    config_class = GPT2Config
    base_model_prefix = "transformer"
    # Causal-mask buffers that old checkpoints carry; transformers ignores them too.
    ignored_keys = (r"\.attn\.bias$", r"\.attn\.masked_bias$")

    def _init_weights(self, module: Module) -> None:
        cfg = self.config
        std = cfg.initializer_range
        if isinstance(module, Linear | Conv1D):
            init.normal_(module.weight, 0.0, std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, Embedding):
            init.normal_(module.weight, 0.0, std)
        elif isinstance(module, LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)
        if isinstance(module, GPT2Attention | GPT2MLP):
            # GPT-2's scaled init of the residual projections: std / sqrt(2 * n_layer).
            n_layer = cfg.n_layer
            init.normal_(module.c_proj.weight, 0.0, std / math.sqrt(2 * n_layer))


class GPT2Model(GPT2PreTrainedModel):
    """GPT-2's transformer: token and position embeddings, blocks, final LayerNorm.

    ``forward`` returns a :class:`BaseModelOutput` whose ``past_key_values`` (with
    ``use_cache=True``) is the flat tuple ``(k_0, v_0, k_1, v_1, ...)``, each
    ``[B, n_head, P + T, head_dim]``.
    """

    def __init__(self, config: GPT2Config) -> None:
        super().__init__(config)
        self.wte = Embedding(config.vocab_size, config.n_embd)
        self.wpe = Embedding(config.n_positions, config.n_embd)
        self.drop = Dropout(config.embd_pdrop)
        self.h = ModuleList([GPT2Block(config, i) for i in range(config.n_layer)])
        self.ln_f = LayerNorm(config.n_embd, eps=config.layer_norm_epsilon)
        self.post_init()

    def forward(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        position_ids: Any = None,
        token_type_ids: Any = None,
        past_key_values: tuple[Tensor, ...] | None = None,
        use_cache: bool = False,
    ) -> BaseModelOutput:
        """Hidden states ``[B, T, E]`` after ``ln_f``.

        Args:
            input_ids: int64 ``[B, T]``, the new tokens.
            attention_mask: 0/1 ``[B, P + T]`` over the past and new tokens (default all 1).
            position_ids: ``[B or 1, T]``; default ``P .. P + T - 1``.
            token_type_ids: ``[B, T]``, embedded with ``wte`` as ``transformers`` does.
            past_key_values: the cache of earlier steps (``P`` positions), or None.
            use_cache: return the grown cache in ``past_key_values``.
        """
        input_ids = as_long(input_ids)
        b, t = input_ids.shape
        p = 0 if past_key_values is None else past_key_values[0].shape[2]
        if attention_mask is None:
            attention_mask = tracer.ones(b, p + t, dtype=tracer.int64)
        if position_ids is None:
            position_ids = tracer.arange(p, p + t).unsqueeze(0)
        tt = None if token_type_ids is None else as_long(token_type_ids)
        hidden, present = self._run(
            input_ids, as_long(attention_mask), as_long(position_ids), tt, past_key_values
        )
        return BaseModelOutput(hidden, None, present if use_cache else None)

    def _run(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        position_ids: Tensor,
        token_type_ids: Tensor | None,
        past: tuple[Tensor, ...] | None,
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        x = self.wte(input_ids) + self.wpe(position_ids)
        if token_type_ids is not None:
            x = x + self.wte(token_type_ids)
        x = self.drop(x)
        keep = causal_keep(attention_mask, input_ids.shape[1])
        present: list[Tensor] = []
        for i, block in enumerate(self.h):
            layer_past = None if past is None else (past[2 * i], past[2 * i + 1])
            x, k, v = block(x, keep, layer_past)
            present += [k, v]
        return self.ln_f(x), tuple(present)


class GPT2LMHeadModel(GPT2PreTrainedModel):
    """GPT-2 with its language-model head (tied to ``wte`` unless the checkpoint unties it).

    ``forward(..., labels=None)`` returns an :class:`LMOutput`; with ``labels`` ``[B, T]``
    the loss is the next-token cross entropy (labels shifted inside, -100 ignored).
    """

    prefixed = True
    tied_keys: ClassVar[dict[str, str]] = {"lm_head.weight": "transformer.wte.weight"}

    def __init__(self, config: GPT2Config) -> None:
        super().__init__(config)
        self.transformer = GPT2Model(config)
        self.lm_head = (
            None if config.tie_word_embeddings else Linear(config.n_embd, config.vocab_size, False)
        )
        self.post_init()

    @classmethod
    def _adapt_config(cls, config: Any, arrays: dict[str, np.ndarray]) -> Any:
        head, emb = arrays.get("lm_head.weight"), arrays.get("transformer.wte.weight")
        if head is not None and (emb is None or not np.array_equal(head, emb)):
            config.tie_word_embeddings = False
        return config

    def _logits(self, hidden: Tensor) -> Tensor:
        if self.lm_head is not None:
            return self.lm_head(hidden)
        return flat_linear(hidden, self.transformer.wte.weight)

    def forward(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        position_ids: Any = None,
        token_type_ids: Any = None,
        past_key_values: tuple[Tensor, ...] | None = None,
        labels: Any = None,
        use_cache: bool = False,
    ) -> LMOutput:
        """Logits ``[B, T, vocab]`` (arguments as :meth:`GPT2Model.forward`)."""
        out = self.transformer(
            input_ids, attention_mask, position_ids, token_type_ids, past_key_values, use_cache
        )
        logits = self._logits(out.last_hidden_state)
        loss = None
        if labels is not None:
            labels = as_long(labels)
            v = logits.shape[-1]
            shifted = logits[:, :-1].reshape(-1, v)
            loss = F.cross_entropy(shifted, labels[:, 1:].reshape(-1), ignore_index=-100)
        return LMOutput(logits, loss, out.past_key_values)

    # ------------------------------------------------------------ generation step protocol

    def empty_past(self, batch_size: int) -> tuple[Tensor, ...]:
        """A cache of no positions: ``2 * n_layer`` tensors ``[B, n_head, 0, head_dim]``."""
        cfg = self.config
        shape = (batch_size, cfg.n_head, 0, cfg.n_embd // cfg.n_head)
        return tuple(tracer.zeros(*shape) for _ in range(2 * cfg.n_layer))

    def step(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        position_ids: Tensor,
        past: tuple[Tensor, ...],
    ) -> tuple[Tensor, tuple[Tensor, ...]]:
        """One decoding step: the last position's logits ``[B, vocab]`` and the grown cache.

        Args:
            input_ids: int64 ``[B, T]``: the prompt on the first step, then one token.
            attention_mask: int64 0/1 ``[B, P + T]`` over the cached and new positions.
            position_ids: int64 ``[B, T]``.
            past: the flat cache ``(k_0, v_0, ...)`` of ``P`` positions.
        """
        hidden, present = self.transformer._run(input_ids, attention_mask, position_ids, None, past)
        return self._logits(hidden[:, -1]), present
