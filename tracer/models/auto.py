"""``AutoModel``: the class a folder's ``config.json`` names, loaded with ``from_pretrained``."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from tracer.models._config import CONFIG_NAME, ConfigError
from tracer.models._pretrained import PreTrainedModel
from tracer.models.bert import BertForSequenceClassification, BertForTokenClassification, BertModel
from tracer.models.gpt2 import GPT2LMHeadModel, GPT2Model
from tracer.models.t5 import T5EncoderModel, T5ForConditionalGeneration, T5Model

ARCHITECTURES: dict[str, type[PreTrainedModel]] = {
    cls.__name__: cls
    for cls in (
        BertModel,
        BertForSequenceClassification,
        BertForTokenClassification,
        GPT2Model,
        GPT2LMHeadModel,
        T5Model,
        T5ForConditionalGeneration,
        T5EncoderModel,
    )
}
# A config without "architectures" gets its model type's base model, as transformers' AutoModel.
BASE_MODELS: dict[str, type[PreTrainedModel]] = {
    "bert": BertModel,
    "gpt2": GPT2Model,
    "t5": T5Model,
}


class AutoModel:
    """Picks the class from ``config.json`` (``architectures[0]``, else ``model_type``)."""

    @staticmethod
    def from_pretrained(folder: str | os.PathLike[str], **config_overrides: Any) -> PreTrainedModel:
        """The folder's model, in eval mode.

        Raises:
            FileNotFoundError: no ``config.json``.
            ConfigError: an architecture or model type this library does not have.
        """
        path = Path(folder) / CONFIG_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{os.fspath(folder)!r} has no {CONFIG_NAME}")
        config = json.loads(path.read_text(encoding="utf-8"))
        names = config.get("architectures") or []
        cls = ARCHITECTURES.get(names[0]) if names else BASE_MODELS.get(config.get("model_type"))
        if cls is None:
            what = names[0] if names else config.get("model_type")
            raise ConfigError(
                f"{os.fspath(path)!r} describes {what!r}, "
                f"which graphcap does not have; supported: {', '.join(ARCHITECTURES)}"
            )
        return cls.from_pretrained(folder, **config_overrides)
