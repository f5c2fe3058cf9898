"""Training step time of two NLP models: graphcap eager against torch eager.

A training step is ``zero_grad``, forward, cross-entropy loss, ``backward`` and an
``Adam(lr=1e-3)`` step. Two models, both built from ``tracer.nn`` modules with a ``torch.nn``
twin holding the same weights (copied by ``state_dict`` name):

- ``transformer``: the text classifier of ``bench/inference.py`` (token embedding vocab
  10,000, d 128, learned positions, 2 post-norm ``TransformerEncoderLayer(batch_first=True)``
  with 4 heads and feed-forward 512, ReLU, padding-masked mean pool, linear to 4 classes) at
  batch 32 x seq 128, ids with trailing padding (``src_key_padding_mask``). Dropout is 0, so
  the training step computes what the eval-mode model computes, on both sides.
- ``bilstm``: a tagger (embedding vocab 10,000, d 100, 1-layer bidirectional ``LSTM`` hidden
  128, linear to 9 tags, loss over every position) at batch 32 x seq 50, all full length.

Before timing, one step from the same weights and inputs is run on both sides, in float32
(the timed precision) and again in float64: the JSON records the two losses, the largest
gradient and updated-weight deviations and the parameters where they occur (in float32,
Adam's first step, about ``lr * sign(grad)``, turns rounding noise on near-zero gradients into
weight deviations up to ``2 * lr``; float64 shows whether the two compute the same thing).
Timing: median and minimum milliseconds per step over 12 steps per engine (``--quick``: 3),
spread over 4 rounds (``--quick``: 1); in each round every engine runs one warm-up step then a
block of timed steps, so a shared machine's changing load hits both alike (the JSON records the
load average). Threads: ``OPENBLAS_NUM_THREADS`` (default 2; ``MKL_``/``OMP_NUM_THREADS``
follow unless set) for NumPy's BLAS, and ``torch.set_num_threads`` of the same number. The
issue's target is a graphcap eager step at most 2x torch eager's; ``target`` in the JSON says
whether it holds.

Usage: ``python bench/training.py [--quick]``. Progress goes to stderr; ONE JSON line to
stdout. Reports numbers; gates nothing. Needs torch for the comparison (without it only
graphcap's times are reported).
"""

from __future__ import annotations

import os

# BLAS threads, before NumPy loads its BLAS (the caller's setting wins).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import machine  # bench/machine.py, beside this script

import tracer
from tests import models
from tracer import nn
from tracer.nn import functional as F  # noqa: N812 - PyTorch's customary name

TORCH: Any
try:
    import torch as TORCH  # noqa: N812
except ImportError:  # torch is optional
    TORCH = None

THREADS = int(os.environ["OPENBLAS_NUM_THREADS"])  # torch gets as many as BLAS
TARGET_RATIO = 2.0
LR = 1e-3
TRANSFORMER = {"vocab": 10_000, "d": 128, "heads": 4, "ff": 512, "layers": 2, "classes": 4}
BILSTM = {"vocab": 10_000, "d": 100, "hidden": 128, "tags": 9}
SHAPES = {"transformer": (32, 128), "bilstm": (32, 50)}  # batch x seq


def log(message: str) -> None:
    print(f"[training] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- graphcap models


class TextClassifier(nn.Module):
    """``tests.models.TextClassifier`` from ``tracer.nn`` modules (same ``state_dict`` names)."""

    def __init__(self, max_len: int) -> None:
        super().__init__()
        c = TRANSFORMER
        self.config = {**c, "max_len": max_len, "activation": "relu"}  # read by the torch twin
        self.tok = nn.Embedding(c["vocab"], c["d"], padding_idx=models.PAD_ID)
        self.pos = nn.Embedding(max_len, c["d"])
        layer = nn.TransformerEncoderLayer(
            c["d"], c["heads"], c["ff"], dropout=0.0, batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, c["layers"], enable_nested_tensor=False)
        self.head = nn.Linear(c["d"], c["classes"])

    def forward(self, ids: tracer.Tensor) -> tracer.Tensor:
        """Logits ``[batch, classes]`` of int64 ids ``[batch, seq]`` (id 0 is padding)."""
        pad = ids == models.PAD_ID
        x = self.tok(ids) + self.pos(tracer.arange(ids.shape[1]))
        h = self.encoder(x, src_key_padding_mask=pad)
        return self.head(models.masked_mean(h, ids))


class BiLSTMTagger(nn.Module):
    """Embedding, 1-layer bidirectional LSTM, linear to tags: ``[batch, seq, tags]``."""

    def __init__(self) -> None:
        super().__init__()
        c = BILSTM
        self.embedding = nn.Embedding(c["vocab"], c["d"])
        self.lstm = nn.LSTM(c["d"], c["hidden"], batch_first=True, bidirectional=True)
        self.head = nn.Linear(2 * c["hidden"], c["tags"])

    def forward(self, ids: tracer.Tensor) -> tracer.Tensor:
        """Tag logits ``[batch, seq, tags]`` of int64 ids ``[batch, seq]``."""
        out, _ = self.lstm(self.embedding(ids))
        return self.head(out)


def torch_bilstm_tagger() -> Any:
    """The ``torch.nn`` twin of :class:`BiLSTMTagger` (same parameter names)."""
    from torch import nn as tnn

    c = BILSTM

    class TorchBiLSTMTagger(tnn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = tnn.Embedding(c["vocab"], c["d"])
            self.lstm = tnn.LSTM(c["d"], c["hidden"], batch_first=True, bidirectional=True)
            self.head = tnn.Linear(2 * c["hidden"], c["tags"])

        def forward(self, ids: Any) -> Any:
            out, _ = self.lstm(self.embedding(ids))
            return self.head(out)

    return TorchBiLSTMTagger()


# ---------------------------------------------------------------- one training step


@dataclass
class Trainer:
    """One side's model, optimiser and fixed batch; ``step()`` runs one training step."""

    model: Any
    opt: Any
    ids: Any
    target: Any
    loss_fn: Callable[[Any, Any], Any]

    def step(self) -> float:
        """zero_grad, forward, loss, backward, Adam step; returns the loss."""
        self.opt.zero_grad()
        loss = self.loss_fn(self.model(self.ids), self.target)
        loss.backward()
        self.opt.step()
        return float(loss.item())


def _flat_loss(f: Callable[..., Any]) -> Callable[[Any, Any], Any]:
    """Cross entropy over every position: logits ``[..., C]`` against targets ``[...]``."""
    return lambda logits, target: f(logits.reshape(-1, logits.shape[-1]), target.reshape(-1))


def trainers(
    name: str, ids: np.ndarray, target: np.ndarray, float64: bool = False
) -> dict[str, Trainer]:
    """The trainers of model ``name``: graphcap's and (with torch) torch's, same weights.

    ``float64``: both models in double precision (for the one-step check).
    """
    tracer.manual_seed(0)
    if name == "transformer":
        ours: nn.Module = TextClassifier(max_len=ids.shape[1])
    else:
        ours = BiLSTMTagger()
    if float64:
        ours.to(tracer.float64)
    ours.train()
    out = {
        "graphcap_eager": Trainer(
            ours,
            tracer.optim.Adam(ours.parameters(), lr=LR),
            tracer.tensor(ids),
            tracer.tensor(target),
            _flat_loss(F.cross_entropy),
        )
    }
    if TORCH is not None:
        theirs = (
            models.torch_text_classifier(ours) if name == "transformer" else torch_bilstm_tagger()
        )
        if float64:
            theirs.double()
        models.copy_weights(ours, theirs)
        theirs.train()
        out["torch_eager"] = Trainer(
            theirs,
            TORCH.optim.Adam(theirs.parameters(), lr=LR),
            TORCH.from_numpy(ids),
            TORCH.from_numpy(target),
            _flat_loss(TORCH.nn.functional.cross_entropy),
        )
    return out


def _arrays(model: Any, grads: bool) -> dict[str, np.ndarray]:
    out = {}
    for key, p in model.named_parameters():
        t = p.grad if grads else p
        if t is not None:
            out[key] = np.array(t.detach().numpy(), dtype=np.float64)
    return out


def _max_dev(ours: dict[str, np.ndarray], theirs: dict[str, np.ndarray]) -> dict[str, Any]:
    devs = {k: float(np.abs(ours[k] - theirs[k]).max()) for k in ours}
    worst = max(devs, key=devs.__getitem__)
    scale = max(float(np.abs(theirs[worst]).max()), 1e-30)
    return {
        "max_abs": float(f"{devs[worst]:.3g}"),
        "at": worst,
        "rel": float(f"{devs[worst] / scale:.3g}"),
    }


def check(runners: dict[str, Trainer]) -> dict[str, Any]:
    """Run one step on each side; the losses and the gradient and weight deviations."""
    losses = {name: r.step() for name, r in runners.items()}
    out: dict[str, Any] = {"loss": {k: round(v, 6) for k, v in losses.items()}}
    if "torch_eager" not in runners:
        return out
    ours, theirs = runners["graphcap_eager"].model, runners["torch_eager"].model
    if set(_arrays(ours, True)) != set(_arrays(theirs, True)):
        raise RuntimeError("the two sides have gradients for different parameters")
    out["loss_abs_diff"] = float(f"{abs(losses['graphcap_eager'] - losses['torch_eager']):.3g}")
    out["grad"] = _max_dev(_arrays(ours, True), _arrays(theirs, True))
    out["weights_after_step"] = _max_dev(_arrays(ours, False), _arrays(theirs, False))
    return out


# ---------------------------------------------------------------- timing


def _stats(samples: list[float]) -> dict[str, float | int]:
    return {
        "median_ms": round(statistics.median(samples), 3),
        "min_ms": round(min(samples), 3),
        "runs": len(samples),
    }


def measure(runners: dict[str, Trainer], runs: int, warmup: int, rounds: int) -> dict[str, Any]:
    """Per-step milliseconds of every engine: ``runs`` steps each, spread over ``rounds``.

    Each round gives every engine, in turn, ``warmup`` untimed steps then a block of
    ``runs / rounds`` timed ones.
    """
    samples: dict[str, list[float]] = {name: [] for name in runners}
    per_round = [runs // rounds + (r < runs % rounds) for r in range(rounds)]
    for n in per_round:
        for name, trainer in runners.items():
            for _ in range(warmup):
                trainer.step()
            for _ in range(n):
                t0 = time.perf_counter_ns()
                trainer.step()
                samples[name].append((time.perf_counter_ns() - t0) / 1e6)
    row = {name: _stats(values) for name, values in samples.items()}
    for name in runners:
        log(f"  {name}: {row[name]['median_ms']} ms (min {row[name]['min_ms']})")
    return row


def inputs(name: str, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Token ids and targets: padded ids and class labels, or full-length ids and tags."""
    batch, seq = SHAPES[name]
    if name == "transformer":
        ids = models.token_ids(rng, batch, seq, TRANSFORMER["vocab"])
        return ids, rng.integers(0, TRANSFORMER["classes"], size=batch, dtype=np.int64)
    ids = rng.integers(1, BILSTM["vocab"], size=(batch, seq), dtype=np.int64)
    return ids, rng.integers(0, BILSTM["tags"], size=(batch, seq), dtype=np.int64)


def _ratio(row: dict[str, Any], stat: str) -> float | None:
    if "torch_eager" not in row:
        return None
    return round(row["graphcap_eager"][stat] / row["torch_eager"][stat], 3)


def run_models(args: Any) -> dict[str, Any]:
    """Check and time both models: model name -> its report."""
    runs, warmup = (3, 1) if args.quick else (12, 1)
    rng = np.random.default_rng(0)
    results = {}
    for name in SHAPES:
        ids, target = inputs(name, rng)
        runners = trainers(name, ids, target)
        log(f"{name} {SHAPES[name]}: one-step check (float32, then float64)")
        checks = {"float32": check(runners), "float64": check(trainers(name, ids, target, True))}
        log(f"  {checks}")
        row: dict[str, Any] = {"check": checks}
        log(f"{name}: {runs} steps per engine in {args.rounds} rounds")
        row |= measure(runners, runs, warmup, args.rounds)
        row["ratio_graphcap_over_torch"] = _ratio(row, "median_ms")
        row["ratio_graphcap_over_torch_min"] = _ratio(row, "min_ms")
        row["parameters"] = sum(p.numel() for p in runners["graphcap_eager"].model.parameters())
        results[name] = row
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps (a smoke run)")
    args = parser.parse_args()
    args.rounds = 1 if args.quick else 4
    if TORCH is not None:
        TORCH.set_num_threads(THREADS)
    load_start = round(os.getloadavg()[0], 2)
    results = run_models(args)
    ratios = {name: row["ratio_graphcap_over_torch"] for name, row in results.items()}
    held = None if TORCH is None else all(r <= TARGET_RATIO for r in ratios.values())
    report = {
        "bench": "training",
        "unit": "ms",
        "stat": "median (and min) of per-step wall time (zero_grad, forward, cross-entropy, "
        "backward, Adam step); steps spread over rounds, each round giving every engine a "
        "warm-up step then a block of timed steps",
        "rounds": args.rounds,
        "load_average_1m": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
        "models": {
            "transformer": {
                **TRANSFORMER,
                "norm": "post",
                "activation": "relu",
                "dropout": 0.0,
                "batch_seq": list(SHAPES["transformer"]),
            },
            "bilstm": {
                **BILSTM,
                "layers": 1,
                "bidirectional": True,
                "batch_seq": list(SHAPES["bilstm"]),
            },
        },
        "optimizer": {"name": "Adam", "lr": LR},
        "threads": {"torch": THREADS, "blas": THREADS},
        **machine.environment(),
        "results": results,
        "ratios": ratios,
        "target": {"max_ratio_graphcap_over_torch": TARGET_RATIO, "held": held},
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
