"""``torch.nn.modules.container``'s path: containers.

Defined in ``containers.py`` of ``tracer/nn``, re-exported here.
"""

from tracer.nn.containers import ModuleDict, ModuleList, Sequential

__all__ = ["ModuleDict", "ModuleList", "Sequential"]
