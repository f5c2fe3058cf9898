"""``Flatten`` and ``Unflatten`` with PyTorch's arguments (``torch.nn.modules.flatten``)."""

from __future__ import annotations

from collections.abc import Sequence

from ir.ops.registry import op
from tracer.nn.module import Module
from tracer.tensor import Tensor

__all__ = ["Flatten", "Unflatten"]


class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` into one (by default all but the batch dim).

    The default ``Flatten()`` on an input of rank 2 or more is one ONNX Flatten node
    (``axis=1``); other ranges are a Reshape.
    """

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, input: Tensor) -> Tensor:
        """``input`` with the dims merged."""
        if self.start_dim == 1 and self.end_dim == -1 and input.ndim >= 2:
            return op.Flatten(input, axis=1)
        return input.flatten(self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        """PyTorch's settings line."""
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"


class Unflatten(Module):
    """Split dim ``dim`` into ``unflattened_size`` (one entry may be -1).

    Raises:
        TypeError: ``unflattened_size`` is not a sequence of ints.
    """

    def __init__(self, dim: int, unflattened_size: Sequence[int]) -> None:
        super().__init__()
        if not isinstance(unflattened_size, Sequence) or not all(
            isinstance(s, int) for s in unflattened_size
        ):
            raise TypeError(
                "unflattened_size must be a tuple of ints, but found type "
                f"{type(unflattened_size).__name__}"
            )
        self.dim = dim
        self.unflattened_size = tuple(unflattened_size)

    def forward(self, input: Tensor) -> Tensor:
        """``input`` with dim ``dim`` split."""
        return input.unflatten(self.dim, self.unflattened_size)

    def extra_repr(self) -> str:
        """PyTorch's settings line."""
        return f"dim={self.dim}, unflattened_size={self.unflattened_size}"
