"""Indexing ops: Gather, GatherElements, GatherND, ScatterElements, ScatterND, Slice, NonZero, Trilu."""

from __future__ import annotations
