"""Data-parallel training on 1 and 2 MPI processes: scaling efficiency and all-reduce cost.

The model is the transformer text classifier of ``bench/training.py`` (vocab 10,000, d 128,
2 post-norm layers, 4 heads, ff 512: 1.69 M parameters, 6.4 MiB of float32 gradients) under
``tracer.nn.parallel.DistributedDataParallel``, trained eagerly with Adam on random ids,
batch 16 x seq 64 per process (weak scaling: the global batch grows with the processes).
Each process runs NumPy with one BLAS thread, so 2 processes use 2 cores where 1 uses one.

The script runs itself under ``mpirun -n 1`` and ``mpirun -n 2`` (``--worker``) and prints
one JSON line per result:

- ``step`` (per world size): milliseconds per training step (``zero_grad``, forward, loss,
  ``backward`` with the gradients' all-reduce, Adam's update), median and minimum over the
  timed steps (every rank starts each step together, after a barrier; a step's time is
  the slowest rank's); ``backward_sync`` and ``backward_local``: the same without the
  update, with the all-reduce and under ``no_sync()`` (no communication);
  ``replicas_identical``: every rank ended with rank 0's weights;
- ``allreduce``: milliseconds of one blocking ``MPI_Allreduce`` of all the gradients in one
  flat buffer, between 2 processes (the communication a step needs, not overlapped);
- ``scaling``: the efficiency, step time on 1 process / step time on 2 (1.0 is perfect weak
  scaling), and the all-reduce overhead per step on 2: ``backward_sync`` minus
  ``backward_local``, the communication backward did not hide (bucket copies included),
  as the median of the differences of steps run one after the other (and as the
  difference of the minimums);
  ``communication_efficiency_2`` is 1 - overhead / step time: the efficiency the
  communication alone allows, what ``efficiency_2`` becomes when the two processes do not
  share cores with anything else.

Usage: ``python bench/distributed.py [--quick] [--steps N]``. Needs ``graphcap[distributed]``
(mpi4py and an ``mpirun``). Reports numbers; gates nothing. On a shared machine, read
``load_average_1m``: 2 processes need 2 idle cores for the efficiency to mean anything.
Waiting ranks yield their core (``OMPI_MCA_mpi_yield_when_idle=1`` unless set; 0 spins,
the faster choice on dedicated cores).
"""

from __future__ import annotations

import os

# One core per process, set before NumPy loads its BLAS (the caller's setting wins).
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

import machine  # bench/machine.py, beside this script

ROOT = Path(__file__).resolve().parent.parent

BATCH, SEQ = 16, 64
YIELD = "OMPI_MCA_mpi_yield_when_idle"
"""A rank waiting in MPI yields its core instead of spinning on it (Open MPI spins by
default): where the ranks share cores with other work, spinning slows the rank still
computing."""


def _worker(steps: int, rounds: int) -> None:
    """One rank: time steps, backward with and without sync, a raw all-reduce; rank 0 prints."""
    from training import TextClassifier  # bench/training.py's model

    import tracer
    import tracer.distributed as dist
    import tracer.nn.functional as F  # noqa: N812
    from tracer import optim
    from tracer.nn.parallel import DistributedDataParallel

    dist.init_process_group("mpi")
    rank, world = dist.get_rank(), dist.get_world_size()
    tracer.manual_seed(0)
    net = TextClassifier(max_len=SEQ)
    ddp = DistributedDataParallel(net)
    opt = optim.Adam(ddp.parameters(), lr=1e-3)
    rng = np.random.default_rng(rank)
    ids = tracer.tensor(rng.integers(1, 10_000, (BATCH, SEQ)))
    labels = tracer.tensor(rng.integers(0, 4, BATCH))

    def timed(update: bool = True) -> float:
        """One step from a common start, the slowest rank's milliseconds."""
        dist.barrier()
        start = time.perf_counter()
        opt.zero_grad()
        F.cross_entropy(ddp(ids), labels).backward()
        if update:
            opt.step()
        slowest = tracer.tensor([time.perf_counter() - start])
        dist.all_reduce(slowest, op=dist.ReduceOp.MAX)
        return float(slowest.item()) * 1e3

    def local() -> float:  # the same forward and backward, no communication; no update,
        with ddp.no_sync():  # which would leave the replicas apart
            return timed(update=False)

    for _ in range(2):
        timed()  # warm-up: first calls allocate, BLAS plans
    times: dict[str, list[float]] = {"step": [], "backward_sync": [], "backward_local": []}
    for _ in range(rounds * steps):  # alternated, so a change in the machine's load hits all
        times["step"].append(timed())
        times["backward_sync"].append(timed(update=False))
        times["backward_local"].append(local())
    # The replicas must still be identical after the timed steps (each rank saw other data).
    weights = np.concatenate([p.detach().numpy().reshape(-1) for p in net.parameters()])
    gathered = [tracer.zeros(weights.size) for _ in range(world)]
    dist.all_gather(gathered, tracer.tensor(weights))
    identical = all(np.array_equal(g.numpy(), weights) for g in gathered)
    numel = sum(p._data.size for p in net.parameters())
    flat = tracer.zeros(numel)
    reduce_ms = []
    for _ in range(max(5, steps)):
        dist.barrier()
        start = time.perf_counter()
        dist.all_reduce(flat)
        reduce_ms.append((time.perf_counter() - start) * 1e3)
    if rank == 0:
        print(
            json.dumps(
                {
                    "world": world,
                    **{f"{k}_ms": v for k, v in times.items()},
                    "allreduce_ms": reduce_ms,
                    "parameters": int(numel),
                    "buckets": len(ddp.reducer.buckets),
                    "replicas_identical": identical,
                }
            ),
            flush=True,
        )


def _mpirun() -> str:
    beside = Path(sys.executable).parent / "mpirun"
    found = str(beside) if beside.exists() else shutil.which("mpirun")
    if found is None:
        sys.exit("no mpirun: pip install 'graphcap[distributed]' (mpi4py and Open MPI)")
    return found


def _launch(n: int, steps: int, rounds: int) -> dict[str, Any]:
    """Run ``n`` worker processes on this machine; rank 0's JSON."""
    env = {
        "OMPI_MCA_btl": "self,sm",  # one machine: shared memory
        "OMPI_MCA_pml": "ob1",
        YIELD: "1",  # see YIELD
        "OMPI_ALLOW_RUN_AS_ROOT": "1",
        "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
        **os.environ,  # the caller's settings win
    }
    cmd = [_mpirun(), "-n", str(n), "--oversubscribe", sys.executable, __file__, "--worker"]
    cmd += ["--steps", str(steps), "--rounds", str(rounds)]
    print(f"running {' '.join(cmd[1:3])} ...", file=sys.stderr)
    done = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        sys.exit(f"mpirun -n {n} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return json.loads(lines[-1])


def _stats(values: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(values), 2), "min_ms": round(min(values), 2)}


def main() -> None:
    """Parse the arguments; run the workers (``--worker``) or drive them."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--quick", action="store_true", help="3 steps of each kind")
    p.add_argument("--steps", type=int, default=8, help="timed steps of each kind per round")
    p.add_argument("--rounds", type=int, default=3, help="rounds (steps x rounds of each kind)")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    steps, rounds = (3, 1) if args.quick else (args.steps, args.rounds)
    if args.worker:
        _worker(steps, rounds)
        return
    env = {
        **machine.environment(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "blas_threads": os.environ["OPENBLAS_NUM_THREADS"],
        "mpi_yield_when_idle": os.environ.get(YIELD, "1"),
        "batch_per_process": [BATCH, SEQ],
    }
    runs = {n: _launch(n, steps, rounds) for n in (1, 2)}
    for n, run in runs.items():
        line = {"result": "step", "world": n, "parameters": run["parameters"]}
        line |= {"buckets": run["buckets"], "replicas_identical": run["replicas_identical"]}
        for kind in ("step", "backward_sync", "backward_local"):
            line[kind] = _stats(run[f"{kind}_ms"])
        print(json.dumps(line | env), flush=True)
    two = runs[2]
    grad_mb = round(two["parameters"] * 4 / 2**20, 2)
    print(json.dumps({"result": "allreduce", "world": 2, "gradient_mib": grad_mb,
                      **_stats(two["allreduce_ms"]), **env}), flush=True)  # fmt: skip
    t1 = statistics.median(runs[1]["step_ms"])
    t2 = statistics.median(two["step_ms"])
    # Paired: each synced backward against the local one that ran right after it.
    pairs = zip(two["backward_sync_ms"], two["backward_local_ms"], strict=True)
    overhead = statistics.median(a - b for a, b in pairs)
    best = min(two["backward_sync_ms"]) - min(two["backward_local_ms"])
    scaling = {
        "result": "scaling",
        "efficiency_2": round(t1 / t2, 3),
        "samples_per_s": {"1": round(BATCH / t1 * 1e3, 1), "2": round(2 * BATCH / t2 * 1e3, 1)},
        "allreduce_overhead_ms_per_step": round(overhead, 2),
        "allreduce_overhead_ms_from_minimums": round(best, 2),
        "overhead_fraction_of_step": round(overhead / t2, 3),
        # What communication alone leaves of perfect scaling: the efficiency when each
        # process has a core of its own (then only the overhead separates t2 from t1).
        "communication_efficiency_2": round(1 - overhead / t2, 3),
    }
    print(json.dumps(scaling | env), flush=True)


if __name__ == "__main__":
    main()
