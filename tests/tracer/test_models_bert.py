"""tracer.models' BERT against transformers on the same checkpoint (float32, 1e-5).

The oracle is ``transformers`` (with torch) run on the folder it wrote itself; the module
skips without them. Padding is on the right with an attention mask, token types mixed.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import tracer
from tests import hf_checkpoints as hf
from tests.hf_checkpoints import t, torch, transformers
from tracer.models import (
    AutoModel,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)

TOL = 1e-5


@pytest.fixture(scope="module")
def batch() -> dict[str, np.ndarray]:
    ids, mask = hf.right_padded([7, 5, 3])
    types = np.zeros_like(ids)
    types[:, 3:] = 1
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types * mask}


def _ours(model, batch):  # type: ignore[no-untyped-def]
    with tracer.no_grad():
        return model(batch["input_ids"], batch["attention_mask"], batch["token_type_ids"])


def _theirs(model, batch, **kw):  # type: ignore[no-untyped-def]
    with torch.no_grad():
        return model(**{k: t(v) for k, v in batch.items()}, **kw)


def test_bert_model_hidden_states_and_pooler_match(tmp_path: Path, batch) -> None:  # type: ignore[no-untyped-def]
    theirs = hf.bert("BertModel")
    folder = hf.save(theirs, tmp_path / "bert")
    ref = _theirs(theirs, batch)
    out = _ours(BertModel.from_pretrained(folder), batch)
    np.testing.assert_allclose(
        out.last_hidden_state.numpy(), ref.last_hidden_state.numpy(), atol=TOL, rtol=0
    )
    np.testing.assert_allclose(
        out.pooler_output.numpy(), ref.pooler_output.numpy(), atol=TOL, rtol=0
    )


def test_sequence_classification_logits_and_loss_match(tmp_path: Path, batch) -> None:  # type: ignore[no-untyped-def]
    theirs = hf.bert("BertForSequenceClassification", num_labels=3)
    folder = hf.save(theirs, tmp_path / "cls")
    labels = np.array([2, 0, 1])
    ref = _theirs(theirs, batch, labels=t(labels))
    ours = BertForSequenceClassification.from_pretrained(folder)
    with tracer.no_grad():
        out = ours(**batch, labels=labels)
    np.testing.assert_allclose(out.logits.numpy(), ref.logits.numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(out.loss.item(), ref.loss.item(), rtol=TOL)


def test_token_classification_logits_and_ignored_labels_match(tmp_path: Path, batch) -> None:  # type: ignore[no-untyped-def]
    theirs = hf.bert("BertForTokenClassification", num_labels=5)
    folder = hf.save(theirs, tmp_path / "tok")
    labels = np.where(batch["attention_mask"] == 1, np.arange(7) % 5, -100)
    ref = _theirs(theirs, batch, labels=t(labels))
    with tracer.no_grad():
        out = BertForTokenClassification.from_pretrained(folder)(**batch, labels=labels)
    np.testing.assert_allclose(out.logits.numpy(), ref.logits.numpy(), atol=TOL, rtol=0)
    np.testing.assert_allclose(out.loss.item(), ref.loss.item(), rtol=TOL)


def test_one_training_step_matches_torch(tmp_path: Path, batch) -> None:  # type: ignore[no-untyped-def]
    no_dropout = {"hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0}
    theirs = hf.bert("BertForSequenceClassification", num_labels=2, **no_dropout)
    folder = hf.save(theirs, tmp_path / "train")
    ours = BertForSequenceClassification.from_pretrained(folder).train()
    theirs.train()
    labels = np.array([1, 0, 1])
    ref = theirs(**{k: t(v) for k, v in batch.items()}, labels=t(labels))
    ref.loss.backward()
    out = ours(**batch, labels=labels)
    out.loss.backward()
    assert abs(out.loss.item() - ref.loss.item()) <= TOL * abs(ref.loss.item())
    grads = dict(theirs.named_parameters())
    checked = 0
    for name, p in ours.named_parameters():
        g = grads[name].grad.numpy()
        if name.endswith(".key.bias"):  # exactly zero (softmax ignores a per-query shift)
            assert np.abs(p.grad.numpy()).max() < 1e-9 and np.abs(g).max() < 1e-9
            continue
        scale = np.abs(g).max()
        if scale > 0:
            assert np.abs(p.grad.numpy() - g).max() <= TOL * scale, name
            checked += 1
    assert checked >= 30  # every weight of the small model except the unused padding rows


def test_dropout_follows_the_config_and_the_mode(tmp_path: Path, batch) -> None:  # type: ignore[no-untyped-def]
    folder = hf.save(
        hf.bert("BertForSequenceClassification", hidden_dropout_prob=0.5), tmp_path / "d"
    )
    model = BertForSequenceClassification.from_pretrained(folder)
    assert not model.training
    first, second = (_ours(model, batch).logits.numpy() for _ in range(2))
    np.testing.assert_array_equal(first, second)
    model.train()
    tracer.manual_seed(0)
    noisy = _ours(model, batch).logits.numpy()
    assert np.abs(noisy - first).max() > 1e-3
    assert model.bert.encoder.layer[0].output.dropout.p == 0.5
    assert model.dropout.p == 0.5  # classifier_dropout None: hidden_dropout_prob


def test_save_pretrained_writes_what_transformers_loads(tmp_path: Path, batch) -> None:  # type: ignore[no-untyped-def]
    theirs = hf.bert("BertForSequenceClassification", num_labels=3)
    hf.save(theirs, tmp_path / "hf")
    ours = BertForSequenceClassification.from_pretrained(tmp_path / "hf")
    ours.save_pretrained(tmp_path / "ours")
    from safetensors.numpy import load_file

    keys = set(load_file(str(tmp_path / "ours" / "model.safetensors")))
    assert keys == set(load_file(str(tmp_path / "hf" / "model.safetensors")))
    back = transformers.BertForSequenceClassification.from_pretrained(tmp_path / "ours").eval()
    np.testing.assert_allclose(
        _theirs(back, batch).logits.numpy(), _ours(ours, batch).logits.numpy(), atol=TOL, rtol=0
    )
    assert not [p for p in (tmp_path / "ours").iterdir() if p.name.startswith(".")]


def test_base_and_head_checkpoints_load_into_each_other(tmp_path: Path, batch) -> None:  # type: ignore[no-untyped-def]
    hf.save(hf.bert("BertForSequenceClassification"), tmp_path / "head")
    hf.save(hf.bert("BertModel"), tmp_path / "base")
    base_from_head = transformers.BertModel.from_pretrained(tmp_path / "head").eval()
    ours = BertModel.from_pretrained(tmp_path / "head")
    np.testing.assert_allclose(
        _ours(ours, batch).last_hidden_state.numpy(),
        _theirs(base_from_head, batch).last_hidden_state.numpy(),
        atol=TOL,
        rtol=0,
    )
    with pytest.warns(UserWarning, match=r"classifier\.weight, classifier\.bias not in .* newly"):
        head = BertForSequenceClassification.from_pretrained(tmp_path / "base", num_labels=4)
    assert head.classifier.weight.shape == (4, 32)
    assert isinstance(AutoModel.from_pretrained(tmp_path / "head"), BertForSequenceClassification)
