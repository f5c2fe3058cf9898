"""Specs of ``ir/ops/signal.py``."""

from __future__ import annotations

from tests.op_specs.common import OpSpec

SPECS: list[OpSpec] = []
