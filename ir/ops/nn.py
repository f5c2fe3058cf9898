"""Neural-network ops with native ONNX forms: Softmax, LogSoftmax, LayerNormalization, Dropout, OneHot."""

from __future__ import annotations
