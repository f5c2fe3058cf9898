"""A decoding session: the step protocol of ``docs/generation.md`` driven one token at a time.

A session holds what the model needs between steps (the KV cache; for decoder-only models
the attention mask and positions; for encoder-decoder models the encoder memory and its
mask), feeds it tokens, and reorders or repeats its rows for beam search. Every tensor of
the cache and memory has the batch as dim 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import tracer
from tracer.tensor import Tensor


def _rows(values: tuple[Tensor, ...], index: Tensor) -> tuple[Tensor, ...]:
    return tuple(v.index_select(0, index) for v in values)


class DecoderOnlySession:
    """GPT-style: ``model.step(input_ids, attention_mask, position_ids, past)``.

    Positions follow ``transformers``' generation: the running count of real tokens
    (``cumsum(mask) - 1``, 0 at left padding), so left-padded rows see the positions an
    unpadded prompt would.
    """

    def __init__(self, model: Any, input_ids: np.ndarray, attention_mask: np.ndarray) -> None:
        self.model = model
        self.prompt = input_ids
        self.mask = tracer.from_numpy(attention_mask.astype(np.int64))
        positions = np.maximum(np.cumsum(attention_mask, axis=-1) - 1, 0) * (attention_mask != 0)
        self.positions = tracer.from_numpy(positions.astype(np.int64))
        self.past: tuple[Tensor, ...] = ()

    def repeat(self, k: int) -> None:
        """Each row ``k`` times in a row (beam search's layout)."""
        index = tracer.from_numpy(np.repeat(np.arange(self.prompt.shape[0]), k))
        self.prompt = np.repeat(self.prompt, k, axis=0)
        self.mask, self.positions = _rows((self.mask, self.positions), index)

    def first_logits(self) -> Tensor:
        """Run the prompt; the next-token logits ``[N, V]``."""
        self.past = self.model.empty_past(self.prompt.shape[0])
        ids = tracer.from_numpy(self.prompt.astype(np.int64))
        logits, self.past = self.model.step(ids, self.mask, self.positions, self.past)
        self.positions = self.positions[:, -1:]
        return logits

    def next_logits(self, tokens: np.ndarray) -> Tensor:
        """Append one token per row; the logits after it."""
        n = tokens.shape[0]
        self.mask = tracer.cat([self.mask, tracer.ones(n, 1, dtype=tracer.int64)], dim=1)
        self.positions = self.positions + 1
        ids = tracer.from_numpy(tokens.astype(np.int64).reshape(n, 1))
        logits, self.past = self.model.step(ids, self.mask, self.positions, self.past)
        return logits

    def reorder(self, index: np.ndarray) -> None:
        """Keep rows ``index`` (in that order) of the cache, mask and positions."""
        i = tracer.from_numpy(index.astype(np.int64))
        self.past = _rows(self.past, i)
        self.mask, self.positions = _rows((self.mask, self.positions), i)


class EncoderDecoderSession:
    """T5-style: ``encode(input_ids, attention_mask)`` once, then ``step``.

    ``model.step(decoder_input_ids, memory, memory_mask, past)`` runs the decoder; its
    prompt is the start token.
    """

    def __init__(
        self, model: Any, input_ids: np.ndarray, attention_mask: np.ndarray, start: int
    ) -> None:
        self.model = model
        self.prompt = np.full((input_ids.shape[0], 1), start, np.int64)
        self.memory_mask = tracer.from_numpy(attention_mask.astype(np.int64))
        ids = tracer.from_numpy(input_ids.astype(np.int64))
        self.memory: tuple[Tensor, ...] = tuple(model.encode(ids, self.memory_mask))
        self.past: tuple[Tensor, ...] = ()

    def repeat(self, k: int) -> None:
        """Each row ``k`` times in a row (beam search's layout)."""
        index = tracer.from_numpy(np.repeat(np.arange(self.prompt.shape[0]), k))
        self.prompt = np.repeat(self.prompt, k, axis=0)
        self.memory = _rows(self.memory, index)
        (self.memory_mask,) = _rows((self.memory_mask,), index)

    def first_logits(self) -> Tensor:
        """Run the start token; the next-token logits ``[N, V]``."""
        self.past = self.model.empty_past(self.prompt.shape[0])
        return self.next_logits(self.prompt[:, 0])

    def next_logits(self, tokens: np.ndarray) -> Tensor:
        """Append one token per row; the logits after it."""
        ids = tracer.from_numpy(tokens.astype(np.int64).reshape(-1, 1))
        logits, self.past = self.model.step(ids, self.memory, self.memory_mask, self.past)
        return logits

    def reorder(self, index: np.ndarray) -> None:
        """Keep rows ``index`` of the cache (the memory is the same for a row's beams)."""
        self.past = _rows(self.past, tracer.from_numpy(index.astype(np.int64)))


Session = DecoderOnlySession | EncoderDecoderSession
