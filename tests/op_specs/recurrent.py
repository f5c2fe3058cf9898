"""Specs of ``ir/ops/recurrent.py``."""

from __future__ import annotations

from tests.op_specs.common import OpSpec

SPECS: list[OpSpec] = []
