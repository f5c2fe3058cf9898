"""Building blocks for dtype/shape rules, with symbolic dimensions.

Broadcasting follows NumPy (and ONNX multidirectional broadcasting). With symbols: 1 and d
give d; equal dims give that dim; an int other than 1 against a symbol gives the int (the
symbol must equal it at run time); two different symbols give an unknown dim.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from ir.errors import DTypeError, ShapeError
from ir.ops.registry import InferContext
from ir.types import Dim, Shape, TensorType

MAX_RANK = 64
"""The most axes a tensor may have (NumPy's limit); a rank read off a file is checked."""


def unknown_dims(rank: Dim, what: str) -> tuple[Dim, ...] | None:
    """``rank`` unknown dims, or None when the rank itself is not a known int.

    Raises:
        ShapeError: ``rank`` is negative or above ``MAX_RANK`` (a shape read from a file).
    """
    if not isinstance(rank, int):
        return None
    if not 0 <= rank <= MAX_RANK:
        raise ShapeError(f"{what} gives rank {rank}; ranks are 0..{MAX_RANK}")
    return (None,) * rank


def broadcast_dim(a: Dim, b: Dim) -> Dim:
    """Broadcast two dimensions.

    Raises:
        ShapeError: two different fixed sizes, neither of them 1.
    """
    if a == b:
        return a
    if a == 1:
        return b
    if b == 1:
        return a
    if isinstance(a, int) and isinstance(b, int):
        raise ShapeError(f"dimensions {a} and {b} do not broadcast")
    if isinstance(a, int):
        return a
    if isinstance(b, int):
        return b
    return None


def broadcast_shapes(*shapes: Shape) -> Shape:
    """NumPy broadcasting of shapes that may hold symbols.

    Raises:
        ShapeError: the shapes do not broadcast; the message lists them.
    """
    rank = max((len(s) for s in shapes), default=0)
    padded = [(1,) * (rank - len(s)) + tuple(s) for s in shapes]
    out: list[Dim] = []
    for axis in range(rank):
        dim: Dim = 1
        for s in padded:
            try:
                dim = broadcast_dim(dim, s[axis])
            except ShapeError:
                shown = " and ".join(_fmt(s) for s in shapes)
                raise ShapeError(f"shapes {shown} do not broadcast (axis {axis})") from None
        out.append(dim)
    return tuple(out)


def _fmt(shape: Shape) -> str:
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def same_dtype(types: Iterable[TensorType | None], what: str = "inputs") -> np.dtype:
    """The common dtype of ``types`` (None entries are skipped).

    Raises:
        DTypeError: the dtypes differ; ONNX ops do not promote.
    """
    dtypes = {t.dtype for t in types if t is not None}
    if len(dtypes) != 1:
        raise DTypeError(
            f"{what} must share one dtype (ONNX does not promote), got {sorted(map(str, dtypes))}"
        )
    return dtypes.pop()


def check_dtype(t: TensorType, allowed: Iterable[np.dtype], what: str = "input") -> None:
    """Raise DTypeError when ``t.dtype`` is not in ``allowed``."""
    allowed = frozenset(allowed)
    if t.dtype not in allowed:
        raise DTypeError(f"{what} has dtype {t.dtype}; expected one of {sorted(map(str, allowed))}")


def broadcast_types(types: Sequence[TensorType], dtype: np.dtype | None = None) -> TensorType:
    """Type of an elementwise op over broadcast inputs; ``dtype`` overrides the output dtype."""
    common = same_dtype(types)
    if any(t.shape is None for t in types):
        return TensorType(dtype or common, None)
    return TensorType(
        dtype or common, broadcast_shapes(*(t.shape for t in types if t.shape is not None))
    )


def same(ctx: InferContext, x: TensorType, *rest: TensorType | None, **attrs: object) -> TensorType:
    """Rule of ops whose output has the type of their first input."""
    del ctx, rest, attrs
    return x


def elementwise(ctx: InferContext, *types: TensorType, **attrs: object) -> TensorType:
    """Rule of broadcasting ops whose output dtype is the inputs' common dtype."""
    del ctx, attrs
    return broadcast_types(types)


def predicate(ctx: InferContext, *types: TensorType, **attrs: object) -> TensorType:
    """Rule of broadcasting comparisons and logic ops: a bool output."""
    del ctx, attrs
    return broadcast_types(types, dtype=np.dtype(np.bool_))


def normalize_axis(axis: int, rank: int, what: str = "axis") -> int:
    """``axis`` in ``[0, rank)``, counting negative axes from the end.

    Raises:
        ShapeError: the axis is out of range for the rank.
    """
    if not -rank <= axis < rank:
        raise ShapeError(
            f"{what} {axis} is out of range for rank {rank} (expected {-rank}..{rank - 1})"
        )
    return axis % rank if rank else 0


def const_ints(ctx: InferContext, index: int) -> tuple[int, ...] | None:
    """The value of constant input ``index`` as a tuple of ints, or None when unknown."""
    value = ctx.value(index)
    return None if value is None else tuple(int(v) for v in np.asarray(value).reshape(-1))
