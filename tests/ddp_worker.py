"""One rank of the data-parallel tests: ``mpirun -n 2 python tests/ddp_worker.py OUT``.

Each rank trains examples/polarity.py's classifier (dropout off) on its
``DistributedSampler`` share of Rotten Tomatoes snippets, eagerly under
``DistributedDataParallel``, with gradient accumulation under ``no_sync``, and with
``compile_step``; it also runs the collectives on known values. It writes what it got to
``OUT/rank<r>.npz``; tests/tracer/test_distributed.py compares that with single-process training
on the global batches, which it rebuilds with the same functions below.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "examples")]

import polarity  # noqa: E402

import tracer  # noqa: E402
import tracer.nn.functional as F  # noqa: E402, N812
from tracer import nn, optim  # noqa: E402
from tracer.data import pad_collate  # noqa: E402
from tracer.utils.data import DataLoader, DistributedSampler  # noqa: E402

SNIPPETS = 480  # the corpus' first ones: enough text for a real vocabulary, quick to train
BATCH = 8  # per rank; the global batch is BATCH * world size
STEPS = 4
LR = 1e-2
DYNAMIC = {"ids": {0: "batch", 1: "seq"}, "labels": {0: "batch"}}


def data() -> polarity.Data:
    """The numericalized snippets (unigrams and bigrams)."""
    snippets = polarity.load_snippets(polarity.find_corpus())[:SNIPPETS]
    return polarity.prepare(snippets, test_fraction=0.1, seed=0, min_freq=1)


def model(vocab_size: int, seed: int) -> nn.Module:
    """The demo classifier without dropout (ranks draw different masks)."""
    tracer.manual_seed(seed)
    return polarity.PolarityClassifier(vocab_size, dim=16, dropout=0.0)


def shares(n: int, world: int, rank: int, epoch: int = 0) -> list[int]:
    """Rank ``rank``'s sample indices for ``epoch``, in order."""
    sampler = DistributedSampler(range(n), world, rank, shuffle=True, seed=5, drop_last=True)
    sampler.set_epoch(epoch)
    return list(sampler)


def batches(samples: list[Any], sampler: Any, size: int) -> Iterator[tuple[Any, ...]]:
    """``(ids, lengths, labels)`` batches of ``samples`` in ``sampler``'s order."""
    collate = pad_collate(padding_value=polarity.PAD)
    return iter(DataLoader(samples, size, sampler=sampler, collate_fn=collate, drop_last=True))


def loss_fn(net: nn.Module) -> Any:
    """``(ids, labels) -> mean cross-entropy`` of ``net``."""

    def loss(ids: tracer.Tensor, labels: tracer.Tensor) -> tracer.Tensor:
        return F.cross_entropy(net(ids), labels)

    return loss


def weights(net: nn.Module, prefix: str) -> dict[str, np.ndarray]:
    """``net``'s parameters by ``prefix/name``, as arrays."""
    return {f"{prefix}/{n}": p.detach().numpy().copy() for n, p in net.named_parameters()}


def _train_eager(d: polarity.Data, rank: int) -> dict[str, np.ndarray]:
    net = model(len(d.vocab), seed=rank)  # differs per rank: DDP must broadcast rank 0's
    # Buckets of 200 bytes: fc's bias and weight, then the embedding table.
    ddp = nn.parallel.DistributedDataParallel(net, bucket_cap_mb=0.0002)
    opt = optim.AdamW(ddp.parameters(), lr=LR, weight_decay=0.01)
    sampler = DistributedSampler(d.train, shuffle=True, seed=5, drop_last=True)
    it = batches(d.train, sampler, BATCH)
    for _ in range(STEPS):
        ids, _, labels = next(it)
        opt.zero_grad()
        F.cross_entropy(ddp(ids), labels).backward()
        opt.step()
    out = weights(net, "eager")
    out["eager/buckets"] = np.array([len(b.params) for b in ddp.reducer.buckets])
    out["eager/still_to_come"] = np.array(ddp.reducer.still_to_come)
    return out


def _train_accumulating(d: polarity.Data, rank: int) -> dict[str, np.ndarray]:
    """Two micro-batches per step: the first under ``no_sync``, the second synced."""
    net = model(len(d.vocab), seed=rank)
    ddp = nn.parallel.DistributedDataParallel(net)
    opt = optim.SGD(ddp.parameters(), lr=0.5, momentum=0.9)
    it = batches(d.train, DistributedSampler(d.train, shuffle=True, seed=5, drop_last=True), 4)
    for _ in range(2):
        opt.zero_grad()
        ids, _, labels = next(it)
        with ddp.no_sync():
            (F.cross_entropy(ddp(ids), labels) / 2).backward()
        local = {n: p.grad.numpy().copy() for n, p in net.named_parameters()}
        ids, _, labels = next(it)
        (F.cross_entropy(ddp(ids), labels) / 2).backward()
        opt.step()
    out = weights(net, "accumulate")
    out.update({f"accumulate_local/{n}": g for n, g in local.items()})
    return out


def _train_compiled(d: polarity.Data, rank: int) -> dict[str, np.ndarray]:
    net = model(len(d.vocab), seed=rank)
    ddp = nn.parallel.DistributedDataParallel(net)
    opt = optim.AdamW(ddp.parameters(), lr=LR, weight_decay=0.01)
    step = tracer.compile_step(loss_fn(ddp), opt, model=ddp, dynamic_axes=DYNAMIC)
    it = batches(d.train, DistributedSampler(d.train, shuffle=True, seed=5, drop_last=True), BATCH)
    for _ in range(STEPS):
        ids, _, labels = next(it)
        step(ids, labels)
    step.sync()
    out = weights(net, "compiled")
    out["compiled/captures"] = np.array(step.captures)
    return out


class _Partial(nn.Module):
    """A layer every rank uses, one only rank 1 uses, one no rank uses; a buffer."""

    def __init__(self, rank: int) -> None:
        super().__init__()
        self.shared, self.rank1, self.never = nn.Linear(3, 2), nn.Linear(3, 2), nn.Linear(3, 2)
        self.register_buffer("stat", tracer.full((2,), float(rank + 1)))

    def forward(self, x: tracer.Tensor, rank: int) -> tracer.Tensor:
        y = self.shared(x)
        return y + self.rank1(x) if rank == 1 else y


def _unused(rank: int) -> dict[str, np.ndarray]:
    ddp = nn.parallel.DistributedDataParallel(_Partial(rank))
    m = ddp.module
    buffers = [m.stat.numpy().copy()]  # rank 0's, broadcast by the wrapper
    m.stat.fill_(10.0 * (rank + 1))
    x = tracer.tensor(np.arange(6, dtype=np.float32).reshape(2, 3) + rank)
    ddp(x, rank).sum().backward()  # each forward broadcasts rank 0's buffers again
    buffers.append(m.stat.numpy().copy())
    out = {f"unused/{n}": p.grad.numpy() for n, p in m.named_parameters() if p.grad is not None}
    out["unused/never_is_none"] = np.array(m.never.weight.grad is None)
    out["unused/buffers"] = np.stack(buffers)
    return out


def _collectives(rank: int, world: int) -> dict[str, np.ndarray]:
    dist = tracer.distributed
    out: dict[str, np.ndarray] = {}
    t = tracer.tensor([1.0, 2.0, 3.0]) * (rank + 1)
    dist.all_reduce(t)
    out["c/sum"] = t.numpy()
    t = tracer.tensor([1.0, 2.0, 3.0]) * (rank + 1)
    dist.all_reduce(t, op=dist.ReduceOp.AVG, async_op=True).wait()
    out["c/avg"] = t.numpy()
    t = tracer.tensor([rank, -rank], dtype=tracer.int64)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    out["c/max"] = t.numpy()
    t = tracer.full((2, 2), float(rank)).t()  # not contiguous: copied back after
    dist.broadcast(t, src=world - 1)
    out["c/broadcast"] = t.numpy()
    got = [tracer.zeros(2) for _ in range(world)]
    dist.all_gather(got, tracer.tensor([rank, 10.0 * rank]))
    out["c/all_gather"] = np.stack([g.numpy() for g in got])
    dist.barrier()
    out["c/world"] = np.array([dist.get_rank(), dist.get_world_size()])
    return out


def main(out_dir: str) -> None:
    """Run every part on this rank and write ``rank<r>.npz`` into ``out_dir``."""
    tracer.distributed.init_process_group("mpi")
    rank, world = tracer.distributed.get_rank(), tracer.distributed.get_world_size()
    d = data()
    found = {
        **_collectives(rank, world),
        **_train_eager(d, rank),
        **_train_accumulating(d, rank),
        **_train_compiled(d, rank),
        **_unused(rank),
        "env": np.array([os.environ["RANK"], os.environ["WORLD_SIZE"]]),
    }
    tmp = Path(out_dir) / f".rank{rank}.tmp.npz"
    np.savez(tmp, **found)
    os.replace(tmp, Path(out_dir) / f"rank{rank}.npz")  # complete files only


if __name__ == "__main__":
    main(sys.argv[1])
