"""Shared test settings: deterministic hypothesis runs without wall-clock deadlines."""

from hypothesis import settings

# Derandomized so CI is reproducible; no deadline because a shared 2-core machine (and the
# first import of torch) makes per-example timings noisy.
settings.register_profile("graphcap", derandomize=True, deadline=None, max_examples=100)
settings.load_profile("graphcap")
