"""``torch.nn.modules.dropout``'s path: dropout.

Defined in ``layers.py`` of ``tracer/nn``, re-exported here.
"""

from tracer.nn.layers import Dropout

__all__ = ["Dropout"]
