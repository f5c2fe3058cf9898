"""tracer.models' GPT-2 and T5 against transformers on the same checkpoint (float32).

The oracle is ``transformers`` (with torch) on the folder it wrote itself. Hidden states and
logits must agree to 1e-5 (relative to the logits' scale where they are large); padded
positions, whose outputs no token depends on, are left out.
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
    GPT2LMHeadModel,
    GPT2Model,
    T5EncoderModel,
    T5ForConditionalGeneration,
    T5Model,
)

TOL = 1e-5


def close(ours: np.ndarray, ref: np.ndarray, keep: np.ndarray | None = None) -> None:
    """Agreement to 1e-5 of the reference's scale (absolute when that is below 1)."""
    if keep is not None:
        ours, ref = ours[keep.astype(bool)], ref[keep.astype(bool)]
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(ours, ref, atol=TOL * scale, rtol=0)


# ------------------------------------------------------------------ GPT-2


@pytest.fixture(scope="module")
def gpt2_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return hf.save(hf.gpt2(), tmp_path_factory.mktemp("gpt2"))


@pytest.mark.parametrize("std", [None, 0.5], ids=["transformers_init", "spread_weights"])
def test_gpt2_logits_and_loss_match_with_left_padding(tmp_path: Path, std: float | None) -> None:
    gpt2_folder = hf.save(hf.gpt2(std), tmp_path)
    theirs = transformers.GPT2LMHeadModel.from_pretrained(gpt2_folder).eval()
    ids, mask = hf.left_padded([6, 9, 4])
    labels = np.where(mask == 1, ids, -100)
    with torch.no_grad():
        ref = theirs(t(ids), attention_mask=t(mask), labels=t(labels))
    with tracer.no_grad():
        out = GPT2LMHeadModel.from_pretrained(gpt2_folder)(ids, mask, labels=labels)
    close(out.logits.numpy(), ref.logits.numpy(), mask)
    np.testing.assert_allclose(out.loss.item(), ref.loss.item(), rtol=TOL)


def test_gpt2_base_model_hidden_states_match(gpt2_folder: Path) -> None:
    theirs = transformers.GPT2Model.from_pretrained(gpt2_folder).eval()
    ids, mask = hf.right_padded([8, 5])
    with torch.no_grad():
        ref = theirs(t(ids), attention_mask=t(mask)).last_hidden_state.numpy()
    with tracer.no_grad():
        out = GPT2Model.from_pretrained(gpt2_folder)(ids, mask).last_hidden_state.numpy()
    close(out, ref, mask)


def test_gpt2_cache_gives_the_full_forward(gpt2_folder: Path) -> None:
    model = GPT2LMHeadModel.from_pretrained(gpt2_folder)
    ids, _ = hf.left_padded([10, 10])
    with tracer.no_grad():
        full = model(ids).logits.numpy()
        first = model(ids[:, :7], use_cache=True)
        rest = model(ids[:, 7:], past_key_values=first.past_key_values).logits.numpy()
    np.testing.assert_allclose(rest, full[:, 7:], atol=1e-5, rtol=0)


def test_gpt2_untied_head_loads_and_round_trips(tmp_path: Path) -> None:
    theirs = hf.gpt2(tie_word_embeddings=False)
    hf.save(theirs, tmp_path / "hf")
    ours = GPT2LMHeadModel.from_pretrained(tmp_path / "hf")
    assert ours.lm_head is not None
    ours.save_pretrained(tmp_path / "ours")
    back = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "ours").eval()
    ids, _ = hf.left_padded([5, 5])
    with torch.no_grad():
        ref = back(t(ids)).logits.numpy()
    with tracer.no_grad():
        close(ours(ids).logits.numpy(), ref)


def test_gpt2_round_trip_keys_are_transformers(gpt2_folder: Path, tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    GPT2LMHeadModel.from_pretrained(gpt2_folder).save_pretrained(tmp_path)
    keys = set(load_file(str(tmp_path / "model.safetensors")))
    assert keys == set(load_file(str(gpt2_folder / "model.safetensors")))
    assert "lm_head.weight" not in keys and "transformer.wte.weight" in keys
    assert isinstance(AutoModel.from_pretrained(tmp_path), GPT2LMHeadModel)


# ------------------------------------------------------------------ T5


def _t5_batch() -> dict[str, np.ndarray]:
    ids, mask = hf.right_padded([30, 25, 6], seed=1)  # distances past max_distance (20)
    dec, _ = hf.left_padded([12, 12, 12], seed=2)
    dec[:, 0] = 0
    return {"input_ids": ids, "attention_mask": mask, "decoder_input_ids": dec}


@pytest.mark.parametrize(
    ("untied", "std"), [(False, None), (True, 0.2)], ids=["tied_relu", "untied_gated_gelu_spread"]
)
def test_t5_logits_and_loss_match(tmp_path: Path, untied: bool, std: float | None) -> None:
    kw = {"feed_forward_proj": "gated-gelu"} if untied else {}
    theirs = hf.t5(untied=untied, std=std, **kw)
    hf.save(theirs, tmp_path)
    theirs = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path).eval()
    batch = _t5_batch()
    labels = batch["decoder_input_ids"][:, 1:].copy()
    labels[2, 6:] = -100
    with torch.no_grad():
        ref = theirs(**{k: t(v) for k, v in batch.items()})
        ref_loss = theirs(t(batch["input_ids"]), t(batch["attention_mask"]), labels=t(labels)).loss
    ours = T5ForConditionalGeneration.from_pretrained(tmp_path)
    assert (ours.lm_head is not None) == untied
    with tracer.no_grad():
        out = ours(**batch)
        loss = ours(batch["input_ids"], batch["attention_mask"], labels=labels).loss
    close(out.logits.numpy(), ref.logits.numpy())
    close(
        out.encoder_last_hidden_state.numpy(),
        ref.encoder_last_hidden_state.numpy(),
        batch["attention_mask"],
    )
    np.testing.assert_allclose(loss.item(), ref_loss.item(), rtol=TOL)


def test_t5_base_and_encoder_models_match(tmp_path: Path) -> None:
    hf.save(hf.t5("T5Model"), tmp_path)
    batch = _t5_batch()
    theirs = transformers.T5Model.from_pretrained(tmp_path).eval()
    encoder = transformers.T5EncoderModel.from_pretrained(tmp_path).eval()
    with torch.no_grad():
        ref = theirs(**{k: t(v) for k, v in batch.items()}).last_hidden_state.numpy()
        ref_enc = encoder(
            t(batch["input_ids"]), t(batch["attention_mask"])
        ).last_hidden_state.numpy()
    with tracer.no_grad():
        out = T5Model.from_pretrained(tmp_path)(**batch).last_hidden_state.numpy()
        enc = T5EncoderModel.from_pretrained(tmp_path)(batch["input_ids"], batch["attention_mask"])
    close(out, ref)
    close(enc.last_hidden_state.numpy(), ref_enc, batch["attention_mask"])


def test_t5_round_trip_to_transformers(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    hf.save(hf.t5(), tmp_path / "hf")
    ours = T5ForConditionalGeneration.from_pretrained(tmp_path / "hf")
    ours.save_pretrained(tmp_path / "ours")
    assert set(load_file(str(tmp_path / "ours" / "model.safetensors"))) == set(
        load_file(str(tmp_path / "hf" / "model.safetensors"))
    )
    back = transformers.T5ForConditionalGeneration.from_pretrained(tmp_path / "ours").eval()
    batch = _t5_batch()
    with torch.no_grad():
        ref = back(**{k: t(v) for k, v in batch.items()}).logits.numpy()
    with tracer.no_grad():
        close(ours(**batch).logits.numpy(), ref)
