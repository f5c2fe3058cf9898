"""Smoke test of ``bench/distributed.py --quick``: one JSON line per result, replicas in sync.

The oracle is the benchmark's own check: after its timed steps (each rank on different
data), every rank holds rank 0's weights exactly. Skips without mpi4py or an ``mpirun``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.tracer.test_distributed import mpi_env, mpirun_command

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_distributed_bench_quick_reports_scaling() -> None:
    mpirun_command(2)  # skips, naming the extra, without MPI
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "distributed.py"), "--quick"],
        capture_output=True, text=True, cwd=ROOT, env=mpi_env(), timeout=900, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-4000:]
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [r["result"] for r in lines] == ["step", "step", "allreduce", "scaling"]
    for row, world in zip(lines[:2], (1, 2), strict=True):
        assert row["world"] == world and row["replicas_identical"] is True
        for kind in ("step", "backward_sync", "backward_local"):
            assert row[kind]["median_ms"] > 0, kind
    assert lines[2]["median_ms"] > 0 and lines[2]["gradient_mib"] > 6
    assert 0 < lines[3]["efficiency_2"] < 2
