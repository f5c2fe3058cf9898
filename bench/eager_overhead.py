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

``--steps`` instead prints one JSON line per training-step workload, each split into its
forward (model and loss) and its ``backward()`` (milliseconds, median of single steps,
``--repeats`` of them), graphcap eager beside torch eager holding the same weights (losses
checked equal first): ``transformer_step`` as above; ``gelu_transformer``, a classifier
written by hand the usual way (``Linear`` on ``[batch, seq, d]``, fused q/k/v ``chunk``,
``softmax`` attention, exact ``F.gelu``; d 128, 4 heads, ff 512, 2 pre-norm layers, batch 32
x seq 128); and ``lstm_lm``, pytorch/examples' word_language_model ``RNNModel("LSTM")``
(``tests/ports/word_language_model``: vocab 10,000, emsize = nhid = 200, 2 layers, dropout
0.2, bptt 35 x batch 20, NLL loss on its log-softmax).

Usage: ``python bench/eager_overhead.py [--quick] [--steps [--repeats N] [--clock
wall|process] [--only NAME ...]]``. Reports numbers; gates nothing.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
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


CLOCK = time.perf_counter_ns  # --clock process: CPU time, steadier on a shared machine


def _fwd_bwd_ms(forward: Callable[[], Any], params: list[Any], repeats: int) -> dict[str, float]:
    """Median milliseconds of ``forward()`` and of ``backward()`` on its loss, step by step."""
    fwd, bwd = [], []
    warmup = min(repeats, 3)
    for i in range(warmup + repeats):
        for p in params:
            p.grad = None
        t0 = CLOCK()
        loss = forward()
        t1 = CLOCK()
        loss.backward()
        t2 = CLOCK()
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


def _state_to_torch(ours: Any, theirs: Any) -> None:
    """Copy ``ours``' weights into the torch twin by ``state_dict`` name."""
    state = {k: TORCH.from_numpy(v.detach().numpy().copy()) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state)


def _gelu_classifier(nn: Any, F: Any, d: int = 128, heads: int = 4, ff: int = 512) -> Any:  # noqa: N803
    """A transformer classifier as users write it, built from ``nn``/``F`` of either library."""

    class Block(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.qkv, self.proj = nn.Linear(d, 3 * d), nn.Linear(d, d)
            self.fc1, self.fc2 = nn.Linear(d, ff), nn.Linear(ff, d)

        def forward(self, x: Any) -> Any:
            b, s, _ = x.shape
            q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
            q, k, v = (t.view(b, s, heads, d // heads).transpose(1, 2) for t in (q, k, v))
            att = F.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // heads), dim=-1)
            x = x + self.proj((att @ v).transpose(1, 2).reshape(b, s, d))
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))

    class Classifier(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.emb, self.pos = nn.Embedding(1000, d), nn.Embedding(128, d)
            self.blocks = nn.ModuleList([Block(), Block()])
            self.head = nn.Linear(d, 4)

        def forward(self, ids: Any, positions: Any) -> Any:
            x = self.emb(ids) + self.pos(positions)
            for block in self.blocks:
                x = block(x)
            return self.head(x.mean(dim=1))

    return Classifier()


def _gelu_transformer(repeats: int) -> dict[str, Any]:
    rng = np.random.default_rng(2)
    ids = rng.integers(0, 1000, size=(32, 128), dtype=np.int64)
    pos = np.broadcast_to(np.arange(128, dtype=np.int64), (32, 128)).copy()
    target = rng.integers(0, 4, size=32, dtype=np.int64)
    tracer.manual_seed(0)
    ours = _gelu_classifier(tracer.nn, F)
    args = [tracer.tensor(a) for a in (ids, pos, target)]

    def loss() -> Any:
        return F.cross_entropy(ours(args[0], args[1]), args[2])

    row: dict[str, Any] = {"graphcap": _fwd_bwd_ms(loss, list(ours.parameters()), repeats)}
    if TORCH is not None:
        theirs = _gelu_classifier(TORCH.nn, TORCH.nn.functional)
        _state_to_torch(ours, theirs)
        targs = [TORCH.from_numpy(a) for a in (ids, pos, target)]

        def torch_loss() -> Any:
            return TORCH.nn.functional.cross_entropy(theirs(targs[0], targs[1]), targs[2])

        _check_same(loss, torch_loss)
        row["torch"] = _fwd_bwd_ms(torch_loss, list(theirs.parameters()), repeats)
    return row


def _word_lm(backend: str) -> Any:
    """pytorch/examples' ``RNNModel`` class, imported for ``backend``'s library."""
    from tests.ports import _switch

    name = "tests.ports.word_language_model.model"
    with _switch.selected(backend):
        sys.modules.pop(name, None)
        module = importlib.import_module(name)
    sys.modules.pop(name, None)
    return module.RNNModel


def _lstm_lm(repeats: int) -> dict[str, Any]:
    rng = np.random.default_rng(3)
    vocab, bptt, batch = 10_000, 35, 20
    data = rng.integers(0, vocab, size=(bptt, batch), dtype=np.int64)
    target = rng.integers(0, vocab, size=bptt * batch, dtype=np.int64)
    tracer.manual_seed(0)
    ours = _word_lm("graphcap")("LSTM", vocab, 200, 200, 2, dropout=0.2)
    x, y = tracer.tensor(data), tracer.tensor(target)
    hidden = ours.init_hidden(batch)

    def loss() -> Any:
        out, _ = ours(x, hidden)
        return F.nll_loss(out, y)

    row: dict[str, Any] = {}
    if TORCH is not None:
        theirs = _word_lm("torch")("LSTM", vocab, 200, 200, 2, dropout=0.2)
        _state_to_torch(ours, theirs)
        tx, ty = TORCH.from_numpy(data), TORCH.from_numpy(target)
        thidden = theirs.init_hidden(batch)

        def torch_loss() -> Any:
            out, _ = theirs(tx, thidden)
            return TORCH.nn.functional.nll_loss(out, ty)

        ours.eval(), theirs.eval()  # dropout off only for the check
        _check_same(loss, torch_loss)
        ours.train(), theirs.train()
        row["torch"] = _fwd_bwd_ms(torch_loss, list(theirs.parameters()), repeats)
    row["graphcap"] = _fwd_bwd_ms(loss, list(ours.parameters()), repeats)
    return row


def _check_same(ours: Callable[[], Any], theirs: Callable[[], Any]) -> None:
    # Only meaningful if both sides compute the same step.
    got, want = float(ours().item()), float(theirs().item())
    assert abs(got - want) <= 1e-4 * max(1.0, abs(want)), (got, want)


def _step_lines(repeats: int, only: list[str] | None, clock: str) -> list[dict[str, Any]]:
    workloads: dict[str, Callable[[int], dict[str, Any]]] = {
        "transformer_step": _transformer_step,
        "gelu_transformer": _gelu_transformer,
        "lstm_lm": _lstm_lm,
    }
    lines = []
    for name, run in workloads.items():
        if only is not None and name not in only:
            continue
        row = run(repeats)
        for side in row.values():
            for k, v in side.items():
                side[k] = round(v, 3)
        if "torch" in row:
            g, t = row["graphcap"], row["torch"]
            row["ratio_graphcap_torch"] = {
                k: round(g[k] / t[k], 2) for k in ("forward_ms", "backward_ms")
            }
        lines.append(
            {
                "bench": "eager_step",
                "workload": name,
                "unit": f"ms ({clock} clock), median of {repeats} single steps",
                **machine.environment(),
                "results": row,
            }
        )
    return lines


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
    parser.add_argument(
        "--steps", action="store_true", help="only the training-step workloads, a line each"
    )
    parser.add_argument("--repeats", type=int, default=21, help="timed steps per side (--steps)")
    parser.add_argument(
        "--clock",
        choices=["wall", "process"],
        default="wall",
        help="--steps: wall time, or the process's CPU time (all its threads together)",
    )
    parser.add_argument(
        "--only", nargs="*", default=None, help="--steps: these workloads only (by name)"
    )
    args = parser.parse_args()
    if args.steps:
        global CLOCK
        CLOCK = time.process_time_ns if args.clock == "process" else time.perf_counter_ns
        if TORCH is not None:  # CPU time adds up threads: one each side then
            TORCH.set_num_threads(1 if args.clock == "process" else 2)
        for line in _step_lines(2 if args.quick else args.repeats, args.only, args.clock):
            print(json.dumps(line), flush=True)
        return
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
