"""Subgraph bookkeeping for the ONNX codec: body input types, and captures by name.

An ONNX subgraph reads values of the graphs around it by name; graphcap's subgraph declares
those as captures that its node feeds from its last inputs (see ``ir.graph``). The reader
collects each subgraph's outer names as it reads them; :func:`align_captures` then gives
every subgraph of the node the same captures in the same order, which the node passes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import onnx
from onnx import AttributeProto

from ir.graph import Graph, Value
from ir.types import TensorType


def align_captures(bodies: Sequence[Graph], captured: Sequence[Mapping[str, Value]]) -> list[Value]:
    """Give every body one capture per outer name any of them reads; return the outer values.

    Args:
        bodies: the node's subgraphs, in attribute order.
        captured: per body, the outer values it reads by name (its captures so far).

    Returns:
        The outer values, in the order of the bodies' captures: the node's last inputs.
    """
    union: dict[str, Value] = {}
    for names in captured:
        for name, value in names.items():
            union.setdefault(name, value)
    for body in bodies:
        have = {v.name: v for v in body.captures}
        body.captures = [
            have.get(name) or body.add_capture(name, value.dtype, value.type.shape)
            for name, value in union.items()
        ]
    return list(union.values())


def body_types(n: onnx.NodeProto, inputs: Sequence[Value | None]) -> list[TensorType | None]:
    """The types a body's inputs get from its node, where the file leaves them out.

    Scan: states as given, scan inputs without the scan axis. Loop: the iteration number
    and condition, then the carried values' dtypes and ranks (their sizes may change from
    one iteration to the next). Other ops: nothing.
    """
    if n.op_type == "Scan":
        return _scan_body_types(n, inputs)
    if n.op_type == "Loop":
        carried: list[TensorType | None] = [
            None if x is None else TensorType(x.dtype, _unsized(x.type)) for x in inputs[2:]
        ]
        return [TensorType(np.dtype(np.int64), ()), TensorType(np.dtype(np.bool_), ()), *carried]
    return []


def _unsized(t: TensorType) -> tuple[None, ...] | None:
    return None if t.shape is None else (None,) * len(t.shape)


def _scan_body_types(n: onnx.NodeProto, inputs: Sequence[Value | None]) -> list[TensorType | None]:
    """The types a Scan body's inputs get from the node: states as given, scan slices."""
    ints = {a.name: list(a.ints) for a in n.attribute if a.type == AttributeProto.INTS}
    m = next((int(a.i) for a in n.attribute if a.name == "num_scan_inputs"), 0)
    m = min(max(m, 0), len(inputs))  # the Scan shape rule refuses a count out of range
    n_states = len(inputs) - m
    axes = ints.get("scan_input_axes") or [0] * m
    types: list[TensorType | None] = []
    for i, x in enumerate(inputs):
        if x is None or i < n_states or not x.type.shape or i - n_states >= len(axes):
            types.append(None if x is None else x.type)  # the Scan shape rule judges these
            continue
        shape = list(x.type.shape)
        del shape[axes[i - n_states] % max(len(shape), 1)]
        types.append(TensorType(x.dtype, tuple(shape)))
    return types
