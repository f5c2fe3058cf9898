"""Shared test settings: per-pass verification on, deterministic hypothesis runs.

``GRAPHCAP_VERIFY_PASSES=1`` makes ``ir.optimize`` and ``PassManager`` verify the graph after
every pass (the library's default verifies once, at the end), so a pass that breaks an
invariant fails the test that ran it, by name; subprocesses the tests start inherit it.
"""

import os

from hypothesis import settings

os.environ.setdefault("GRAPHCAP_VERIFY_PASSES", "1")

# Derandomized so CI is reproducible; no deadline because a shared 2-core machine (and the
# first import of torch) makes per-example timings noisy.
settings.register_profile("graphcap", derandomize=True, deadline=None, max_examples=100)
settings.load_profile("graphcap")
