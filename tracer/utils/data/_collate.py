"""``default_collate`` and ``default_convert``: how ``DataLoader`` turns samples into batches."""

from __future__ import annotations

import collections.abc as cabc
from collections.abc import Sequence
from typing import Any

import numpy as np

import tracer


def _is_namedtuple(x: Any) -> bool:
    return isinstance(x, tuple) and hasattr(x, "_fields")


def default_collate(batch: Sequence[Any]) -> Any:
    """Stack a list of samples into a batch, as PyTorch's ``default_collate``.

    Tensors are stacked; NumPy arrays and scalars become stacked tensors; Python floats give a
    float64 tensor, ints an int64 one, bools a bool one; strings stay a list; dicts, named
    tuples and sequences are collated field by field (tuples and lists give lists).

    Raises:
        RuntimeError: sequences or tensors of different sizes.
        TypeError: an element of another type.
    """
    elem = batch[0]
    if isinstance(elem, tracer.Tensor):
        shapes = {tuple(t.shape) for t in batch}
        if len(shapes) > 1:
            raise RuntimeError(
                f"stack expects each tensor to be equal size, got shapes {sorted(shapes)}"
            )
        return tracer.stack(list(batch))
    if isinstance(elem, np.ndarray | np.generic) and elem.dtype.kind not in "USOa":
        return tracer.as_tensor(np.stack([np.asarray(b) for b in batch]))
    if isinstance(elem, float):
        return tracer.tensor(list(batch), dtype=tracer.float64)
    if isinstance(elem, int):
        return tracer.tensor(list(batch))
    if isinstance(elem, str | bytes):
        return list(batch)
    if isinstance(elem, cabc.Mapping):
        return {key: default_collate([d[key] for d in batch]) for key in elem}
    if _is_namedtuple(elem):
        return type(elem)(*(default_collate(list(s)) for s in zip(*batch, strict=True)))
    if isinstance(elem, cabc.Sequence):
        if len({len(e) for e in batch}) != 1:
            raise RuntimeError("each element in list of batch should be of equal size")
        return [default_collate(list(s)) for s in zip(*batch, strict=True)]
    raise TypeError(
        "default_collate: batch must contain tensors, numpy arrays, numbers, dicts or lists; "
        f"found {type(elem)}"
    )


def default_convert(data: Any) -> Any:
    """One sample with its NumPy arrays turned into tensors (no batching), as PyTorch's."""
    if isinstance(data, np.ndarray) and data.dtype.kind not in "USOa":
        return tracer.as_tensor(data)
    if isinstance(data, cabc.Mapping):
        return {k: default_convert(v) for k, v in data.items()}
    if _is_namedtuple(data):
        return type(data)(*(default_convert(d) for d in data))
    if isinstance(data, tuple):
        return [default_convert(d) for d in data]
    if isinstance(data, list):
        return [default_convert(d) for d in data]
    return data
