"""Quantization ops.

QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, QLinearMatMul, MatMulInteger,
ConvInteger, QLinearConv.
"""

from __future__ import annotations
