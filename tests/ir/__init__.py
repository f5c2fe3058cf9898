"""Tests of the ``ir`` package."""
