"""Smoke test of ``bench/compiled.py --quick``: one JSON line with every part measured.

The oracles are the benchmark's own checks against independent references: the compiled
training step's losses must follow graphcap eager's (and torch's, when installed) over the
first steps, every ONNX file's logits must match the eager model's, and the graphcap and torch
BERT files must compute the same hidden states on onnxruntime.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run_quick() -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "compiled.py"), "--quick", "--steps", "2"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=1200,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    return json.loads(lines[0])


@pytest.mark.slow
def test_compiled_bench_quick_reports_one_json_line() -> None:
    report = _run_quick()
    assert report["bench"] == "compiled"
    assert report["steps"] == 2
    assert report["optimizer"]["name"] == "AdamW"
    torch = report["torch"] is not None
    for name in ("transformer", "bilstm"):
        row = report["training"][name]
        check = row["check"]
        assert "graphcap_compiled_error" not in check, check
        for engine in ("graphcap_eager", "graphcap_compiled", *(["torch_eager"] if torch else [])):
            assert row[engine]["runs"] == 2, (name, engine)
            assert row[engine]["median_ms"] > 0, (name, engine)
        assert check["loss_max_rel_diff_graphcap_compiled"] < 1e-4, (name, check)
        assert check["weights_compiled_vs_eager"]["max_abs"] < 2 * 1e-3 * check["steps"], check
        if torch:
            assert check["loss_max_rel_diff_torch_eager"] < 1e-4, (name, check)
            assert row["ratio_graphcap_compiled_over_torch_eager"] > 0, name
    inference = report["inference"]
    assert inference["graphs"]["o3"]["nodes"] <= inference["graphs"]["o0"]["nodes"]
    for case in ("b1_s64", "b32_s128"):
        row = inference[case]
        assert row["graphcap_o3_ort"]["median_ms"] > 0, case
        assert max(row["max_abs_diff_vs_eager"].values()) < 1e-4, (case, row)
        if torch:
            assert row["ratio_graphcap_o3_ort_over_torch_onnx_ort"] > 0, case
    bert = report["export_bert"]
    assert bert["graphcap"]["total"]["median_s"] > 0
    if "total" in bert.get("torch_onnx", {}):
        assert bert["max_abs_diff_hidden"] < 1e-3, bert
