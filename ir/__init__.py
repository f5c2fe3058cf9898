"""graphcap's IR: ONNX-style typed graphs and the op registry that defines every op once."""

from ir import ops
from ir.errors import (
    DTypeError,
    ExportError,
    GraphcapError,
    GraphInvariantError,
    ShapeError,
    UnsupportedOpError,
)
from ir.types import TensorType

__all__ = [
    "DTypeError",
    "ExportError",
    "GraphInvariantError",
    "GraphcapError",
    "ShapeError",
    "TensorType",
    "UnsupportedOpError",
    "ops",
]
