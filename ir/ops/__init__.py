"""The op registry and its families; importing this package registers every op."""

from ir.ops import (  # noqa: F401  (importing a family registers its ops)
    activation,
    attention,
    bitwise,
    control,
    conv,
    detection,
    elementwise,
    image,
    indexing,
    linalg,
    loss,
    microsoft,
    misc,
    nn,
    pool,
    quant,
    recurrent,
    reduce,
    shape,
    signal,
)
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
