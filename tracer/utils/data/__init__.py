"""``tracer.utils.data``: ``torch.utils.data``'s datasets, samplers and ``DataLoader``.

``from torch.utils.data import DataLoader, Dataset`` becomes ``from tracer.utils.data import
DataLoader, Dataset``; ``DistributedSampler`` shares a dataset out among the processes
of ``tracer.distributed``. Text-specific helpers (tokenizers, vocabularies, padding,
length-bucketed batches) are in ``tracer.data``.
"""

from tracer.utils.data import dataloader, dataset, distributed, sampler
from tracer.utils.data._collate import default_collate, default_convert
from tracer.utils.data._worker import WorkerInfo, get_worker_info
from tracer.utils.data.dataloader import DataLoader
from tracer.utils.data.dataset import (
    ChainDataset,
    ConcatDataset,
    Dataset,
    IterableDataset,
    Subset,
    TensorDataset,
    random_split,
)
from tracer.utils.data.distributed import DistributedSampler
from tracer.utils.data.sampler import (
    BatchSampler,
    RandomSampler,
    Sampler,
    SequentialSampler,
    SubsetRandomSampler,
    WeightedRandomSampler,
)

__all__ = [
    "BatchSampler",
    "ChainDataset",
    "ConcatDataset",
    "DataLoader",
    "Dataset",
    "DistributedSampler",
    "IterableDataset",
    "RandomSampler",
    "Sampler",
    "SequentialSampler",
    "Subset",
    "SubsetRandomSampler",
    "TensorDataset",
    "WeightedRandomSampler",
    "WorkerInfo",
    "dataloader",
    "dataset",
    "default_collate",
    "default_convert",
    "distributed",
    "get_worker_info",
    "random_split",
    "sampler",
]
