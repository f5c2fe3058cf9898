"""Pooling: MaxPool, AveragePool, LpPool, GlobalAveragePool, GlobalMaxPool."""

from __future__ import annotations
