"""Third-party ONNX files (``tests/corpus.py``): loaded, run, optimized, against onnxruntime.

For each file: ``export.load`` reads it; the interpreter runs it; ``ir.optimize`` at level 3
rewrites it and the interpreter runs the result again; the optimized graph, written back by
graphcap, runs on onnxruntime too. Every result is compared with onnxruntime running the
original file on the same inputs, within the entry's ``atol`` (1e-4 unless it says why)
plus a relative 1e-4. The default run keeps the small entries; the big ones and the slow
tools (torch's dynamo exporter) are marked slow.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import export
import ir
from ir.errors import UnsupportedOpError
from ir.ops import registry
from runtime import Session
from tests.corpus import ENTRIES, Entry

_PARAMS = [pytest.param(e, id=e.name, marks=[pytest.mark.slow] if e.slow else []) for e in ENTRIES]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("corpus")


def _missing(ops: tuple[str, ...]) -> list[str]:
    missing = []
    for op_type in ops:
        try:
            registry.get(op_type)
        except UnsupportedOpError:
            missing.append(op_type)
    return missing


def _onnxruntime(path: Path, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds), strict=True))


def _assert_close(got: dict[str, np.ndarray], want: dict[str, np.ndarray], atol: float) -> None:
    assert list(got) == list(want)
    for name, expected in want.items():
        assert got[name].shape == expected.shape, name
        np.testing.assert_allclose(got[name], expected, rtol=1e-4, atol=atol, err_msg=name)


@pytest.mark.parametrize("entry", _PARAMS)
def test_third_party_file(entry: Entry, folder: Path) -> None:
    missing = _missing(entry.needs)
    if missing:
        pytest.skip(f"the registry has no {missing} yet (control flow ops, ir/ops/control.py)")
    path = entry.make(folder)
    feeds = entry.feeds(onnx.load(str(path), load_external_data=False))
    want = _onnxruntime(path, feeds)
    graph = export.load(path)
    _assert_close(Session(graph, backend="interpreter").run(feeds), want, entry.atol)
    optimized = ir.optimize(graph, 3)
    _assert_close(Session(optimized, backend="interpreter").run(feeds), want, entry.atol)
    _assert_close(Session(optimized, backend="onnxruntime").run(feeds), want, entry.atol)


def test_onnxruntime_fuses_the_bert_export_into_contrib_ops(folder: Path) -> None:
    """The optimized BERT of the corpus holds the fused ops it is there to cover."""
    entry = next(e for e in ENTRIES if e.name == "bert.ort_optimize")
    model = onnx.load(str(entry.make(folder)))
    fused = {n.op_type for n in model.graph.node if n.domain == "com.microsoft"}
    assert fused == {"Attention", "BiasGelu", "EmbedLayerNormalization", "SkipLayerNormalization"}
    graph = export.load(entry.make(folder))
    kept = {n.op.op_type for n in ir.optimize(graph, 3).nodes if n.op.domain == "com.microsoft"}
    assert kept == fused
