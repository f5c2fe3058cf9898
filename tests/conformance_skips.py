"""ONNX node conformance cases that ``tests/export/test_conformance.py`` does not expect to pass.

``SKIPS`` maps every such case name to its reason; it is the union of three parts:

- ``UNSUPPORTED``: generated from the registry and the reader by
  ``.venv/bin/python -m tests.export.test_conformance --regenerate``; never edit it by hand. A case
  is unsupported when its model holds something graphcap does not have (non-tensor values,
  a dtype, an op missing from the registry) or when the reader or interpreter refuses it
  with an explicit ``UnsupportedOpError``/``DTypeError`` ("rejected: ...").
- ``KNOWN_BUGS``: hand-written. Cases graphcap runs and gets wrong (a wrong value, shape or
  dtype, or a crash). Each is a bug reported to the lead; the test expects it to fail, and
  fails once it passes so that the entry is removed.
- ``RANDOM``: hand-written. Cases whose expected values come from one particular random
  generator; the test still runs them and compares output shapes and dtypes.
"""

from __future__ import annotations

# BEGIN GENERATED: `.venv/bin/python -m tests.export.test_conformance --regenerate`.

_GROUPS: dict[str, list[str]] = {
    # 34 cases
    "sequences/optional/maps out of scope (graphcap's IR holds tensors only)": [
        "test_identity_opt",
        "test_identity_sequence",
        "test_if_opt",
        "test_if_seq",
        "test_loop13_seq",
        "test_loop16_seq_none",
        "test_optional_get_element_optional_sequence",
        "test_optional_get_element_optional_tensor",
        "test_optional_get_element_sequence",
        "test_optional_get_element_tensor",
        "test_optional_has_element_empty_no_input_name_optional_input",
        "test_optional_has_element_empty_no_input_name_tensor_input",
        "test_optional_has_element_empty_no_input_optional_input",
        "test_optional_has_element_empty_no_input_tensor_input",
        "test_optional_has_element_empty_optional_input",
        "test_optional_has_element_optional_input",
        "test_optional_has_element_tensor_input",
        "test_sequence_insert_at_back",
        "test_sequence_insert_at_front",
        "test_sequence_map_add_1_sequence_1_tensor",
        "test_sequence_map_add_1_sequence_1_tensor_expanded",
        "test_sequence_map_add_2_sequences",
        "test_sequence_map_add_2_sequences_expanded",
        "test_sequence_map_extract_shapes",
        "test_sequence_map_extract_shapes_expanded",
        "test_sequence_map_identity_1_sequence",
        "test_sequence_map_identity_1_sequence_1_tensor",
        "test_sequence_map_identity_1_sequence_1_tensor_expanded",
        "test_sequence_map_identity_1_sequence_expanded",
        "test_sequence_map_identity_2_sequences",
        "test_sequence_map_identity_2_sequences_expanded",
        "test_split_to_sequence_1",
        "test_split_to_sequence_2",
        "test_split_to_sequence_nokeepdims",
    ],
    # 26 cases
    "string tensors unsupported": [
        "test_ai_onnx_ml_label_encoder_string_int",
        "test_ai_onnx_ml_label_encoder_string_int_no_default",
        "test_ai_onnx_ml_label_encoder_tensor_mapping",
        "test_ai_onnx_ml_label_encoder_tensor_value_only_mapping",
        "test_equal_string",
        "test_equal_string_broadcast",
        "test_regex_full_match_basic",
        "test_regex_full_match_email_domain",
        "test_regex_full_match_empty",
        "test_string_concat",
        "test_string_concat_broadcasting",
        "test_string_concat_empty_string",
        "test_string_concat_utf8",
        "test_string_concat_zero_dimensional",
        "test_string_split_basic",
        "test_string_split_consecutive_delimiters",
        "test_string_split_empty_string_delimiter",
        "test_string_split_empty_tensor",
        "test_string_split_maxsplit",
        "test_string_split_no_delimiter",
        "test_strnormalizer_export_monday_casesensintive_lower",
        "test_strnormalizer_export_monday_casesensintive_nochangecase",
        "test_strnormalizer_export_monday_casesensintive_upper",
        "test_strnormalizer_export_monday_empty_output",
        "test_strnormalizer_export_monday_insensintive_upper_twodim",
        "test_strnormalizer_nostopwords_nochangecase",
    ],
    # 27 cases
    "dtypes unsupported: bfloat16": [
        "test_attention_3d_causal_bf16",
        "test_attention_3d_causal_bf16_expanded",
        "test_attention_4d_attn_mask_causal_bf16",
        "test_attention_4d_attn_mask_causal_bf16_expanded",
        "test_attention_4d_causal_bf16",
        "test_attention_4d_causal_bf16_expanded",
        "test_attention_4d_causal_padded_kv_bf16",
        "test_attention_4d_causal_padded_kv_bf16_expanded",
        "test_attention_4d_padded_kv_bf16",
        "test_attention_4d_padded_kv_bf16_expanded",
        "test_cast_BFLOAT16_to_FLOAT",
        "test_cast_FLOAT_to_BFLOAT16",
        "test_castlike_BFLOAT16_to_FLOAT",
        "test_castlike_BFLOAT16_to_FLOAT_expanded",
        "test_castlike_FLOAT_to_BFLOAT16",
        "test_castlike_FLOAT_to_BFLOAT16_expanded",
        "test_celu_bfloat16",
        "test_celu_bfloat16_expanded",
        "test_compress_bfloat16",
        "test_einsum_batch_matmul_bfloat16",
        "test_einsum_sum_bfloat16",
        "test_einsum_transpose_bfloat16",
        "test_onehot_with_bfloat16_values",
        "test_range_bfloat16_type_positive_delta",
        "test_range_bfloat16_type_positive_delta_expanded",
        "test_reversesequence_bfloat16",
        "test_unique_bfloat16_sorted_without_axis",
    ],
    # 14 cases
    "dtypes unsupported: float4e2m1": [
        "test_cast_FLOAT16_to_FLOAT4E2M1",
        "test_cast_FLOAT4E2M1_to_FLOAT",
        "test_cast_FLOAT4E2M1_to_FLOAT16",
        "test_cast_FLOAT_to_FLOAT4E2M1",
        "test_castlike_FLOAT16_to_FLOAT4E2M1",
        "test_castlike_FLOAT16_to_FLOAT4E2M1_expanded",
        "test_castlike_FLOAT4E2M1_to_FLOAT",
        "test_castlike_FLOAT4E2M1_to_FLOAT16",
        "test_castlike_FLOAT4E2M1_to_FLOAT16_expanded",
        "test_castlike_FLOAT4E2M1_to_FLOAT_expanded",
        "test_castlike_FLOAT_to_FLOAT4E2M1",
        "test_castlike_FLOAT_to_FLOAT4E2M1_expanded",
        "test_dequantizelinear_float4e2m1",
        "test_quantizelinear_float4e2m1",
    ],
    # 22 cases
    "dtypes unsupported: float8e4m3fn": [
        "test_cast_FLOAT16_to_FLOAT8E4M3FN",
        "test_cast_FLOAT8E4M3FN_to_FLOAT",
        "test_cast_FLOAT8E4M3FN_to_FLOAT16",
        "test_cast_FLOAT_to_FLOAT8E4M3FN",
        "test_cast_no_saturate_FLOAT16_to_FLOAT8E4M3FN",
        "test_cast_no_saturate_FLOAT_to_FLOAT8E4M3FN",
        "test_castlike_FLOAT16_to_FLOAT8E4M3FN",
        "test_castlike_FLOAT16_to_FLOAT8E4M3FN_expanded",
        "test_castlike_FLOAT8E4M3FN_to_FLOAT",
        "test_castlike_FLOAT8E4M3FN_to_FLOAT16",
        "test_castlike_FLOAT8E4M3FN_to_FLOAT16_expanded",
        "test_castlike_FLOAT8E4M3FN_to_FLOAT_expanded",
        "test_castlike_FLOAT_to_FLOAT8E4M3FN",
        "test_castlike_FLOAT_to_FLOAT8E4M3FN_expanded",
        "test_castlike_no_saturate_FLOAT16_to_FLOAT8E4M3FN",
        "test_castlike_no_saturate_FLOAT16_to_FLOAT8E4M3FN_expanded",
        "test_castlike_no_saturate_FLOAT_to_FLOAT8E4M3FN",
        "test_castlike_no_saturate_FLOAT_to_FLOAT8E4M3FN_expanded",
        "test_dequantizelinear_e4m3fn",
        "test_dequantizelinear_e4m3fn_float16",
        "test_dequantizelinear_e4m3fn_zero_point",
        "test_quantizelinear_e4m3fn",
    ],
    # 18 cases
    "dtypes unsupported: float8e4m3fnuz": [
        "test_cast_FLOAT16_to_FLOAT8E4M3FNUZ",
        "test_cast_FLOAT8E4M3FNUZ_to_FLOAT",
        "test_cast_FLOAT8E4M3FNUZ_to_FLOAT16",
        "test_cast_FLOAT_to_FLOAT8E4M3FNUZ",
        "test_cast_no_saturate_FLOAT16_to_FLOAT8E4M3FNUZ",
        "test_cast_no_saturate_FLOAT_to_FLOAT8E4M3FNUZ",
        "test_castlike_FLOAT16_to_FLOAT8E4M3FNUZ",
        "test_castlike_FLOAT16_to_FLOAT8E4M3FNUZ_expanded",
        "test_castlike_FLOAT8E4M3FNUZ_to_FLOAT",
        "test_castlike_FLOAT8E4M3FNUZ_to_FLOAT16",
        "test_castlike_FLOAT8E4M3FNUZ_to_FLOAT16_expanded",
        "test_castlike_FLOAT8E4M3FNUZ_to_FLOAT_expanded",
        "test_castlike_FLOAT_to_FLOAT8E4M3FNUZ",
        "test_castlike_FLOAT_to_FLOAT8E4M3FNUZ_expanded",
        "test_castlike_no_saturate_FLOAT16_to_FLOAT8E4M3FNUZ",
        "test_castlike_no_saturate_FLOAT16_to_FLOAT8E4M3FNUZ_expanded",
        "test_castlike_no_saturate_FLOAT_to_FLOAT8E4M3FNUZ",
        "test_castlike_no_saturate_FLOAT_to_FLOAT8E4M3FNUZ_expanded",
    ],
    # 20 cases
    "dtypes unsupported: float8e5m2": [
        "test_cast_FLOAT16_to_FLOAT8E5M2",
        "test_cast_FLOAT8E5M2_to_FLOAT",
        "test_cast_FLOAT8E5M2_to_FLOAT16",
        "test_cast_FLOAT_to_FLOAT8E5M2",
        "test_cast_no_saturate_FLOAT16_to_FLOAT8E5M2",
        "test_cast_no_saturate_FLOAT_to_FLOAT8E5M2",
        "test_castlike_FLOAT16_to_FLOAT8E5M2",
        "test_castlike_FLOAT16_to_FLOAT8E5M2_expanded",
        "test_castlike_FLOAT8E5M2_to_FLOAT",
        "test_castlike_FLOAT8E5M2_to_FLOAT16",
        "test_castlike_FLOAT8E5M2_to_FLOAT16_expanded",
        "test_castlike_FLOAT8E5M2_to_FLOAT_expanded",
        "test_castlike_FLOAT_to_FLOAT8E5M2",
        "test_castlike_FLOAT_to_FLOAT8E5M2_expanded",
        "test_castlike_no_saturate_FLOAT16_to_FLOAT8E5M2",
        "test_castlike_no_saturate_FLOAT16_to_FLOAT8E5M2_expanded",
        "test_castlike_no_saturate_FLOAT_to_FLOAT8E5M2",
        "test_castlike_no_saturate_FLOAT_to_FLOAT8E5M2_expanded",
        "test_dequantizelinear_e5m2",
        "test_quantizelinear_e5m2",
    ],
    # 18 cases
    "dtypes unsupported: float8e5m2fnuz": [
        "test_cast_FLOAT16_to_FLOAT8E5M2FNUZ",
        "test_cast_FLOAT8E5M2FNUZ_to_FLOAT",
        "test_cast_FLOAT8E5M2FNUZ_to_FLOAT16",
        "test_cast_FLOAT_to_FLOAT8E5M2FNUZ",
        "test_cast_no_saturate_FLOAT16_to_FLOAT8E5M2FNUZ",
        "test_cast_no_saturate_FLOAT_to_FLOAT8E5M2FNUZ",
        "test_castlike_FLOAT16_to_FLOAT8E5M2FNUZ",
        "test_castlike_FLOAT16_to_FLOAT8E5M2FNUZ_expanded",
        "test_castlike_FLOAT8E5M2FNUZ_to_FLOAT",
        "test_castlike_FLOAT8E5M2FNUZ_to_FLOAT16",
        "test_castlike_FLOAT8E5M2FNUZ_to_FLOAT16_expanded",
        "test_castlike_FLOAT8E5M2FNUZ_to_FLOAT_expanded",
        "test_castlike_FLOAT_to_FLOAT8E5M2FNUZ",
        "test_castlike_FLOAT_to_FLOAT8E5M2FNUZ_expanded",
        "test_castlike_no_saturate_FLOAT16_to_FLOAT8E5M2FNUZ",
        "test_castlike_no_saturate_FLOAT16_to_FLOAT8E5M2FNUZ_expanded",
        "test_castlike_no_saturate_FLOAT_to_FLOAT8E5M2FNUZ",
        "test_castlike_no_saturate_FLOAT_to_FLOAT8E5M2FNUZ_expanded",
    ],
    # 4 cases
    "dtypes unsupported: float8e8m0": [
        "test_cast_e8m0_FLOAT16_to_FLOAT8E8M0",
        "test_cast_e8m0_FLOAT8E8M0_to_FLOAT",
        "test_cast_e8m0_FLOAT8E8M0_to_FLOAT16",
        "test_cast_e8m0_FLOAT_to_FLOAT8E8M0",
    ],
    # 17 cases
    "dtypes unsupported: int2": [
        "test_cast_FLOAT16_to_INT2",
        "test_cast_FLOAT_to_INT2",
        "test_cast_INT2_to_FLOAT",
        "test_cast_INT2_to_FLOAT16",
        "test_cast_INT2_to_INT8",
        "test_castlike_FLOAT16_to_INT2",
        "test_castlike_FLOAT16_to_INT2_expanded",
        "test_castlike_FLOAT_to_INT2",
        "test_castlike_FLOAT_to_INT2_expanded",
        "test_castlike_INT2_to_FLOAT",
        "test_castlike_INT2_to_FLOAT16",
        "test_castlike_INT2_to_FLOAT16_expanded",
        "test_castlike_INT2_to_FLOAT_expanded",
        "test_castlike_INT2_to_INT8",
        "test_castlike_INT2_to_INT8_expanded",
        "test_dequantizelinear_int2",
        "test_quantizelinear_int2",
    ],
    # 17 cases
    "dtypes unsupported: int4": [
        "test_cast_FLOAT16_to_INT4",
        "test_cast_FLOAT_to_INT4",
        "test_cast_INT4_to_FLOAT",
        "test_cast_INT4_to_FLOAT16",
        "test_cast_INT4_to_INT8",
        "test_castlike_FLOAT16_to_INT4",
        "test_castlike_FLOAT16_to_INT4_expanded",
        "test_castlike_FLOAT_to_INT4",
        "test_castlike_FLOAT_to_INT4_expanded",
        "test_castlike_INT4_to_FLOAT",
        "test_castlike_INT4_to_FLOAT16",
        "test_castlike_INT4_to_FLOAT16_expanded",
        "test_castlike_INT4_to_FLOAT_expanded",
        "test_castlike_INT4_to_INT8",
        "test_castlike_INT4_to_INT8_expanded",
        "test_dequantizelinear_int4",
        "test_quantizelinear_int4",
    ],
    # 17 cases
    "dtypes unsupported: uint2": [
        "test_cast_FLOAT16_to_UINT2",
        "test_cast_FLOAT_to_UINT2",
        "test_cast_UINT2_to_FLOAT",
        "test_cast_UINT2_to_FLOAT16",
        "test_cast_UINT2_to_UINT8",
        "test_castlike_FLOAT16_to_UINT2",
        "test_castlike_FLOAT16_to_UINT2_expanded",
        "test_castlike_FLOAT_to_UINT2",
        "test_castlike_FLOAT_to_UINT2_expanded",
        "test_castlike_UINT2_to_FLOAT",
        "test_castlike_UINT2_to_FLOAT16",
        "test_castlike_UINT2_to_FLOAT16_expanded",
        "test_castlike_UINT2_to_FLOAT_expanded",
        "test_castlike_UINT2_to_UINT8",
        "test_castlike_UINT2_to_UINT8_expanded",
        "test_dequantizelinear_uint2",
        "test_quantizelinear_uint2",
    ],
    # 17 cases
    "dtypes unsupported: uint4": [
        "test_cast_FLOAT16_to_UINT4",
        "test_cast_FLOAT_to_UINT4",
        "test_cast_UINT4_to_FLOAT",
        "test_cast_UINT4_to_FLOAT16",
        "test_cast_UINT4_to_UINT8",
        "test_castlike_FLOAT16_to_UINT4",
        "test_castlike_FLOAT16_to_UINT4_expanded",
        "test_castlike_FLOAT_to_UINT4",
        "test_castlike_FLOAT_to_UINT4_expanded",
        "test_castlike_UINT4_to_FLOAT",
        "test_castlike_UINT4_to_FLOAT16",
        "test_castlike_UINT4_to_FLOAT16_expanded",
        "test_castlike_UINT4_to_FLOAT_expanded",
        "test_castlike_UINT4_to_UINT8",
        "test_castlike_UINT4_to_UINT8_expanded",
        "test_dequantizelinear_uint4",
        "test_quantizelinear_uint4",
    ],
    # 7 cases
    "training ops (ai.onnx.preview.training domain) unsupported": [
        "test_adagrad",
        "test_adagrad_multiple",
        "test_adam",
        "test_adam_multiple",
        "test_momentum",
        "test_momentum_multiple",
        "test_nesterov_momentum",
    ],
    # 4 cases
    "ai.onnx.ml domain unsupported": [
        "test_ai_onnx_ml_array_feature_extractor",
        "test_ai_onnx_ml_binarizer",
        "test_ai_onnx_ml_tree_ensemble_set_membership",
        "test_ai_onnx_ml_tree_ensemble_single_tree",
    ],
    # 3 cases
    "op not in the registry: Bernoulli": [
        "test_bernoulli",
        "test_bernoulli_double",
        "test_bernoulli_seed",
    ],
    # 10 cases
    "op not in the registry: BitCast": [
        "test_bitcast_2d_float32_to_int32",
        "test_bitcast_bool_to_uint8",
        "test_bitcast_float32_to_int32",
        "test_bitcast_float64_to_int64",
        "test_bitcast_int32_to_float32",
        "test_bitcast_int64_to_float64",
        "test_bitcast_int8_to_uint8",
        "test_bitcast_scalar_float32_to_int32",
        "test_bitcast_uint16_to_int16",
        "test_bitcast_uint32_to_int32",
    ],
    # 13 cases
    "op not in the registry: CausalConvWithState": [
        "test_causal_conv_with_state_b1_c1_degenerate",
        "test_causal_conv_with_state_basic",
        "test_causal_conv_with_state_decode_step",
        "test_causal_conv_with_state_fp16",
        "test_causal_conv_with_state_kernel_size_one",
        "test_causal_conv_with_state_short_input_no_past_state",
        "test_causal_conv_with_state_silu",
        "test_causal_conv_with_state_silu_fp16",
        "test_causal_conv_with_state_silu_with_past_state",
        "test_causal_conv_with_state_swish_alias",
        "test_causal_conv_with_state_with_bias",
        "test_causal_conv_with_state_with_bias_and_past_state",
        "test_causal_conv_with_state_with_past_state",
    ],
    # 9 cases
    "op not in the registry: CumProd": [
        "test_cumprod_1d",
        "test_cumprod_1d_exclusive",
        "test_cumprod_1d_int32_exclusive",
        "test_cumprod_1d_reverse",
        "test_cumprod_1d_reverse_exclusive",
        "test_cumprod_2d_axis_0",
        "test_cumprod_2d_axis_1",
        "test_cumprod_2d_int32",
        "test_cumprod_2d_negative_axis",
    ],
    # 4 cases
    "op not in the registry: DeformConv": [
        "test_basic_deform_conv_with_padding",
        "test_basic_deform_conv_without_padding",
        "test_deform_conv_with_mask_bias",
        "test_deform_conv_with_multiple_offset_groups",
    ],
    # 2 cases
    "op not in the registry: GroupNormalization": [
        "test_group_normalization_epsilon",
        "test_group_normalization_example",
    ],
    # 9 cases
    "op not in the registry: ImageDecoder": [
        "test_image_decoder_decode_bmp_rgb",
        "test_image_decoder_decode_jpeg2k_rgb",
        "test_image_decoder_decode_jpeg_bgr",
        "test_image_decoder_decode_jpeg_grayscale",
        "test_image_decoder_decode_jpeg_rgb",
        "test_image_decoder_decode_png_rgb",
        "test_image_decoder_decode_pnm_rgb",
        "test_image_decoder_decode_tiff_rgb",
        "test_image_decoder_decode_webp_rgb",
    ],
    # 14 cases
    "op not in the registry: LinearAttention": [
        "test_linear_attention_decode_step",
        "test_linear_attention_delta",
        "test_linear_attention_explicit_scale",
        "test_linear_attention_fp16",
        "test_linear_attention_gated",
        "test_linear_attention_gated_delta",
        "test_linear_attention_gated_delta_beta_scalar",
        "test_linear_attention_gated_delta_gqa",
        "test_linear_attention_gated_delta_mqa",
        "test_linear_attention_gated_per_head_decay",
        "test_linear_attention_linear",
        "test_linear_attention_linear_t1_no_past",
        "test_linear_attention_no_past_explicit_zeros",
        "test_linear_attention_prefill_with_past",
    ],
    # 1 case
    "op not in the registry: MeanVarianceNormalization": [
        "test_mvn",
    ],
    # 3 cases
    "op not in the registry: RandomUniformLike": [
        "test_bernoulli_double_expanded",
        "test_bernoulli_expanded",
        "test_bernoulli_seed_expanded",
    ],
    # 2 cases
    "op not in the registry: Scatter": [
        "test_scatter_with_axis",
        "test_scatter_without_axis",
    ],
    # 3 cases
    "op not in the registry: SwiGLU": [
        "test_swiglu",
        "test_swiglu_alpha",
        "test_swiglu_float16",
    ],
    # 4 cases
    "op not in the registry: Swish": [
        "test_swiglu_alpha_expanded",
        "test_swiglu_expanded",
        "test_swiglu_float16_expanded",
        "test_swish",
    ],
    # 3 cases
    "op not in the registry: TensorScatter": [
        "test_tensorscatter",
        "test_tensorscatter_3d",
        "test_tensorscatter_circular",
    ],
    # 7 cases
    "op not in the registry: TfIdfVectorizer": [
        "test_tfidfvectorizer_tf_batch_onlybigrams_skip0",
        "test_tfidfvectorizer_tf_batch_onlybigrams_skip5",
        "test_tfidfvectorizer_tf_batch_uniandbigrams_skip5",
        "test_tfidfvectorizer_tf_only_bigrams_skip0",
        "test_tfidfvectorizer_tf_onlybigrams_levelempty",
        "test_tfidfvectorizer_tf_onlybigrams_skip5",
        "test_tfidfvectorizer_tf_uniandbigrams_skip5",
    ],
    # 1 case
    "op not in the registry: Upsample": [
        "test_upsample_nearest",
    ],
    # 11 cases
    "op not in the registry: ai.onnx.preview.FlexAttention": [
        "test_flexattention",
        "test_flexattention_causal_mask",
        "test_flexattention_diff_head_sizes",
        "test_flexattention_double",
        "test_flexattention_fp16",
        "test_flexattention_gqa",
        "test_flexattention_prob_mod",
        "test_flexattention_relative_positional",
        "test_flexattention_scaled",
        "test_flexattention_score_mod",
        "test_flexattention_soft_cap",
    ],
    # 1 case
    "rejected: DTypeError: node '#0' (Range): Range(f16[], f16[], f16[]): Range start has dtype float16; expected one of ['float32', 'float64', 'int16', 'int32', ...": [  # noqa: E501
        "test_range_float16_type_positive_delta",
    ],
    # 11 cases
    "rejected: UnsupportedOpError: the model uses 1 node(s) whose ops graphcap's registry does not have: 1 \u00d7 Attention-24 (the registry implements Attention-23)": [  # noqa: E501
        "test_attention_24_fullymasked_qk_matmul_output_mode3_zero",
        "test_attention_24_qk_matmul_output_mode3_softmax_precision",
        "test_attention_4d_causal_nonpad_attn_mask_composition",
        "test_attention_4d_causal_nonpad_batch_prefill",
        "test_attention_4d_causal_nonpad_continued_prefill",
        "test_attention_4d_causal_nonpad_negative_offset_structural_empty",
        "test_attention_4d_causal_with_past_and_present",
        "test_attention_4d_diff_heads_mask4d_padded_kv",
        "test_attention_4d_gqa_causal_nonpad_decode",
        "test_attention_4d_gqa_causal_nonpad_decode_fp16",
        "test_attention_causal_boolmask_nan_robustness",
    ],
    # 11 cases
    "rejected: UnsupportedOpError: the model uses 1 node(s) whose ops graphcap's registry does not have: 1 \u00d7 Attention-25 (the registry implements Attention-23)": [  # noqa: E501
        "test_attention_3d_local_window",
        "test_attention_bidirectional_window",
        "test_attention_local_window",
        "test_attention_local_window_default",
        "test_attention_local_window_ext_cache_float16_mask",
        "test_attention_local_window_ext_cache_rank2_mask",
        "test_attention_local_window_ext_cache_rank3_head_mask",
        "test_attention_local_window_ext_cache_rank4_batch_mask",
        "test_attention_local_window_gqa_rank4_mask",
        "test_attention_local_window_rank1_boolean_mask",
        "test_attention_local_window_with_past",
    ],
    # 1 case
    "rejected: UnsupportedOpError: the model uses 1 node(s) whose ops graphcap's registry does not have: 1 \u00d7 Scan before opset 9": [  # noqa: E501
        "test_scan_sum",
    ],
    # 2 cases
    "rejected: UnsupportedOpError: the model uses 1 node(s) whose ops graphcap's registry does not have: 1 \u00d7 SpaceToDepth-28 (the registry implements SpaceToDepth...": [  # noqa: E501
        "test_spacetodepth_crd_mode_example",
        "test_spacetodepth_dcr_mode_example",
    ],
}
# END GENERATED

UNSUPPORTED: dict[str, str] = {name: reason for reason, names in _GROUPS.items() for name in names}

KNOWN_BUGS: dict[str, str] = {
    # None open. Fixed so far: empty-set ReduceMax/ReduceMin/ReduceLogSumExp (now the
    # reduction's identity) and float Mod with fmod=0 (now floor-modulo, as opset 28 says).
}

# Dropout with training_mode=True: the expected outputs come from NumPy's seeded generator.
_DROPOUT = "training-mode Dropout draws a random mask"
RANDOM: dict[str, str] = {
    "test_training_dropout": _DROPOUT,
    "test_training_dropout_default": _DROPOUT,
    "test_training_dropout_default_mask": _DROPOUT,
    "test_training_dropout_mask": _DROPOUT,
}

SKIPS: dict[str, str] = {**UNSUPPORTED, **KNOWN_BUGS, **RANDOM}
