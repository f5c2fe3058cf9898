"""The error hierarchy shared by every graphcap package.

Each message names the op or node, the offending shapes, dtypes or position, and a hint.
"""


class GraphcapError(Exception):
    """Base class of every error graphcap raises on purpose."""


class ShapeError(GraphcapError, ValueError):
    """Shapes that do not fit an op's rule (broadcasting, ranks, axes)."""


class DTypeError(GraphcapError, TypeError):
    """Dtypes an op does not accept, or that do not match each other."""


class UnsupportedOpError(GraphcapError, NotImplementedError):
    """An op that is not registered, or that cannot do what was asked (e.g. no vjp)."""


class GraphInvariantError(GraphcapError, RuntimeError):
    """A graph that breaks an IR invariant (SSA, order, use lists, types)."""


class ExportError(GraphcapError, RuntimeError):
    """A graph that cannot be written to, or read from, an ONNX file."""
