"""``tracer.models``: pretrained models by name, loaded from Hugging Face folders.

``BertModel.from_pretrained(folder)`` (and the other classes' ``from_pretrained``) reads a
folder's ``config.json`` and ``model.safetensors`` into a module tree whose parameter names
are ``transformers``'; ``save_pretrained`` writes a folder ``transformers`` loads.
``AutoModel`` picks the class from the config, ``AutoTokenizer`` loads the folder's
tokenizer. Nothing is downloaded and nothing is unpickled.
"""

from tracer.models._config import ConfigError, PretrainedConfig
from tracer.models._files import CheckpointFormatError
from tracer.models._pretrained import PreTrainedModel
from tracer.models.auto import AutoModel
from tracer.models.bert import (
    BertConfig,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)
from tracer.models.gpt2 import GPT2Config, GPT2LMHeadModel, GPT2Model
from tracer.models.t5 import T5Config, T5EncoderModel, T5ForConditionalGeneration, T5Model
from tracer.models.tokenizer import AutoTokenizer, FastTokenizer

__all__ = [
    "AutoModel",
    "AutoTokenizer",
    "BertConfig",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertModel",
    "CheckpointFormatError",
    "ConfigError",
    "FastTokenizer",
    "GPT2Config",
    "GPT2LMHeadModel",
    "GPT2Model",
    "PreTrainedModel",
    "PretrainedConfig",
    "T5Config",
    "T5EncoderModel",
    "T5ForConditionalGeneration",
    "T5Model",
]
