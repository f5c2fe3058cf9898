"""Greedy and sampling search, one token per row per step, as ``transformers``' ``_sample``."""

from __future__ import annotations

import numpy as np

from tracer.generation._logits import sample, uniform_draws, warp
from tracer.generation._session import Session


def greedy_or_sample(
    session: Session,
    max_new_tokens: int,
    eos: list[int],
    pad: int | None,
    do_sample: bool,
    temperature: float,
    top_k: int | None,
    top_p: float | None,
    generator: np.random.Generator,
) -> np.ndarray:
    """The prompt followed by up to ``max_new_tokens`` tokens per row.

    A row stops after it emits an end-of-sequence token; later positions hold ``pad``.
    The loop ends when every row has stopped or the budget is spent, so the result may be
    shorter than ``prompt + max_new_tokens``.
    """
    sequences = session.prompt.astype(np.int64)
    unfinished = np.ones(sequences.shape[0], dtype=bool)
    logits = session.first_logits()
    for step in range(max_new_tokens):
        scores = logits.float()
        if do_sample:
            probs = warp(scores, temperature, top_k, top_p).softmax(-1)
            tokens = sample(probs, uniform_draws(generator, scores.shape[0])).numpy()
        else:
            tokens = scores.argmax(-1).numpy()
        if eos and pad is not None:
            tokens = np.where(unfinished, tokens, pad)
        sequences = np.concatenate([sequences, tokens[:, None]], axis=1)
        if eos:
            unfinished &= ~np.isin(tokens, eos)
        if not unfinished.any() or step == max_new_tokens - 1:
            break
        logits = session.next_logits(tokens)
    return sequences
