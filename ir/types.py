"""Tensor types: a dtype plus a shape whose dimensions are ints, named symbols or unknown."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A dimension: a fixed size, a named symbol ("batch"), or None when nothing is known.
Dim = int | str | None
Shape = tuple[Dim, ...]


@dataclass(frozen=True, slots=True)
class TensorType:
    """The type of a tensor value.

    Attributes:
        dtype: NumPy dtype of the elements.
        shape: one entry per axis (int, symbol name or None); None when even the rank is
            unknown.
    """

    dtype: np.dtype
    shape: Shape | None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        if self.shape is not None:
            object.__setattr__(self, "shape", tuple(self.shape))

    @property
    def rank(self) -> int | None:
        """Number of axes, or None when unknown."""
        return None if self.shape is None else len(self.shape)

    @property
    def is_static(self) -> bool:
        """Whether every dimension is a known int."""
        return self.shape is not None and all(isinstance(d, int) for d in self.shape)

    def __str__(self) -> str:
        short = _SHORT.get(self.dtype, str(self.dtype))
        if self.shape is None:
            return f"{short}[?]"
        dims = ", ".join("?" if d is None else str(d) for d in self.shape)
        return f"{short}[{dims}]"


_SHORT = {
    np.dtype(np.float16): "f16",
    np.dtype(np.float32): "f32",
    np.dtype(np.float64): "f64",
    np.dtype(np.int8): "i8",
    np.dtype(np.int16): "i16",
    np.dtype(np.int32): "i32",
    np.dtype(np.int64): "i64",
    np.dtype(np.uint8): "u8",
    np.dtype(np.bool_): "bool",
}
