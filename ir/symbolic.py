"""Shape inference for one node, with symbolic values for shape arithmetic.

Besides types, a small int64 value computed from shapes (``Shape(x)``, ``Gather`` of it,
``Concat`` with constants, products of dims) gets a *symbolic value*: a tuple whose entries
are ints or dimension expressions such as ``"batch"`` or ``"batch*8"``. Those values are
computed by running the op's own registry kernel on object arrays holding ints and
:class:`Sym` objects, so no op's semantics is written a second time; the ops whose kernels
allow that say so (``OpDef.symbolic``). ``Shape`` is where the values start, and ``Cast``
(to int64, the only output this follows) passes its input's value on. Shape rules read them
through ``InferContext.dims`` and keep symbolic dims through ``Reshape`` and ``Expand``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ir.dims import Expr
from ir.errors import GraphcapError, GraphInvariantError, ShapeError
from ir.ops.registry import InferContext
from ir.types import Dim, TensorType

if TYPE_CHECKING:
    from ir.graph import Node

_MAX_SYMBOLIC_SIZE = 16


class Sym:
    """A dimension expression in the integer arithmetic shape code uses (see ``ir.dims``).

    Arithmetic gives a ``Sym`` in normal form, or a plain int when the symbols cancel
    (``seq - seq``), so kernels computing shapes on object arrays simplify as they go.
    """

    __slots__ = ("expr",)

    def __init__(self, name: str | Expr) -> None:
        self.expr = name if isinstance(name, Expr) else Expr.of(name)

    @property
    def name(self) -> str:
        """The canonical text of the expression."""
        return self.expr.text

    @staticmethod
    def _make(expr: Expr) -> Any:
        value = expr.constant
        return Sym(expr) if value is None else value

    @staticmethod
    def _of(x: Any) -> Expr:
        return x.expr if isinstance(x, Sym) else Expr.of(int(x))

    def __add__(self, other: Any) -> Any:
        return Sym._make(self.expr + Sym._of(other))

    __radd__ = __add__

    def __sub__(self, other: Any) -> Any:
        return Sym._make(self.expr - Sym._of(other))

    def __rsub__(self, other: Any) -> Any:
        return Sym._make(Sym._of(other) - self.expr)

    def __mul__(self, other: Any) -> Any:
        return Sym._make(self.expr * Sym._of(other))

    __rmul__ = __mul__

    def __neg__(self) -> Any:
        return Sym._make(-self.expr)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sym) and other.expr == self.expr

    def __hash__(self) -> int:
        return hash(self.expr)

    def __repr__(self) -> str:
        return self.name


def _to_object(sym: tuple[Dim, ...] | None, t: TensorType) -> np.ndarray | None:
    """``sym`` as an array for a kernel; unknown elements are None (arithmetic on them fails)."""
    if t.shape is None or not t.is_static:
        return None
    if sym is None:  # a small int64 value nothing is known about: every element unknown
        size = int(np.prod(t.shape))  # type: ignore[arg-type]
        if size > _MAX_SYMBOLIC_SIZE:
            return None
        sym = (None,) * size
    if all(isinstance(d, int) for d in sym):
        # Plain ints stay int64, so kernels that index with them (Gather) accept them.
        return np.asarray(sym, dtype=np.int64).reshape(t.shape)  # type: ignore[arg-type]
    arr = np.empty(len(sym), dtype=object)
    arr[:] = [Sym(d) if isinstance(d, str) else d for d in sym]
    return arr.reshape(t.shape)  # type: ignore[arg-type]


def _from_object(out: Any) -> tuple[Dim, ...] | None:
    arr = np.asarray(out, dtype=object).reshape(-1)
    if arr.size > _MAX_SYMBOLIC_SIZE:
        return None
    dims: list[Dim] = []
    for x in arr:
        if x is None:
            dims.append(None)
        elif isinstance(x, Sym):
            dims.append(x.name)
        elif isinstance(x, int | np.integer):
            dims.append(int(x))
        else:
            return None
    return tuple(dims)


def _symbolic_outputs(node: Node, types: list[TensorType]) -> list[tuple[Dim, ...] | None]:
    none: list[tuple[Dim, ...] | None] = [None] * len(types)
    if len(types) != 1 or types[0].dtype != np.int64 or not types[0].is_static:
        return none
    op_type = node.op.op_type
    if op_type == "Shape":
        x = node.inputs[0]
        if x is None or x.type.shape is None:
            return none
        attrs = node.full_attrs
        return [tuple(x.type.shape[attrs["start"] : attrs["end"]])]
    if not node.op.symbolic:
        return none
    arrays: list[np.ndarray | None] = []
    for v in node.inputs:
        if v is None:
            arrays.append(None)
            continue
        arr = _to_object(v.sym, v.type)
        if arr is None:
            return none
        arrays.append(arr)
    if op_type == "Cast":
        return [_from_object(arrays[0])]
    # Index operands must stay int64 (Gather), while ops that insist on one dtype (Concat)
    # need every operand as objects: try the first, then the second.
    for attempt in (arrays, [None if a is None else a.astype(object) for a in arrays]):
        try:
            return [_from_object(node.op.kernel(*attempt, **node.attrs))]
        except (GraphcapError, TypeError, ValueError, IndexError, AttributeError):
            continue
    return none


def _call(node: Node, types: list[TensorType | None]) -> str:
    """``Op(f32[2, 3], _)`` and the source line, for error messages."""
    where = f" (traced at {node.meta['source']})" if "source" in node.meta else ""
    args = ", ".join("_" if t is None else str(t) for t in types)
    return f"{node.op.op_type}({args}){where}"


def _check_inputs(node: Node) -> None:
    """Refuse a node with more inputs than its op takes, or without one it needs."""
    lo, hi = node.op.num_inputs
    n = len(node.inputs)
    optional = node.op.optional_inputs
    absent = node.op.absent_inputs(node.inputs)
    if absent or (hi is not None and n > hi):
        takes = f"{lo}..{hi}" if hi is not None else f"{lo} or more"
        raise GraphInvariantError(
            f"node {node.name} ({node.op.op_type}) has {n} input(s)"
            + (f", without required input(s) {absent}" if absent else "")
            + f"; {node.op.op_type} takes {takes}, the first {lo} required"
            + (f" but {list(optional)}" if optional else "")
        )


def infer_node(node: Node) -> tuple[list[TensorType], list[tuple[Dim, ...] | None]]:
    """Output types (from the op's shape rule) and symbolic values of ``node``.

    Raises:
        GraphInvariantError: the node has more inputs than its op takes, or lacks one it
            needs.
        GraphcapError: the shape rule rejected the inputs; the message names the node and
            the source line it was traced from. A rule that fails in any other way on
            inputs or attributes it does not expect (a malformed file) raises ShapeError.
    """
    _check_inputs(node)
    values = [None if v is None else v.const for v in node.inputs]
    dims = [None if v is None else v.sym for v in node.inputs]
    types = [None if v is None else v.type for v in node.inputs]
    try:
        out = node.op.infer(InferContext(values, dims), *types, **node.full_attrs)
    except GraphcapError as err:
        raise type(err)(f"{_call(node, types)}: {err}") from err
    except (TypeError, ValueError, IndexError, KeyError, AttributeError, ArithmeticError) as err:
        raise ShapeError(
            f"{_call(node, types)}: the shape rule cannot handle these inputs and attributes "
            f"{node.attrs}: {type(err).__name__}: {err}"
        ) from err
    out_types = list(out) if isinstance(out, tuple) else [out]
    return out_types, _symbolic_outputs(node, out_types)
