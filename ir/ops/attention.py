"""Attention-family ops of newer opsets: Attention, RMSNormalization, RotaryEmbedding."""

from __future__ import annotations
