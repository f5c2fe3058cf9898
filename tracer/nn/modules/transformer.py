"""``torch.nn.modules.transformer``'s path: transformer layers and models.

Defined in ``transformer.py`` and ``transformer_model.py`` of ``tracer/nn``, re-exported here.
"""

from tracer.nn.transformer import (
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from tracer.nn.transformer_model import Transformer, TransformerDecoder

__all__ = [
    "Transformer",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
]
