"""``tracer.models``: pretrained models by name, loaded from Hugging Face folders."""

from tracer.models.bert import (
    BertConfig,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
)
from tracer.models.gpt2 import GPT2Config, GPT2LMHeadModel, GPT2Model
from tracer.models.t5 import T5Config, T5EncoderModel, T5ForConditionalGeneration, T5Model

__all__ = [
    "BertConfig",
    "BertForSequenceClassification",
    "BertForTokenClassification",
    "BertModel",
    "GPT2Config",
    "GPT2LMHeadModel",
    "GPT2Model",
    "T5Config",
    "T5EncoderModel",
    "T5ForConditionalGeneration",
    "T5Model",
]
