"""``DistributedSampler`` against torch's (same shares, padding, drop_last, epochs)."""

from __future__ import annotations

import numpy as np
import pytest

import tracer
from tracer.utils.data import DataLoader, DistributedSampler, TensorDataset

CASES = [(10, 3, False), (10, 3, True), (9, 3, False), (2, 5, False), (11, 4, True), (1, 3, False)]


@pytest.mark.parametrize(("n", "replicas", "drop_last"), CASES)
@pytest.mark.parametrize("shuffle", [False, True])
def test_shares_match_torch(
    n: int, replicas: int, drop_last: bool, shuffle: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.data.distributed import DistributedSampler as TorchSampler

    if shuffle:  # replay torch's permutation for the same seed, to compare the rest exactly
        seeds: list[int] = []

        def randperm(k: int, *, generator: tracer.Generator) -> tracer.Tensor:
            seeds.append(generator.initial_seed())
            g = torch.Generator().manual_seed(seeds[-1])
            return tracer.tensor(torch.randperm(k, generator=g).numpy())

        monkeypatch.setattr(tracer, "randperm", randperm)
    for epoch in (0, 3):
        shares = []
        for rank in range(replicas):
            ours = DistributedSampler(range(n), replicas, rank, shuffle, 7, drop_last)
            theirs = TorchSampler(range(n), replicas, rank, shuffle, 7, drop_last)
            ours.set_epoch(epoch)
            theirs.set_epoch(epoch)
            assert list(ours) == list(theirs)
            assert len(ours) == len(theirs) == len(list(ours))
            shares.append(list(ours))
        covered = sorted(i for share in shares for i in share)
        if drop_last:  # disjoint shares of equal size
            assert len(set(covered)) == len(covered) == (n // replicas) * replicas
        else:  # everything, padded with the first indices
            assert set(covered) == set(range(n))
    if shuffle:
        assert set(seeds) == {7, 10}  # seed + epoch


def test_epochs_reshuffle_the_same_way_on_every_rank() -> None:
    order = {}
    for rank in range(2):
        s = DistributedSampler(range(20), num_replicas=2, rank=rank, seed=3)
        order[rank, 0] = list(s)
        s.set_epoch(1)
        order[rank, 1] = list(s)
    assert order[0, 0] != order[0, 1]  # a new order each epoch
    for epoch in range(2):  # the two ranks split one permutation
        assert sorted(order[0, epoch] + order[1, epoch]) == list(range(20))
    again = DistributedSampler(range(20), num_replicas=2, rank=0, seed=3)
    assert list(again) == order[0, 0]


def test_with_a_dataloader() -> None:
    data = TensorDataset(tracer.arange(10))
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(data, num_replicas=2, rank=rank, shuffle=False)
        seen.append([b[0].tolist() for b in DataLoader(data, batch_size=2, sampler=sampler)])
    assert seen == [[[0, 2], [4, 6], [8]], [[1, 3], [5, 7], [9]]]
    flat = [i for share in seen for batch in share for i in batch]
    np.testing.assert_array_equal(sorted(flat), np.arange(10))


def test_bad_rank_and_no_group() -> None:
    with pytest.raises(
        ValueError, match=r"Invalid rank 2, rank should be in the interval \[0, 1\]"
    ):
        DistributedSampler(range(4), num_replicas=2, rank=2)
    with pytest.raises(ValueError, match="init_process_group"):
        DistributedSampler(range(4))
