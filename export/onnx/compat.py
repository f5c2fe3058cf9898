"""Which ONNX versions of an op mean what the registry's entry means, for a given node.

ONNX bumps an op's version when its meaning changes, but also when it only admits other
element types (bfloat16, float8, int4) or gains an attribute whose default keeps the old
behaviour (Cast's ``round_mode``, Range's ``stash_type``). A node may use a version newer
than the registry's ``since`` when every attribute, input and output of the registry's
version is unchanged and the node sets none of the attributes added since. Element types
are left to the shape rules, which reject those the registry does not support.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from onnx import defs

from export.onnx.microsoft import contrib_schema
from ir.ops.registry import OpDef

_Attrs = dict[str, tuple[str, bytes]]
_Ports = tuple[tuple[str, str], ...]


@cache
def _schema(op_type: str, domain: str, version: int) -> tuple[_Attrs, _Ports, _Ports, int]:
    schema = contrib_schema(op_type, domain) or defs.get_schema(op_type, version, domain)
    attrs = {
        k: (str(a.type), a.default_value.SerializeToString()) for k, a in schema.attributes.items()
    }
    inputs = tuple((i.name, str(i.option)) for i in schema.inputs)
    outputs = tuple((o.name, str(o.option)) for o in schema.outputs)
    return attrs, inputs, outputs, schema.since_version


def compatible(op: OpDef, opset: int, node_attrs: Iterable[str] = ()) -> bool:
    """Whether a node of ``op`` using ``node_attrs`` means, at ``opset``, what the registry does.

    Args:
        op: the registry entry.
        opset: the default-domain opset the node's model declares.
        node_attrs: names of the attributes the node sets.
    """
    try:
        new_attrs, new_in, new_out, version = _schema(op.op_type, op.domain, opset)
    except defs.SchemaError:
        return False
    if version <= op.since:
        return version == op.since
    old_attrs, old_in, old_out, _ = _schema(op.op_type, op.domain, op.since)
    if (new_in, new_out) != (old_in, old_out):
        return False
    if any(new_attrs.get(k) != v for k, v in old_attrs.items()):
        return False
    added = set(new_attrs) - set(old_attrs)
    return not added & set(node_attrs)
