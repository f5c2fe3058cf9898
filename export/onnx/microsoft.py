"""onnxruntime's ``com.microsoft`` op schemas, registered with onnx on import.

The registry implements some of onnxruntime's contrib ops (``ir/ops/microsoft``); onnx knows
their schemas only once they are registered, and the writer and ``onnx.checker`` need them
(attribute types, optional outputs, allowed dtypes). Each entry below copies onnxruntime's
schema (version 1 of each op), as ``onnxruntime.capi.onnxruntime_pybind11_state
.get_all_operator_schema()`` reports it; ``tests/test_microsoft_ops.py`` checks that they agree.

Format: inputs and outputs are ``"name:T"`` (``"name:T?"`` when optional); attributes map a
name to ``(type, default)``, with ``REQUIRED`` or ``None`` (optional without a default) as the
default where onnxruntime declares none.
"""

from __future__ import annotations

from typing import Any

from onnx import defs, helper

DOMAIN = "com.microsoft"
REQUIRED = object()
_A = defs.OpSchema.AttrType
_FLOAT16_32 = ["tensor(float)", "tensor(float16)"]
_FLOATS = ["tensor(float)", "tensor(float16)", "tensor(bfloat16)"]
_WITH_DOUBLE = [*_FLOATS, "tensor(double)"]
_INT32 = ["tensor(int32)"]
_EPSILON = (_A.FLOAT, 1e-12)

SCHEMAS: dict[str, dict[str, Any]] = {
    "Attention": {
        "inputs": ["input:T", "weights:T", "bias:T?", "mask_index:M?", "past:T?"]
        + ["attention_bias:T?", "past_sequence_length:M?"],
        "outputs": ["output:T", "present:T?"],
        "attrs": {
            "num_heads": (_A.INT, REQUIRED),
            "unidirectional": (_A.INT, 0),
            "qkv_hidden_sizes": (_A.INTS, None),
            "mask_filter_value": (_A.FLOAT, None),
            "scale": (_A.FLOAT, None),
            "do_rotary": (_A.INT, None),
            "rotary_embedding_dim": (_A.INT, None),
            "past_present_share_buffer": (_A.INT, None),
        },
        "types": {"T": _FLOATS, "M": _INT32},
    },
    "MultiHeadAttention": {
        "inputs": ["query:T", "key:T?", "value:T?", "bias:T?", "key_padding_mask:M?"]
        + ["attention_bias:T?", "past_key:T?", "past_value:T?", "past_sequence_length:M?"]
        + ["cache_indirection:M?"],
        "outputs": ["output:T", "present_key:T?", "present_value:T?", "qk:QK?"],
        "attrs": {
            "num_heads": (_A.INT, REQUIRED),
            "unidirectional": (_A.INT, 0),
            "mask_filter_value": (_A.FLOAT, None),
            "scale": (_A.FLOAT, None),
        },
        "types": {"T": _FLOATS, "QK": _FLOATS, "M": _INT32},
    },
    "SkipLayerNormalization": {
        "inputs": ["input:T", "skip:T", "gamma:T", "beta:T?", "bias:T?"],
        "outputs": ["output:T", "mean:U?", "inv_std_var:U?", "input_skip_bias_sum:T?"],
        "attrs": {"epsilon": _EPSILON},
        "types": {"T": _FLOATS, "U": ["tensor(float)"]},
    },
    "SkipSimplifiedLayerNormalization": {
        "inputs": ["input:T", "skip:T", "gamma:T", "bias:T?"],
        "outputs": ["output:T", "mean:U?", "inv_std_var:U?", "input_skip_bias_sum:T?"],
        "attrs": {"epsilon": _EPSILON},
        "types": {"T": _FLOATS, "U": ["tensor(float)"]},
    },
    "EmbedLayerNormalization": {
        "inputs": ["input_ids:T1", "segment_ids:T1?", "word_embedding:T", "position_embedding:T"]
        + ["segment_embedding:T?", "gamma:T", "beta:T", "mask:T1?", "position_ids:T1?"],
        "outputs": ["output:T", "mask_index:T1?", "embedding_sum:T?"],
        "attrs": {"epsilon": _EPSILON, "mask_index_type": (_A.INT, None)},
        "types": {"T1": _INT32, "T": _FLOAT16_32},
    },
    "BiasGelu": {"inputs": ["A:T", "B:T"], "outputs": ["C:T"], "types": {"T": _WITH_DOUBLE}},
    "FastGelu": {"inputs": ["X:T", "bias:T?"], "outputs": ["Y:T"], "types": {"T": _WITH_DOUBLE}},
    "Gelu": {"inputs": ["X:T"], "outputs": ["Y:T"], "types": {"T": _WITH_DOUBLE}},
    "QuickGelu": {
        "inputs": ["X:T"],
        "outputs": ["Y:T"],
        "attrs": {"alpha": (_A.FLOAT, 1.702)},
        "types": {"T": _WITH_DOUBLE},
    },
    "FusedMatMul": {
        "inputs": ["A:T", "B:T"],
        "outputs": ["Y:T"],
        "attrs": {
            "alpha": (_A.FLOAT, 1.0),
            "transA": (_A.INT, 0),
            "transB": (_A.INT, 0),
            "transBatchA": (_A.INT, 0),
            "transBatchB": (_A.INT, 0),
        },
        "types": {"T": _WITH_DOUBLE},
    },
}


def _param(text: str) -> defs.OpSchema.FormalParameter:
    name, type_str = text.rstrip("?").split(":")
    option = defs.OpSchema.FormalParameterOption
    kind = option.Optional if text.endswith("?") else option.Single
    return defs.OpSchema.FormalParameter(name, type_str, param_option=kind)


def _attribute(name: str, kind: Any, default: Any) -> defs.OpSchema.Attribute:
    if default is REQUIRED or default is None:
        return defs.OpSchema.Attribute(name, kind, required=default is REQUIRED)
    return defs.OpSchema.Attribute(name, helper.make_attribute(name, default))


def register_microsoft_schemas() -> None:
    """Register every schema of :data:`SCHEMAS` with onnx (once; known ones are skipped)."""
    for name, spec in SCHEMAS.items():
        if defs.has(name, DOMAIN):
            continue
        schema = defs.OpSchema(
            name,
            DOMAIN,
            1,
            f"onnxruntime's com.microsoft {name} (contrib op), as graphcap implements it.",
            inputs=[_param(p) for p in spec["inputs"]],
            outputs=[_param(p) for p in spec["outputs"]],
            type_constraints=[(t, allowed, "") for t, allowed in spec["types"].items()],
            attributes=[_attribute(a, *kd) for a, kd in spec.get("attrs", {}).items()],
        )
        defs.register_schema(schema)


register_microsoft_schemas()
