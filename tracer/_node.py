"""The tape record an eager op leaves for autograd (kept apart to avoid import cycles)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ir.ops.registry import OpDef, VjpContext
from tracer import _state

# Where one input's gradient goes: the (node, output index) that produced it, the leaf
# tensor itself, or None when it needs no gradient.
Edge = Any


class Node(VjpContext):
    """The record one op leaves on the tape, and the context its vjp rule reads.

    Each input's edge is fixed when the op runs (as PyTorch's ``next_edges`` and
    micrograd's ``_prev``), so an in-place op that later moves a tensor onto a new history
    leaves this node's edges alone. As in PyTorch, where ``ctx`` is the backward node, the
    node is itself the rule's :class:`VjpContext`: the engine sets ``needs_input_grad``
    before calling the rule, and ``outputs`` rebuilds the forward outputs on demand.

    Attributes:
        op: the registry entry that ran.
        inputs: the op's inputs (tensors or constants); None once the graph is freed.
        attrs: the attributes the op was called with (defaults not filled in; never mutated).
        edges: per input, where its gradient goes (see ``Edge``); None once freed.
        out_data: the forward outputs' arrays, for rules that read outputs.
        versions: version of each input tensor when recorded (None: all were 0).
        out_versions: (cell, version) of each output, kept only for rules that read them.
    """

    __slots__ = ("attrs", "edges", "inputs", "op", "out_data", "out_versions", "versions")

    def __init__(
        self,
        op: OpDef,
        inputs: tuple[Any, ...],
        attrs: Mapping[str, Any],
        edges: tuple[Edge, ...],
        out_data: tuple[np.ndarray, ...],
    ) -> None:
        self.op = op
        self.inputs: tuple[Any, ...] | None = inputs
        self.attrs = attrs
        self.edges: tuple[Edge, ...] | None = edges
        self.out_data: tuple[np.ndarray, ...] | None = out_data
        self.versions: tuple[int, ...] | None = None
        self.out_versions: tuple[tuple[list[int], int], ...] | None = None

    @property
    def outputs(self) -> tuple[Any, ...]:
        """The forward outputs as tensors.

        Under ``create_graph`` (grad mode on while the rule runs) each floating output is
        reconnected to this node, so rules that read outputs (Exp, Softmax) still
        differentiate to second order.
        """
        from tracer._tensor_base import wrap  # imports this module

        assert self.out_data is not None
        connect = _state.grad_enabled
        outs = []
        for i, data in enumerate(self.out_data):
            t = wrap(data)
            if connect and data.dtype.kind == "f":
                t._node, t._index, t._requires_grad = self, i, True
            outs.append(t)
        return tuple(outs)

    def name(self) -> str:
        """The op's ONNX type, as PyTorch's ``grad_fn.name()``."""
        return self.op.op_type

    def __repr__(self) -> str:
        return f"<{self.op.op_type}Backward>"
