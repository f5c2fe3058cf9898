"""Bitwise and bit-shift ops on integers: BitwiseAnd, BitwiseOr, BitwiseXor, BitwiseNot, BitShift."""

from __future__ import annotations
