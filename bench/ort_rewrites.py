"""Time onnxruntime's graph rewrites that graphcap's CPU sessions turn off, on and off.

For each rewrite in ``runtime.ort_backend.CPU_DISABLED_OPTIMIZERS`` a model holding the
pattern it rewrites is timed with every onnxruntime rewrite on, then with that one off
(median ms per call, 2 intra-op threads). Prints one JSON line.

Run: ``python bench/ort_rewrites.py [--runs N]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import machine  # bench/machine.py, beside this script

from runtime.ort_backend import CPU_DISABLED_OPTIMIZERS

SHAPE = [32, 128, 128]  # batch, seq, hidden: the transformer benchmarks' activations


def residual_layer_norm() -> bytes:
    """``LayerNormalization(x + y)``: what SkipLayerNormFusion rewrites."""
    dims: list[int | str] = ["batch", "seq", SHAPE[2]]
    io = [helper.make_tensor_value_info(n, TensorProto.FLOAT, dims) for n in ("x", "y", "out")]
    weights = [
        helper.make_tensor("gamma", TensorProto.FLOAT, [SHAPE[2]], np.ones(SHAPE[2])),
        helper.make_tensor("beta", TensorProto.FLOAT, [SHAPE[2]], np.zeros(SHAPE[2])),
    ]
    nodes = [
        helper.make_node("Add", ["x", "y"], ["sum"]),
        helper.make_node("LayerNormalization", ["sum", "gamma", "beta"], ["out"], axis=-1),
    ]
    graph = helper.make_graph(nodes, "residual_layer_norm", io[:2], io[2:], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    return model.SerializeToString()


def median_ms(model: bytes, disabled: list[str], runs: int) -> float:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.log_severity_level = 3
    session = ort.InferenceSession(
        model, options, providers=["CPUExecutionProvider"], disabled_optimizers=disabled
    )
    rng = np.random.default_rng(0)
    feeds = {n: rng.standard_normal(SHAPE).astype(np.float32) for n in ("x", "y")}
    for _ in range(5):
        session.run(None, feeds)
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feeds)
        samples.append((time.perf_counter() - start) * 1e3)
    return round(statistics.median(samples), 3)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    args = parser.parse_args()
    models = {"SkipLayerNormFusion": residual_layer_norm()}
    rows = {}
    for name in CPU_DISABLED_OPTIMIZERS:
        on = median_ms(models[name], [], args.runs)
        off = median_ms(models[name], [name], args.runs)
        rows[name] = {"rewrite_on_ms": on, "rewrite_off_ms": off, "on_over_off": round(on / off, 2)}
    line = {"bench": "ort_rewrites", "machine": machine.describe(), "onnxruntime": ort.__version__}
    print(json.dumps({**line, "shape": SHAPE, **rows}))


if __name__ == "__main__":
    main()
