"""``CosineSimilarity`` and ``PairwiseDistance`` (``torch.nn.modules.distance``)."""

from __future__ import annotations

from tracer.nn import functional as F  # noqa: N812 - PyTorch's conventional name
from tracer.nn.module import Module
from tracer.tensor import Tensor

__all__ = ["CosineSimilarity", "PairwiseDistance"]


class CosineSimilarity(Module):
    """Cosine similarity of ``x1`` and ``x2`` along ``dim``; see ``F.cosine_similarity``."""

    def __init__(self, dim: int = 1, eps: float = 1e-8) -> None:
        super().__init__()
        self.dim = dim
        self.eps = eps

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        """The similarity; ``x1`` and ``x2`` broadcast."""
        return F.cosine_similarity(x1, x2, self.dim, self.eps)


class PairwiseDistance(Module):
    """``p``-norm distance of ``x1`` and ``x2`` along the last dim; see ``F.pairwise_distance``."""

    def __init__(self, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False) -> None:
        super().__init__()
        self.norm = p
        self.eps = eps
        self.keepdim = keepdim

    def forward(self, x1: Tensor, x2: Tensor) -> Tensor:
        """The distance; ``x1`` and ``x2`` broadcast."""
        return F.pairwise_distance(x1, x2, self.norm, self.eps, self.keepdim)
