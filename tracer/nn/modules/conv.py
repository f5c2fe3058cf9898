"""``torch.nn.modules.conv``'s path: convolutions.

Defined in ``conv.py`` of ``tracer/nn``, re-exported here.
"""

from tracer.nn.conv import Conv1d, Conv2d

__all__ = ["Conv1d", "Conv2d"]
