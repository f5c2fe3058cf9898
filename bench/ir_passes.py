"""Wall time of graph transforms on a MiniLM-sized BERT: ``ir.grad`` and ``ir.optimize(level=3)``.

The model is ``tracer.models.BertModel`` with all-MiniLM-L6-v2's shape (6 layers,
hidden 384, 12 heads, feed-forward 1536; random weights) under a classification head (the
first token's hidden state through ``Linear(384, 2)``, cross-entropy), traced at batch 2 x
seq 16 with both axes dynamic, in two forms (``graph`` in each line):

- ``native``: as the model is written: ``LayerNormalization`` and ``Gelu`` nodes;
- ``decomposed``: layer norm and GELU traced as elementwise formulas (what
  ``torch.onnx.export`` writes below opsets 17 and 20), so the fusions have work to do.

Measurements, one JSON line each per form on stdout:

- ``grad``: ``ir.grad(loss_graph, every weight)``, the joint forward + backward graph;
- ``optimize3_forward``: ``ir.optimize(level=3)`` of the traced loss graph;
- ``optimize3_joint``: ``ir.optimize(level=3)`` of the joint graph (what ``compile_step``
  optimizes).

Each line gives the node counts before and after and the median and minimum seconds over
``--runs`` runs (default 5; ``--quick`` 1). Every transform is pure Python over the graph,
so BLAS threads do not matter. To time another checkout with this script, put that
checkout first on ``PYTHONPATH``; ``source`` in each line says which code ran.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import sys
from collections.abc import Callable
from pathlib import Path
from time import perf_counter
from typing import Any
from unittest import mock

import numpy as np

# After PYTHONPATH, so that another checkout given there is the one timed.
sys.path.append(str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import machine  # bench/machine.py

import ir
import tracer
from tracer.models import BertConfig, BertModel
from tracer.nn import functional as F  # noqa: N812 - PyTorch's customary name

BERT: dict[str, Any] = {  # all-MiniLM-L6-v2's config.json, the fields examples/minilm.py reads
    "vocab_size": 30522,
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
}
DYNAMIC = {n: {0: "batch", 1: "seq"} for n in ("ids", "mask")} | {"labels": {0: "batch"}}


def _layer_norm(x: Any, shape: Any, weight: Any, bias: Any, eps: float = 1e-5) -> Any:
    d = x - x.mean(-1, keepdim=True)
    return d / ((d * d).mean(-1, keepdim=True) + eps).sqrt() * weight + bias


def _gelu(x: Any, approximate: str = "none") -> Any:
    return x * 0.5 * (1 + tracer.erf(x / math.sqrt(2)))


def loss_graph(decomposed: bool) -> ir.Graph:
    """The traced classification loss of the MiniLM-shaped BERT; weights are initializers."""
    tracer.manual_seed(0)
    bert = BertModel(BertConfig(**BERT)).eval()
    head = tracer.nn.Linear(BERT["hidden_size"], 2)
    rng = np.random.default_rng(2)
    ids = rng.integers(1, BERT["vocab_size"], size=(2, 16), dtype=np.int64)
    mask = np.ones_like(ids)
    ids[1, 10:], mask[1, 10:] = 0, 0
    labels = np.array([0, 1], np.int64)

    def loss(ids: tracer.Tensor, mask: tracer.Tensor, labels: tracer.Tensor) -> tracer.Tensor:
        return F.cross_entropy(head(bert(ids, mask).last_hidden_state[:, 0]), labels)

    example = tuple(tracer.tensor(a) for a in (ids, mask, labels))
    with contextlib.ExitStack() as stack:
        if decomposed:  # nn.LayerNorm and minilm.py look these up on F at each call
            stack.enter_context(mock.patch.object(F, "layer_norm", _layer_norm))
            stack.enter_context(mock.patch.object(F, "gelu", _gelu))
        return tracer.trace(
            loss, example, dynamic_axes=DYNAMIC, output_names=["loss"], differentiable=True
        )


def weights(graph: ir.Graph) -> list[str]:
    """The floating-point initializers with more than one element: the model's weights."""
    return [
        name
        for name, v in graph.initializers.items()
        if v.dtype.kind == "f" and v.const is not None and v.const.size > 1
    ]


def timed(fn: Callable[[], ir.Graph], runs: int) -> tuple[ir.Graph, list[float]]:
    """``fn``'s last result and its wall seconds per run."""
    samples, out = [], None
    for _ in range(runs):
        t0 = perf_counter()
        out = fn()
        samples.append(perf_counter() - t0)
    assert out is not None
    return out, samples


def report(
    form: str, measure: str, before: ir.Graph, after: ir.Graph, samples: list[float]
) -> None:
    """Print one JSON line for one measurement."""
    line = {
        "bench": "ir_passes",
        "graph": form,
        "measure": measure,
        "unit": "s",
        "nodes_before": len(before.nodes),
        "nodes_after": len(after.nodes),
        "median_s": round(statistics.median(samples), 3),
        "min_s": round(min(samples), 3),
        "runs": len(samples),
        "source": str(Path(ir.__file__).resolve().parent.parent),
        **machine.environment(),
    }
    print(json.dumps(line), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed runs per measurement")
    parser.add_argument("--quick", action="store_true", help="one run each (a smoke run)")
    args = parser.parse_args()
    runs = 1 if args.quick else args.runs
    for form in ("native", "decomposed"):
        graph = loss_graph(form == "decomposed")
        wrt = weights(graph)
        joint, samples = timed(lambda: ir.grad(graph, wrt), runs)  # noqa: B023 - used at once
        report(form, "grad", graph, joint, samples)
        optimized, samples = timed(lambda: ir.optimize(graph, 3), runs)  # noqa: B023
        report(form, "optimize3_forward", graph, optimized, samples)
        optimized, samples = timed(lambda: ir.optimize(joint, 3), runs)  # noqa: B023
        report(form, "optimize3_joint", joint, optimized, samples)


if __name__ == "__main__":
    main()
