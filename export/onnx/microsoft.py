"""onnxruntime's ``com.microsoft`` op schemas, registered with onnx on import.

The registry implements some of onnxruntime's contrib ops (``ir/ops/microsoft``); onnx knows
their schemas only once they are registered, and the writer and ``onnx.checker`` need them
(attribute types, optional outputs, allowed dtypes). The schemas themselves are data in
``ir.ops.microsoft.schemas`` (copied from onnxruntime's); this module builds onnx's
``OpSchema`` objects from them.
"""

from __future__ import annotations

from typing import Any

from onnx import defs, helper

from ir.ops.microsoft.common import DOMAIN
from ir.ops.microsoft.schemas import REQUIRED, SCHEMAS


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


def register_microsoft_schemas() -> None:
    """Register every schema of :data:`SCHEMAS` with onnx (once; known ones are skipped)."""
    for name, spec in SCHEMAS.items():
        domain = spec.get("domain", DOMAIN)
        if defs.has(name, domain):
            continue
        schema = defs.OpSchema(
            name,
            domain,
            1,
            f"onnxruntime's com.microsoft {name} (contrib op), as graphcap implements it.",
            inputs=[_param(p) for p in spec["inputs"].split()],
            outputs=[_param(p) for p in spec["outputs"].split()],
            type_constraints=[(t, allowed, "") for t, allowed in spec["types"].items()],
            attributes=[_attribute(a, *kd) for a, kd in spec.get("attrs", {}).items()],
        )
        defs.register_schema(schema)


register_microsoft_schemas()
