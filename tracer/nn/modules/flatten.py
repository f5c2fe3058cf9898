"""``torch.nn.modules.flatten``'s path: reshaping layers.

Defined in ``flatten.py`` of ``tracer/nn``, re-exported here.
"""

from tracer.nn.flatten import Flatten, Unflatten

__all__ = ["Flatten", "Unflatten"]
