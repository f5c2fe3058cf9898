"""The op registry and its families; importing this package registers every op."""

from ir.ops import elementwise, linalg, reduce, shape  # noqa: F401  (registers the ops)
from ir.ops.registry import (
    InferContext,
    OpDef,
    VjpContext,
    all_ops,
    bind,
    get,
    ints,
    op,
    register,
    scalar,
)

__all__ = [
    "InferContext",
    "OpDef",
    "VjpContext",
    "all_ops",
    "bind",
    "get",
    "ints",
    "op",
    "register",
    "scalar",
]
