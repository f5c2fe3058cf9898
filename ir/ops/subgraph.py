"""What the control-flow ops share: running a subgraph, and typing its outputs.

A subgraph (an ``If`` branch, a ``Loop`` or ``Scan`` body) is an ``ir.Graph`` held in an
attribute. It reads values of the graph around it through its captures, which the node
passes as its last inputs (see ``ir.graph``); so a kernel receives the captured arrays as
its trailing positional arguments, and :class:`Body` binds them with the body's inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ir.errors import GraphcapError, ShapeError
from ir.types import Dim, TensorType

if TYPE_CHECKING:
    from ir.graph import Graph, Value


class Body:
    """A subgraph flattened for repeated runs: kernels, attributes and value slots.

    Calling it with the body's inputs followed by its captures returns its outputs. Values
    are dropped after their last use, so a long body (a model's decoding step) holds only
    what is live.
    """

    def __init__(self, body: Graph) -> None:
        self.name = body.name
        slots: dict[int, int] = {}

        def slot(v: Value) -> int:
            return slots.setdefault(id(v), len(slots))

        self.args = [slot(v) for v in [*body.inputs, *body.captures]]
        self.consts = [(slot(v), _read_only(v.const)) for v in body.initializers.values()]
        self.nodes = list(body.nodes)
        steps = [
            (
                n.op.kernel,
                [None if x is None else slot(x) for x in n.inputs],
                n.attrs,
                [slot(v) for v in n.outputs],
            )
            for n in self.nodes
        ]
        self.outputs = [slot(v) for v in body.outputs]
        self.size = len(slots)
        keep = set(self.outputs) | {i for i, _ in self.consts}
        last: dict[int, int] = {}
        for k, (_, ins, _, _) in enumerate(steps):
            for i in ins:
                if i is not None and i not in keep:
                    last[i] = k
        frees: list[list[int]] = [[] for _ in steps]
        for i, k in last.items():
            frees[k].append(i)
        self.steps = [(*s, f) for s, f in zip(steps, frees, strict=True)]

    def __call__(self, args: Sequence[np.ndarray]) -> list[np.ndarray]:
        """The body's outputs for ``args``: its inputs, then its captures."""
        if len(args) != len(self.args):
            raise ShapeError(
                f"body {self.name!r} takes {len(self.args)} inputs and captures; given {len(args)}"
            )
        env: list[Any] = [None] * self.size
        for i, a in zip(self.args, args, strict=True):
            env[i] = a
        for i, c in self.consts:
            env[i] = c
        for k, (kernel, ins, attrs, outs, frees) in enumerate(self.steps):
            try:
                result = kernel(*(None if i is None else env[i] for i in ins), **attrs)
            except GraphcapError as err:
                node = self.nodes[k]
                raise type(err)(f"in body {self.name!r}, {node.format()}: {err}") from err
            results = result if isinstance(result, tuple | list) else (result,)
            for i, r in zip(outs, results, strict=False):
                env[i] = np.asarray(r)
            for i in frees:
                env[i] = None
        return [env[i] for i in self.outputs]


def _read_only(array: np.ndarray | None) -> np.ndarray:
    assert array is not None, "an initializer holds an array"
    view = np.asarray(array).view()
    view.flags.writeable = False
    return view


def split_captures(
    op_type: str, body: Graph, inputs: Sequence[Any], declared: int
) -> tuple[list[Any], list[Any]]:
    """A node's inputs as (its own ``declared`` inputs, the arrays its body captures).

    Raises:
        ShapeError: the count is not ``declared`` plus the body's captures.
    """
    captured = len(body.captures)
    if len(inputs) != declared + captured:
        raise ShapeError(
            f"{op_type}: {len(inputs)} inputs given; body {body.name!r} needs {declared} "
            f"input(s) and its {captured} captured outer value(s) after them"
        )
    return list(inputs[:declared]), list(inputs[declared:])


def check_captures(
    op_type: str, graphs: Sequence[Graph], types: Sequence[TensorType | None]
) -> None:
    """Refuse captured inputs whose dtypes differ from the captures they feed.

    ``types`` are the node's trailing inputs' types, one per capture of each graph.
    """
    for g in graphs:
        if len(g.captures) != len(types):
            raise ShapeError(
                f"{op_type}: subgraph {g.name!r} captures {len(g.captures)} value(s); the node "
                f"passes {len(types)}"
            )
        for inner, t in zip(g.captures, types, strict=True):
            if t is not None and t.dtype != inner.dtype:
                raise ShapeError(
                    f"{op_type}: subgraph {g.name!r} captures %{inner.name} as {inner.type}; "
                    f"the node passes {t}"
                )


def merge(a: TensorType, b: TensorType) -> TensorType:
    """The type of a value that is sometimes ``a`` and sometimes ``b`` (same dtype).

    Dims that agree stay; others become unknown; different ranks give an unknown shape.
    """
    if a.shape is None or b.shape is None or len(a.shape) != len(b.shape):
        return TensorType(a.dtype, None)
    dims: list[Dim] = [x if x == y else None for x, y in zip(a.shape, b.shape, strict=True)]
    return TensorType(a.dtype, tuple(dims))


def zeros_for(t: TensorType, what: str) -> np.ndarray:
    """An empty stack for a body output that never ran (zero iterations): ``[0, *shape]``.

    Dims the declared type does not fix become 0, as onnxruntime makes them (there is no
    element to size them by).

    Raises:
        ShapeError: the declared rank is unknown.
    """
    if t.shape is None:
        raise ShapeError(f"{what}: zero iterations and the body output has unknown rank")
    shape = tuple(d if isinstance(d, int) else 0 for d in t.shape)
    return np.zeros((0, *shape), t.dtype)
