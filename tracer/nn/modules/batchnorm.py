"""``torch.nn.modules.batchnorm``'s path: batch normalisation.

Defined in ``batchnorm.py`` of ``tracer/nn``, re-exported here.
"""

from tracer.nn.batchnorm import BatchNorm1d, BatchNorm2d

__all__ = ["BatchNorm1d", "BatchNorm2d"]
