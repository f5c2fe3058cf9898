"""``torch.nn.modules.module``'s path: base class.

Defined in ``module.py`` of ``tracer/nn``, re-exported here.
"""

from tracer.nn.module import Module

__all__ = ["Module"]
