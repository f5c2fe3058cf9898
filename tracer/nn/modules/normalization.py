"""``torch.nn.modules.normalization``'s path: layer normalisation.

Defined in ``layers.py`` of ``tracer/nn``, re-exported here.
"""

from tracer.nn.layers import LayerNorm

__all__ = ["LayerNorm"]
