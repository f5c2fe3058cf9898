"""The ``light`` models bundled with onnx, run on the NumPy interpreter through the reader.

onnx ships nine ImageNet CNNs (AlexNet, DenseNet-121, Inception v1/v2, ResNet-50, ShuffleNet,
SqueezeNet, VGG-19, ZFNet-512) in ``onnx/backend/test/data/light/``: ``light_<name>.onnx``,
whose weights are ``ConstantOfShape`` nodes, and ``light_<name>_output_0.pb``, the expected
output. There are no input files: onnx's runner feeds each non-initializer input with
``Runner.generate_dummy_data(input, seed=0, random=False)`` (``arange(n) / n`` in the
input's shape), and so do these tests. Tolerances are the ones onnx's loader gives each
model. All nine run on the interpreter and match. A model may be skipped only while it is
listed in ``STILL_MISSING`` with exactly the ops the registry lacks (after checking that the
reader refuses it with an error naming them all); an unlisted model that needs a missing
op fails, so a registry regression cannot hide as a skip.

``test_harness_reproduces_expected_outputs`` checks the harness itself on onnxruntime, so a
skipped model is still known to be fed and compared correctly once its ops exist.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper
from onnx.backend.test.loader import load_model_tests
from onnx.backend.test.runner import Runner

from ir.errors import UnsupportedOpError
from tests.export.test_conformance import assert_outputs_match, feed_names, missing_ops, tolerances

_ONNX_ROOT = Path(onnx.__file__).resolve().parent.parent  # test urls start with "onnx/"
LIGHT_DIR = _ONNX_ROOT / "onnx" / "backend" / "test" / "data" / "light"


def _light_tests() -> list[Any]:
    tests = [t for t in load_model_tests(kind="real") if (t.url or "").endswith(".onnx")]
    return sorted(tests, key=lambda t: t.name)


LIGHT_TESTS = _light_tests()

# model name -> the ops it still lacks. Empty: every light model's ops are in the registry.
STILL_MISSING: dict[str, list[str]] = {}


def load_light(test: Any) -> tuple[onnx.ModelProto, dict[str, np.ndarray], list[np.ndarray]]:
    """The model, its dummy feeds (as onnx's runner makes them) and its expected outputs."""
    path = _ONNX_ROOT / test.url
    model = onnx.load(path)
    inits = {t.name for t in model.graph.initializer}
    feeds = {
        v.name: Runner.generate_dummy_data(v, seed=0, name=test.model_name, random=False)
        for v in model.graph.input
        if v.name not in inits
    }
    expected = []
    for i in range(len(model.graph.output)):
        out = path.with_name(f"{path.stem}_output_{i}.pb")
        expected.append(numpy_helper.to_array(onnx.load_tensor(str(out))))
    return model, feeds, expected


def test_light_models_found() -> None:
    assert len(LIGHT_TESTS) >= 9, f"expected the nine light models in {LIGHT_DIR}"
    for test in LIGHT_TESTS:
        assert (_ONNX_ROOT / test.url).is_file(), test.url


@pytest.mark.parametrize("test", LIGHT_TESTS, ids=lambda t: t.name)
def test_light_model(test: Any) -> None:
    model, feeds, expected = load_light(test)
    from export.onnx.reader import from_model
    from runtime.numpy_interpreter import Interpreter

    missing = missing_ops(model)
    assert missing == STILL_MISSING.get(test.model_name, []), (
        f"{test.model_name} lacks ops {missing}; STILL_MISSING lists "
        f"{STILL_MISSING.get(test.model_name, [])}"
    )
    if missing:
        with pytest.raises(UnsupportedOpError) as refused:  # refused up front, all named
            from_model(model, base_dir=LIGHT_DIR)
        assert all(op in str(refused.value) for op in missing), refused.value
        pytest.skip(f"{test.model_name}: ops not in the registry: {', '.join(missing)}")
    graph = from_model(model, base_dir=LIGHT_DIR)
    result = Interpreter(graph).run(feeds)
    rtol, atol = tolerances(test)
    assert_outputs_match(expected, [result[v.name] for v in graph.outputs], rtol, atol)


@pytest.mark.parametrize("test", LIGHT_TESTS, ids=lambda t: t.name)
def test_harness_reproduces_expected_outputs(test: Any) -> None:
    """onnxruntime, fed as above, gives the expected outputs: the harness is sound."""
    import onnxruntime as ort

    model, feeds, expected = load_light(test)
    assert list(feeds) == feed_names(model)[: len(feeds)]
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    rtol, atol = tolerances(test)
    assert_outputs_match(expected, session.run(None, feeds), rtol, atol)


def _light_form_model() -> onnx.ModelProto:
    """A small model written the way the light models are, from the ops graphcap has.

    IR version 3 and opset 9, initializers also listed as graph inputs, weights made by
    ``ConstantOfShape``, and the opset-9 forms of Dropout (``ratio`` attribute), Unsqueeze
    (``axes`` attribute), Reshape, Concat, Gemm and Softmax (2-D coercion).
    """
    from onnx import TensorProto, helper

    rng = np.random.default_rng(0)
    w2 = numpy_helper.from_array(rng.standard_normal((5, 8)).astype(np.float32), "w2")
    shape = numpy_helper.from_array(np.array([8, 12], np.int64), "w1_shape")
    flat = numpy_helper.from_array(np.array([1, -1], np.int64), "flat")
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [0.05])
    nodes = [
        helper.make_node("ConstantOfShape", ["w1_shape"], ["w1"], value=one),
        helper.make_node("Reshape", ["data_0", "flat"], ["x"]),
        helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], transB=1),
        helper.make_node("Relu", ["h"], ["r"]),
        helper.make_node("Dropout", ["r"], ["d"], ratio=0.5),
        helper.make_node("Gemm", ["d", "w2", "b2"], ["logits"], transB=1, alpha=2.0),
        helper.make_node("Unsqueeze", ["logits"], ["u"], axes=[0]),
        helper.make_node("Concat", ["u", "u"], ["c"], axis=0),
        helper.make_node("Softmax", ["c"], ["prob_0"], axis=1),
    ]
    b1 = numpy_helper.from_array(rng.standard_normal(8).astype(np.float32), "b1")
    b2 = numpy_helper.from_array(rng.standard_normal(1).astype(np.float32), "b2")
    inits = [w2, shape, flat, b1, b2]
    inputs = [helper.make_tensor_value_info("data_0", TensorProto.FLOAT, [1, 3, 2, 2])]
    inputs += [helper.make_tensor_value_info(t.name, t.data_type, t.dims) for t in inits]
    out = helper.make_tensor_value_info("prob_0", TensorProto.FLOAT, [2, 1, 5])
    graph = helper.make_graph(nodes, "light_form", inputs, [out], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 9)])
    model.ir_version = 3
    return model


def test_light_form_model_matches_onnxruntime() -> None:
    """The light models' file form (IR 3, opset 9) runs on the interpreter as on onnxruntime."""
    import onnxruntime as ort

    from export.onnx.reader import from_model
    from runtime.numpy_interpreter import Interpreter

    model = _light_form_model()
    onnx.checker.check_model(model)
    inits = {t.name for t in model.graph.initializer}
    feeds = {
        v.name: Runner.generate_dummy_data(v, seed=0, name="light_form", random=False)
        for v in model.graph.input
        if v.name not in inits
    }
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    expected = session.run(None, feeds)
    graph = from_model(model)
    assert [v.name for v in graph.inputs] == ["data_0"], "initializers are not inputs to feed"
    result = Interpreter(graph).run(feeds)
    assert_outputs_match(expected, [result[v.name] for v in graph.outputs], 1e-5, 1e-6)
