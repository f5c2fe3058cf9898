"""Compiled graphcap against eager graphcap and torch: training steps, inference, export.

Three parts, one JSON line:

- ``training``: per-step milliseconds of the two models of ``bench/training.py`` (transformer
  classifier at batch 32 x seq 128, BiLSTM tagger at 32 x 50), a step being forward,
  cross-entropy, backward and an ``AdamW(lr=1e-3, weight_decay=0.01)`` update: graphcap eager
  (``loss.backward(); optimizer.step()``), graphcap compiled (``tracer.compile_step``: the
  whole step as one ONNX graph on onnxruntime CPU, weights and optimizer state kept as
  ``OrtValue``s) and torch eager, all from the same weights. Before timing, every engine runs
  its first ``CHECK_STEPS`` steps on the same batch (the compiled engine's first one captures
  and compiles, timed apart as ``first_step_s``): the JSON gives the largest relative loss
  difference against graphcap eager over those steps and, after ``step.sync()``, the largest
  weight deviation. An engine that fails is reported by its error and left out.
- ``inference``: the classifier of ``bench/inference.py`` at batch 1 x seq 64 and 32 x 128 on
  onnxruntime CPU: graphcap's trace optimized by ``ir.optimize`` at level 0 and at level 3
  (fusions), each written by ``export.save`` (one file, batch and seq dynamic), against
  ``torch.onnx.export(dynamo=False)`` of the torch twin holding the same weights (exported at
  each case's size, see ``bench/README.md``), all with the same ``SessionOptions``. Every
  file's logits are compared with graphcap eager's (``max_abs_diff_vs_eager``), untimed.
- ``export_bert``: wall seconds to trace + ``ir.optimize(level=3)`` + ``export.save`` a BERT
  of all-MiniLM-L6-v2's shape (``tracer.models.BertModel``, random weights), against
  ``torch.onnx.export(dynamo=False)`` of ``transformers.BertModel`` holding the same weights;
  both files then run on onnxruntime and their hidden states are compared.

Timing reuses the harness of ``bench/training.py`` and ``bench/inference.py``: the steps or
calls are spread over rounds, each round giving every engine a warm-up then a block of timed
calls; median and minimum. ``--profile`` adds an onnxruntime profile of the compiled training
step (kernel time by op type, the slowest nodes); ``--compile-level`` sets the
``ir.optimize`` level ``compile_step`` uses (default 2, its own default).

Usage: ``python bench/compiled.py [--quick] [--steps N] [--profile] [--compile-level L]``.
Progress goes to stderr; ONE JSON line to stdout. Reports numbers; gates nothing. torch and
transformers are optional (their columns are left out without them).
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
import warnings
from dataclasses import dataclass
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import inference  # bench/inference.py: the classifier, its export and timing harness
import machine  # bench/machine.py
import training  # bench/training.py: the two training models and their step harness

import export
import ir
import tracer
from export.onnx.writer import to_model
from tests import models
from tracer.models import BertConfig, BertModel
from tracer.nn import functional as F  # noqa: N812 - PyTorch's customary name

TORCH = training.TORCH
LR = 1e-3
WEIGHT_DECAY = 1e-2  # AdamW's default, on every side
CHECK_STEPS = 3
LEVELS = (0, 3)
BERT: dict[str, Any] = {  # all-MiniLM-L6-v2's config.json, its architecture fields
    "vocab_size": 30522,
    "hidden_size": 384,
    "num_hidden_layers": 6,
    "num_attention_heads": 12,
    "intermediate_size": 1536,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
    "layer_norm_eps": 1e-12,
}
BERT_DYNAMIC = {"ids": {0: "batch", 1: "seq"}, "mask": {0: "batch", 1: "seq"}}


def log(message: str) -> None:
    print(f"[compiled] {message}", file=sys.stderr, flush=True)


def _ratio(row: dict[str, Any], a: str, b: str, stat: str) -> float | None:
    if a not in row or b not in row:
        return None
    return round(row[a][stat] / row[b][stat], 3)


def add_ratios(row: dict[str, Any], pairs: list[tuple[str, str]]) -> None:
    """``ratio_<a>_over_<b>`` of medians (and ``..._min`` of minima) into ``row``."""
    for a, b in pairs:
        row[f"ratio_{a}_over_{b}"] = _ratio(row, a, b, "median_ms")
        row[f"ratio_{a}_over_{b}_min"] = _ratio(row, a, b, "min_ms")


def _error(err: BaseException) -> str:
    return f"{type(err).__name__}: {' '.join(str(err).split())}"[:500]


# ---------------------------------------------------------------- training


@dataclass
class CompiledTrainer(training.Trainer):
    """A :class:`training.Trainer` whose step is one call of a ``compile_step`` step."""

    compiled: Any = None

    def step(self) -> float:
        """One compiled training step (forward, loss, backward, update); returns the loss."""
        return float(self.compiled(self.ids, self.target).item())


def _model(name: str, seq: int) -> Any:
    """Model ``name`` with the seed-0 weights every engine starts from, in train mode."""
    tracer.manual_seed(0)
    m = training.TextClassifier(max_len=seq) if name == "transformer" else training.BiLSTMTagger()
    m.train()
    return m


def train_engines(
    name: str, ids: np.ndarray, target: np.ndarray, level: int
) -> dict[str, training.Trainer]:
    """The engines: graphcap eager, graphcap compiled (captured on its first step) and torch eager.

    ``level``: the ``ir.optimize`` level ``compile_step`` applies to the step's graph.
    """
    loss = training._flat_loss(F.cross_entropy)
    batch = (tracer.tensor(ids), tracer.tensor(target))
    out: dict[str, training.Trainer] = {}
    for key in ("graphcap_eager", "graphcap_compiled"):
        m = _model(name, ids.shape[1])
        opt = tracer.optim.AdamW(m.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        out[key] = training.Trainer(m, opt, *batch, loss)
    m, opt = out["graphcap_compiled"].model, out["graphcap_compiled"].opt

    def loss_fn(ids: tracer.Tensor, target: tracer.Tensor) -> tracer.Tensor:
        return loss(m(ids), target)

    step = tracer.compile_step(loss_fn, opt, model=m, optimize=level)
    out["graphcap_compiled"] = CompiledTrainer(m, opt, *batch, loss, compiled=step)
    if TORCH is not None:
        ours: Any = _model(name, ids.shape[1])
        if name == "transformer":
            theirs = models.torch_text_classifier(ours)
        else:
            theirs = training.torch_bilstm_tagger()
            models.copy_weights(ours, theirs)
        theirs.train()
        topt = TORCH.optim.AdamW(theirs.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)
        tensors = (TORCH.from_numpy(ids), TORCH.from_numpy(target))
        tloss = training._flat_loss(TORCH.nn.functional.cross_entropy)
        out["torch_eager"] = training.Trainer(theirs, topt, *tensors, tloss)
    return out


def _max_rel(a: list[float], b: list[float]) -> float:
    return float(f"{max(abs(x - y) / max(abs(y), 1e-30) for x, y in zip(a, b, strict=True)):.3g}")


def check_steps(runners: dict[str, training.Trainer]) -> dict[str, Any]:
    """Run every engine's first ``CHECK_STEPS`` steps; compare; drop an engine that fails."""
    losses: dict[str, list[float]] = {}
    out: dict[str, Any] = {"steps": CHECK_STEPS}
    for key, runner in list(runners.items()):
        t0 = perf_counter()
        try:
            losses[key] = [runner.step()]
        except Exception as err:  # a step that cannot run is a result to report
            out[f"{key}_error"] = _error(err)
            log(f"  {key} failed: {out[f'{key}_error']}")
            del runners[key]
            continue
        out[f"{key}_first_step_s"] = round(perf_counter() - t0, 3)
        losses[key] += [runner.step() for _ in range(CHECK_STEPS - 1)]
    out["loss"] = {k: [round(v, 6) for v in vs] for k, vs in losses.items()}
    for key in ("graphcap_compiled", "torch_eager"):
        if key in losses:
            out[f"loss_max_rel_diff_{key}"] = _max_rel(losses[key], losses["graphcap_eager"])
    compiled = runners.get("graphcap_compiled")
    if isinstance(compiled, CompiledTrainer):
        compiled.compiled.sync()  # the runtime's weights back into the eager parameters
        out["weights_compiled_vs_eager"] = training._max_dev(
            training._arrays(compiled.model, False),
            training._arrays(runners["graphcap_eager"].model, False),
        )
    return out


def profile_step(step: Any, batch: tuple[np.ndarray, ...], tmp: Path, runs: int) -> dict[str, Any]:
    """The onnxruntime profile of a compiled train step's graph: kernel time by op type.

    The graph runs on its own session (onnxruntime's default options, as ``compile_step``'s,
    but NumPy feeds), ``runs`` times after one warm-up; times are per run.
    """
    built = step.last
    options = ort.SessionOptions()
    options.enable_profiling = True
    options.profile_file_prefix = str(tmp / "step_profile")
    options.log_severity_level = 3
    data = to_model(built.graph).SerializeToString()
    sess = ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])
    feeds: dict[str, Any] = dict(zip(built.batch, batch, strict=True))
    feeds |= {name: np.asarray(LR, np.float64) for name in built.lrs}
    feeds |= {name: p.detach().numpy() for name, p in built.params.items()}
    for name, (param, key) in built.states.items():
        feeds[name] = step.optimizer.functional_state(built.params[param])[key]
    for _ in range(runs + 1):
        sess.run(None, feeds)
    events = json.loads(Path(sess.end_profiling()).read_text())
    return _summarise(events, runs)


def _summarise(events: list[dict[str, Any]], runs: int) -> dict[str, Any]:
    """Per-run kernel milliseconds by op type and by node, the warm-up run left out."""
    model_runs = sorted((e for e in events if e.get("name") == "model_run"), key=lambda e: e["ts"])
    warm_end = model_runs[0]["ts"] + model_runs[0]["dur"]
    run_us = sum(e["dur"] for e in model_runs[1:]) / runs
    by_op: dict[str, float] = {}
    by_node: dict[str, float] = {}
    for e in events:
        if e.get("cat") != "Node" or not e["name"].endswith("_kernel_time") or e["ts"] < warm_end:
            continue
        op = e["args"]["op_name"]
        by_op[op] = by_op.get(op, 0.0) + e["dur"] / runs
        node = f"{op}:{e['name'].removesuffix('_kernel_time')}"
        by_node[node] = by_node.get(node, 0.0) + e["dur"] / runs
    total = sum(by_op.values())
    return {
        "run_ms": round(run_us / 1000, 2),
        "kernel_ms": round(total / 1000, 2),
        "note": "kernel_ms counts a Scan/Loop body's nodes twice (in the loop and on their own)",
        "kernels": len(by_node),
        "by_op_ms": _top_ms(by_op, 15),
        "slowest_nodes_ms": _top_ms(by_node, 10),
    }


def _top_ms(us: dict[str, float], n: int) -> dict[str, float]:
    return {k: round(v / 1000, 2) for k, v in sorted(us.items(), key=lambda kv: -kv[1])[:n]}


def run_training(args: Any, tmp: Path) -> dict[str, Any]:
    """Check and time every engine on both models: model name -> its report."""
    rng = np.random.default_rng(0)
    results = {}
    for name in training.SHAPES:
        ids, target = training.inputs(name, rng)
        log(f"training {name} {training.SHAPES[name]}: first {CHECK_STEPS} steps (check)")
        runners = train_engines(name, ids, target, args.compile_level)
        row: dict[str, Any] = {"check": check_steps(runners)}
        log(f"  {row['check']}")
        log(f"{name}: {args.steps} steps per engine in {args.rounds} rounds")
        row |= training.measure(runners, args.steps, 1, args.rounds)
        pairs = [("graphcap_compiled", "torch_eager"), ("graphcap_compiled", "graphcap_eager")]
        add_ratios(row, pairs)
        compiled = runners.get("graphcap_compiled")
        if isinstance(compiled, CompiledTrainer):
            row["compiled_graph_nodes"] = len(compiled.compiled.graph.nodes)
            if args.profile:
                log(f"{name}: onnxruntime profile of the compiled step")
                row["profile"] = profile_step(compiled.compiled, (ids, target), tmp, args.steps)
        results[name] = row
    return results


# ---------------------------------------------------------------- inference


def _op_counts(graph: Any) -> dict[str, int]:
    counts: dict[str, int] = {}
    for node in graph.nodes:
        counts[node.op.op_type] = counts.get(node.op.op_type, 0) + 1
    return dict(sorted(counts.items()))


def graphcap_files(model: Any, tmp: Path) -> dict[str, Any]:
    """Trace once (batch and seq dynamic), optimize at each level, write each file."""
    example = models.token_ids(np.random.default_rng(1), 2, 16, inference.CONFIG["vocab"])
    graph = tracer.trace(
        model, (tracer.tensor(example),), dynamic_axes=inference.DYNAMIC, output_names=["logits"]
    )
    out: dict[str, Any] = {}
    for level in LEVELS:
        t0 = perf_counter()
        optimized = ir.optimize(graph, level)
        seconds = perf_counter() - t0
        export.save(optimized, tmp / f"graphcap_o{level}.onnx")
        out[f"o{level}"] = {
            "optimize_s": round(seconds, 3),
            "nodes": len(optimized.nodes),
            "ops": _op_counts(optimized),
        }
    return out


def _eager(model: Any) -> inference.Runner:
    def run(ids: np.ndarray) -> np.ndarray:
        with tracer.no_grad():
            return model(tracer.tensor(ids)).numpy()

    return run


def time_calls(
    runners: dict[str, inference.Runner], ids: np.ndarray, runs: int, warmup: int, rounds: int
) -> dict[str, Any]:
    """Per-call milliseconds of every runner, as ``inference.measure`` times them."""
    samples: dict[str, list[float]] = {name: [] for name in runners}
    for n in [runs // rounds + (r < runs % rounds) for r in range(rounds)]:
        for name, run in runners.items():
            for _ in range(warmup):
                run(ids)
            for _ in range(n):
                t0 = perf_counter()
                run(ids)
                samples[name].append((perf_counter() - t0) * 1e3)
    row = {name: training._stats(values) for name, values in samples.items()}
    log("  " + ", ".join(f"{k}: {v['median_ms']} ms" for k, v in row.items()))
    return row


def run_inference(args: Any, tmp: Path) -> dict[str, Any]:
    """Time the classifier's ONNX files on onnxruntime: graphcap level 0 and 3, torch's."""
    tracer.manual_seed(0)
    model = models.TextClassifier(**inference.CONFIG, max_len=inference.MAX_LEN)
    rng = np.random.default_rng(0)
    vocab = inference.CONFIG["vocab"]
    cases = {c: models.token_ids(rng, b, s, vocab) for c, (b, s) in inference.CASES.items()}
    log("inference: trace, ir.optimize (levels 0 and 3), export.save")
    out: dict[str, Any] = {"graphs": graphcap_files(model, tmp)}
    theirs = models.torch_text_classifier(model) if TORCH is not None else None
    runs = {"b1_s64": 5, "b32_s128": 3} if args.quick else {"b1_s64": 200, "b32_s128": 30}
    reference = _eager(model)  # the numerical reference, too slow at b32 x s128 to time
    for case, ids in cases.items():
        runners = {}
        for level in LEVELS:
            path = tmp / f"graphcap_o{level}.onnx"
            runners[f"graphcap_o{level}_ort"] = inference.ort_runner(path, inference.ort_options())
        if theirs is not None:
            path = tmp / f"torch_onnx_{case}.onnx"
            inference.torch_onnx_export(theirs, ids, path, False)
            runners["torch_onnx_ort"] = inference.ort_runner(path, inference.ort_options())
        want = reference(ids)
        row: dict[str, Any] = {
            "max_abs_diff_vs_eager": {
                k: float(f"{np.abs(run(ids) - want).max():.3g}") for k, run in runners.items()
            }
        }
        rounds, warmup = args.rounds_inference, 1 if args.quick else 3
        log(f"inference {case}: {runs[case]} runs in {rounds} rounds")
        row |= time_calls(runners, ids, runs[case], warmup, rounds)
        add_ratios(
            row,
            [
                ("graphcap_o3_ort", "torch_onnx_ort"),
                ("graphcap_o0_ort", "torch_onnx_ort"),
                ("graphcap_o3_ort", "graphcap_o0_ort"),
            ],
        )
        out[case] = row
    return out


# ---------------------------------------------------------------- BERT export


def _seconds(samples: list[float]) -> dict[str, float]:
    return {"median_s": round(statistics.median(samples), 3), "min_s": round(min(samples), 3)}


def bert_inputs() -> tuple[np.ndarray, np.ndarray]:
    """Ids and 0/1 mask of batch 2 x seq 16, the second row padded after 10 tokens."""
    ids = np.random.default_rng(2).integers(1, BERT["vocab_size"], size=(2, 16), dtype=np.int64)
    mask = np.ones_like(ids)
    ids[1, 10:], mask[1, 10:] = 0, 0
    return ids, mask


def graphcap_bert(ours: Any, path: Path, runs: int) -> dict[str, Any]:
    """Trace + ``ir.optimize(level=3)`` + ``export.save`` of ``ours``, timed per phase."""
    ids, mask = (tracer.tensor(a) for a in bert_inputs())
    phases: dict[str, list[float]] = {"trace": [], "optimize": [], "save": [], "total": []}
    graph = None
    for _ in range(runs):
        t0 = perf_counter()
        graph = tracer.trace(
            lambda ids, mask: ours(ids, mask).last_hidden_state,
            (ids, mask),
            dynamic_axes=BERT_DYNAMIC,
            output_names=["hidden"],
        )
        t1 = perf_counter()
        graph = ir.optimize(graph, 3)
        t2 = perf_counter()
        export.save(graph, path)
        t3 = perf_counter()
        for key, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t3 - t0), strict=True):
            phases[key].append(dt)
    out: dict[str, Any] = {key: _seconds(v) for key, v in phases.items()}
    out["nodes"] = len(onnx.load(str(path), load_external_data=False).graph.node)
    return out


def torch_bert(ours: Any, path: Path, runs: int) -> dict[str, Any]:
    """``torch.onnx.export(dynamo=False)`` of ``transformers.BertModel`` with ``ours``' weights."""
    try:
        from transformers import BertConfig, BertModel
    except ImportError:
        return {"skipped": "transformers is not installed"}
    config = BertConfig(**BERT, hidden_act="gelu", hidden_dropout_prob=0.0)
    theirs = BertModel(config).eval()
    state = {k: TORCH.from_numpy(p.detach().numpy().copy()) for k, p in ours.named_parameters()}
    missing, unexpected = theirs.load_state_dict(state, strict=False)
    if missing or unexpected:
        return {"skipped": f"weights do not match: missing {missing}, unexpected {unexpected}"}
    args = tuple(TORCH.from_numpy(a) for a in bert_inputs())

    def once() -> None:
        with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
            warnings.simplefilter("ignore")
            TORCH.onnx.export(
                theirs,
                args,
                str(path),
                input_names=["ids", "mask"],
                output_names=["hidden", "pooled"],
                dynamic_axes={**BERT_DYNAMIC, "hidden": {0: "batch", 1: "seq"}},
                opset_version=export.DEFAULT_OPSET,
                dynamo=False,
            )

    samples = []
    for _ in range(runs):
        t0 = perf_counter()
        once()
        samples.append(perf_counter() - t0)
    out: dict[str, Any] = {"total": _seconds(samples)}
    out["nodes"] = len(onnx.load(str(path), load_external_data=False).graph.node)
    return out


def run_bert(runs: int, tmp: Path) -> dict[str, Any]:
    """Export wall times of the MiniLM-shaped BERT, and whether the two files agree."""
    tracer.manual_seed(0)
    ours = BertModel(BertConfig.from_dict(BERT)).eval()
    paths = {"graphcap": tmp / "bert_graphcap.onnx", "torch_onnx": tmp / "bert_torch.onnx"}
    log(f"export_bert: graphcap trace + optimize(3) + save, {runs} runs")
    out: dict[str, Any] = {"config": BERT, "example": [2, 16], "runs": runs}
    out["graphcap"] = graphcap_bert(ours, paths["graphcap"], runs)
    if TORCH is None:
        return out
    log(f"export_bert: torch.onnx.export(dynamo=False), {runs} runs")
    try:
        out["torch_onnx"] = torch_bert(ours, paths["torch_onnx"], runs)
    except Exception as err:  # an exporter failure is a result to report
        out["torch_onnx"] = {"error": _error(err)}
    if "total" in out["torch_onnx"]:
        out["ratio_graphcap_over_torch_onnx"] = round(
            out["graphcap"]["total"]["median_s"] / out["torch_onnx"]["total"]["median_s"], 3
        )
        out["max_abs_diff_hidden"] = _bert_diff(paths)
    return out


def _bert_diff(paths: dict[str, Path]) -> float:
    """Largest hidden-state difference of the two files on onnxruntime, at b3 x s24."""
    ids = np.random.default_rng(3).integers(1, BERT["vocab_size"], size=(3, 24), dtype=np.int64)
    mask = np.ones_like(ids)
    mask[2, 7:] = 0
    got = []
    for path in paths.values():
        sess = ort.InferenceSession(
            str(path), inference.ort_options(), providers=["CPUExecutionProvider"]
        )
        names = [i.name for i in sess.get_inputs()]
        got.append(sess.run(["hidden"], dict(zip(names, (ids, mask), strict=True)))[0])
    return float(f"{np.abs(got[0] - got[1]).max():.3g}")


# ---------------------------------------------------------------- report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="few iterations (a smoke run)")
    parser.add_argument("--steps", type=int, default=None, help="timed training steps per engine")
    parser.add_argument("--profile", action="store_true", help="profile the compiled step")
    parser.add_argument(
        "--compile-level", type=int, default=2, help="compile_step's ir.optimize level"
    )
    args = parser.parse_args()
    args.steps = args.steps or (3 if args.quick else 12)
    args.rounds = 1 if args.quick else min(4, args.steps)
    args.rounds_inference = 1 if args.quick else 5
    if TORCH is not None:
        TORCH.set_num_threads(training.THREADS)
    load_start = round(os.getloadavg()[0], 2)
    with tempfile.TemporaryDirectory() as tmp:
        results = {
            "training": run_training(args, Path(tmp)),
            "inference": run_inference(args, Path(tmp)),
            "export_bert": run_bert(1 if args.quick else 3, Path(tmp)),
        }
    report = {
        "bench": "compiled",
        "unit": "ms (export_bert: s)",
        "stat": "median (and min) per step or call; spread over rounds, each round giving "
        "every engine a warm-up then a block of timed calls",
        "load_average_1m": {"start": load_start, "end": round(os.getloadavg()[0], 2)},
        "optimizer": {"name": "AdamW", "lr": LR, "weight_decay": WEIGHT_DECAY},
        "compile_step_optimize_level": args.compile_level,
        "steps": args.steps,
        "rounds": {"training": args.rounds, "inference": args.rounds_inference},
        "threads": {
            "blas": training.THREADS,
            "torch": training.THREADS,
            "onnxruntime_inference_intra_op": inference.THREADS,
            "onnxruntime_compile_step": "onnxruntime's default (one per physical core)",
        },
        **machine.environment(),
        **results,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
