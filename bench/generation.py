"""Eager ``generate``, the exported generation file, and ``transformers``' ``generate``.

Both sides load the same random-init GPT-2 folder (written by ``transformers``) and decode
greedily from the same batch of left-padded prompts with no EOS, so every row makes
``--new`` tokens; the tokens must agree before anything is timed. The exported column is
``tracer.generation.export.export_generate``'s file (the whole greedy loop as one ONNX
``Loop``) run by onnxruntime CPU with the same threads. Configs: ``tiny`` (the
tests' model: 2 layers, width 32, vocab 99) and ``small`` (GPT-2 small's shape: 12 layers,
width 768, 12 heads, vocab 50257; random weights). Reported: new tokens per second (batch x
new tokens / wall seconds), median and best of ``--runs`` runs after a warm-up.

Threads: ``OPENBLAS_NUM_THREADS`` (default 2) for NumPy and the same ``torch.set_num_threads``.
Run: ``.venv/bin/python bench/generation.py [--quick]``; prints one JSON line.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "2")
os.environ.setdefault("MKL_NUM_THREADS", "2")
os.environ.setdefault("OMP_NUM_THREADS", "2")

import argparse
import json
import statistics
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from time import perf_counter
from typing import Any

import numpy as np
import onnxruntime

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import machine  # bench/machine.py

from tracer.generation import generate
from tracer.generation.export import export_generate
from tracer.models import GPT2LMHeadModel

CONFIGS: dict[str, dict[str, Any]] = {
    "tiny": {"vocab_size": 99, "n_embd": 32, "n_layer": 2, "n_head": 4, "n_positions": 128},
    "small": {"vocab_size": 50257, "n_embd": 768, "n_layer": 12, "n_head": 12, "n_positions": 1024},
}


def prompts(vocab: int, lengths: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Left-padded random prompts (pad 0) and their attention mask."""
    rng = np.random.default_rng(0)
    width = max(lengths)
    ids, mask = np.zeros((len(lengths), width), np.int64), np.zeros((len(lengths), width), np.int64)
    for row, n in enumerate(lengths):
        ids[row, width - n :], mask[row, width - n :] = rng.integers(3, vocab, n), 1
    return ids, mask


def timed(fn: Callable[[], np.ndarray], runs: int) -> tuple[np.ndarray, list[float]]:
    """``fn``'s result and the wall seconds of ``runs`` calls after one warm-up."""
    out = fn()
    samples = []
    for _ in range(runs):
        start = perf_counter()
        fn()
        samples.append(perf_counter() - start)
    return out, samples


def bench(name: str, new: int, runs: int, torch: Any, transformers: Any) -> dict[str, Any]:
    """Tokens per second of both sides on config ``name``."""
    torch.manual_seed(0)
    config = transformers.GPT2Config(
        **CONFIGS[name], bos_token_id=1, eos_token_id=2, pad_token_id=0
    )
    theirs = transformers.GPT2LMHeadModel(config).eval()
    with tempfile.TemporaryDirectory() as folder:
        theirs.save_pretrained(folder)
        ours = GPT2LMHeadModel.from_pretrained(folder)
        export_generate(ours, Path(folder) / "generate.onnx", eos_token_id=[], pad_token_id=0)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = int(os.environ["OPENBLAS_NUM_THREADS"])
        session = onnxruntime.InferenceSession(
            str(Path(folder) / "generate.onnx"), options, providers=["CPUExecutionProvider"]
        )
    ids, mask = prompts(config.vocab_size, [12, 7, 16, 3])
    produced = ids.shape[0] * new

    def hf() -> np.ndarray:
        with torch.no_grad():
            out = theirs.generate(
                torch.from_numpy(ids), attention_mask=torch.from_numpy(mask), max_new_tokens=new,
                min_new_tokens=new, do_sample=False, pad_token_id=0,
            )  # fmt: skip
        return out.numpy()

    def eager() -> np.ndarray:
        return generate(
            ours, ids, new, attention_mask=mask, eos_token_id=[], pad_token_id=0
        ).numpy()

    def exported() -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": mask, "max_new_tokens": np.array(new)}
        return session.run(None, feeds)[0]

    ref, hf_s = timed(hf, runs)
    out, ours_s = timed(eager, runs)
    file_out, file_s = timed(exported, runs)
    row: dict[str, Any] = {"config": CONFIGS[name], "batch": ids.shape[0], "new_tokens": new}
    row["tokens_equal"] = bool(ref.shape == out.shape and (ref == out).all())
    row["exported_tokens_equal"] = bool(ref.shape == file_out.shape and (ref == file_out).all())
    columns = (
        ("graphcap_eager", ours_s),
        ("graphcap_exported_ort", file_s),
        ("transformers_torch", hf_s),
    )
    for key, samples in columns:
        row[key] = {
            "tokens_per_s_median": round(produced / statistics.median(samples), 1),
            "tokens_per_s_best": round(produced / min(samples), 1),
        }
    row["ratio_graphcap_over_transformers"] = round(
        row["graphcap_eager"]["tokens_per_s_median"]
        / row["transformers_torch"]["tokens_per_s_median"],
        3,
    )
    row["ratio_exported_over_transformers"] = round(
        row["graphcap_exported_ort"]["tokens_per_s_median"]
        / row["transformers_torch"]["tokens_per_s_median"],
        3,
    )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny config only, one run")
    parser.add_argument("--new", type=int, default=32, help="new tokens per row")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    import torch
    import transformers

    torch.set_num_threads(int(os.environ["OPENBLAS_NUM_THREADS"]))
    names = ["tiny"] if args.quick else ["tiny", "small"]
    runs = 1 if args.quick else args.runs
    results = {}
    for name in names:
        print(f"[generation] {name}", file=sys.stderr, flush=True)
        results[name] = bench(name, args.new, runs, torch, transformers)
    report = {
        "bench": "generation",
        "unit": "new tokens per second (greedy, batch 4, left-padded prompts)",
        "threads": int(os.environ["OPENBLAS_NUM_THREADS"]),
        "load_average_1m": round(os.getloadavg()[0], 2),
        **machine.environment(),
        "transformers": transformers.__version__,
        "results": results,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
