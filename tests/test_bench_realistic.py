"""Smoke test of ``bench/realistic.py --quick``: one JSON line, every engine checked and timed.

The benchmark's own first-step check is the oracle: every engine starts from the same
weights and batch, so each first-step loss must match graphcap eager's (and torch's) to
float32 rounding.
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
def test_realistic_bench_quick_reports_one_json_line() -> None:
    pytest.importorskip("torch")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "realistic.py"),
            "--quick",
            "--only",
            "handwritten",
            "wlm_transformer",
            "--no-torch-compile",
        ],
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
    assert report["bench"] == "realistic"
    for name in ("handwritten", "wlm_transformer"):
        row = report["training"][name]
        rel = row["check"]["loss_rel_diff_vs_graphcap_eager"]
        for engine in ("graphcap_compile", "graphcap_compile_step", "torch_eager"):
            assert rel[engine] < 1e-5, (name, engine, row["check"])
            assert row["ms"][engine]["median_ms"] > 0
        case = report["inference"][name]["b1_s16"]
        assert case["graphcap_onnx"]["max_abs_diff_vs_eager"] < 1e-4
        assert case["torch_onnx"]["max_abs_diff_vs_eager"] < 1e-4
