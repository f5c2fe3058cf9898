"""Specs of ``ir/ops/quant.py``."""

from __future__ import annotations

from tests.op_specs.common import OpSpec

SPECS: list[OpSpec] = []
