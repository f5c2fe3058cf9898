"""Image and detection ops.

Resize, GridSample, AffineGrid, Col2Im, CenterCropPad, RoiAlign, NonMaxSuppression, MaxUnpool.
"""

from __future__ import annotations
