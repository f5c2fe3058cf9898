"""The types an ONNX file declares (inputs, outputs, ``value_info``), read as graphcap types.

Two conventions of other exporters mean "unknown size" and are read that way:

- ``dim_value: -1`` (paddle2onnx writes it for "any size"; ONNX itself allows only sizes
  >= 0): a negative ``dim_value`` is an unknown dim, not a fixed size.
- Placeholder symbols for sizes the exporter did not know: ``unk__0`` (onnx's shape
  inference, tf2onnx), ``LSTMhn_dim_1`` or ``Addoutput_dim_0`` (torch's TorchScript exporter),
  ``p2o.DynamicDimension.0`` (paddle2onnx). In graphcap a symbol stands for one size per run
  that the feeds bind; a declared symbol that no graph input carries binds to nothing, so it
  can say nothing a shape rule could check, and a rule that later learns the size (after
  constant folding) must not contradict it. So on a value that is not a graph input, a
  ``dim_param`` is kept only when it is a graph input's symbol or an expression over those
  symbols (``batch*8``, as graphcap writes it); any other is read as unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import numpy as np
import onnx

from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.types import Dim

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_OPERATORS = frozenset("+-*/()% ")


def input_symbols(inputs: Iterable[onnx.ValueInfoProto], skip: Iterable[str] = ()) -> set[str]:
    """The ``dim_param`` names the graph inputs carry (initializers listed as inputs skipped)."""
    skipped = set(skip)
    return {
        d.dim_param
        for vi in inputs
        if vi.name not in skipped and vi.type.HasField("tensor_type")
        for d in vi.type.tensor_type.shape.dim
        if d.dim_param
    }


def declared_dims(shape: onnx.TensorShapeProto, bound: set[str] | None = None) -> tuple[Dim, ...]:
    """The dims of a declared shape: ints, symbols, None for unknown.

    Args:
        shape: the ``TensorShapeProto``.
        bound: the graph inputs' symbols (:func:`input_symbols`); a ``dim_param`` that is
            neither one of them nor an expression over them is read as unknown. None keeps
            every ``dim_param`` (for the graph inputs themselves).
    """
    dims: list[Dim] = []
    for d in shape.dim:
        if d.HasField("dim_value"):
            dims.append(int(d.dim_value) if d.dim_value >= 0 else None)
        elif not d.dim_param or bound is None or _is_bound(d.dim_param, bound):
            dims.append(d.dim_param or None)
        else:
            dims.append(None)
    return tuple(dims)


def declared_type(
    vi: onnx.ValueInfoProto, bound: set[str] | None = None
) -> tuple[np.dtype | None, tuple[Dim, ...] | None]:
    """The dtype and shape a ``ValueInfoProto`` declares (None where it says nothing).

    ``bound`` is as in :func:`declared_dims`.

    Raises:
        DTypeError: an element type graphcap does not support.
    """
    if not vi.type.HasField("tensor_type"):
        return None, None
    tt = vi.type.tensor_type
    dtype = D.from_onnx(tt.elem_type) if tt.elem_type else None
    if not tt.HasField("shape"):
        return dtype, None
    return dtype, declared_dims(tt.shape, bound)


def _is_bound(name: str, bound: set[str]) -> bool:
    if name in bound:
        return True
    if not any(c in _OPERATORS for c in name):
        return False  # a plain name no input carries: a placeholder
    return all(word in bound for word in _NAME.findall(name))
