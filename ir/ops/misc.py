"""Assorted tensor ops: CastLike, EyeLike, Hardmax, Compress, DepthToSpace, SpaceToDepth, LpNormalization."""

from __future__ import annotations
