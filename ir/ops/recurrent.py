"""Recurrent layers as single ONNX nodes: RNN, GRU and LSTM, with sequence_lens."""

from __future__ import annotations
