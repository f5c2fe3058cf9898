"""onnxruntime's schemas of the contrib ops the registry implements, as data.

Each entry copies onnxruntime's schema (version 1 of each op), as
``onnxruntime.capi.onnxruntime_pybind11_state.get_all_operator_schema()`` reports it;
``tests/ir/test_microsoft_ops.py`` checks that they agree. ``export.onnx.microsoft`` builds
onnx ``OpSchema`` objects from them for the writer and reader (attribute types, optional
outputs, allowed dtypes); ``ir`` itself does not import onnx.

Format: ``domain`` is ``com.microsoft`` unless given; inputs and outputs are words
``name:T`` (``name:T?`` when optional); attributes map a name to ``(type, default)``: the
type is an ``onnx.defs.OpSchema.AttrType`` name, the default ``REQUIRED`` or None (optional
without a default) where onnxruntime declares none. One entry is not ``com.microsoft``:
``SimplifiedLayerNormalization``, which onnxruntime registers in the default domain.
"""

from __future__ import annotations

from typing import Any

REQUIRED = "required"
_FLOAT16_32 = ["tensor(float)", "tensor(float16)"]
_FLOATS = ["tensor(float)", "tensor(float16)", "tensor(bfloat16)"]
_WITH_DOUBLE = [*_FLOATS, "tensor(double)"]
_INT32 = ["tensor(int32)"]
_EPSILON = ("FLOAT", 1e-12)

SCHEMAS: dict[str, dict[str, Any]] = {
    "Attention": {
        "inputs": (
            "input:T weights:T bias:T? mask_index:M? past:T? attention_bias:T? "
            "past_sequence_length:M?"
        ),
        "outputs": "output:T present:T?",
        "attrs": {
            "num_heads": ("INT", REQUIRED),
            "unidirectional": ("INT", 0),
            "qkv_hidden_sizes": ("INTS", None),
            "mask_filter_value": ("FLOAT", None),
            "scale": ("FLOAT", None),
            "do_rotary": ("INT", None),
            "rotary_embedding_dim": ("INT", None),
            "past_present_share_buffer": ("INT", None),
        },
        "types": {"T": _FLOATS, "M": _INT32},
    },
    "MultiHeadAttention": {
        "inputs": (
            "query:T key:T? value:T? bias:T? key_padding_mask:M? attention_bias:T? "
            "past_key:T? past_value:T? past_sequence_length:M? cache_indirection:M?"
        ),
        "outputs": "output:T present_key:T? present_value:T? qk:QK?",
        "attrs": {
            "num_heads": ("INT", REQUIRED),
            "unidirectional": ("INT", 0),
            "mask_filter_value": ("FLOAT", None),
            "scale": ("FLOAT", None),
        },
        "types": {"T": _FLOATS, "QK": _FLOATS, "M": _INT32},
    },
    "SkipLayerNormalization": {
        "inputs": "input:T skip:T gamma:T beta:T? bias:T?",
        "outputs": "output:T mean:U? inv_std_var:U? input_skip_bias_sum:T?",
        "attrs": {"epsilon": _EPSILON},
        "types": {"T": _FLOATS, "U": ["tensor(float)"]},
    },
    "SkipSimplifiedLayerNormalization": {
        "inputs": "input:T skip:T gamma:T bias:T?",
        "outputs": "output:T mean:U? inv_std_var:U? input_skip_bias_sum:T?",
        "attrs": {"epsilon": _EPSILON},
        "types": {"T": _FLOATS, "U": ["tensor(float)"]},
    },
    "EmbedLayerNormalization": {
        "inputs": (
            "input_ids:T1 segment_ids:T1? word_embedding:T position_embedding:T "
            "segment_embedding:T? gamma:T beta:T mask:T1? position_ids:T1?"
        ),
        "outputs": "output:T mask_index:T1? embedding_sum:T?",
        "attrs": {"epsilon": _EPSILON, "mask_index_type": ("INT", None)},
        "types": {"T1": _INT32, "T": _FLOAT16_32},
    },
    "BiasGelu": {"inputs": "A:T B:T", "outputs": "C:T", "types": {"T": _WITH_DOUBLE}},
    "FastGelu": {"inputs": "X:T bias:T?", "outputs": "Y:T", "types": {"T": _WITH_DOUBLE}},
    "Gelu": {"inputs": "X:T", "outputs": "Y:T", "types": {"T": _WITH_DOUBLE}},
    "QuickGelu": {
        "inputs": "X:T",
        "outputs": "Y:T",
        "attrs": {"alpha": ("FLOAT", 1.702)},
        "types": {"T": _WITH_DOUBLE},
    },
    "DynamicQuantizeLSTM": {
        "inputs": (
            "X:T W:T2 R:T2 B:T? sequence_lens:T1? initial_h:T? initial_c:T? P:T? "
            "W_scale:T W_zero_point:T2 R_scale:T R_zero_point:T2"
        ),
        "outputs": "Y:T? Y_h:T? Y_c:T?",
        "attrs": {
            "activation_alpha": ("FLOATS", None),
            "activation_beta": ("FLOATS", None),
            "activations": ("STRINGS", None),
            "clip": ("FLOAT", None),
            "direction": ("STRING", "forward"),
            "hidden_size": ("INT", None),
            "input_forget": ("INT", 0),
        },
        "types": {"T": ["tensor(float)"], "T1": _INT32, "T2": ["tensor(uint8)", "tensor(int8)"]},
    },
    "SimplifiedLayerNormalization": {
        "domain": "",  # onnxruntime registers it in the default ONNX domain
        "inputs": "X:T scale:V",
        "outputs": "Y:V inv_std_var:U?",
        "attrs": {
            "axis": ("INT", -1),
            "epsilon": ("FLOAT", 1e-5),
            "stash_type": ("INT", 1),
        },
        "types": {"T": _WITH_DOUBLE, "U": ["tensor(float)", "tensor(double)"], "V": _WITH_DOUBLE},
    },
    "FusedMatMul": {
        "inputs": "A:T B:T",
        "outputs": "Y:T",
        "attrs": {
            "alpha": ("FLOAT", 1.0),
            "transA": ("INT", 0),
            "transB": ("INT", 0),
            "transBatchA": ("INT", 0),
            "transBatchB": ("INT", 0),
        },
        "types": {"T": _WITH_DOUBLE},
    },
}
