"""Small NLP models written on plain ``tracer`` tensors, shared by the tests and ``bench/``.

They are written on plain tensors on purpose, not on ``tracer.nn``: the tracer, autodiff and
runtime tests then exercise tensor code alone, and a bug in ``tracer.nn`` cannot hide one in
capture. Each model is a tiny ``Module``: weights are tensor attributes initialised the way
PyTorch's modules initialise them (``nn.Linear``: uniform in ``±1/sqrt(fan_in)``;
``nn.Embedding``: standard normal with the padding row zeroed; ``nn.LayerNorm``: ones and
zeros; ``nn.MultiheadAttention``: Xavier-uniform ``in_proj_weight`` and zero biases), and
``named_parameters()`` yields PyTorch's ``state_dict`` names, so that ``tracer.trace`` names
the initializers after them and ``copy_weights`` can move weights to the ``torch`` twin of the
transformer by name.

Models (all float32):

- ``MLP``: ``[batch, in]`` floats -> ``[batch, out]``; dynamic batch.
- ``BagOfEmbeddings``: ``[batch, seq]`` int64 ids -> ``[batch, classes]``, embedding lookup
  by indexing, padding-masked mean pool, linear.
- ``TextClassifier``: post-norm transformer encoder (token embedding + learned positions
  picked by ``arange(seq)``, multi-head self-attention with a key-padding mask, ReLU or GELU
  feed-forward, residual + layer norm), padding-masked mean pool, linear.
- ``HeadMixer``: ``[batch, seq, d]`` -> same; splits the last dim into heads by ``x.shape``,
  mixes within each head, merges back.

Padding id 0 marks padding; every sequence fed to these models must hold at least one real
token (an all-padding row has no key to attend to, and gives NaN, as in PyTorch).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

import tracer
from tracer import Tensor
from tracer.nn import functional as F  # noqa: N812 - PyTorch's name

PAD_ID = 0


class Module:
    """Just enough of ``torch.nn.Module``: named parameters, ``forward`` through ``__call__``."""

    def forward(self, *args: Any) -> Tensor:
        raise NotImplementedError

    def __call__(self, *args: Any) -> Tensor:
        return self.forward(*args)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Tensor]]:
        """``(name, tensor)`` pairs with PyTorch's dotted ``state_dict`` names."""
        for name, value in vars(self).items():
            if isinstance(value, Tensor):
                yield prefix + name, value
            elif isinstance(value, Module):
                yield from value.named_parameters(f"{prefix}{name}.")
            elif isinstance(value, list):
                for i, child in enumerate(value):
                    yield from child.named_parameters(f"{prefix}{name}.{i}.")

    def state_dict(self) -> dict[str, np.ndarray]:
        """Parameter name -> a copy of its array."""
        return {name: t.detach().numpy().copy() for name, t in self.named_parameters()}


def _param(data: Tensor) -> Tensor:
    return data.float().requires_grad_()


def _uniform(bound: float, *shape: int) -> Tensor:
    return _param(tracer.rand(*shape) * (2 * bound) - bound)


class Linear(Module):
    """``x @ weight.T + bias`` with ``nn.Linear``'s shapes and initialisation."""

    def __init__(self, n_in: int, n_out: int) -> None:
        bound = 1.0 / math.sqrt(n_in)
        self.weight = _uniform(bound, n_out, n_in)
        self.bias = _uniform(bound, n_out)

    def forward(self, x: Tensor) -> Tensor:
        return x @ self.weight.t() + self.bias


class Embedding(Module):
    """A lookup table (``nn.Embedding``): ``weight[ids]``; the padding row starts at zero."""

    def __init__(self, n: int, d: int, padding_idx: int | None = None) -> None:
        weight = tracer.randn(n, d)
        if padding_idx is not None:
            weight[padding_idx] = 0.0
        self.weight = _param(weight)

    def forward(self, ids: Tensor) -> Tensor:
        return self.weight[ids]


class LayerNorm(Module):
    """Layer norm over the last dim, as ``nn.LayerNorm(d)``."""

    def __init__(self, d: int, eps: float = 1e-5) -> None:
        self.weight = _param(tracer.ones(d))
        self.bias = _param(tracer.zeros(d))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        return layer_norm(x, self.weight, self.bias, self.eps)


def layer_norm(x: Tensor, weight: Tensor, bias: Tensor, eps: float) -> Tensor:
    """``(x - mean) / sqrt(var + eps) * weight + bias`` over the last dim.

    One native ``LayerNormalization`` node, which onnxruntime runs as a fused kernel.
    """
    return F.layer_norm(x, (x.shape[-1],), weight, bias, eps)


def gelu(x: Tensor) -> Tensor:
    """Exact GELU: one native ``Gelu`` node."""
    return F.gelu(x)


def masked_mean(h: Tensor, ids: Tensor) -> Tensor:
    """Mean of ``h[b, t, :]`` over the positions ``t`` whose id is not padding."""
    keep = (ids != PAD_ID).float().unsqueeze(-1)
    return (h * keep).sum(1) / keep.sum(1).clamp(min=1.0)


# ---------------------------------------------------------------- models


class MLP(Module):
    """Three linear layers with ReLU and tanh between them."""

    def __init__(self, n_in: int = 16, hidden: int = 32, n_out: int = 4) -> None:
        self.fc1 = Linear(n_in, hidden)
        self.fc2 = Linear(hidden, hidden)
        self.fc3 = Linear(hidden, n_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc3(self.fc2(self.fc1(x).relu()).tanh())


class BagOfEmbeddings(Module):
    """Embedding lookup, padding-masked mean pool, linear to classes."""

    def __init__(self, vocab: int = 50, d: int = 16, classes: int = 3) -> None:
        self.embedding = Embedding(vocab, d, padding_idx=PAD_ID)
        self.head = Linear(d, classes)

    def forward(self, ids: Tensor) -> Tensor:
        return self.head(masked_mean(self.embedding(ids), ids))


class SelfAttention(Module):
    """``nn.MultiheadAttention`` (batch first, no dropout) as used by an encoder layer."""

    def __init__(self, d: int, heads: int) -> None:
        if d % heads:
            raise ValueError(f"d={d} is not divisible by heads={heads}")
        self.heads = heads
        bound = math.sqrt(6.0 / (d + 3 * d))  # xavier_uniform_ on [3d, d]
        self.in_proj_weight = _uniform(bound, 3 * d, d)
        self.in_proj_bias = _param(tracer.zeros(3 * d))
        self.out_proj = Linear(d, d)
        self.out_proj.bias = _param(tracer.zeros(d))

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        b, t, d = x.shape
        h = self.heads
        q, k, v = (x @ self.in_proj_weight.t() + self.in_proj_bias).chunk(3, -1)
        q, k, v = (z.view(b, t, h, d // h).transpose(1, 2) for z in (q, k, v))
        scores = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(d // h))
        scores = scores.masked_fill(pad.view(b, 1, 1, t), float("-inf"))
        out = (scores.softmax(-1) @ v).transpose(1, 2).reshape(b, t, d)
        return self.out_proj(out)


class EncoderLayer(Module):
    """``nn.TransformerEncoderLayer`` (post-norm, batch first, dropout 0)."""

    def __init__(self, d: int, heads: int, ff: int, activation: str = "relu") -> None:
        if activation not in ("relu", "gelu"):
            raise ValueError(f"activation={activation!r}: expected 'relu' or 'gelu'")
        self.self_attn = SelfAttention(d, heads)
        self.linear1 = Linear(d, ff)
        self.linear2 = Linear(ff, d)
        self.norm1 = LayerNorm(d)
        self.norm2 = LayerNorm(d)
        self.activation = activation

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        x = self.norm1(x + self.self_attn(x, pad))
        hidden = self.linear1(x)
        hidden = hidden.relu() if self.activation == "relu" else gelu(hidden)
        return self.norm2(x + self.linear2(hidden))


class Encoder(Module):
    """A stack of encoder layers (``nn.TransformerEncoder``'s ``layers``)."""

    def __init__(self, layers: list[EncoderLayer]) -> None:
        self.layers = layers

    def forward(self, x: Tensor, pad: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x, pad)
        return x


class TextClassifier(Module):
    """Transformer encoder text classifier over int64 token ids ``[batch, seq]``.

    Args:
        vocab: vocabulary size (id 0 is padding).
        d: model width.
        heads: attention heads (``d % heads == 0``).
        ff: feed-forward width.
        layers: encoder layers.
        classes: output classes.
        max_len: longest sequence the learned positions cover.
        activation: ``"relu"`` or ``"gelu"`` in the feed-forward block.
    """

    def __init__(
        self,
        vocab: int = 100,
        d: int = 32,
        heads: int = 4,
        ff: int = 64,
        layers: int = 2,
        classes: int = 4,
        max_len: int = 64,
        activation: str = "relu",
    ) -> None:
        self.config: dict[str, Any] = {
            "vocab": vocab,
            "d": d,
            "heads": heads,
            "ff": ff,
            "layers": layers,
            "classes": classes,
            "max_len": max_len,
            "activation": activation,
        }
        self.tok = Embedding(vocab, d, padding_idx=PAD_ID)
        self.pos = Embedding(max_len, d)
        self.encoder = Encoder([EncoderLayer(d, heads, ff, activation) for _ in range(layers)])
        self.head = Linear(d, classes)

    def forward(self, ids: Tensor) -> Tensor:
        _, t = ids.shape
        pad = ids == PAD_ID
        x = self.tok(ids) + self.pos(tracer.arange(t))
        return self.head(masked_mean(self.encoder(x, pad), ids))


class HeadMixer(Module):
    """Splits the last dim into heads by ``x.shape``, mixes inside each head, merges back."""

    def __init__(self, d: int = 24, heads: int = 3) -> None:
        self.heads = heads
        bound = 1.0 / math.sqrt(d // heads)
        self.mix = _uniform(bound, heads, d // heads, d // heads)

    def forward(self, x: Tensor) -> Tensor:
        b, t, d = x.shape
        h = x.view(b, t, self.heads, d // self.heads).transpose(1, 2)  # [b, heads, t, d/h]
        h = (h @ self.mix).tanh()
        return h.transpose(1, 2).reshape(b, t, d) + x


# ---------------------------------------------------------------- inputs


def token_ids(rng: np.random.Generator, batch: int, seq: int, vocab: int) -> np.ndarray:
    """Random int64 ids with trailing padding; every row keeps at least one real token."""
    ids = rng.integers(1, vocab, size=(batch, seq), dtype=np.int64)
    lengths = rng.integers(max(1, seq // 2), seq + 1, size=batch)
    for row, n in enumerate(lengths):
        ids[row, n:] = PAD_ID
    return ids


# ---------------------------------------------------------------- the torch twin


def torch_text_classifier(ours: TextClassifier) -> Any:
    """A ``torch.nn`` model computing what ``ours`` computes, holding a copy of its weights.

    Built from ``nn.Embedding``, ``nn.TransformerEncoder`` (post-norm, batch first, dropout
    0, no nested tensors) and ``nn.Linear``, in eval mode. Imports torch lazily.
    """
    import torch
    from torch import nn

    cfg = ours.config

    class TorchTextClassifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tok = nn.Embedding(cfg["vocab"], cfg["d"], padding_idx=PAD_ID)
            self.pos = nn.Embedding(cfg["max_len"], cfg["d"])
            layer = nn.TransformerEncoderLayer(
                cfg["d"],
                cfg["heads"],
                cfg["ff"],
                dropout=0.0,
                activation=cfg["activation"],
                batch_first=True,
                norm_first=False,
            )
            self.encoder = nn.TransformerEncoder(layer, cfg["layers"], enable_nested_tensor=False)
            self.head = nn.Linear(cfg["d"], cfg["classes"])

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            pad = ids == PAD_ID
            x = self.tok(ids) + self.pos(torch.arange(ids.shape[1], device=ids.device))
            h = self.encoder(x, src_key_padding_mask=pad)
            keep = (~pad).unsqueeze(-1).to(h.dtype)
            return self.head((h * keep).sum(1) / keep.sum(1).clamp(min=1.0))

    theirs = TorchTextClassifier().eval()
    copy_weights(ours, theirs)
    return theirs


def copy_weights(ours: Module, theirs: Any) -> None:
    """Copy every parameter of ``ours`` into the torch module ``theirs``, by name.

    Raises:
        KeyError: the two models' parameter names differ.
        ValueError: a parameter's shape differs.
    """
    import torch

    mine = dict(ours.named_parameters())
    state = theirs.state_dict()
    if set(mine) != set(state):
        raise KeyError(
            f"parameter names differ: only ours {sorted(set(mine) - set(state))}, "
            f"only theirs {sorted(set(state) - set(mine))}"
        )
    with torch.no_grad():
        for name, t in mine.items():
            if tuple(state[name].shape) != tuple(t.shape):
                raise ValueError(
                    f"{name}: ours has shape {tuple(t.shape)}, theirs {tuple(state[name].shape)}"
                )
            state[name].copy_(torch.from_numpy(t.detach().numpy().copy()))
