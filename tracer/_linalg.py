"""Matrix products with PyTorch's shape rules: ``mm``, ``bmm``, ``mv`` and ``addmm`` / ``baddbmm``.

Each checks the ranks and sizes PyTorch checks (``matmul`` would broadcast instead) and
lowers to the registry's MatMul, so it records, differentiates and exports like ``@``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ir.ops.registry import op
from tracer._math import method
from tracer._tensor_base import TensorBase

if TYPE_CHECKING:
    from tracer.tensor import Tensor


def _rank(x: Any, rank: int, what: str) -> None:
    if not isinstance(x, TensorBase):
        raise TypeError(f"{what} must be a tensor, got {type(x).__name__}")
    if x._data.ndim != rank:
        raise RuntimeError(f"{what} must be a {rank}D tensor, got {x._data.ndim}D")


def _scaled_sum(input: Any, product: Any, beta: float, alpha: float) -> Any:
    """``beta * input + alpha * product``; with ``beta == 0`` input is ignored (NaNs too)."""
    if alpha != 1:
        product = product * alpha
    if beta == 0:
        return product
    return product + (input if beta == 1 else input * beta)


class LinalgMixin(TensorBase):
    """``mm``, ``bmm``, ``mv``, ``addmm`` and ``baddbmm`` of ``tracer.Tensor``."""

    __slots__ = ()

    def mm(self, mat2: TensorBase) -> Tensor:
        """The product of two matrices ``[n, m] @ [m, p]``.

        Raises:
            RuntimeError: an operand that is not 2-d, or inner sizes that differ.
        """
        _rank(self, 2, "self")
        _rank(mat2, 2, "mat2")
        if self._data.shape[1] != mat2._data.shape[0]:
            raise RuntimeError(
                f"mat1 and mat2 shapes cannot be multiplied ({self._data.shape[0]}x"
                f"{self._data.shape[1]} and {mat2._data.shape[0]}x{mat2._data.shape[1]})"
            )
        return method(op.MatMul, self, mat2)

    def mv(self, vec: TensorBase) -> Tensor:
        """The product of a matrix ``[n, m]`` and a vector ``[m]``.

        Raises:
            RuntimeError: wrong ranks or sizes.
        """
        _rank(self, 2, "self")
        _rank(vec, 1, "vec")
        if self._data.shape[1] != vec._data.shape[0]:
            raise RuntimeError(
                f"size mismatch, got input ({self._data.shape[0]}), mat "
                f"({self._data.shape[0]}x{self._data.shape[1]}), vec ({vec._data.shape[0]})"
            )
        return method(op.MatMul, self, vec)

    def bmm(self, mat2: TensorBase) -> Tensor:
        """Batched matrix product ``[b, n, m] @ [b, m, p] -> [b, n, p]`` (no broadcasting).

        Raises:
            RuntimeError: an operand that is not 3-d, or batch or inner sizes that differ.
        """
        _rank(self, 3, "batch1")
        _rank(mat2, 3, "batch2")
        b, _, m = self._data.shape
        if mat2._data.shape[:2] != (b, m):
            raise RuntimeError(
                f"Expected size for first two dimensions of batch2 tensor to be: [{b}, {m}] "
                f"but got: [{mat2._data.shape[0]}, {mat2._data.shape[1]}]."
            )
        return method(op.MatMul, self, mat2)

    def addmm(
        self, mat1: TensorBase, mat2: TensorBase, *, beta: float = 1, alpha: float = 1
    ) -> Tensor:
        """``beta * self + alpha * (mat1 @ mat2)`` (``self`` broadcasts to the product)."""
        return _scaled_sum(self, mat1.mm(mat2), beta, alpha)  # type: ignore[attr-defined]

    def baddbmm(
        self, batch1: TensorBase, batch2: TensorBase, *, beta: float = 1, alpha: float = 1
    ) -> Tensor:
        """``beta * self + alpha * bmm(batch1, batch2)`` (``self`` broadcasts to the product)."""
        return _scaled_sum(self, batch1.bmm(batch2), beta, alpha)  # type: ignore[attr-defined]
