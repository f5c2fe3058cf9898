"""Valid files other tools write, which graphcap once mishandled (issue 10, items 1-5).

Each model is small and built here with ``onnx.helper`` in the form the named tool writes;
onnxruntime, which runs every one of them, is the oracle. ``tests/export/test_third_party.py`` runs
the real files (torch, onnxsim, onnxslim exports; packaged models).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

import export
import ir
from export.cli.inspect_command import describe, render
from export.onnx.declared import declared_dims
from ir.errors import ExportError
from ir.graph import Graph
from ir.ops.registry import op
from ir.passes import CommonSubexpressionEliminationPass
from runtime import Session

F32 = np.float32
mk = helper.make_node


def _model(nodes, inputs, outputs, value_info=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, value_info=list(value_info))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    return model


def _vi(name: str, shape, elem=TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem, shape)


def _ort(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    options = ort.SessionOptions()
    options.log_severity_level = 3  # the stale value_info warnings are expected
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session.run(None, feeds)


def _run(graph: Graph, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    return list(Session(graph, backend="interpreter").run(feeds).values())


# ---------------------------------------------------------------- 1. CSE


def test_cse_replaces_a_representative_an_earlier_merge_removed() -> None:
    # g2 merges into g1 (both are the symbolic value (n,)), which leaves s2 without uses: it
    # goes as dead. s3 equals s2; it must become the representative, not merge into s2.
    g = Graph("g")
    x = g.add_input("x", F32, ["n", "s"])
    e = op.Unsqueeze(x, np.asarray([2]))
    g1 = op.Gather(op.Shape(x), np.asarray(0))
    g2 = op.Gather(op.Shape(e), np.asarray(0))
    g3 = op.Gather(op.Shape(e), np.asarray(1))
    g.set_outputs([op.Add(g1, g2), op.Mul(g3, g3)])
    feeds = {"x": np.ones((3, 5), F32)}
    want = _run(g, feeds)
    assert CommonSubexpressionEliminationPass().call(g).changed
    g.verify()
    assert [n.op.op_type for n in g.nodes].count("Shape") == 2
    for a, b in zip(_run(g, feeds), want, strict=True):
        np.testing.assert_array_equal(a, b)


# ---------------------------------------------------------------- 2, 3. declared dims


def test_declared_dims_read_placeholders_and_minus_one_as_unknown() -> None:
    dims = ["batch", "batch*2", "unk__0", "LSTMhn_dim_1", "p2o.DynamicDimension.0", -1, 5, None]
    shape = _vi("v", dims).type.tensor_type.shape
    assert declared_dims(shape, bound={"batch"}) == ("batch", "batch*2", *[None] * 4, 5, None)
    # A graph input's own dims define the symbols: only -1 becomes unknown there.
    assert declared_dims(shape) == (*dims[:5], None, 5, None)


def test_placeholder_dims_give_way_to_what_folding_learns() -> None:
    # What onnx's shape inference (tf2onnx, onnxsim) writes for sizes it could not compute:
    # unk__N. The Reshape target is computed from a constant: known after constant folding.
    model = _model(
        [
            mk("Constant", [], ["c"], value=helper.make_tensor("c", 7, [2], [4, 6])),
            mk("Cast", ["c"], ["f"], to=TensorProto.FLOAT),
            mk("Cast", ["f"], ["target"], to=TensorProto.INT64),
            mk("Reshape", ["x", "target"], ["r"]),
            mk("Relu", ["r"], ["y"]),
        ],
        [_vi("x", ["batch", 6])],
        [_vi("y", ["unk__1", "unk__2"])],
        [_vi("r", ["unk__1", "unk__2"]), _vi("target", [2], TensorProto.INT64)],
    )
    x = np.arange(24, dtype=F32).reshape(4, 6) - 12
    graph = export.from_model(model)
    assert str(graph.outputs[0].type) == "f32[?, ?]"
    optimized = ir.optimize(graph, 3)
    assert str(optimized.outputs[0].type) == "f32[4, 6]"
    for g in (graph, optimized):
        np.testing.assert_array_equal(_run(g, {"x": x})[0], _ort(model, {"x": x})[0])


@pytest.mark.parametrize("backend", ["interpreter", "onnxruntime"])
def test_dim_value_minus_one_is_any_size(tmp_path: Path, backend: str) -> None:
    # paddle2onnx writes dim_value -1 for "any size" (rapidocr's classifier has x: [-1, 3, ?, ?]).
    model = _model([mk("Relu", ["x"], ["y"])], [_vi("x", [-1, 3])], [_vi("y", [-1, 3])])
    path = tmp_path / "paddle.onnx"
    onnx.save(model, path)
    x = np.linspace(-1, 1, 6, dtype=F32).reshape(2, 3)
    for session in (Session(path, backend=backend), Session(export.load(path), backend=backend)):
        assert str(session.input_signature) == "x: f32[?, 3]"
        np.testing.assert_array_equal(session.run({"x": x})["y"], _ort(model, {"x": x})[0])


# ---------------------------------------------------------------- 4. stale value_info


def test_stale_declared_shape_is_ignored_with_a_warning() -> None:
    model = _model(
        [mk("Relu", ["x"], ["r"]), mk("Neg", ["r"], ["y"])],
        [_vi("x", [2, 3])],
        [_vi("y", [2, 4])],  # another size
        [_vi("r", [6])],  # another rank
    )
    with pytest.warns(UserWarning) as caught:
        graph = export.from_model(model)
    texts = [str(w.message) for w in caught]
    assert any("declares %r as f32[6]" in t and "rule gives f32[2, 3]" in t for t in texts)
    assert any("declares %y as f32[2, 4]" in t and "is ignored" in t for t in texts)
    assert [str(v.type) for v in (graph.nodes[0].outputs[0], graph.outputs[0])] == ["f32[2, 3]"] * 2
    x = np.linspace(-1, 1, 6, dtype=F32).reshape(2, 3)
    np.testing.assert_array_equal(_run(graph, {"x": x})[0], _ort(model, {"x": x})[0])


def test_declared_dtype_that_contradicts_the_rule_is_still_refused() -> None:
    # onnxruntime refuses this one too ("Type Error: Type (tensor(int64)) of output arg").
    model = _model(
        [mk("Relu", ["x"], ["r"]), mk("Neg", ["r"], ["y"])],
        [_vi("x", [2, 3])],
        [_vi("y", [2, 3])],
        [_vi("r", [2, 3], TensorProto.INT64)],
    )
    with pytest.raises(ExportError, match=r"declares %r as int64; the registry's rule gives"):
        export.from_model(model)


# ---------------------------------------------------------------- 5. inspect


def test_inspect_counts_constant_node_weights_and_subgraph_nodes(tmp_path: Path) -> None:
    body = helper.make_graph(
        [mk("Add", ["s", "xi"], ["s2"]), mk("Relu", ["s2"], ["yi"])],
        "body",
        [_vi("s", [3]), _vi("xi", [3])],
        [_vi("s2", [3]), _vi("yi", [3])],
        [helper.make_tensor("unused", TensorProto.FLOAT, [2], [1.0, 2.0])],
    )
    w = helper.make_tensor("w", TensorProto.FLOAT, [3, 3], np.ones(9))
    model = _model(
        [
            mk("Constant", [], ["w"], value=w),
            mk("Constant", [], ["ks"], value_ints=[1, 2, 3, 4]),
            mk("MatMul", ["xs", "w"], ["h"]),
            mk("Scan", ["s0", "h"], ["sN", "ys"], body=body, num_scan_inputs=1),
        ],
        [_vi("s0", [3]), _vi("xs", [5, 3])],
        [_vi("sN", [3]), _vi("ys", [5, 3]), _vi("ks", [4], TensorProto.INT64)],
    )
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    info = describe(path)
    assert (info["nodes"], info["subgraph_nodes"]) == (6, 2)
    assert info["ops"] == {"Constant": 2, "Add": 1, "MatMul": 1, "Relu": 1, "Scan": 1}
    assert (info["initializers"], info["constant_nodes"]) == (1, 2)
    assert info["parameters"] == 9 + 4 + 2
    assert info["parameter_bytes"] == 9 * 4 + 4 * 8 + 2 * 4
    text = render(info)
    assert "ops (6 nodes, 2 of them in subgraphs," in text
    assert "parameters: 15 in 1 initializers and 2 Constant nodes (76 B)" in text
