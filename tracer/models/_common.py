"""Pieces the model families share: activations by config name, masks, outputs, losses."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import tracer
from tracer import nn
from tracer.models._config import ConfigError
from tracer.nn import functional as F  # noqa: N812 - PyTorch's name
from tracer.tensor import Tensor

# transformers' ACT2FN names this library computes exactly as transformers does.
_ACTIVATIONS: dict[str, Callable[[Tensor], Tensor]] = {
    "gelu": F.gelu,
    "gelu_new": lambda x: F.gelu(x, approximate="tanh"),
    "gelu_pytorch_tanh": lambda x: F.gelu(x, approximate="tanh"),
    "relu": F.relu,
    "silu": F.silu,
    "swish": F.silu,
    "tanh": F.tanh,
}


def activation(owner: str, key: str, name: Any) -> Callable[[Tensor], Tensor]:
    """The activation ``transformers`` calls ``name``.

    Raises:
        ConfigError: a name outside the supported set (the message lists it).
    """
    fn = _ACTIVATIONS.get(name) if isinstance(name, str) else None
    if fn is None:
        raise ConfigError(
            f"{owner}: {key}={name!r} is not a supported activation; supported: "
            f"{', '.join(sorted(_ACTIVATIONS))}"
        )
    return fn


def flat_linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``F.linear`` over the last dim, computed as one 2-D product.

    NumPy multiplies a ``[B, T, d]`` stack by a transposed weight about ten times slower
    than the same rows as one ``[B * T, d]`` matrix, forward and backward.
    """
    if x.ndim <= 2:
        return F.linear(x, weight, bias)
    lead = x.shape[:-1]
    y = F.linear(x.reshape(-1, x.shape[-1]), weight, bias)
    return y.reshape(*lead, y.shape[-1])


class Linear(nn.Linear):
    """``nn.Linear`` (same parameters and names) computed by :func:`flat_linear`."""

    def forward(self, input: Tensor) -> Tensor:
        """``input @ weight.T + bias``."""
        return flat_linear(input, self.weight, self.bias)


def split_heads(x: Tensor, heads: int) -> Tensor:
    """``[B, T, H * D]`` -> ``[B, H, T, D]``."""
    b, t, width = x.shape
    return x.view(b, t, heads, width // heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """``[B, H, T, D]`` -> ``[B, T, H * D]``."""
    b, h, t, d = x.shape
    return x.transpose(1, 2).reshape(b, t, h * d)


def padding_keep(attention_mask: Tensor) -> Tensor:
    """A 0/1 ``[B, S]`` mask as bool ``[B, 1, 1, S]``: True where a key may be attended."""
    return (attention_mask != 0).unsqueeze(1).unsqueeze(2)


def causal_keep(attention_mask: Tensor, query_length: Any) -> Tensor:
    """Bool ``[B, 1, T, S]``: key ``j`` is visible to query ``i`` (the last ``T`` of ``S``).

    ``attention_mask`` is the 0/1 mask of all ``S`` positions (past and new); a query at
    position ``S - T + i`` sees real keys at positions up to its own.
    """
    total = attention_mask.shape[1]
    q_pos = tracer.arange(total - query_length, total)
    k_pos = tracer.arange(total)
    causal = k_pos.unsqueeze(0) <= q_pos.unsqueeze(1)
    return causal.unsqueeze(0).unsqueeze(1).logical_and(padding_keep(attention_mask))


def as_long(x: Any) -> Tensor:
    """``x`` as an int64 tensor (lists and NumPy arrays accepted)."""
    t = x if isinstance(x, Tensor) else tracer.as_tensor(x)
    return t if t.dtype == tracer.int64 else t.long()


@dataclass
class BaseModelOutput:
    """A base model's per-token states, BERT's pooled first token, a decoder's KV cache."""

    last_hidden_state: Tensor
    pooler_output: Tensor | None = None
    past_key_values: tuple[Tensor, ...] | None = None


@dataclass
class ClassifierOutput:
    """A classification head's ``logits`` and, when labels were given, the ``loss``."""

    logits: Tensor
    loss: Tensor | None = None


@dataclass
class LMOutput:
    """A language-model head's ``logits``, the ``loss`` with labels, and the KV cache."""

    logits: Tensor
    loss: Tensor | None = None
    past_key_values: tuple[Tensor, ...] | None = None
    encoder_last_hidden_state: Tensor | None = None


def classification_loss(config: Any, logits: Tensor, labels: Tensor) -> Tensor:
    """``transformers``' sequence-classification loss for ``config.problem_type``.

    With no problem type: regression for one label, single-label cross entropy for integer
    labels, multi-label binary cross entropy for float labels.
    """
    n = config.num_labels
    kind = config.problem_type
    if kind is None:
        if n == 1:
            kind = "regression"
        elif labels.dtype in (tracer.int64, tracer.int32):
            kind = "single_label_classification"
        else:
            kind = "multi_label_classification"
    if kind == "regression":
        if n == 1:
            return F.mse_loss(logits.squeeze(), labels.squeeze().to(logits.dtype))
        return F.mse_loss(logits, labels.to(logits.dtype))
    if kind == "single_label_classification":
        return F.cross_entropy(logits.view(-1, n), as_long(labels).view(-1))
    return F.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype))
