"""ONNX schemas for graphcap's own ``ai.graphcap`` ops, registered with onnx on import.

Those ops are the backward-through-time ops of the recurrent layers (``LSTMGrad``, ...):
onnx's checker and shape inference know them only once their schemas are registered, so
``export`` registers them before writing or reading a model. onnxruntime does not know
them; graphs that hold them run on graphcap's interpreter.
"""

from __future__ import annotations

from typing import Any

from onnx import defs

from ir.ops.recurrent import DOMAIN, GRAD_SCHEMAS


def register_grad_schemas() -> None:
    """Register the ``ai.graphcap`` ``*Grad`` ops' schemas with onnx (once).

    Each takes its forward op's inputs, attributes and type constraints, then the gradients
    of the forward's outputs, all optional.
    """
    param, option = defs.OpSchema.FormalParameter, defs.OpSchema.FormalParameterOption
    for name, (forward, grads_in, grads_out) in GRAD_SCHEMAS.items():
        if defs.has(name, DOMAIN):
            continue
        base = defs.get_schema(forward, 20)
        inputs = [param(i.name, i.type_str, param_option=i.option) for i in base.inputs]
        inputs += [param(n, "T", param_option=option.Optional) for n in grads_in]
        schema = defs.OpSchema(
            name,
            DOMAIN,
            1,
            f"Gradients of {forward}'s inputs (graphcap's backward through time).",
            inputs=inputs,
            outputs=[param(n, "T") for n in grads_out],
            type_constraints=[
                (t.type_param_str, list(t.allowed_type_strs), t.description)
                for t in base.type_constraints
            ],
            attributes=[_attribute(a) for a in base.attributes.values()],
        )
        defs.register_schema(schema)


def _attribute(a: Any) -> Any:
    if not a.default_value.name:
        return defs.OpSchema.Attribute(a.name, a.type, a.description, required=False)
    return defs.OpSchema.Attribute(a.name, a.default_value, a.description)


register_grad_schemas()
