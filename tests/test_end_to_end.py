"""End to end: eager model -> ``tracer.trace`` -> ``export.save`` -> runtimes, against eager.

For each model of ``tests/models.py``: the traced graph (dynamic batch, and seq where the
model has one) is saved as ``.onnx``; the file passes ``onnx.checker`` with ``full_check``;
onnxruntime (loading the file) and graphcap's interpreter (running the graph) match the
eager model at the example size and at two others; reading the file back and writing it
again gives the same graph text; and, where torch is installed, the transformer's eager
output matches a ``torch.nn`` twin holding the same weights. The last test runs
``bench/inference.py --quick`` and checks its JSON report.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

import export
import tracer
from ir.graph import Graph
from runtime import Session
from tests import models

ROOT = Path(__file__).resolve().parent.parent
RTOL = ATOL = 1e-5  # float32 end to end


@dataclass(frozen=True)
class Case:
    """A model, how to make its inputs, the example size and the other sizes tested."""

    name: str
    build: Callable[[], models.Module]
    input_name: str
    make: Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]
    example: tuple[int, ...]
    others: tuple[tuple[int, ...], ...]
    dynamic: dict[int, str] = field(default_factory=dict)


def _floats(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _ids(vocab: int) -> Callable[[np.random.Generator, tuple[int, ...]], np.ndarray]:
    def make(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
        return models.token_ids(rng, shape[0], shape[1], vocab)

    return make


BATCH = {0: "batch"}
BATCH_SEQ = {0: "batch", 1: "seq"}
CASES = [
    Case("mlp", models.MLP, "x", _floats, (3, 16), ((1, 16), (8, 16)), BATCH),
    Case(
        "bag_of_embeddings",
        lambda: models.BagOfEmbeddings(vocab=50, d=16, classes=3),
        "ids",
        _ids(50),
        (2, 5),
        ((1, 1), (6, 11)),
        BATCH_SEQ,
    ),
    Case(
        "transformer_relu",
        lambda: models.TextClassifier(vocab=100, d=32, heads=4, ff=64, layers=2, max_len=32),
        "ids",
        _ids(100),
        (2, 7),
        ((1, 1), (5, 32)),
        BATCH_SEQ,
    ),
    Case(
        "transformer_gelu",
        lambda: models.TextClassifier(
            vocab=60, d=24, heads=3, ff=40, layers=1, classes=4, max_len=16, activation="gelu"
        ),
        "ids",
        _ids(60),
        (3, 6),
        ((1, 16), (4, 2)),
        BATCH_SEQ,
    ),
    Case(
        "head_mixer",
        models.HeadMixer,
        "x",
        _floats,
        (2, 5, 24),
        ((1, 1, 24), (4, 9, 24)),
        BATCH_SEQ,
    ),
]


@dataclass
class Exported:
    """One case, traced and saved."""

    case: Case
    model: models.Module
    graph: Graph
    path: Path


def _eager(model: models.Module, x: np.ndarray) -> np.ndarray:
    with tracer.no_grad():
        return model(tracer.tensor(x)).numpy()


@pytest.fixture(scope="module", params=CASES, ids=[c.name for c in CASES])
def exported(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Exported:
    case: Case = request.param
    tracer.manual_seed(0)
    model = case.build()
    example = tracer.tensor(case.make(np.random.default_rng(1), case.example))
    graph = tracer.trace(model, (example,), dynamic_axes={case.input_name: case.dynamic})
    path = tmp_path_factory.mktemp(case.name) / f"{case.name}.onnx"
    export.save(graph, path)
    return Exported(case, model, graph, path)


def _unused_renamed(graph: Graph) -> Graph:
    """A copy whose outputs that nothing reads are named after their node and position."""
    copy = graph.copy()
    for node in copy.nodes:
        for v in node.outputs:
            if not v.uses and v not in copy.outputs:
                copy.rename(v, f"unused.{node.name}.{v.index}")
    return copy


def _sizes(case: Case) -> list[tuple[int, ...]]:
    return [case.example, *case.others]


def test_the_file_passes_the_full_onnx_check(exported: Exported) -> None:
    model = onnx.load(str(exported.path))
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 10
    assert [(o.domain, o.version) for o in model.opset_import] == [("", export.DEFAULT_OPSET)]


def test_dynamic_axes_are_named_dims_in_the_file(exported: Exported) -> None:
    model = onnx.load(str(exported.path))
    (inp,) = model.graph.input
    dims = [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim]
    case = exported.case
    want = [case.dynamic.get(i, n) for i, n in enumerate(case.example)]
    assert inp.name == case.input_name and dims == want


def test_node_sources_are_relative_to_the_project(exported: Exported) -> None:
    model = onnx.load(str(exported.path))
    sources = [
        p.value for node in model.graph.node for p in node.metadata_props if p.key == "source"
    ]
    assert sources, "no node carries its source location"
    for source in sources:
        assert not os.path.isabs(source), source
        assert source.split(":")[0] in ("tests/models.py", "tests/test_end_to_end.py"), source


@pytest.mark.parametrize("backend", ["onnxruntime", "interpreter"])
def test_runtimes_match_eager_at_three_sizes(exported: Exported, backend: str) -> None:
    case = exported.case
    source: Any = exported.path if backend == "onnxruntime" else exported.graph
    session = Session(source, backend=backend)
    assert session.backend == backend
    if backend == "onnxruntime":
        assert session.providers == ["CPUExecutionProvider"]
    rng = np.random.default_rng(2)
    for shape in _sizes(case):
        x = case.make(rng, shape)
        (got,) = session.run({case.input_name: x}).values()
        want = _eager(exported.model, x)
        assert got.shape == want.shape and got.dtype == want.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=RTOL, atol=ATOL, err_msg=f"{backend} at {shape}")


def test_reading_back_and_writing_again_keeps_the_graph(exported: Exported, tmp_path: Path) -> None:
    first = export.load(exported.path)
    again = tmp_path / "again.onnx"
    export.save(first, again)
    second = export.load(again)
    assert str(second) == str(first)
    first.verify()
    # Reading keeps the traced graph, up to trailing absent optional inputs (``Clip(x, lo, _)``
    # is written as ``Clip(x, lo)``) and the names of optional outputs nothing reads (they
    # are left unnamed in the file, and the reader names them afresh).
    traced = re.sub(r"(, _)+\)", ")", str(_unused_renamed(exported.graph)))
    assert str(_unused_renamed(first)) == traced
    # The graph read back computes what the eager model computes.
    case = exported.case
    x = case.make(np.random.default_rng(3), case.others[-1])
    (got,) = Session(first, backend="interpreter").run({case.input_name: x}).values()
    np.testing.assert_allclose(got, _eager(exported.model, x), rtol=RTOL, atol=ATOL)


def test_initializers_carry_the_state_dict_names(exported: Exported) -> None:
    names = {name for name, _ in exported.model.named_parameters()}
    model = onnx.load(str(exported.path))
    assert names <= {t.name for t in model.graph.initializer}


# ---------------------------------------------------------------- torch cross-check


@pytest.mark.torch
@pytest.mark.parametrize("activation", ["relu", "gelu"])
def test_transformer_matches_its_torch_twin(activation: str) -> None:
    torch = pytest.importorskip("torch")
    tracer.manual_seed(4)
    ours = models.TextClassifier(
        vocab=100, d=32, heads=4, ff=64, layers=2, max_len=40, activation=activation
    )
    theirs = models.torch_text_classifier(ours)
    rng = np.random.default_rng(5)
    for shape in [(2, 7), (1, 1), (6, 40)]:
        ids = models.token_ids(rng, *shape, 100)
        with torch.no_grad():
            want = theirs(torch.from_numpy(ids)).numpy()
        np.testing.assert_allclose(
            _eager(ours, ids), want, rtol=RTOL, atol=ATOL, err_msg=f"at {shape}"
        )


@pytest.mark.torch
def test_copy_weights_refuses_mismatched_models() -> None:
    pytest.importorskip("torch")
    tracer.manual_seed(0)
    small = models.TextClassifier(vocab=20, d=8, heads=2, ff=16, layers=1, max_len=8)
    theirs = models.torch_text_classifier(small)
    with pytest.raises(KeyError, match=r"encoder\.layers\.1"):
        models.copy_weights(
            models.TextClassifier(vocab=20, d=8, heads=2, ff=16, layers=2, max_len=8), theirs
        )
    with pytest.raises(ValueError, match=r"tok\.weight"):
        models.copy_weights(
            models.TextClassifier(vocab=21, d=8, heads=2, ff=16, layers=1, max_len=8), theirs
        )


# ---------------------------------------------------------------- the benchmark


@pytest.mark.slow
def test_inference_bench_quick_reports_one_json_line() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "inference.py"), "--quick"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1, done.stdout
    report = json.loads(lines[0])
    assert report["bench"] == "inference"
    for case in ("b1_s64", "b32_s128"):
        row = report["results"][case]
        for key in ("graphcap_eager", "interpreter", "graphcap_ort"):
            assert row[key]["median_ms"] > 0, (case, key)
        # Every backend computed the eager model's logits (checked before timing).
        assert row["max_abs_diff_vs_eager"] < 1e-4, row
    assert report["export"]["graphcap_trace_save_s"] > 0
    if report["torch"] is not None:
        ratios = report["ratios"]
        assert ratios["graphcap_ort_over_torch_eager_b1_s64"] > 0
