"""Specs of ``ir/ops/image.py``."""

from __future__ import annotations

from tests.op_specs.common import OpSpec

SPECS: list[OpSpec] = []
