"""The BiLSTM tagger's compiled training step against torch eager, in CPU time.

Prints ONE JSON line: milliseconds of CPU time per AdamW step (median and minimum over
``--rounds`` rounds of 3 timed steps, each round running every side once to warm up
first, sides interleaved), for ``bench/training.py``'s BiLSTM tagger (embedding 10k x 100,
one bidirectional LSTM layer of 128, linear to 9 tags, cross-entropy over every position),
batch 32 x seq 50:

- ``compile_step``: ``tracer.compile_step`` on onnxruntime, one intra-op thread;
- ``compile_step_forward_lstm_kept``: the same, with the ablation of
  ``ir.lower_recurrent``'s forward replacement (the graph keeps the ``LSTM`` node and
  recomputes the states in its ``Scan``s, as before that change);
- ``torch_eager``: torch with one thread.

CPU time, not wall time: on a shared machine a descheduled process does not count. The
losses of all sides are checked equal first. Usage: ``OPENBLAS_NUM_THREADS=1 python
bench/bilstm_step.py [--rounds N]``. Reports numbers; gates nothing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import machine  # bench/machine.py, beside this script
import training  # bench/training.py: the model and its torch twin

import ir.lower_recurrent
import runtime.ort_backend
import tracer
from tracer.nn import functional as F  # noqa: N812 - PyTorch's customary name


def _one_ort_thread() -> None:
    options = runtime.ort_backend._session_options
    runtime.ort_backend._session_options = lambda ort, _threads, level: options(ort, 1, level)


def _graphcap_step(ids: Any, tags: Any, keep_forward_lstm: bool) -> Any:
    tracer.manual_seed(0)
    model = training.BiLSTMTagger()
    opt = tracer.optim.AdamW(model.parameters(), lr=1e-3)

    def loss_fn(i: Any, t: Any) -> Any:
        return F.cross_entropy(model(i).reshape(-1, 9), t.reshape(-1))

    step = tracer.compile_step(loss_fn, opt, model=model)
    found = ir.lower_recurrent._forward_node
    if keep_forward_lstm:  # the ablation: the lowering finds no forward node to replace
        ir.lower_recurrent._forward_node = lambda *_: None
    try:
        step(ids, tags)  # captured here
    finally:
        ir.lower_recurrent._forward_node = found
    return lambda: step(ids, tags)


def _torch_step(ids: np.ndarray, tags: np.ndarray) -> Any:
    import torch

    torch.set_num_threads(1)
    tracer.manual_seed(0)
    ours = training.BiLSTMTagger()
    theirs = training.torch_bilstm_tagger()
    state = {k: torch.from_numpy(v.detach().numpy().copy()) for k, v in ours.state_dict().items()}
    theirs.load_state_dict(state)
    opt = torch.optim.AdamW(theirs.parameters(), lr=1e-3)
    ti, tt = torch.from_numpy(ids), torch.from_numpy(tags)

    def step() -> Any:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(theirs(ti).reshape(-1, 9), tt.reshape(-1))
        loss.backward()
        opt.step()
        return loss

    step()  # the first step, as graphcap's capture step
    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8, help="rounds of 3 timed steps")
    args = parser.parse_args()
    _one_ort_thread()
    rng = np.random.default_rng(0)
    ids = rng.integers(1, training.BILSTM["vocab"], size=(32, 50))
    tags = rng.integers(0, training.BILSTM["tags"], size=(32, 50))
    sides = {
        "compile_step": _graphcap_step(tracer.tensor(ids), tracer.tensor(tags), False),
        "compile_step_forward_lstm_kept": _graphcap_step(
            tracer.tensor(ids), tracer.tensor(tags), True
        ),
        "torch_eager": _torch_step(ids, tags),
    }
    # Only meaningful if every side computes the same step (second steps, same state).
    losses = {k: float(step().item()) for k, step in sides.items()}
    assert max(losses.values()) - min(losses.values()) < 1e-5, losses
    times: dict[str, list[float]] = {k: [] for k in sides}
    for _ in range(args.rounds):
        for name, step in sides.items():
            step()
            for _ in range(3):
                t0 = time.process_time_ns()
                step()
                times[name].append((time.process_time_ns() - t0) / 1e6)
    results: dict[str, Any] = {
        k: {"median_ms": round(statistics.median(v), 2), "min_ms": round(min(v), 2)}
        for k, v in times.items()
    }
    torch_ms = results["torch_eager"]["median_ms"]
    for k in ("compile_step", "compile_step_forward_lstm_kept"):
        results[k]["over_torch_eager"] = round(results[k]["median_ms"] / torch_ms, 2)
    report = {
        "bench": "bilstm_step",
        "unit": "ms of CPU time per step, one thread each",
        "batch_seq": [32, 50],
        **machine.environment(),
        "losses": losses,
        "results": results,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
