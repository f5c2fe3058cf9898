"""BERT (``BertModel`` and its sequence and token classification heads), as ``transformers``.

Module names, parameter names, initialisation, dropout placement and the classification
losses are ``transformers``' (v5, absolute position embeddings), so a Hugging Face folder
loads by name and ``save_pretrained`` writes a folder ``transformers`` loads.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import tracer
from tracer.models._common import (
    BaseModelOutput,
    ClassifierOutput,
    Linear,
    activation,
    as_long,
    classification_loss,
    merge_heads,
    padding_keep,
    split_heads,
)
from tracer.models._config import ConfigError, PretrainedConfig, check_choice
from tracer.models._pretrained import PreTrainedModel
from tracer.nn import Dropout, Embedding, LayerNorm, Module, ModuleList, init
from tracer.nn import functional as F  # noqa: N812 - PyTorch's name
from tracer.tensor import Tensor


@dataclasses.dataclass
class BertConfig(PretrainedConfig):
    """``transformers.BertConfig``'s fields and defaults (bert-base-uncased).

    Raises:
        ConfigError: an unsupported ``hidden_act``, ``position_embedding_type`` other than
            "absolute", a decoder (``is_decoder`` / ``add_cross_attention``), or a
            ``hidden_size`` that ``num_attention_heads`` does not divide.
    """

    model_type = "bert"

    vocab_size: int = 30522
    hidden_size: int = 768
    num_hidden_layers: int = 12
    num_attention_heads: int = 12
    intermediate_size: int = 3072
    hidden_act: str = "gelu"
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    pad_token_id: int | None = 0
    classifier_dropout: float | None = None
    position_embedding_type: str = "absolute"
    is_decoder: bool = False
    add_cross_attention: bool = False

    def validate(self) -> None:
        """See the class docstring."""
        super().validate()
        activation(type(self).__name__, "hidden_act", self.hidden_act)
        check_choice(self, "position_embedding_type", ("absolute",))
        check_choice(self, "is_decoder", (False,))
        check_choice(self, "add_cross_attention", (False,))
        if self.hidden_size % self.num_attention_heads:
            raise ConfigError(
                f"BertConfig: hidden_size={self.hidden_size} is not a multiple of "
                f"num_attention_heads={self.num_attention_heads}"
            )


class BertEmbeddings(Module):
    """Word + position + token-type embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.word_embeddings = Embedding(config.vocab_size, d, padding_idx=config.pad_token_id)
        self.position_embeddings = Embedding(config.max_position_embeddings, d)
        self.token_type_embeddings = Embedding(config.type_vocab_size, d)
        self.LayerNorm = LayerNorm(d, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(
        self,
        input_ids: Tensor,
        token_type_ids: Tensor | None = None,
        position_ids: Tensor | None = None,
    ) -> Tensor:
        """Embeddings ``[B, T, hidden]`` of int64 ``input_ids`` ``[B, T]``."""
        if position_ids is None:
            position_ids = tracer.arange(input_ids.shape[1]).unsqueeze(0)
        if token_type_ids is None:
            token_type_ids = tracer.zeros_like(input_ids)
        x = self.word_embeddings(input_ids) + self.token_type_embeddings(token_type_ids)
        x = x + self.position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x))


class BertSelfAttention(Module):
    """Multi-head scaled dot-product self-attention (``query``/``key``/``value``)."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.num_attention_heads = config.num_attention_heads
        self.query = Linear(d, d)
        self.key = Linear(d, d)
        self.value = Linear(d, d)
        self.dropout = Dropout(config.attention_probs_dropout_prob)

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        """Attention over ``x`` ``[B, T, hidden]``; ``keep`` ``[B, 1, 1, T]`` marks real keys."""
        h = self.num_attention_heads
        q, k, v = (split_heads(layer(x), h) for layer in (self.query, self.key, self.value))
        p = self.dropout.p if self.training else 0.0
        return merge_heads(F.scaled_dot_product_attention(q, k, v, keep, dropout_p=p))


class BertSelfOutput(Module):
    """``LayerNorm(dropout(dense(x)) + residual)``: BERT's output blocks."""

    def __init__(self, config: BertConfig, d_in: int) -> None:
        super().__init__()
        self.dense = Linear(d_in, config.hidden_size)
        self.LayerNorm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = Dropout(config.hidden_dropout_prob)

    def forward(self, x: Tensor, residual: Tensor) -> Tensor:
        """The projection, dropout and the residual LayerNorm."""
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class BertAttention(Module):
    """Self-attention then its output block."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.self = BertSelfAttention(config)
        self.output = BertSelfOutput(config, config.hidden_size)

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        """Attention with residual and LayerNorm."""
        return self.output(self.self(x, keep), x)


class BertIntermediate(Module):
    """The feed-forward expansion and its activation."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.intermediate_size)
        self.act = activation("BertConfig", "hidden_act", config.hidden_act)

    def forward(self, x: Tensor) -> Tensor:
        """``act(dense(x))``."""
        return self.act(self.dense(x))


class BertLayer(Module):
    """Post-norm encoder layer: attention, then the feed-forward block."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.attention = BertAttention(config)
        self.intermediate = BertIntermediate(config)
        self.output = BertSelfOutput(config, config.intermediate_size)

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        """One layer over ``x`` ``[B, T, hidden]``."""
        a = self.attention(x, keep)
        return self.output(self.intermediate(a), a)


class BertEncoder(Module):
    """The stack of layers."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.layer = ModuleList([BertLayer(config) for _ in range(config.num_hidden_layers)])

    def forward(self, x: Tensor, keep: Tensor | None) -> Tensor:
        """Every layer in turn."""
        for layer in self.layer:
            x = layer(x, keep)
        return x


class BertPooler(Module):
    """``tanh(dense(first token))``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.dense = Linear(config.hidden_size, config.hidden_size)

    def forward(self, x: Tensor) -> Tensor:
        """The pooled ``[B, hidden]`` representation."""
        return self.dense(x[:, 0]).tanh()


class BertPreTrainedModel(PreTrainedModel):
    """BERT's loading rules and ``transformers``' initialisation (N(0, initializer_range))."""

    config_class = BertConfig
    base_model_prefix = "bert"
    ignored_keys: ClassVar[tuple[str, ...]] = (
        r"(^|\.)embeddings\.position_ids$",
        r"(^|\.)embeddings\.token_type_ids$",
    )

    def _init_weights(self, module: Module) -> None:
        std = self.config.initializer_range
        if isinstance(module, Linear):
            init.normal_(module.weight, 0.0, std)
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, Embedding):
            init.normal_(module.weight, 0.0, std)
            if module.padding_idx is not None:
                with tracer.no_grad():
                    module.weight[module.padding_idx] = 0.0
        elif isinstance(module, LayerNorm):
            init.ones_(module.weight)
            init.zeros_(module.bias)


class BertModel(BertPreTrainedModel):
    """BERT's encoder, with the pooler unless ``add_pooling_layer=False``.

    ``forward(input_ids, attention_mask, token_type_ids, position_ids)`` returns a
    :class:`BaseModelOutput` (``last_hidden_state`` ``[B, T, hidden]``, ``pooler_output``).
    """

    optional_keys = ("pooler.",)

    def __init__(self, config: BertConfig, add_pooling_layer: bool = True) -> None:
        super().__init__(config)
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.post_init()

    def forward(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        position_ids: Any = None,
    ) -> BaseModelOutput:
        """Encode ``input_ids`` ``[B, T]``; ``attention_mask`` is 1 at real tokens, 0 at padding."""
        input_ids = as_long(input_ids)
        keep = None if attention_mask is None else padding_keep(as_long(attention_mask))
        x = self.embeddings(
            input_ids,
            None if token_type_ids is None else as_long(token_type_ids),
            None if position_ids is None else as_long(position_ids),
        )
        x = self.encoder(x, keep)
        pooled = self.pooler(x) if self.pooler is not None else None
        return BaseModelOutput(x, pooled)


class BertForSequenceClassification(BertPreTrainedModel):
    """BERT, dropout and a linear classifier on the pooled output.

    ``forward(..., labels=None)`` returns a :class:`ClassifierOutput`; with ``labels`` its
    ``loss`` is ``transformers``' for ``config.problem_type`` (cross entropy for integer
    labels, MSE for one label, BCE-with-logits for float multi-label targets).
    """

    prefixed = True
    optional_keys = ("classifier.", "bert.pooler.")

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config)
        p = config.classifier_dropout
        self.dropout = Dropout(config.hidden_dropout_prob if p is None else p)
        self.classifier = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        position_ids: Any = None,
        labels: Any = None,
    ) -> ClassifierOutput:
        """Logits ``[B, num_labels]`` (and the loss when ``labels`` are given)."""
        pooled = self.bert(input_ids, attention_mask, token_type_ids, position_ids).pooler_output
        assert pooled is not None  # this head always builds the pooler
        logits = self.classifier(self.dropout(pooled))
        loss = None
        if labels is not None:
            labels = labels if isinstance(labels, Tensor) else tracer.as_tensor(labels)
            loss = classification_loss(self.config, logits, labels)
        return ClassifierOutput(logits, loss)


class BertForTokenClassification(BertPreTrainedModel):
    """BERT (no pooler), dropout and a linear classifier on every token.

    With ``labels`` ``[B, T]`` the loss is the cross entropy over positions whose label is
    not -100 (``transformers``' ignore index).
    """

    prefixed = True
    optional_keys = ("classifier.",)
    ignored_keys: ClassVar[tuple[str, ...]] = (
        *BertPreTrainedModel.ignored_keys,
        r"^bert\.pooler\.",
    )

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.bert = BertModel(config, add_pooling_layer=False)
        p = config.classifier_dropout
        self.dropout = Dropout(config.hidden_dropout_prob if p is None else p)
        self.classifier = Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(
        self,
        input_ids: Any,
        attention_mask: Any = None,
        token_type_ids: Any = None,
        position_ids: Any = None,
        labels: Any = None,
    ) -> ClassifierOutput:
        """Logits ``[B, T, num_labels]`` (and the loss when ``labels`` are given)."""
        x = self.bert(input_ids, attention_mask, token_type_ids, position_ids).last_hidden_state
        logits = self.classifier(self.dropout(x))
        loss = None
        if labels is not None:
            n = self.config.num_labels
            loss = F.cross_entropy(logits.view(-1, n), as_long(labels).view(-1), ignore_index=-100)
        return ClassifierOutput(logits, loss)
