"""``torch.nn.modules.linear``'s path: linear maps.

Defined in ``bilinear.py`` and ``layers.py`` of ``tracer/nn``, re-exported here.
"""

from tracer.nn.bilinear import Bilinear
from tracer.nn.layers import Identity, Linear

__all__ = ["Bilinear", "Identity", "Linear"]
