"""``torch.nn.modules.sparse``'s path: embeddings.

Defined in ``embedding_bag.py`` and ``layers.py`` of ``tracer/nn``, re-exported here.
"""

from tracer.nn.embedding_bag import EmbeddingBag
from tracer.nn.layers import Embedding

__all__ = ["Embedding", "EmbeddingBag"]
