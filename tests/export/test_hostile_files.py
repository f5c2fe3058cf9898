"""Malformed and hostile ONNX files: ``export.load`` and ``ir.verify`` raise graphcap's errors.

Each case is a small model built with ``onnx.helper`` and broken in one way that once
reached a raw exception (IndexError, TypeError, UnicodeDecodeError, RecursionError,
MemoryError...), a hang or an allocation of terabytes. ``tests/fuzz.py`` searches for
more; this file pins the ones found.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import export
import ir
from ir.errors import ExportError, GraphcapError, GraphInvariantError, ShapeError
from ir.graph import Graph, Node, Value
from ir.ops import registry
from ir.types import TensorType

ROOT = Path(__file__).resolve().parents[2]
F = TensorProto.FLOAT


def _model(nodes, inputs=None, outputs=None, inits=(), opset: int = 20) -> onnx.ModelProto:
    inputs = inputs if inputs is not None else [helper.make_tensor_value_info("x", F, [2, 4])]
    outputs = outputs if outputs is not None else [helper.make_tensor_value_info("y", F, None)]
    graph = helper.make_graph(nodes, "g", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    return model


def _save(tmp_path: Path, model: onnx.ModelProto | bytes, name: str = "m.onnx") -> Path:
    path = tmp_path / name
    data = model if isinstance(model, bytes) else model.SerializeToString()
    path.write_bytes(data)
    return path


def _weights(dims: list[int], raw: bytes = b"") -> onnx.TensorProto:
    t = TensorProto(name="w", data_type=F, dims=dims)
    t.raw_data = raw
    return t


def _add_w(inits: list[onnx.TensorProto]) -> onnx.ModelProto:
    return _model([helper.make_node("Add", ["x", "w"], ["y"])], inits=inits)


def _external(info: dict[str, str], dims: list[int]) -> onnx.ModelProto:
    t = TensorProto(name="w", data_type=F, dims=dims, data_location=TensorProto.EXTERNAL)
    for k, v in info.items():
        t.external_data.add(key=k, value=v)
    return _add_w([t])


def _attr(node: onnx.NodeProto, **attrs: onnx.AttributeProto) -> onnx.NodeProto:
    for name, a in attrs.items():
        a.name = name
        node.attribute.append(a)
    return node


def _invalid_utf8_op_type() -> bytes:
    data = _model([helper.make_node("Relu", ["x"], ["y"])]).SerializeToString()
    return data.replace(b"Relu", b"\xff\xfe\xfd\xfc")


def _deep_metadata() -> onnx.ModelProto:
    m = _model([helper.make_node("Relu", ["x"], ["y"])])
    m.metadata_props.add(key="graphcap.baked", value="[" * 100_000 + "]" * 100_000)
    return m


CASES: dict[str, tuple[Callable[[], onnx.ModelProto | bytes], type[Exception], str]] = {
    "raw data shorter than its dims": (
        lambda: _add_w([_weights([4], b"\0" * 8)]),
        ExportError,
        r"dims \[4\] of float32 need 16 bytes",
    ),
    "typed data shorter than its dims": (
        lambda: _add_w([TensorProto(name="w", data_type=F, dims=[4], float_data=[1, 2, 3])]),
        ExportError,
        "need 4 values in float_data",
    ),
    "dims that overflow": (
        lambda: _add_w([_weights([2**40, 2**40])]),
        ExportError,
        "need",
    ),
    "negative dims": (lambda: _add_w([_weights([-4])]), ExportError, "negative"),
    "a missing input": (
        lambda: _model([helper.make_node("Reshape", ["x"], ["y"])]),
        ExportError,
        "has 1 inputs; ONNX Reshape-19 takes 2..2",
    ),
    "an extra input": (
        lambda: _model([helper.make_node("Relu", ["x", "x"], ["y"])]),
        ExportError,
        "has 2 inputs",
    ),
    "an empty required input": (
        lambda: _model([helper.make_node("Reshape", ["x", ""], ["y"])]),
        ExportError,
        r"input\(s\) \[1\] are missing",
    ),
    "a non-UTF-8 string attribute": (
        lambda: _model(
            [
                _attr(
                    helper.make_node("Pad", ["x", "p"], ["y"]),
                    mode=helper.make_attribute("m", b"\xff"),
                )
            ],
            inits=[numpy_helper.from_array(np.zeros(4, np.int64), "p")],
        ),
        ExportError,
        "not UTF-8",
    ),
    "a non-UTF-8 op type": (_invalid_utf8_op_type, ExportError, "op_type is not UTF-8"),
    "opset 0": (lambda: _model([], opset=0), ExportError, r"opset\(s\) \[0\]"),
    "opset 99": (lambda: _model([], opset=99), ExportError, r"\[99\]; expected one opset"),
    "opset 2**40": (lambda: _model([], opset=2**40), ExportError, "1099511627776"),
    "a Constant without outputs": (
        lambda: _model([helper.make_node("Constant", [], [], value_float=1.0)]),
        ExportError,
        "a Constant has no inputs, one named output",
    ),
    "an attribute of the wrong type": (
        lambda: _model([helper.make_node("Softmax", ["x"], ["y"], axis=1.5)]),
        ExportError,
        "attribute axis is FLOAT; ONNX Softmax-13 declares it INT",
    ),
    "a duplicated attribute": (
        lambda: _model(
            [
                _attr(
                    helper.make_node("Softmax", ["x"], ["y"], axis=1),
                    axis=helper.make_attribute("a", 0),
                )
            ]
        ),
        ExportError,
        r"\['axis'\] are given more than once",
    ),
    "outputs that num_outputs does not count": (
        lambda: _model([helper.make_node("Split", ["x"], ["y", "z"], axis=1, num_outputs=3)]),
        ExportError,
        "has 2 outputs but num_outputs=3",
    ),
    "a kernel_shape longer than the spatial axes": (
        lambda: _model(
            [helper.make_node("LpPool", ["x"], ["y"], kernel_shape=[2, 2])],
            inputs=[helper.make_tensor_value_info("x", F, [1, 1, 8])],
        ),
        ShapeError,
        "kernel_shape has 2 entries for 1 spatial axes",
    ),
    "a block size of 0": (
        lambda: _model(
            [helper.make_node("DepthToSpace", ["x"], ["y"], blocksize=0)],
            inputs=[helper.make_tensor_value_info("x", F, [1, 4, 2, 2])],
        ),
        ShapeError,
        "DepthToSpace",
    ),
    "a required attribute missing (Cast's to)": (
        lambda: _model([helper.make_node("Cast", ["x"], ["y"])]),
        ExportError,
        r"required attribute\(s\) \['to'\]",
    ),
    "a required attribute missing (MaxPool's kernel_shape)": (
        lambda: _model(
            [helper.make_node("MaxPool", ["x"], ["y"])],
            inputs=[helper.make_tensor_value_info("x", F, [1, 1, 8])],
        ),
        ExportError,
        r"required attribute\(s\) \['kernel_shape'\]",
    ),
    "external offset -1": (
        lambda: _external({"location": "w.data", "offset": "-1"}, [4]),
        ExportError,
        "offset '-1' is not a non-negative decimal",
    ),
    "external offset 2**62": (
        lambda: _external({"location": "w.data", "offset": str(2**62)}, [4]),
        ExportError,
        "below 2\\*\\*62",
    ),
    "external offset 1.5": (
        lambda: _external({"location": "w.data", "offset": "1.5"}, [4]),
        ExportError,
        "offset '1.5'",
    ),
    "external length abc": (
        lambda: _external({"location": "w.data", "length": "abc"}, [4]),
        ExportError,
        "length 'abc'",
    ),
    "external dims of 4 TiB": (
        lambda: _external({"location": "w.data"}, [2**40]),
        ExportError,
        "ends before the tensor's data",
    ),
    "deeply nested graphcap metadata": (_deep_metadata, ExportError, "nests JSON deeper"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_file_raises_a_clean_error(tmp_path: Path, case: str) -> None:
    build, error, match = CASES[case]
    (tmp_path / "w.data").write_bytes(bytes(64))
    path = _save(tmp_path, build())
    start = time.perf_counter()
    with pytest.raises(error, match=match):
        export.load(path)
    assert time.perf_counter() - start < 10  # no terabyte allocation, no quadratic walk


def test_required_checks_hold_under_python_O(tmp_path: Path) -> None:
    """The checks are raises, not asserts: ``python -O`` keeps them (one was an assert)."""
    models = {
        "lstm_without_r.onnx": _model(
            [helper.make_node("LSTM", ["x", "w", ""], ["y"], hidden_size=2)],
            inputs=[helper.make_tensor_value_info("x", F, [3, 1, 2])],
            inits=[numpy_helper.from_array(np.zeros((1, 8, 2), np.float32), "w")],
        ),
        "softmax11_without_input.onnx": _model([helper.make_node("Softmax", [], ["y"])], opset=11),
        "cast_without_to.onnx": _model([helper.make_node("Cast", ["x"], ["y"])]),
    }
    for name, m in models.items():
        _save(tmp_path, m, name)
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import export
        from ir.errors import GraphcapError
        for name in {sorted(models)!r}:
            try:
                export.load({str(tmp_path)!r} + "/" + name)
            except GraphcapError as err:
                print(name, "clean", type(err).__name__)
            except Exception as err:
                print(name, "raw", type(err).__name__, err)
        """
    )
    res = subprocess.run(
        [sys.executable, "-O", "-c", script], capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert len(lines) == len(models) and all(" clean " in line for line in lines), lines


def test_verify_refuses_a_node_without_a_required_input() -> None:
    g = Graph("g")
    x = g.add_input("x", np.float32, (2, 4))
    node = Node(g, registry.get("Reshape"), [x], {}, "reshape")
    node.outputs = (Value(g, "y", TensorType(np.dtype(np.float32), (8,)), producer=node),)
    g._names.add("y")
    g.append(node)
    g.set_outputs(node.outputs)
    with pytest.raises(GraphInvariantError, match=r"without required input\(s\) \[1\]"):
        ir.verify(g)


def test_a_model_file_that_never_ends_is_refused(tmp_path: Path) -> None:
    """A FIFO, or a link to /dev/zero, is refused instead of read forever."""
    os.mkfifo(tmp_path / "fifo.onnx")
    os.symlink("/dev/zero", tmp_path / "zero.onnx")
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(ROOT)!r})
        import export
        from ir.errors import ExportError
        for name in ("fifo.onnx", "zero.onnx"):
            try:
                export.load({str(tmp_path)!r} + "/" + name)
            except ExportError as err:
                print(name, err)
        """
    )
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.count("is not a regular file") == 2, res.stdout


def test_external_data_must_be_a_regular_file_inside_the_folder(tmp_path: Path) -> None:
    os.symlink("/dev/zero", tmp_path / "zero.data")
    path = _save(tmp_path, _external({"location": "zero.data"}, [4]))
    with pytest.raises(ExportError, match="resolves outside the model's folder"):
        export.load(path)
    os.mkfifo(tmp_path / "fifo.data")
    path = _save(tmp_path, _external({"location": "fifo.data"}, [4]))
    with pytest.raises(ExportError, match=r"missing in .* \(or is not a regular file\)"):
        export.load(path)


def test_split_into_more_parts_than_a_file_can_name(tmp_path: Path) -> None:
    """A ``split`` input declared with 2**40 entries is refused, not allocated."""
    node = helper.make_node("Split", ["x", "s"], ["y"])
    inputs = [
        helper.make_tensor_value_info("x", F, [2, 4]),
        helper.make_tensor_value_info("s", TensorProto.INT64, [2**40]),
    ]
    with pytest.raises(GraphcapError, match="parts"):
        export.load(_save(tmp_path, _model([node], inputs=inputs)))
