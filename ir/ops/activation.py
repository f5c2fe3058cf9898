"""Activations: Sigmoid, LeakyRelu, Elu, Softplus, Gelu, Erf."""

from __future__ import annotations
