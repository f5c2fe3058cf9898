"""onnxruntime's contrib op schemas (``com.microsoft`` and one default-domain op), for the codec.

The registry implements some of onnxruntime's contrib ops (``ir/ops/microsoft``). The writer
needs their schemas (attribute types, optional outputs, allowed dtypes) as it needs ONNX's,
and the reader asks them which versions it can read. The schemas are data in
``ir.ops.microsoft.schemas`` (copied from onnxruntime's); :func:`contrib_schema` builds onnx
``OpSchema`` objects from them. They are deliberately not registered with onnx: onnx's
reference evaluator assumes op names are unique across domains (``com.microsoft`` has its
own ``Gelu`` and ``Attention``), and onnx's checker should keep calling the one
default-domain op, ``SimplifiedLayerNormalization``, what it is: not an ONNX op. So a file
graphcap writes with that op fails ``onnx.checker`` as onnxruntime's own optimizer's files do;
``com.microsoft`` ops, of a domain onnx does not know, are not checked.
"""

from __future__ import annotations

import functools
from typing import Any

from onnx import defs, helper

from ir.ops.microsoft.common import DOMAIN
from ir.ops.microsoft.schemas import REQUIRED, SCHEMAS


def contrib_schema(op_type: str, domain: str) -> defs.OpSchema | None:
    """The schema onnxruntime gives a contrib op the registry implements, else None."""
    return _schemas().get((domain, op_type))


@functools.cache
def _schemas() -> dict[tuple[str, str], defs.OpSchema]:
    return {
        (spec.get("domain", DOMAIN), name): _schema(name, spec) for name, spec in SCHEMAS.items()
    }


def _schema(name: str, spec: dict[str, Any]) -> defs.OpSchema:
    return defs.OpSchema(
        name,
        spec.get("domain", DOMAIN),
        1,
        f"onnxruntime's contrib op {name}, as graphcap implements it.",
        inputs=[_param(p) for p in spec["inputs"].split()],
        outputs=[_param(p) for p in spec["outputs"].split()],
        type_constraints=[(t, allowed, "") for t, allowed in spec["types"].items()],
        attributes=[_attribute(a, *kd) for a, kd in spec.get("attrs", {}).items()],
    )


def _param(text: str) -> defs.OpSchema.FormalParameter:
    name, type_str = text.rstrip("?").split(":")
    option = defs.OpSchema.FormalParameterOption
    kind = option.Optional if text.endswith("?") else option.Single
    return defs.OpSchema.FormalParameter(name, type_str, param_option=kind)


def _attribute(name: str, kind: str, default: Any) -> defs.OpSchema.Attribute:
    if default == REQUIRED or default is None:
        attr_type = getattr(defs.OpSchema.AttrType, kind)
        return defs.OpSchema.Attribute(name, attr_type, required=default == REQUIRED)
    return defs.OpSchema.Attribute(name, helper.make_attribute(name, default))
