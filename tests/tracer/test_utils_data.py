"""``tracer.utils.data``: ``torch.utils.data``'s datasets, samplers and ``DataLoader``.

Checked against torch where torch is installed (same batches, same split sizes, the same
interleaving of worker streams), and for worker processes: order, seeds, sharding,
``worker_init_fn``, errors raised in the main process, persistent workers and options.
"""

from __future__ import annotations

import random

import numpy as np
import pytest

import tracer
from tracer.utils.data import (
    ChainDataset,
    ConcatDataset,
    DataLoader,
    Dataset,
    IterableDataset,
    RandomSampler,
    Subset,
    SubsetRandomSampler,
    TensorDataset,
    WeightedRandomSampler,
    get_worker_info,
    random_split,
)


def _lists(loader: DataLoader) -> list:
    return [[x.tolist() for x in b] if isinstance(b, list | tuple) else b.tolist() for b in loader]


class Squares(Dataset):
    def __len__(self) -> int:
        return 7

    def __getitem__(self, i: int) -> tuple[int, float]:
        return i, float(i * i)


class Shards(IterableDataset):
    """0..n-1, split among workers by ``get_worker_info`` (as PyTorch's docs do)."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __iter__(self):
        info = get_worker_info()
        start, step = (0, 1) if info is None else (info.id, info.num_workers)
        return iter(range(start, self.n, step))


class Fails(Dataset):
    def __len__(self) -> int:
        return 6

    def __getitem__(self, i: int) -> int:
        if i == 3:
            raise KeyError("sample 3 is missing")
        return i


def _seed_of_worker(_: int) -> tuple[int, int, float]:
    info = get_worker_info()
    assert info is not None
    return info.id, info.seed, random.random()


class WorkerSeeds(Dataset):
    def __len__(self) -> int:
        return 4

    def __getitem__(self, i: int) -> tuple[int, int, float]:
        return _seed_of_worker(i)


def test_datasets_match_torch() -> None:
    torch_data = pytest.importorskip("torch.utils.data")
    a, b = list(range(5)), list(range(10, 13))
    ours, theirs = ConcatDataset([a, b]), torch_data.ConcatDataset([a, b])
    assert len(ours) == len(theirs) == 8
    assert [ours[i] for i in range(-8, 8)] == [theirs[i] for i in range(-8, 8)]
    assert ours.cumulative_sizes == theirs.cumulative_sizes
    with pytest.raises(IndexError):
        ours[8]
    assert len(Squares() + Squares()) == 14
    assert list(ChainDataset([Shards(2), Shards(3)])) == [0, 1, 0, 1, 2]
    s = Subset(list("abcdef"), [4, 0])
    assert (len(s), s[0], s[[1, 0]]) == (2, "e", ["a", "e"])
    for lengths in ([3, 4], [0.5, 0.5], [0.3, 0.3, 0.4], [0.25, 0.75]):
        got = [len(p) for p in random_split(range(7), lengths)]
        want = [len(p) for p in torch_data.random_split(range(7), lengths)]
        assert got == want
    parts = random_split(range(10), [3, 7], generator=tracer.Generator().manual_seed(4))
    again = random_split(range(10), [3, 7], generator=tracer.Generator().manual_seed(4))
    assert [list(p) for p in parts] == [list(p) for p in again]
    assert sorted(list(parts[0]) + list(parts[1])) == list(range(10))
    with pytest.raises(ValueError, match="add up"):
        random_split(range(10), [3, 3])
    with pytest.raises(TypeError, match="ChainDataset"):
        ConcatDataset([Shards(2)])


def test_samplers() -> None:
    g = tracer.Generator().manual_seed(0)
    order = list(RandomSampler(range(6), generator=g))
    assert sorted(order) == list(range(6))
    assert len(list(RandomSampler(range(3), num_samples=7))) == 7
    drawn = list(RandomSampler(range(3), replacement=True, num_samples=50))
    assert set(drawn) <= {0, 1, 2} and len(drawn) == 50
    assert sorted(SubsetRandomSampler([5, 7, 9])) == [5, 7, 9]
    tracer.manual_seed(0)
    weighted = list(WeightedRandomSampler([0.0, 1.0, 0.0, 3.0], 400))
    assert set(weighted) == {1, 3} and 0.65 < weighted.count(3) / 400 < 0.85
    with pytest.raises(ValueError):
        RandomSampler(range(3), num_samples=0)


def test_dataloader_batches_match_torch() -> None:
    torch_data = pytest.importorskip("torch.utils.data")
    x = np.arange(20, dtype=np.float32).reshape(10, 2)
    ours = DataLoader(TensorDataset(tracer.tensor(x), tracer.arange(10)), batch_size=4)
    import torch

    theirs = torch_data.DataLoader(
        torch_data.TensorDataset(torch.tensor(x), torch.arange(10)), batch_size=4
    )
    assert _lists(ours) == [[t.tolist() for t in b] for b in theirs]
    assert len(ours) == len(theirs) == 3
    squares = DataLoader(Squares(), batch_size=3, collate_fn=lambda b: [s[1] for s in b])
    assert list(squares) == [[0.0, 1.0, 4.0], [9.0, 16.0, 25.0], [36.0]]
    default = next(iter(DataLoader(Squares(), batch_size=2)))
    assert default[0].dtype == np.int64 and default[1].dtype == np.float64  # torch's collate


def test_workers_deliver_the_same_batches_in_order() -> None:
    data = TensorDataset(tracer.arange(30).reshape(15, 2))
    alone = _lists(DataLoader(data, batch_size=4))
    for workers, prefetch in [(1, None), (2, 1), (3, 4)]:
        loader = DataLoader(data, batch_size=4, num_workers=workers, prefetch_factor=prefetch)
        assert _lists(loader) == alone
    shuffled = DataLoader(data, batch_size=4, shuffle=True, num_workers=2, seed=3)
    again = DataLoader(data, batch_size=4, shuffle=True, seed=3)
    assert _lists(shuffled) == _lists(again)


def test_iterable_dataset_workers_interleave_like_torch() -> None:
    ours = _lists(DataLoader(Shards(10), batch_size=2, num_workers=2))
    assert ours == [[0, 2], [1, 3], [4, 6], [5, 7], [8], [9]]
    assert _lists(DataLoader(Shards(10), batch_size=2)) == [[0, 1], [2, 3], [4, 5], [6, 7], [8, 9]]
    with pytest.raises(ValueError, match="IterableDataset"):
        DataLoader(Shards(3), shuffle=True)


def test_worker_seeds_init_fn_and_errors() -> None:
    loader = DataLoader(
        WorkerSeeds(), batch_size=None, num_workers=2, generator=tracer.Generator().manual_seed(1)
    )
    rows = [tuple(r) for r in loader]
    ids, seeds = [r[0] for r in rows], [r[1] for r in rows]
    assert ids == [0, 1, 0, 1] and seeds[1] == seeds[0] + 1  # base_seed + worker_id
    with pytest.raises(KeyError, match="in DataLoader worker process"):
        list(DataLoader(Fails(), batch_size=2, num_workers=2))

    def broken_init(worker_id: int) -> None:
        raise ValueError(f"no setup for {worker_id}")

    with pytest.raises(ValueError, match="no setup"):
        list(DataLoader(Squares(), num_workers=1, worker_init_fn=broken_init))


def test_persistent_workers_serve_several_epochs() -> None:
    loader = DataLoader(Shards(6), batch_size=2, num_workers=2, persistent_workers=True)
    first, second = _lists(loader), _lists(loader)
    assert first == second == [[0, 2], [1, 3], [4], [5]]
    assert loader._workers is not None and all(p.is_alive() for p in loader._workers._workers)
    loader._workers.shutdown()


def test_dataloader_options_are_checked_as_torch_does() -> None:
    for kwargs, match in [
        ({"num_workers": -1}, "non-negative"),
        ({"prefetch_factor": 2}, "prefetch_factor"),
        ({"persistent_workers": True}, "persistent_workers"),
        ({"timeout": -1}, "timeout"),
        ({"sampler": [0], "shuffle": True}, "mutually exclusive"),
    ]:
        with pytest.raises(ValueError, match=match):
            DataLoader(list(range(4)), **kwargs)
    with pytest.warns(UserWarning, match="pin_memory"):
        loader = DataLoader(list(range(4)), batch_size=2, pin_memory=True)
    assert _lists(loader) == [[0, 1], [2, 3]]
