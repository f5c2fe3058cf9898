"""The tape record an eager op leaves for autograd (kept apart to avoid import cycles)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ir.ops.registry import OpDef


class Node:
    """The record one op leaves on the tape.

    Attributes:
        op: the registry entry that ran.
        inputs: the op's inputs (tensors or constants); None once the graph is freed.
        attrs: the attributes the op was called with (defaults not filled in; never mutated).
        out_data: the forward outputs' arrays, for rules that read outputs.
        versions: version of each input tensor when recorded (None: all were 0).
        out_versions: (cell, version) of each output, kept only for rules that read them.
    """

    __slots__ = ("attrs", "inputs", "op", "out_data", "out_versions", "versions")

    def __init__(
        self,
        op: OpDef,
        inputs: tuple[Any, ...],
        attrs: Mapping[str, Any],
        out_data: tuple[np.ndarray, ...],
        versions: tuple[int, ...] | None,
        out_versions: tuple[tuple[list[int], int], ...] | None,
    ) -> None:
        self.op = op
        self.inputs: tuple[Any, ...] | None = inputs
        self.attrs = attrs
        self.out_data: tuple[np.ndarray, ...] | None = out_data
        self.versions = versions
        self.out_versions = out_versions

    def name(self) -> str:
        """The op's ONNX type, as PyTorch's ``grad_fn.name()``."""
        return self.op.op_type

    def __repr__(self) -> str:
        return f"<{self.op.op_type}Backward>"
