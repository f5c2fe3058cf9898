"""Per-call overhead of graphcap's eager ops, against raw NumPy and (when installed) torch.

Prints ONE JSON line. Times are microseconds per call: the median over many timed batches,
each batch running the call several times back to back so the timer's own cost is
amortised, after a warm-up. Cases: ``add`` on 16 float32 elements, ``matmul`` 64x64
float32, ``relu`` on 1,000 elements (each without grad and with ``requires_grad=True``,
which records the autograd tape), and a 10-op elementwise chain run forward + backward.
NumPy has no autograd: for the single ops it runs the forward math only; for the chain it
runs the forward and a hand-written backward (key ``numpy_fwd_bwd_by_hand``).

``transformer_step`` (a key of its own) times one eager training step of a small
transformer classifier (``tests.models.TextClassifier``: vocab 1,000, d 64, 2 post-norm
layers, 4 heads, ff 128, ReLU, 4 classes; batch 8 x seq 32 with trailing padding), split
into its forward (model and cross-entropy) and its ``backward()``, in milliseconds (median
of single steps), with the backward/forward ratio; torch's twin holds the same weights and
its loss is checked first.

Usage: ``python bench/eager_overhead.py [--quick]``. Reports numbers; gates nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import machine  # bench/machine.py, beside this script

import tracer
from tests import models
from tracer.nn import functional as F  # noqa: N812 - PyTorch's customary name

TORCH: Any
try:
    import torch as TORCH  # noqa: N812
except ImportError:  # torch is an optional oracle
    TORCH = None

TARGET_BATCH_NS = 200_000  # each timed batch runs about this long
STEP_MODEL: dict[str, Any] = {
    "vocab": 1000,
    "d": 64,
    "heads": 4,
    "ff": 128,
    "layers": 2,
    "classes": 4,
}
STEP_SHAPE = (8, 32)  # batch x seq


def per_call_us(fn: Callable[[], object], repeats: int) -> float:
    """Median microseconds per call of ``fn`` over ``repeats`` timed batches."""
    for _ in range(20):  # warm-up: caches, lazy imports, allocator
        fn()
    t0 = time.perf_counter_ns()
    fn()
    once = max(time.perf_counter_ns() - t0, 1)
    inner = max(1, min(10_000, TARGET_BATCH_NS // once))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter_ns() - t0) / inner)
    return statistics.median(samples) / 1000.0


def _inputs(rng: np.random.Generator) -> dict[str, tuple[np.ndarray, ...]]:
    f32 = np.float32
    return {
        "add_16": (rng.standard_normal(16).astype(f32), rng.standard_normal(16).astype(f32)),
        "matmul_64x64": (
            rng.standard_normal((64, 64)).astype(f32),
            rng.standard_normal((64, 64)).astype(f32),
        ),
        "relu_1000": (rng.standard_normal(1000).astype(f32),),
        "chain10_256": tuple(rng.standard_normal(256).astype(f32) for _ in range(3)),
    }


_NUMPY_OPS: dict[str, Callable[..., object]] = {
    "add_16": np.add,
    "matmul_64x64": np.matmul,
    "relu_1000": lambda x: np.maximum(x, np.float32(0)),
}


def _op_graphcap(name: str, *xs: Any) -> Any:
    if name == "add_16":
        return xs[0] + xs[1]
    if name == "matmul_64x64":
        return xs[0] @ xs[1]
    return xs[0].relu()


def _op_torch(name: str, *xs: Any) -> Any:
    if name == "add_16":
        return xs[0] + xs[1]
    if name == "matmul_64x64":
        return xs[0] @ xs[1]
    return TORCH.relu(xs[0])


def chain_forward(x: Any, w: Any, b: Any) -> Any:
    """Ten ops: a = x*w, h = a+b, t = tanh h, u = t*x, sigmoid(u) as 4 ops, r = s*t, sum r."""
    a = x * w
    h = a + b
    t = h.tanh()
    u = t * x
    s = 1 / ((-u).exp() + 1)
    r = s * t
    return r.sum()


def chain_numpy_fwd_bwd(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, ...]:
    """``chain_forward`` and its gradient with respect to x, w, b, by hand in NumPy."""
    t = np.tanh(x * w + b)
    u = t * x
    s = 1 / (np.exp(-u) + 1)
    _ = (s * t).sum()
    du = t * s * (1 - s)  # d loss / d u
    dt = s + du * x
    dh = dt * (1 - t * t)
    return dh * w + du * t, dh * x, dh


Arrays = dict[str, tuple[np.ndarray, ...]]


def _single_ops(data: Arrays, repeats: int) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, arrays in data.items():
        if name not in _NUMPY_OPS:
            continue
        row = {"numpy": per_call_us(partial(_NUMPY_OPS[name], *arrays), repeats)}
        for grad in (False, True):
            suffix = "_grad" if grad else ""
            xs = [tracer.tensor(a, requires_grad=grad) for a in arrays]
            row["graphcap" + suffix] = per_call_us(partial(_op_graphcap, name, *xs), repeats)
            if TORCH is not None:
                ts = [TORCH.tensor(a, requires_grad=grad) for a in arrays]
                row["torch" + suffix] = per_call_us(partial(_op_torch, name, *ts), repeats)
        out[name] = row
    return out


def _chain(arrays: tuple[np.ndarray, ...], repeats: int) -> dict[str, float]:
    xs = [tracer.tensor(a, requires_grad=True) for a in arrays]
    row = {
        "numpy_fwd_bwd_by_hand": per_call_us(lambda: chain_numpy_fwd_bwd(*arrays), repeats),
        "graphcap": per_call_us(lambda: tracer.autograd.grad(chain_forward(*xs), xs), repeats),
    }
    if TORCH is not None:
        ts = [TORCH.tensor(a, requires_grad=True) for a in arrays]
        row["torch"] = per_call_us(lambda: TORCH.autograd.grad(chain_forward(*ts), ts), repeats)
    return row


def _fwd_bwd_ms(forward: Callable[[], Any], params: list[Any], repeats: int) -> dict[str, float]:
    """Median milliseconds of ``forward()`` and of ``backward()`` on its loss, step by step."""
    fwd, bwd = [], []
    warmup = min(repeats, 3)
    for i in range(warmup + repeats):
        for p in params:
            p.grad = None
        t0 = time.perf_counter_ns()
        loss = forward()
        t1 = time.perf_counter_ns()
        loss.backward()
        t2 = time.perf_counter_ns()
        if i >= warmup:
            fwd.append((t1 - t0) / 1e6)
            bwd.append((t2 - t1) / 1e6)
    f, b = statistics.median(fwd), statistics.median(bwd)
    return {"forward_ms": f, "backward_ms": b, "backward_over_forward": round(b / f, 2)}


def _transformer_step(repeats: int) -> dict[str, dict[str, float]]:
    rng = np.random.default_rng(1)
    batch, seq = STEP_SHAPE
    ids = models.token_ids(rng, batch, seq, STEP_MODEL["vocab"])
    target = rng.integers(0, STEP_MODEL["classes"], size=batch, dtype=np.int64)
    tracer.manual_seed(0)
    ours = models.TextClassifier(**STEP_MODEL, max_len=seq)
    ids_t, target_t = tracer.tensor(ids), tracer.tensor(target)
    params = [p for _, p in ours.named_parameters()]
    row = {"graphcap": _fwd_bwd_ms(lambda: F.cross_entropy(ours(ids_t), target_t), params, repeats)}
    if TORCH is not None:
        theirs = models.torch_text_classifier(ours)
        ids_th, target_th = TORCH.from_numpy(ids), TORCH.from_numpy(target)

        def torch_loss() -> Any:
            return TORCH.nn.functional.cross_entropy(theirs(ids_th), target_th)

        # Only meaningful if both sides compute the same step.
        want = float(torch_loss().item())
        got = float(F.cross_entropy(ours(ids_t), target_t).item())
        assert abs(got - want) <= 1e-4 * max(1.0, abs(want)), (got, want)
        row["torch"] = _fwd_bwd_ms(torch_loss, list(theirs.parameters()), repeats)
    return row


def _ratios(row: dict[str, float]) -> None:
    for suffix in ("", "_grad"):
        mine = row.get("graphcap" + suffix)
        if mine is None:
            continue
        if "torch" + suffix in row:
            row["ratio_graphcap_torch" + suffix] = round(mine / row["torch" + suffix], 2)
        base = row.get("numpy", row.get("numpy_fwd_bwd_by_hand"))
        if base:
            row["ratio_graphcap_numpy" + suffix] = round(mine / base, 2)


def _check_chain(arrays: tuple[np.ndarray, ...]) -> None:
    # The benchmark is only meaningful if both sides compute the same gradients.
    xs = [tracer.tensor(a, requires_grad=True) for a in arrays]
    got = tracer.autograd.grad(chain_forward(*xs), xs)
    want = chain_numpy_fwd_bwd(*arrays)
    for g, w in zip(got, want, strict=True):
        assert g is not None
        np.testing.assert_allclose(g.numpy(), w, rtol=1e-4, atol=1e-5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    args = parser.parse_args()
    repeats = 15 if args.quick else 201
    if TORCH is not None:
        TORCH.set_num_threads(2)
    data = _inputs(np.random.default_rng(0))
    _check_chain(data["chain10_256"])
    results = _single_ops(data, repeats)
    results["chain10_256_fwd_bwd"] = _chain(data["chain10_256"], repeats)
    for row in results.values():
        _ratios(row)
        for k, v in row.items():
            if not k.startswith("ratio"):
                row[k] = round(v, 2)
    step = _transformer_step(2 if args.quick else 51)
    for side in step.values():
        for k, v in side.items():
            side[k] = round(v, 3)
    report = {
        "bench": "eager_overhead",
        "unit": "us_per_call",
        "stat": f"median of {repeats} batches",
        **machine.environment(),
        "results": results,
        "transformer_step": {
            "unit": "ms, median of single steps",
            "model": {**STEP_MODEL, "batch_seq": list(STEP_SHAPE)},
            "results": step,
        },
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
