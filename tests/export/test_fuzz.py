"""Fuzzing ``export.load``, ``ir.verify`` and the interpreter with mutated ONNX models.

``tests/fuzz.py`` mutates small valid models (ONNX's node test models, graphcap and torch
exports: ``fixtures/fuzz_seeds.zip``) and runs each in a worker process under a time and a
memory limit. Every case must end in success or in a graphcap error: no raw exception, no
MemoryError from a blow-up, no hang, no crash.
"""

from __future__ import annotations

import pytest

from tests import fuzz


def _check(report: fuzz.Report, cases: int) -> None:
    assert sum(report.counts.values()) == cases
    assert report.bad == 0, report.summary()
    # The mutations must leave a fair share of models readable and runnable, or the
    # campaign tests little beyond the reader's first checks.
    assert report.counts["success"] >= cases // 20, report.summary()
    assert report.ran >= cases // 20, report.summary()


def test_fuzz_load_and_interpreter() -> None:
    cases = 2500
    _check(fuzz.campaign(cases, workers=2, seed=0), cases)


@pytest.mark.slow
def test_fuzz_load_and_interpreter_long() -> None:
    cases = 30_000
    _check(fuzz.campaign(cases, workers=2, seed=1), cases)
