"""Tests of the ``tracer`` package."""
