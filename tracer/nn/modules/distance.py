"""``torch.nn.modules.distance``'s path: distances.

Defined in ``distance.py`` of ``tracer/nn``, re-exported here.
"""

from tracer.nn.distance import CosineSimilarity, PairwiseDistance

__all__ = ["CosineSimilarity", "PairwiseDistance"]
