"""Inference speed of a transformer text classifier: graphcap's engines against torch's.

The model is ``tests.models.TextClassifier``: token embedding (vocab 10,000, d 128) plus
learned positions, 2 post-norm encoder layers (4 heads, feed-forward 512, ReLU), a
padding-masked mean pool and a linear layer to 4 classes; ids carry trailing padding. Two
cases: batch 1 x seq 64 (latency: median over 200 runs) and batch 32 x seq 128
(throughput: median over 30 runs). The runs are spread over 5 rounds; in each round every
engine in turn runs a warm-up and then a block of timed calls, so that a shared machine's
changing load hits all engines alike (the JSON records the load average). Engines:

- ``graphcap_eager``: the eager model under ``tracer.no_grad()``;
- ``interpreter``: the traced graph on graphcap's NumPy interpreter (``runtime.Session``);
- ``graphcap_ort``: the ``.onnx`` file graphcap wrote, on an onnxruntime CPU
  ``InferenceSession``; ``graphcap_session_ort`` is the same through ``runtime.Session``
  (feed validation included);
- with torch installed (``torch.set_num_threads(2)``): ``torch_eager`` (``nn`` twin with the
  same weights, eval, ``no_grad``), and ``torch_onnx_ort`` / ``torch_dynamo_onnx_ort``: the
  files ``torch.onnx.export`` writes with ``dynamo=False`` (TorchScript) and
  ``dynamo=True``, on onnxruntime. An exporter that fails is reported by its error string.
  graphcap's one file (batch and seq dynamic) serves both cases; torch's files are exported
  at each case's own size, because the TorchScript exporter bakes the example's sequence
  length into ``nn.MultiheadAttention``'s reshapes (``export.<key>.dynamic`` in the JSON
  says whether the file exported at the example size runs right at the benchmarked sizes).

All onnxruntime sessions use the same ``SessionOptions`` (2 intra-op threads, 1 inter-op thread,
all graph optimisations). BLAS threads default to 2 (``OPENBLAS_NUM_THREADS`` etc.). Every
engine's logits are checked against the eager model before timing. Export times: graphcap's
``trace`` + ``export.save`` against ``torch.onnx.export``, each the median (and
minimum) of 9 runs (3 with ``--quick``).

Usage: ``python bench/inference.py [--quick]``. Progress goes to stderr; ONE JSON line to
stdout. Reports numbers; gates nothing.
"""

from __future__ import annotations

import os

# BLAS threads, before NumPy loads its BLAS (the caller's setting wins).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import machine  # bench/machine.py, beside this script

import export
import tracer
from runtime import Session
from runtime.ort_backend import CPU_DISABLED_OPTIMIZERS
from tests import models

TORCH: Any
try:
    import torch as TORCH  # noqa: N812
except ImportError:  # torch is optional
    TORCH = None

CONFIG: dict[str, Any] = {
    "vocab": 10_000,
    "d": 128,
    "heads": 4,
    "ff": 512,
    "layers": 2,
    "classes": 4,
}
MAX_LEN = 128
CASES = {"b1_s64": (1, 64), "b32_s128": (32, 128)}
THREADS = 2
DYNAMIC = {"ids": {0: "batch", 1: "seq"}}
Runner = Callable[[np.ndarray], np.ndarray]


def log(message: str) -> None:
    print(f"[inference] {message}", file=sys.stderr, flush=True)


def _stats(samples: list[float]) -> dict[str, float | int]:
    return {
        "median_ms": round(statistics.median(samples), 3),
        "min_ms": round(min(samples), 3),
        "runs": len(samples),
    }


def seconds(fn: Callable[[], object], runs: int) -> tuple[float, float]:
    """Median and minimum wall seconds of ``runs`` calls of ``fn``."""
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return round(statistics.median(samples), 4), round(min(samples), 4)


def ort_options() -> ort.SessionOptions:
    """The one set of onnxruntime options every ONNX file here runs with."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = THREADS
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    return options


def ort_runner(path: Path, options: ort.SessionOptions) -> Callable[[np.ndarray], np.ndarray]:
    # The rewrites graphcap's CPU sessions turn off (slower kernels), off for every file.
    sess = ort.InferenceSession(
        str(path),
        options,
        providers=["CPUExecutionProvider"],
        disabled_optimizers=list(CPU_DISABLED_OPTIMIZERS),
    )
    name = sess.get_inputs()[0].name
    return lambda ids: sess.run(None, {name: ids})[0]


# ---------------------------------------------------------------- export


def graphcap_export(
    model: models.TextClassifier, example: np.ndarray, out: Path, runs: int
) -> dict[str, Any]:
    def trace() -> Any:
        return tracer.trace(
            model, (tracer.tensor(example),), dynamic_axes=DYNAMIC, output_names=["logits"]
        )

    def trace_and_save() -> None:
        export.save(trace(), out)

    graph = trace()
    median, fastest = seconds(trace_and_save, runs)
    return {
        "graph": graph,
        "graphcap_trace_s": seconds(trace, runs)[0],
        "graphcap_save_s": seconds(lambda: export.save(graph, out), runs)[0],
        "graphcap_trace_save_s": median,
        "graphcap_trace_save_min_s": fastest,
        "graphcap_onnx_nodes": len(onnx.load(str(out)).graph.node),
    }


TORCH_EXPORTERS = {"torch_onnx": False, "torch_dynamo_onnx": True}  # key -> dynamo


def torch_onnx_export(theirs: Any, ids: np.ndarray, out: Path, dynamo: bool) -> None:
    """``torch.onnx.export`` with batch and seq declared dynamic."""
    # The dynamo exporter prints progress to stdout, which must hold the JSON line alone.
    with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
        warnings.simplefilter("ignore")
        TORCH.onnx.export(
            theirs,
            (TORCH.from_numpy(ids),),
            str(out),
            input_names=["ids"],
            output_names=["logits"],
            dynamic_axes={"ids": {0: "batch", 1: "seq"}, "logits": {0: "batch"}},
            opset_version=export.DEFAULT_OPSET,
            dynamo=dynamo,
        )


def torch_export(
    theirs: Any, example: np.ndarray, out: Path, dynamo: bool, runs: int
) -> dict[str, Any]:
    """``torch.onnx.export`` timings, or the error string when the exporter fails."""
    try:
        torch_onnx_export(theirs, example, out, dynamo)
    except Exception as err:  # any exporter failure is a result to report
        return {"error": f"{type(err).__name__}: {err}"[:500]}
    median, fastest = seconds(lambda: torch_onnx_export(theirs, example, out, dynamo), runs)
    return {
        "export_s": median,
        "export_min_s": fastest,
        "onnx_nodes": len(onnx.load(str(out)).graph.node),
    }


def dynamic_check(
    path: Path, inputs: dict[str, np.ndarray], want: dict[str, np.ndarray]
) -> dict[str, str]:
    """Whether a file exported at the example's size computes the right logits at each case."""
    options = ort_options()
    options.log_severity_level = 4  # the failure is reported in the JSON, not logged
    run = ort_runner(path, options)
    out = {}
    for case, ids in inputs.items():
        try:
            diff = float(np.abs(run(ids) - want[case]).max())
        except Exception as err:  # a shape baked at export time fails here
            text = " ".join(str(err).split())
            if len(text) > 360:
                text = f"{text[:160]} ... {text[-200:]}"
            out[case] = f"fails: {type(err).__name__}: {text}"
            continue
        out[case] = "ok" if diff < 1e-4 else f"wrong logits (max abs diff {diff:.3g})"
    return out


# ---------------------------------------------------------------- engines


def engines(model: models.TextClassifier, graph: Any, path: Path) -> dict[str, Runner]:
    """The engines of graphcap: name -> a function from int64 ids to float32 logits."""

    def eager(ids: np.ndarray) -> np.ndarray:
        with tracer.no_grad():
            return model(tracer.tensor(ids)).numpy()

    interp = Session(graph, backend="interpreter")
    wrapped = Session(path, backend="onnxruntime", intra_op_threads=THREADS)
    return {
        "graphcap_eager": eager,
        "interpreter": lambda ids: interp.run({"ids": ids})["logits"],
        "graphcap_ort": ort_runner(path, ort_options()),
        "graphcap_session_ort": lambda ids: wrapped.run({"ids": ids})["logits"],
    }


def torch_engines(theirs: Any, files: dict[str, Path]) -> dict[str, Runner]:
    """Eager torch, and onnxruntime on torch's exported files."""

    def torch_eager(ids: np.ndarray) -> np.ndarray:
        with TORCH.no_grad():
            return theirs(TORCH.from_numpy(ids)).numpy()

    out: dict[str, Runner] = {"torch_eager": torch_eager}
    for key, path in files.items():
        out[f"{key}_ort"] = ort_runner(path, ort_options())
    return out


def check(runners: dict[str, Runner], ids: np.ndarray) -> dict[str, float]:
    """Max abs difference of each engine's logits from the eager model's."""
    want = runners["graphcap_eager"](ids)
    return {name: float(np.abs(run(ids) - want).max()) for name, run in runners.items()}


def measure(
    runners: dict[str, Runner], ids: np.ndarray, runs: int, warmup: int, rounds: int
) -> dict[str, Any]:
    """Per-call milliseconds of every engine: ``runs`` calls each, spread over ``rounds``.

    Each round gives every engine, in turn, a block of ``warmup`` untimed calls then
    ``runs / rounds`` timed ones. Blocks keep one engine's spinning worker threads (onnxruntime,
    OpenMP, BLAS) from slowing the next engine's calls; rounds spread every engine over the
    whole run, so a shared machine's changing load hits them alike.
    """
    diffs = check(runners, ids)
    samples: dict[str, list[float]] = {name: [] for name in runners}
    per_round = [runs // rounds + (r < runs % rounds) for r in range(rounds)]
    for n in per_round:
        for name, run in runners.items():
            for _ in range(warmup):
                run(ids)
            for _ in range(n):
                t0 = time.perf_counter_ns()
                run(ids)
                samples[name].append((time.perf_counter_ns() - t0) / 1e6)
    row: dict[str, Any] = {name: _stats(values) for name, values in samples.items()}
    for name in runners:
        log(f"  {name}: {row[name]['median_ms']} ms")
    row["max_abs_diff_vs_eager"] = max(diffs.values())
    row["diffs"] = {k: float(f"{v:.3g}") for k, v in diffs.items()}
    return row


# ---------------------------------------------------------------- report


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else round(a / b, 3)


def ratios(results: dict[str, Any], exp: dict[str, Any], stat: str) -> dict[str, float | None]:
    """The headline ratios of ``stat`` (``median_ms`` or ``min_ms``); below 1: graphcap faster."""

    def of(case: str, engine: str) -> float | None:
        entry = results[case].get(engine)
        return None if entry is None else entry[stat]

    pairs = [
        ("b1_s64", "graphcap_ort", "torch_eager"),
        ("b32_s128", "graphcap_ort", "torch_onnx_ort"),
        ("b32_s128", "graphcap_ort", "torch_dynamo_onnx_ort"),
        ("b1_s64", "graphcap_ort", "torch_onnx_ort"),
        ("b32_s128", "graphcap_ort", "torch_eager"),
        ("b1_s64", "graphcap_eager", "torch_eager"),
        ("b32_s128", "graphcap_eager", "torch_eager"),
        ("b1_s64", "interpreter", "graphcap_eager"),
        ("b32_s128", "interpreter", "graphcap_eager"),
    ]
    out = {f"{a}_over_{b}_{case}": _ratio(of(case, a), of(case, b)) for case, a, b in pairs}
    suffix = "" if stat == "median_ms" else "_min"
    for key in TORCH_EXPORTERS:
        out[f"export_graphcap_over_{key}"] = _ratio(
            exp[f"graphcap_trace_save{suffix}_s"], exp[key].get(f"export{suffix}_s")
        )
    return out


def export_all(
    model: models.TextClassifier, example: np.ndarray, tmp: Path, runs: int
) -> tuple[dict[str, Any], Any]:
    """Export timings of every exporter (graphcap's graph and torch's twin ride along)."""
    log("tracing and exporting with graphcap")
    exp = graphcap_export(model, example, tmp / "graphcap.onnx", runs)
    theirs = None
    if TORCH is not None:
        theirs = models.torch_text_classifier(model)
        for key, dynamo in TORCH_EXPORTERS.items():
            log(f"torch.onnx.export(dynamo={dynamo})")
            exp[key] = torch_export(theirs, example, tmp / f"{key}.onnx", dynamo, runs)
            if "error" in exp[key]:
                log(f"  failed: {exp[key]['error'][:200]}")
    return exp, theirs


def run_cases(
    model: models.TextClassifier, inputs: dict[str, np.ndarray], tmp: Path, args: Any
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Export, check and time every engine on every case: (results, export report)."""
    runs = {"b1_s64": 5, "b32_s128": 3} if args.quick else {"b1_s64": 200, "b32_s128": 30}
    warmup = 1 if args.quick else 3  # per block
    example = models.token_ids(np.random.default_rng(1), 2, 16, CONFIG["vocab"])
    exp, theirs = export_all(model, example, tmp, 3 if args.quick else 9)
    exp["example"] = list(example.shape)
    runners = engines(model, exp.pop("graph"), tmp / "graphcap.onnx")
    want = {case: runners["graphcap_eager"](ids) for case, ids in inputs.items()}
    ok = [key for key in TORCH_EXPORTERS if theirs is not None and "error" not in exp[key]]
    for key in ok:
        exp[key]["dynamic"] = dynamic_check(tmp / f"{key}.onnx", inputs, want)
    results = {}
    for case, ids in inputs.items():
        # torch's files are exported at this case's size: see export.<key>.dynamic for why.
        files = {key: tmp / f"{key}_{case}.onnx" for key in ok}
        for key, path in files.items():
            torch_onnx_export(theirs, ids, path, TORCH_EXPORTERS[key])
        case_runners = dict(runners)
        if theirs is not None:
            case_runners.update(torch_engines(theirs, files))
        log(f"{case}: {runs[case]} runs in {args.rounds} rounds")
        results[case] = measure(case_runners, ids, runs[case], warmup, args.rounds)
    return results, exp


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (a smoke run)")
    args = parser.parse_args()
    args.rounds = 1 if args.quick else 5
    if TORCH is not None:
        TORCH.set_num_threads(THREADS)
    load_start = round(os.getloadavg()[0], 2)
    tracer.manual_seed(0)
    model = models.TextClassifier(**CONFIG, max_len=MAX_LEN)
    rng = np.random.default_rng(0)
    inputs = {case: models.token_ids(rng, b, s, CONFIG["vocab"]) for case, (b, s) in CASES.items()}
    with tempfile.TemporaryDirectory() as tmp:
        results, exp = run_cases(model, inputs, Path(tmp), args)
    report = {
        "bench": "inference",
        "unit": "ms",
        "stat": "median (and min) of per-call wall time; runs spread over rounds, each round "
        "giving every engine a warm-up then a block of timed calls",
        "rounds": args.rounds,
        "load_average_1m": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
        "model": {**CONFIG, "max_len": MAX_LEN, "norm": "post", "activation": "relu"},
        "parameters": sum(int(np.prod(t.shape)) for _, t in model.named_parameters()),
        "threads": {
            "onnxruntime_intra_op": THREADS,
            "torch": THREADS,
            "blas": os.environ["OPENBLAS_NUM_THREADS"],
        },
        **machine.environment(),
        "results": results,
        "export": {
            **exp,
            "note": "each exporter traced at the example size with batch and seq declared "
            "dynamic; 'dynamic' says whether that file runs right at the benchmarked sizes. "
            "The timed torch files are exported at each case's own size.",
        },
        "ratios": ratios(results, exp, "median_ms") if TORCH is not None else {},
        "ratios_of_min": ratios(results, exp, "min_ms") if TORCH is not None else {},
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
