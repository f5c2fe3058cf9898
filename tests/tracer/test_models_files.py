"""tracer.models' folder handling without transformers: configs, weights files, errors.

Checkpoints here are written by graphcap itself (``save_pretrained`` of a seeded random
model), so these tests run wherever graphcap does; agreement with ``transformers`` is in
``test_models_bert.py`` and ``test_models_seq.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import tracer
from tracer.models import (
    AutoModel,
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    CheckpointFormatError,
    ConfigError,
    GPT2Config,
    GPT2LMHeadModel,
    T5Config,
)

SMALL_BERT = {
    "vocab_size": 50,
    "hidden_size": 16,
    "num_hidden_layers": 1,
    "num_attention_heads": 2,
    "intermediate_size": 20,
    "max_position_embeddings": 32,
}


@pytest.fixture
def bert_folder(tmp_path: Path) -> Path:
    tracer.manual_seed(0)
    BertModel(BertConfig.from_dict(SMALL_BERT)).save_pretrained(tmp_path / "bert")
    return tmp_path / "bert"


def _hidden(model: BertModel) -> np.ndarray:
    ids = np.array([[2, 7, 9, 4], [3, 5, 0, 0]])
    with tracer.no_grad():
        return model(ids, (ids != 0).astype(np.int64)).last_hidden_state.numpy()


def test_config_keeps_unknown_keys_and_writes_them_back(tmp_path: Path) -> None:
    config = BertConfig.from_dict({**SMALL_BERT, "model_type": "bert", "my_note": [1, 2]})
    assert config.extra == {"my_note": [1, 2]}
    config.save_pretrained(tmp_path)
    written = json.loads((tmp_path / "config.json").read_text())
    assert written["my_note"] == [1, 2] and written["model_type"] == "bert"
    assert written["label2id"] == {"LABEL_0": 0, "LABEL_1": 1}
    again = BertConfig.from_pretrained(tmp_path)
    assert again == config


def test_config_aliases_and_labels() -> None:
    config = GPT2Config.from_dict({"hidden_size": 24, "num_attention_heads": 3})
    assert config.n_embd == 24 and config.hidden_size == 24 and config.n_head == 3
    labels = BertConfig.from_dict({**SMALL_BERT, "id2label": {"0": "neg", "1": "neu", "2": "pos"}})
    assert labels.num_labels == 3 and labels.id2label[2] == "pos"
    assert BertConfig.from_dict(SMALL_BERT, num_labels=5).num_labels == 5


@pytest.mark.parametrize(
    ("cls", "data", "match"),
    [
        (BertConfig, {"hidden_act": "mish"}, r"hidden_act='mish' is not a supported activation"),
        (BertConfig, {"position_embedding_type": "relative_key"}, r"supported: 'absolute'"),
        (BertConfig, {"hidden_size": "768"}, r"hidden_size='768' is of type str; expected int"),
        (BertConfig, {"hidden_size": 30, "num_attention_heads": 4}, r"not a multiple"),
        (GPT2Config, {"activation_function": "quick_gelu"}, r"activation_function='quick_gelu'"),
        (GPT2Config, {"add_cross_attention": True}, r"add_cross_attention=True is not supported"),
        (T5Config, {"feed_forward_proj": "gated-gelu-x"}, r"is not 'ACT' or 'gated-ACT'"),
        (T5Config, {"feed_forward_proj": "gated-mish"}, r"feed_forward_proj='mish'"),
        (BertConfig, {"model_type": "gpt2"}, r"describes a 'gpt2' model, not 'bert'"),
    ],
)
def test_unsupported_config_values_are_refused(cls, data, match) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=match):
        cls.from_dict(data)


def test_save_and_load_round_trip(bert_folder: Path) -> None:
    model = BertModel.from_pretrained(bert_folder)
    assert not model.training
    tracer.manual_seed(1)
    fresh = BertModel(BertConfig.from_pretrained(bert_folder)).eval()
    assert np.abs(_hidden(fresh) - _hidden(model)).max() > 1e-3  # the weights matter
    fresh.load_state_dict(model.state_dict())
    np.testing.assert_array_equal(_hidden(fresh), _hidden(model))
    assert sorted(p.name for p in bert_folder.iterdir()) == ["config.json", "model.safetensors"]


def test_pickled_checkpoints_are_refused_with_the_conversion_command(bert_folder: Path) -> None:
    (bert_folder / "model.safetensors").rename(bert_folder / "pytorch_model.bin")
    with pytest.raises(CheckpointFormatError, match=r"pickled checkpoint.*save_pretrained"):
        BertModel.from_pretrained(bert_folder)
    (bert_folder / "pytorch_model.bin").unlink()
    with pytest.raises(FileNotFoundError, match=r"model\.safetensors"):
        BertModel.from_pretrained(bert_folder)


def test_sharded_weights_load_and_shards_stay_in_the_folder(bert_folder: Path) -> None:
    arrays = load_file(str(bert_folder / "model.safetensors"))
    names = sorted(arrays)
    half = len(names) // 2
    save_file({k: arrays[k] for k in names[:half]}, str(bert_folder / "a.safetensors"))
    save_file({k: arrays[k] for k in names[half:]}, str(bert_folder / "b.safetensors"))
    weight_map = {k: "a.safetensors" if i < half else "b.safetensors" for i, k in enumerate(names)}
    index = bert_folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": weight_map}))
    whole = BertModel.from_pretrained(bert_folder)
    (bert_folder / "model.safetensors").unlink()
    np.testing.assert_array_equal(_hidden(BertModel.from_pretrained(bert_folder)), _hidden(whole))
    weight_map[names[0]] = "../a.safetensors"
    index.write_text(json.dumps({"weight_map": weight_map}))
    with pytest.raises(CheckpointFormatError, match="outside the folder"):
        BertModel.from_pretrained(bert_folder)


def test_missing_and_misshapen_weights_are_errors(bert_folder: Path) -> None:
    path = bert_folder / "model.safetensors"
    arrays = load_file(str(path))
    del arrays["encoder.layer.0.output.dense.weight"]
    save_file(arrays, str(path))
    with pytest.raises(CheckpointFormatError, match=r"lacks weights .*output\.dense\.weight"):
        BertModel.from_pretrained(bert_folder)
    with pytest.raises(CheckpointFormatError, match="lacks weights"):
        GPT2LMHeadModel.from_pretrained(bert_folder, model_type=None)  # not a GPT-2 folder
    arrays["encoder.layer.0.output.dense.weight"] = np.zeros((16, 7), np.float32)
    save_file(arrays, str(path))
    with pytest.raises(CheckpointFormatError, match=r"output\.dense\.weight: checkpoint \[16, 7\]"):
        BertModel.from_pretrained(bert_folder)


def test_a_new_head_is_initialised_with_a_warning(bert_folder: Path) -> None:
    with pytest.warns(UserWarning, match="newly initialised"):
        model = BertForSequenceClassification.from_pretrained(bert_folder, num_labels=3)
    np.testing.assert_array_equal(
        _hidden(model.bert), _hidden(BertModel.from_pretrained(bert_folder))
    )
    assert model.classifier.weight.shape == (3, 16)
    assert np.abs(model.classifier.bias.detach().numpy()).max() == 0  # transformers' init
    model.save_pretrained(bert_folder / "head")
    keys = set(load_file(str(bert_folder / "head" / "model.safetensors")))
    assert "bert.pooler.dense.weight" in keys and "classifier.weight" in keys
    assert json.loads((bert_folder / "head" / "config.json").read_text())["architectures"] == [
        "BertForSequenceClassification"
    ]
    assert isinstance(
        AutoModel.from_pretrained(bert_folder / "head"), BertForSequenceClassification
    )


def test_auto_model_names_what_it_cannot_load(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    with pytest.raises(ConfigError, match=r"'LlamaForCausalLM', which graphcap does not have"):
        AutoModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_half_precision_weights_load_as_float32(bert_folder: Path, dtype: str) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file as save_torch

    model = BertModel.from_pretrained(bert_folder)
    half = {
        k: torch.from_numpy(v.numpy().copy()).to(getattr(torch, dtype))
        for k, v in model.state_dict().items()
    }
    save_torch(half, str(bert_folder / "model.safetensors"), metadata={"format": "pt"})
    loaded = BertModel.from_pretrained(bert_folder).state_dict()
    for key, value in half.items():
        assert loaded[key].dtype == tracer.float32
        np.testing.assert_array_equal(loaded[key].numpy(), value.float().numpy())
