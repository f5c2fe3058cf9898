"""Specs of ``ir/ops/attention.py``."""

from __future__ import annotations

from tests.op_specs.common import OpSpec

SPECS: list[OpSpec] = []
