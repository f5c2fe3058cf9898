"""Which form of scaled dot-product attention onnxruntime's CPU provider runs fastest.

``FuseAttentionPass`` maps the decomposed pattern that traced and exported models carry,
``MatMul(Q, Transpose(K)) -> Mul(scale) -> Add(mask) -> Softmax(-1) -> MatMul(V)``, to the
form that runs fastest; this script measures which that is. It times the candidate forms on
the same Q, K, V (``[batch, heads, seq, head_dim]``, float32) and mask (additive, ``[batch,
1, seq, seq]``), with and without the mask:

- ``decomposed``: the pattern itself, as graphcap's IR writes it;
- ``decomposed_q``, ``decomposed_div``, ``decomposed_qk``: the same with the scale on Q (the
  pass's canonical form), as a division of the scores, or split over Q and K^T;
- ``attention``: one ONNX ``Attention`` node (opset 23, a graphcap registry op), 4-D inputs,
  as graphcap's writer writes it (all four outputs named, so onnxruntime computes all four);
- ``attention_y``: the same node with only its output Y named;
- ``mha``: onnxruntime's contrib ``com.microsoft.MultiHeadAttention`` fed in its own layout
  (``[batch, seq, heads * head_dim]``), its best case;
- ``mha_bnsh``: the same op fed from the pattern's ``[batch, heads, seq, head_dim]`` tensors,
  with the Transpose/Reshape pairs a pass emitting it would have to add.

Every form's output is checked against NumPy before timing. Timing: the median (and
minimum) wall milliseconds of ``session.run`` over ``--runs`` calls (default 200), spread over
5 rounds; in each round every form runs a warm-up and then its block, so a shared machine's
load hits all forms alike. onnxruntime: CPU provider, ``intra_op_num_threads=2``, all graph
optimisations (graphcap's default). graphcap's interpreter (``runtime.Session(backend=
"interpreter")``, BLAS on 2 threads) is timed the same way, ``--runs / 20`` calls (at least
5), on ``decomposed``, ``decomposed_q`` and ``attention``.

Usage: ``python bench/attention_forms.py [--runs N] [--quick]``. ONE JSON line to stdout;
progress to stderr. Reports numbers; gates nothing.
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
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import machine  # bench/machine.py, beside this script

from export.onnx.writer import to_model
from ir.graph import Graph
from ir.ops.registry import op
from runtime import Session

THREADS = 2
# (batch, seq, heads, head_dim)
CASES = [
    (8, 64, 4, 32),
    (8, 128, 8, 64),
    (8, 128, 12, 64),
    (32, 64, 4, 32),
    (32, 128, 8, 32),
    (32, 128, 12, 64),
]
QUICK = [(8, 64, 4, 32)]


def log(message: str) -> None:
    print(f"[attention_forms] {message}", file=sys.stderr, flush=True)


def decomposed(shape: tuple[int, ...], scale: float, mask: bool, where: str = "scores") -> Graph:
    """The decomposed pattern, its scale applied where ``where`` says.

    "scores": ``scores * scale``; "q": ``(Q * scale) @ K^T`` (``FuseAttentionPass``'s
    canonical form); "div": ``scores / (1 / scale)``; "qk": Q and K^T each times
    ``sqrt(scale)``, as ``torch.onnx.export`` writes ``scaled_dot_product_attention``.
    """
    g = Graph("decomposed")
    q, k, v = (g.add_input(n, np.float32, shape) for n in "qkv")
    kt = op.Transpose(k, perm=[0, 1, 3, 2])
    if where == "qk":
        root = np.float32(np.sqrt(scale))
        scores = op.MatMul(op.Mul(q, root), op.Mul(kt, root))
    elif where == "q":
        scores = op.MatMul(op.Mul(q, np.float32(scale)), kt)
    elif where == "div":
        scores = op.Div(op.MatMul(q, kt), np.float32(1 / scale))
    else:
        scores = op.Mul(op.MatMul(q, kt), np.float32(scale))
    if mask:
        b, _, s, _ = shape
        scores = op.Add(scores, g.add_input("mask", np.float32, (b, 1, s, s)))
    g.set_outputs([op.MatMul(op.Softmax(scores, axis=-1), v)])
    return g


def attention(shape: tuple[int, ...], scale: float, mask: bool) -> Graph:
    g = Graph("attention")
    q, k, v = (g.add_input(n, np.float32, shape) for n in "qkv")
    b, _, s, _ = shape
    m = g.add_input("mask", np.float32, (b, 1, s, s)) if mask else None
    g.set_outputs([op.Attention(q, k, v, m, scale=scale)[0]])
    return g


def y_only(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with the Attention node's unused outputs (present K/V, QK) left unnamed.

    graphcap's writer names all four, and onnxruntime then computes all four.
    """
    out = onnx.ModelProto()
    out.CopyFrom(model)
    node = next(n for n in out.graph.node if n.op_type == "Attention")
    del node.output[1:]
    return out


def mha(shape: tuple[int, ...], scale: float, mask: bool, bnsh: bool) -> onnx.ModelProto:
    b, h, s, d = shape
    inner = (b, h, s, d) if bnsh else (b, s, h * d)
    nodes, names = [], ["q", "k", "v"]
    if bnsh:  # [b, h, s, d] -> [b, s, h * d], as a pass would have to emit
        nodes += [helper.make_node("Transpose", [n], [n + "t"], perm=[0, 2, 1, 3]) for n in "qkv"]
        nodes += [helper.make_node("Reshape", [n + "t", "to3"], [n + "3"]) for n in "qkv"]
        names = [n + "3" for n in "qkv"]
    inputs = [*names, "", "", "mask"] if mask else names
    out = "y3" if bnsh else "y"
    nodes.append(
        helper.make_node(
            "MultiHeadAttention", inputs, [out], domain="com.microsoft", num_heads=h, scale=scale
        )
    )
    if bnsh:
        nodes.append(helper.make_node("Reshape", ["y3", "to4"], ["y4"]))
        nodes.append(helper.make_node("Transpose", ["y4"], ["y"], perm=[0, 2, 1, 3]))
    inits = [
        helper.make_tensor("to3", TensorProto.INT64, [3], [b, s, h * d]),
        helper.make_tensor("to4", TensorProto.INT64, [4], [b, s, h, d]),
    ]
    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, inner) for n in "qkv"]
    if mask:
        vi.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, (b, 1, s, s)))
    out_vi = [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)]
    graph = helper.make_graph(nodes, "mha", vi, out_vi, inits if bnsh else [])
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 23), helper.make_opsetid("com.microsoft", 1)]
    )
    model.ir_version = 10
    return model


def reference(q: np.ndarray, k: np.ndarray, v: np.ndarray, m: Any, scale: float) -> np.ndarray:
    s = (q.astype(np.float64) @ np.swapaxes(k, -1, -2)) * scale
    if m is not None:
        s = s + m
    p = np.exp(s - s.max(-1, keepdims=True))
    return (p / p.sum(-1, keepdims=True)) @ v


def options() -> ort.SessionOptions:
    o = ort.SessionOptions()
    o.intra_op_num_threads = THREADS
    o.inter_op_num_threads = 1
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    o.log_severity_level = 3
    return o


def runners(
    case: tuple[int, ...], mask: bool, seed: int
) -> tuple[dict[str, Callable[[], Any]], dict[str, Callable[[], Any]]]:
    """Checked, ready-to-time callables per form: onnxruntime's, and the interpreter's."""
    b, s, h, d = case
    shape, scale = (b, h, s, d), 1 / np.sqrt(d)
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal(shape, dtype=np.float32) for _ in range(3))
    m = np.where(rng.random((b, 1, s, s)) < 0.1, -1e4, 0).astype(np.float32) if mask else None
    want = reference(q, k, v, m, scale)
    qkv: dict[str, np.ndarray] = {"q": q, "k": k, "v": v}
    bsd = {n: qkv[n].transpose(0, 2, 1, 3).reshape(b, s, h * d) for n in "qkv"}
    if m is not None:
        qkv["mask"] = m
    graphs = {
        "decomposed": decomposed(shape, scale, mask),
        "decomposed_q": decomposed(shape, scale, mask, "q"),
        "decomposed_div": decomposed(shape, scale, mask, "div"),
        "decomposed_qk": decomposed(shape, scale, mask, "qk"),
        "attention": attention(shape, scale, mask),
    }
    models = {k: (to_model(g), qkv) for k, g in graphs.items()}
    models["attention_y"] = (y_only(models["attention"][0]), qkv)
    models["mha"] = (mha(shape, scale, mask, bnsh=False), {**qkv, **bsd})
    models["mha_bnsh"] = (mha(shape, scale, mask, bnsh=True), qkv)
    ort_fns: dict[str, Callable[[], Any]] = {}
    interp_fns: dict[str, Callable[[], Any]] = {}
    for name, (model, feeds) in models.items():
        sess = ort.InferenceSession(model.SerializeToString(), options(), ["CPUExecutionProvider"])
        ort_fns[name] = _checked(partial(_ort_first, sess, feeds), want, name, case)
    for name in ("decomposed", "decomposed_q", "attention"):
        interp = Session(graphs[name], backend="interpreter")
        interp_fns[name] = _checked(partial(_first, interp, qkv), want, name, case)
    return ort_fns, interp_fns


def _ort_first(sess: ort.InferenceSession, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return sess.run(None, feeds)[0]


def _first(session: Session, feeds: dict[str, np.ndarray]) -> np.ndarray:
    return next(iter(session.run(feeds).values()))


def _checked(fn: Callable[[], Any], want: np.ndarray, name: str, case: Any) -> Callable[[], Any]:
    got = fn()
    if got.shape != want.shape:  # mha's own layout: [b, s, h * d]
        got = got.reshape(want.shape[0], want.shape[2], want.shape[1], -1).transpose(0, 2, 1, 3)
    err = float(np.max(np.abs(got - want)))
    if err > 1e-4:
        raise AssertionError(f"{name} at {case}: off by {err}")
    return fn


def timings(fns: dict[str, Callable[[], Any]], runs: int) -> dict[str, list[float]]:
    """Milliseconds per call, 5 rounds of (warm-up, block) for every form in turn."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    rounds = 5
    for r in range(rounds):
        block = runs // rounds + (r < runs % rounds)
        for name, fn in fns.items():
            fn()
            for _ in range(block):
                t0 = time.perf_counter()
                fn()
                samples[name].append((time.perf_counter() - t0) * 1e3)
    return samples


def time_case(case: tuple[int, ...], mask: bool, runs: int) -> dict[str, Any]:
    ort_fns, interp_fns = runners(case, mask, seed=0)
    samples = timings(ort_fns, runs)
    med = {k: statistics.median(v) for k, v in samples.items()}
    interp = timings(interp_fns, max(runs // 20, 5))
    return {
        "batch": case[0],
        "seq": case[1],
        "heads": case[2],
        "head_dim": case[3],
        "mask": mask,
        "median_ms": {k: round(v, 3) for k, v in med.items()},
        "min_ms": {k: round(min(v), 3) for k, v in samples.items()},
        "fastest": min(med, key=lambda k: med[k]),
        # > 1: one Attention node (only Y named) beats the decomposed pattern
        "attention_speedup": round(med["decomposed_q"] / med["attention_y"], 2),
        "interpreter_median_ms": {k: round(statistics.median(v), 3) for k, v in interp.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="timed calls per form and case")
    parser.add_argument("--quick", action="store_true", help="one small case, 10 runs")
    args = parser.parse_args()
    cases, runs = (QUICK, 10) if args.quick else (CASES, args.runs)
    results = []
    for case in cases:
        for mask in (False, True):
            log(f"batch/seq/heads/dim {case}, mask={mask}")
            results.append(time_case(case, mask, runs))
    print(
        json.dumps(
            {
                "bench": "attention_forms",
                "machine": machine.describe(),
                "onnxruntime": ort.__version__,
                "threads": THREADS,
                "load_average_1m": round(os.getloadavg()[0], 2),
                "runs": runs,
                "results": results,
            }
        )
    )


if __name__ == "__main__":
    main()
