"""graphcap's IR: ONNX-style typed graphs and the op registry that defines every op once."""

from ir import ops
from ir.autodiff import grad
from ir.errors import (
    DTypeError,
    ExportError,
    GraphcapError,
    GraphInvariantError,
    ShapeError,
    UnsupportedOpError,
)
from ir.graph import Graph, Node, Value
from ir.passes import optimize
from ir.types import TensorType
from ir.verify import verify

__all__ = [
    "DTypeError",
    "Graph",
    "Node",
    "Value",
    "grad",
    "optimize",
    "verify",
    "ExportError",
    "GraphInvariantError",
    "GraphcapError",
    "ShapeError",
    "TensorType",
    "UnsupportedOpError",
    "ops",
]
