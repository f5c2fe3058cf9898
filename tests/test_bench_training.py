"""Smoke test of ``bench/training.py --quick``: one JSON line, both models checked and timed.

The benchmark's own one-step check is the oracle: in float64, graphcap's training step (loss,
gradients, Adam-updated weights) must match torch's to rounding, for the transformer classifier
and the BiLSTM tagger. BLAS and torch run one thread each so that a busy machine does not
stall the run on thread hand-offs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_training_bench_quick_reports_one_json_line() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "training.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    report = json.loads(lines[0])
    assert report["bench"] == "training"
    assert report["threads"] == {"torch": 1, "blas": 1}
    for name in ("transformer", "bilstm"):
        row = report["results"][name]
        assert row["graphcap_eager"]["median_ms"] > 0, name
        assert row["graphcap_eager"]["runs"] == 3, name
        if report["torch"] is None:
            continue
        assert row["torch_eager"]["median_ms"] > 0, name
        assert row["ratio_graphcap_over_torch"] > 0, name
        f64, f32 = row["check"]["float64"], row["check"]["float32"]
        assert f64["loss_abs_diff"] < 1e-12, (name, f64)
        assert f64["grad"]["max_abs"] < 1e-12, (name, f64)
        assert f64["weights_after_step"]["max_abs"] < 1e-12, (name, f64)
        assert f32["loss_abs_diff"] < 1e-5, (name, f32)
    if report["torch"] is not None:
        assert isinstance(report["target"]["held"], bool)
