"""``torch.nn.modules.padding``'s path: padding.

Defined in ``padding.py`` of ``tracer/nn``, re-exported here.
"""

from tracer.nn.padding import ConstantPad1d, ConstantPad2d, ZeroPad1d, ZeroPad2d

__all__ = ["ConstantPad1d", "ConstantPad2d", "ZeroPad1d", "ZeroPad2d"]
