"""onnxruntime's contrib ops (``ir/ops/microsoft``) beyond the spec table's one-node checks.

onnxruntime is the oracle throughout: its own schemas (``get_all_operator_schema``), and its
kernels on models the spec table cannot build (weights as initializers, outputs it leaves
undefined, inputs that crash its CPU kernel). The models it fuses (an optimized BERT, T5)
are in ``tests/export/test_third_party.py``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

import ir
from ir.errors import UnsupportedOpError
from ir.ops.microsoft.common import DOMAIN
from ir.ops.microsoft.schemas import REQUIRED, SCHEMAS

F32 = np.float32
RNG = np.random.default_rng(0)


def _r(*shape: int) -> np.ndarray:
    return RNG.uniform(-1, 1, shape).astype(F32)


def _ort_run(
    op_type: str,
    inputs: Sequence[np.ndarray | None],
    attrs: dict[str, Any],
    n_outputs: int,
    constants: Sequence[int] = (),
) -> list[np.ndarray]:
    """Run onnxruntime on one node; inputs at ``constants`` become initializers."""
    names = [f"in{i}" if x is not None else "" for i, x in enumerate(inputs)]
    feeds = {n: x for i, (n, x) in enumerate(zip(names, inputs, strict=True)) if x is not None}
    inits = [numpy_helper.from_array(feeds.pop(names[i]), names[i]) for i in constants]
    node = helper.make_node(op_type, names, [f"out{i}" for i in range(n_outputs)], domain=DOMAIN)
    node.attribute.extend(helper.make_attribute(k, v) for k, v in attrs.items())
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
         for n, x in feeds.items()],
        [helper.make_tensor_value_info(f"out{i}", onnx.TensorProto.FLOAT, None)
         for i in range(n_outputs)],
        inits,
    )  # fmt: skip
    opsets = [helper.make_opsetid("", 20), helper.make_opsetid(DOMAIN, 1)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=10)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(model.SerializeToString(), options, ["CPUExecutionProvider"])
    return session.run(None, feeds)


def _ours(op_type: str, inputs: Sequence[np.ndarray | None], attrs: dict[str, Any]) -> Any:
    return ir.ops.get(op_type, DOMAIN).kernel(*inputs, **attrs)


# ---------------------------------------------------------------- schemas


def _ort_schemas() -> dict[tuple[str, str], Any]:
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    return {(s.domain, s.name): s for s in state.get_all_operator_schema()}


def _ports(params: Any) -> list[str]:
    optional = {"FormalParameterOption.Optional": "?", "FormalParameterOption.Single": ""}
    return [f"{p.name}:{p.typeStr}{optional[str(p.option)]}" for p in params]


@pytest.mark.parametrize("name", sorted(SCHEMAS))
def test_schema_table_is_onnxruntimes(name: str) -> None:
    spec = SCHEMAS[name]
    theirs = _ort_schemas()[(spec.get("domain", DOMAIN), name)]
    assert theirs.since_version == 1
    assert _ports(theirs.inputs) == spec["inputs"].split()
    assert _ports(theirs.outputs) == spec["outputs"].split()
    types = {t.type_param_str: set(t.allowed_type_strs) for t in theirs.type_constraints}
    assert types == {k: set(v) for k, v in spec["types"].items()}
    attrs = {}
    for key, a in theirs.attributes.items():
        proto = onnx.AttributeProto.FromString(a._default_value) if a._default_value else None
        default = helper.get_attribute_value(proto) if proto and proto.name else None
        default = REQUIRED if a.required else default
        attrs[key] = (str(a.type).split(".")[-1], default)
    ours = {k: (t, _stored(d)) for k, (t, d) in spec.get("attrs", {}).items()}
    assert attrs == ours


def _stored(default: Any) -> Any:
    """A default as onnx stores it (floats as float32, strings as bytes)."""
    if isinstance(default, float):
        return float(np.float32(default))
    return default.encode() if isinstance(default, str) and default != REQUIRED else default


# ---------------------------------------------------------------- attention


def test_attention_without_bias_is_attention_with_a_zero_bias() -> None:
    # onnxruntime 1.31's CPU Attention without the optional bias reads unset memory (wrong
    # values, or a segmentation fault): the oracle gets the equivalent explicit zero bias.
    x, w = _r(2, 3, 8), _r(8, 24)
    attrs = {"num_heads": 2, "unidirectional": 1}
    want = _ort_run("Attention", [x, w, np.zeros(24, F32)], attrs, 2)
    for got, expected in zip(_ours("Attention", [x, w], attrs), want, strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_attention_with_a_value_size_of_its_own() -> None:
    # qkv_hidden_sizes=[4, 4, 8]: V heads of 4 where Q/K heads are 2. onnxruntime's present
    # is not the keys then (it leaves it undefined): graphcap's is empty, the output compared.
    x, w, b = _r(2, 3, 8), _r(8, 16), _r(16)
    attrs = {"num_heads": 2, "qkv_hidden_sizes": [4, 4, 8]}
    y, present = _ours("Attention", [x, w, b], attrs)
    np.testing.assert_allclose(y, _ort_run("Attention", [x, w, b], attrs, 1)[0], rtol=1e-5)
    assert present.shape == (2, 2, 2, 3, 0)
    with pytest.raises(UnsupportedOpError, match="past with qkv_hidden_sizes"):
        _ours("Attention", [x, w, b, None, _r(2, 2, 2, 1, 2)], attrs)


@pytest.mark.parametrize("past", [False, True])
def test_causal_multi_head_attention(past: bool) -> None:
    # Not in the spec table: qk holds float32's lowest value where the causal mask is.
    q, k, v, b = _r(2, 3, 8), _r(2, 3, 8), _r(2, 3, 8), _r(24)
    caches = [_r(2, 2, 2, 4), _r(2, 2, 2, 4)] if past else [None, None]
    inputs = [q, k, v, b, None, _r(1, 2, 3, 5 if past else 3), *caches]
    attrs = {"num_heads": 2, "unidirectional": 1}
    want = _ort_run("MultiHeadAttention", inputs, attrs, 4)
    got = _ours("MultiHeadAttention", inputs, attrs)
    for a, e in zip(got, want, strict=True):
        np.testing.assert_allclose(a, e, rtol=1e-5, atol=1e-5)
    assert (got[3] == np.finfo(F32).min).sum() == 2 * 2 * 3  # 3 masked keys per batch, head


@pytest.mark.parametrize(
    ("op_type", "inputs", "attrs", "match"),
    [
        ("Attention", [_r(2, 3, 8), _r(8, 24), _r(24), np.ones((2, 1, 3, 3), np.int32)],
         {}, "4-D"),
        ("Attention", [_r(2, 3, 8), _r(8, 24), _r(24)], {"do_rotary": 1}, "do_rotary"),
        ("Attention", [_r(2, 3, 8), _r(8, 24), _r(24)], {"past_present_share_buffer": 1},
         "past_present_share_buffer"),
        ("MultiHeadAttention", [_r(2, 3, 2, 3, 4)], {}, "packed QKV"),
        ("MultiHeadAttention", [_r(2, 3, 8), _r(2, 4, 2, 2, 4), None], {}, "packed QKV"),
        ("MultiHeadAttention", [_r(2, 3, 8), _r(2, 4, 8), _r(2, 4, 8), *[None] * 6,
         np.zeros((2, 2), np.int32)], {}, "cache_indirection"),
    ],
)  # fmt: skip
def test_unsupported_attention_forms_are_refused(
    op_type: str, inputs: list[Any], attrs: dict[str, Any], match: str
) -> None:
    with pytest.raises(UnsupportedOpError, match=match):
        _ours(op_type, inputs, {"num_heads": 2, **attrs})


# ---------------------------------------------------------------- DynamicQuantizeLSTM


def _quantized(dirs: int, k: int, hidden: int, signed: bool, per_channel: bool) -> list[Any]:
    shape = (dirs, 4 * hidden) if per_channel else (dirs,)
    scale = RNG.uniform(0.002, 0.006, shape).astype(F32)
    if signed:  # onnxruntime requires symmetric int8 weights
        return [RNG.integers(-120, 120, (dirs, k, 4 * hidden), dtype=np.int8), scale,
                np.zeros(shape, np.int8)]  # fmt: skip
    # onnxruntime requires one zero point per direction, even with per-channel scales.
    zero = np.broadcast_to(RNG.integers(100, 150, (dirs, 1)), (dirs, 4 * hidden))[:, : shape[-1]]
    zero = zero.reshape(shape).astype(np.uint8)
    return [RNG.integers(0, 255, (dirs, k, 4 * hidden), dtype=np.uint8), scale, zero]


@pytest.mark.parametrize(
    ("direction", "signed", "per_channel"),
    [("forward", True, False), ("reverse", False, True), ("bidirectional", True, True)],
)
def test_dynamic_quantize_lstm_matches_onnxruntime(
    direction: str, signed: bool, per_channel: bool
) -> None:
    dirs, hidden, seq, batch = 2 if direction == "bidirectional" else 1, 6, 5, 3
    w, ws, wz = _quantized(dirs, 4, hidden, signed, per_channel)
    r, rs, rz = _quantized(dirs, hidden, hidden, signed, per_channel)
    lens = np.asarray([5, 2, 4], np.int32)
    inputs = [_r(seq, batch, 4), w, r, _r(dirs, 8 * hidden), lens, _r(dirs, batch, hidden),
              _r(dirs, batch, hidden), None, ws, wz, rs, rz]  # fmt: skip
    attrs = {"hidden_size": hidden, "direction": direction}
    # Weights, scales and zero points are constants, as onnxruntime requires.
    want = _ort_run("DynamicQuantizeLSTM", inputs, attrs, 3, constants=[1, 2, 8, 9, 10, 11])
    got = _ours("DynamicQuantizeLSTM", inputs, attrs)
    for a, e in zip(got, want, strict=True):
        assert a.shape == e.shape
        # onnxruntime quantizes the activations too (see ir/ops/microsoft/quant.py); the
        # differences measured are about 2e-3.
        np.testing.assert_allclose(a, e, atol=1e-2)
