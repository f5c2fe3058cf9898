"""Convolutions and image normalisations: Conv, ConvTranspose, BatchNormalization, InstanceNormalization, LRN."""

from __future__ import annotations
