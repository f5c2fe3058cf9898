"""Small NLP models with their losses, for ``tests/ir/test_autodiff.py``.

Each ``*Loss`` module returns a scalar training loss from integer inputs, so ``tracer.trace``
captures the loss (parameters become initializers named by their ``state_dict`` keys) and
``ir.grad`` differentiates it by every parameter. Padding id 0 marks padding; ``IGNORE``
marks targets the loss leaves out. ``make_batch`` builds inputs of any size: padded ids,
lengths (the first sequence always full length, so the ``seq`` axis is really used), token
targets ignored past each length and at a few real positions, and one label per sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

import tracer
from tracer import Tensor, nn
from tracer.nn import functional as F  # noqa: N812 - PyTorch's customary name

IGNORE = -100
VOCAB, CLASSES, TAGS = 13, 3, 5


@dataclass
class Batch:
    """One batch of padded inputs and their targets, as NumPy arrays."""

    ids: np.ndarray  # [batch, seq] int64, 0 past each length
    lengths: np.ndarray  # [batch] int64
    tags: np.ndarray  # [batch, seq] int64, IGNORE past each length and at a few positions
    labels: np.ndarray  # [batch] int64

    def tensors(self, *names: str) -> tuple[Tensor, ...]:
        """The named fields as tracer tensors, in order."""
        return tuple(tracer.tensor(getattr(self, n)) for n in names)


def make_batch(batch: int, seq: int, seed: int) -> Batch:
    """A random batch of ``batch`` sequences padded to ``seq`` (see the module docstring)."""
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, seq + 1, size=batch)
    lengths[0] = seq
    real = np.arange(seq)[None, :] < lengths[:, None]
    ids = np.where(real, rng.integers(1, VOCAB, size=(batch, seq)), 0)
    tags = rng.integers(0, TAGS, size=(batch, seq))
    tags = np.where(real & (rng.random((batch, seq)) > 0.2), tags, IGNORE)
    tags[0, 0] = 1  # at least one target is kept
    labels = rng.integers(0, CLASSES, size=batch)
    return Batch(ids.astype(np.int64), lengths.astype(np.int64), tags, labels)


class TokenLoss(nn.Module):
    """Embedding -> LayerNorm -> Linear over tags; token cross-entropy with ignore_index."""

    def __init__(self, dim: int = 6) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, dim, padding_idx=0)
        self.norm = nn.LayerNorm(dim)
        self.proj = nn.Linear(dim, TAGS)

    def forward(self, ids: Tensor, tags: Tensor) -> Tensor:
        """Mean cross-entropy over the positions whose tag is not ``IGNORE``."""
        logits = self.proj(self.norm(self.embedding(ids)))
        return F.cross_entropy(logits.reshape(-1, TAGS), tags.reshape(-1), ignore_index=IGNORE)


class TransformerLoss(nn.Module):
    """A transformer classifier's loss.

    Embedding + learned positions -> 2 post-norm GELU encoder layers (keys at padding
    masked out) -> masked mean pool -> Linear; sequence-label cross-entropy.
    """

    def __init__(self, dim: int = 8, heads: int = 2, max_len: int = 16) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, dim, padding_idx=0)
        # Positions by arange(seq): PositionalEmbedding slices its table with the dynamic
        # sequence length, which tracing refuses (see the report).
        self.positions = nn.Embedding(max_len, dim)
        layer = nn.TransformerEncoderLayer(
            dim, heads, dim_feedforward=12, dropout=0.0, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(dim, CLASSES)

    def forward(self, ids: Tensor, labels: Tensor) -> Tensor:
        """Mean cross-entropy of the sequence labels."""
        pad = ids == 0
        x = self.embedding(ids) + self.positions(tracer.arange(ids.shape[1]))
        x = self.encoder(x, src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        pooled = (x * keep).sum(dim=1) / keep.sum(dim=1)
        return F.cross_entropy(self.head(pooled), labels)


class TaggerLoss(nn.Module):
    """A BiLSTM tagger's loss.

    Embedding -> bidirectional LSTM on the true lengths -> Linear over tags; token
    cross-entropy (tags ``[batch, seq]`` against scores ``[batch, tags, seq]``).
    """

    def __init__(self, dim: int = 5, hidden: int = 4) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, dim, padding_idx=0)
        self.lstm = nn.LSTM(dim, hidden, bidirectional=True, batch_first=True)
        self.proj = nn.Linear(2 * hidden, TAGS)

    def forward(self, ids: Tensor, lengths: Tensor, tags: Tensor) -> Tensor:
        """Mean cross-entropy over the positions whose tag is not ``IGNORE``."""
        out, _ = self.lstm(self.embedding(ids), lengths=lengths)
        scores = self.proj(out).transpose(1, 2)
        return F.cross_entropy(scores, tags, ignore_index=IGNORE)


class GRUClassifierLoss(nn.Module):
    """A GRU classifier's loss.

    Embedding -> 2-layer GRU on the true lengths -> last layer's final state -> Linear;
    sequence-label cross-entropy.
    """

    def __init__(self, dim: int = 5, hidden: int = 6) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, dim, padding_idx=0)
        self.gru = nn.GRU(dim, hidden, num_layers=2, batch_first=True)
        self.head = nn.Linear(hidden, CLASSES)

    def forward(self, ids: Tensor, lengths: Tensor, labels: Tensor) -> Tensor:
        """Mean cross-entropy of the sequence labels."""
        _, h_n = self.gru(self.embedding(ids), lengths=lengths)
        return F.cross_entropy(self.head(h_n[-1]), labels)


@dataclass(frozen=True)
class ModelCase:
    """A loss module and the batch fields it takes, in order.

    ``ids`` and ``tags`` are ``[batch, seq]``, the rest ``[batch]``; ``recurrent``: the
    backward graph holds recurrent backward ops (lowered by ``ir.lower_recurrent``).
    """

    name: str
    make: Any
    fields: tuple[str, ...]
    recurrent: bool = False

    def dynamic_axes(self) -> dict[str, dict[int, str]]:
        """Batch (and sequence, for ``[batch, seq]`` fields) axes kept symbolic."""
        two_d = {"ids", "tags"}
        return {f: {0: "batch", 1: "seq"} if f in two_d else {0: "batch"} for f in self.fields}


MODELS = [
    ModelCase("token_ln_linear", TokenLoss, ("ids", "tags")),
    ModelCase("transformer", TransformerLoss, ("ids", "labels")),
    ModelCase("bilstm_tagger", TaggerLoss, ("ids", "lengths", "tags"), recurrent=True),
    ModelCase("gru_classifier", GRUClassifierLoss, ("ids", "lengths", "labels"), recurrent=True),
]


# ---------------------------------------------------------------- torch twins (optional oracle)


def torch_gradients(name: str, state: dict[str, np.ndarray], batch: Batch) -> dict[str, Any]:
    """``{parameter: gradient}`` from PyTorch's twin of model ``name``, in float64.

    The twin gets the weights ``state`` and runs ``batch``; recurrent layers see the true
    lengths through packed sequences. Raises ImportError without torch.
    """
    import torch

    tnn, tf = torch.nn, torch.nn.functional
    model: Any
    if name == "token_ln_linear":
        dim = state["embedding.weight"].shape[1]
        model = tnn.ModuleDict({"embedding": tnn.Embedding(VOCAB, dim), "norm": tnn.LayerNorm(dim)})
        model["proj"] = tnn.Linear(dim, TAGS)
    elif name == "transformer":
        dim = state["embedding.weight"].shape[1]
        layer = tnn.TransformerEncoderLayer(
            dim, 2, dim_feedforward=12, dropout=0.0, activation="gelu", batch_first=True
        )
        model = tnn.ModuleDict(
            {
                "embedding": tnn.Embedding(VOCAB, dim),
                "positions": tnn.Embedding(state["positions.weight"].shape[0], dim),
                "encoder": tnn.TransformerEncoder(layer, 2, enable_nested_tensor=False),
                "head": tnn.Linear(dim, CLASSES),
            }
        )
    elif name == "bilstm_tagger":
        dim, hidden = state["embedding.weight"].shape[1], state["lstm.weight_hh_l0"].shape[1]
        model = tnn.ModuleDict(
            {
                "embedding": tnn.Embedding(VOCAB, dim),
                "lstm": tnn.LSTM(dim, hidden, bidirectional=True, batch_first=True),
                "proj": tnn.Linear(2 * hidden, TAGS),
            }
        )
    else:
        dim, hidden = state["embedding.weight"].shape[1], state["gru.weight_hh_l0"].shape[1]
        model = tnn.ModuleDict(
            {
                "embedding": tnn.Embedding(VOCAB, dim),
                "gru": tnn.GRU(dim, hidden, num_layers=2, batch_first=True),
                "head": tnn.Linear(hidden, CLASSES),
            }
        )
    model = model.double().eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    ids, lengths = torch.from_numpy(batch.ids), torch.from_numpy(batch.lengths)
    x = model["embedding"](ids)
    if name == "token_ln_linear":
        logits = model["proj"](model["norm"](x))
        loss = tf.cross_entropy(logits.reshape(-1, TAGS), torch.from_numpy(batch.tags).reshape(-1))
    elif name == "transformer":
        pad = ids == 0
        x = x + model["positions"](torch.arange(ids.shape[1]))
        x = model["encoder"](x, src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        pooled = (x * keep).sum(dim=1) / keep.sum(dim=1)
        loss = tf.cross_entropy(model["head"](pooled), torch.from_numpy(batch.labels))
    else:
        packed = tnn.utils.rnn.pack_padded_sequence(x, lengths, True, enforce_sorted=False)
        if name == "bilstm_tagger":
            out, _ = model["lstm"](packed)
            out, _ = tnn.utils.rnn.pad_packed_sequence(out, True, total_length=ids.shape[1])
            scores = model["proj"](out).transpose(1, 2)
            loss = tf.cross_entropy(scores, torch.from_numpy(batch.tags))
        else:
            _, h_n = model["gru"](packed)
            loss = tf.cross_entropy(model["head"](h_n[-1]), torch.from_numpy(batch.labels))
    loss.backward()
    return {k: p.grad.numpy() for k, p in model.named_parameters()}
