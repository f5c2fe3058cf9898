"""Indexing of ``tracer.Tensor``: ``x[...]`` and ``x[...] = v`` with NumPy/PyTorch rules."""

from __future__ import annotations

from tracer._tensor_base import TensorBase


class IndexingMixin(TensorBase):
    """Indexing of ``tracer.Tensor``."""

    __slots__ = ()
