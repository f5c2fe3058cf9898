"""Smoke test of ``bench/ir_passes.py --quick``: one JSON line per measurement.

Beyond the format: the decomposed BERT (layer norm and GELU written out) must optimize to
exactly as many nodes as the one built from ``LayerNormalization`` and ``Gelu`` nodes, which
holds only when every layer norm and GELU was fused, and ``ir.grad`` must add nodes.
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
def test_ir_passes_bench_quick_reports_every_measurement() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "ir_passes.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    got = {(d["graph"], d["measure"]): d for d in lines}
    measures = ("grad", "optimize3_forward", "optimize3_joint")
    assert set(got) == {(g, m) for g in ("native", "decomposed") for m in measures}
    assert all(d["bench"] == "ir_passes" and d["median_s"] > 0 for d in lines)
    native, decomposed = got["native", "optimize3_forward"], got["decomposed", "optimize3_forward"]
    assert decomposed["nodes_before"] > native["nodes_before"]
    assert decomposed["nodes_after"] == native["nodes_after"]
    for graph in ("native", "decomposed"):
        grad = got[graph, "grad"]
        assert grad["nodes_after"] > grad["nodes_before"]
        assert got[graph, "optimize3_joint"]["nodes_before"] == grad["nodes_after"]
