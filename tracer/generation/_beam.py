"""Beam search, step for step as ``transformers``' ``_beam_search`` (v5, vectorised form).

Per batch row it keeps ``num_beams`` running hypotheses and the ``num_beams`` best finished
ones. Each step takes the top ``2 * num_beams`` (more with several EOS tokens) continuations
of all running beams by summed log-probability; those ending in EOS (or at the length limit)
are scored ``sum / length ** length_penalty`` and merged into the finished set, the rest
continue. ``early_stopping`` is ``transformers``': True stops a row once it has
``num_beams`` finished hypotheses, False stops when the best running beam cannot beat the
worst finished one at the current length, "never" estimates with the maximum length. Scores
are float32, as in ``transformers``, so the same logits pick the same tokens.
"""

from __future__ import annotations

import numpy as np

from tracer.generation._session import Session

_NEG = np.float32(-1.0e9)


def _take(x: np.ndarray, index: np.ndarray) -> np.ndarray:
    """``x[b, index[b, j], ...]``: gather along the beam axis."""
    return np.take_along_axis(x, index.reshape(index.shape + (1,) * (x.ndim - 2)), axis=1)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _topk(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest of each row, descending; equal values in index order."""
    index = np.argsort(-x, axis=-1, kind="stable")[:, :k]
    return np.take_along_axis(x, index, axis=-1), index


def beam_search(
    session: Session,
    batch: int,
    max_new_tokens: int,
    num_beams: int,
    eos: list[int],
    pad: int | None,
    length_penalty: float,
    early_stopping: bool | str,
) -> np.ndarray:
    """The best finished hypothesis of each row: ``[batch, prompt + generated]``."""
    k = num_beams
    session.repeat(k)
    prompt_len = session.prompt.shape[1]
    max_length = prompt_len + max_new_tokens
    fill = (pad or eos[0]) if eos else -1  # transformers' fill value, quirks included
    keep = max(2, 1 + len(eos)) * k
    top_k_mask = np.arange(keep) < k

    running = np.full((batch, k, max_length), fill, np.int64)
    running[:, :, :prompt_len] = session.prompt.reshape(batch, k, prompt_len)
    sequences = running.copy()
    running_scores = np.zeros((batch, k), np.float32)
    running_scores[:, 1:] = _NEG
    scores = np.full((batch, k), _NEG, np.float32)
    finished = np.zeros((batch, k), bool)
    improvable = np.ones((batch, 1), bool)
    running_beams = np.full((batch, k, max_new_tokens), -1, np.int64)
    beams = running_beams.copy()

    cur = prompt_len
    logits = session.first_logits().float().numpy()
    while True:
        log_probs = _log_softmax(logits).reshape(batch, k, -1) + running_scores[:, :, None]
        vocab = log_probs.shape[-1]
        top_scores, top_index = _topk(log_probs.reshape(batch, k * vocab), keep)
        source = top_index // vocab
        top_running = _take(running, source)
        top_running[:, :, cur] = top_index % vocab
        top_beams = _take(running_beams, source)
        top_beams[:, :, cur - prompt_len] = source + np.arange(batch)[:, None] * k
        hits = np.isin(top_running[:, :, cur], eos) | (cur + 1 >= max_length)

        # The best num_beams continuations that did not just stop keep running.
        alive = top_scores + hits.astype(np.float32) * _NEG
        order = _topk(alive, k)[1]
        running, running_scores = _take(top_running, order), _take(alive, order)
        running_beams = _take(top_beams, order)

        # Stopped ones among the top num_beams join the finished set if they score higher.
        just_done = hits & top_k_mask[None, :]
        done_scores = top_scores / np.float32((cur + 1 - prompt_len) ** length_penalty)
        full = finished.all(-1, keepdims=True) & (early_stopping is True)
        done_scores = done_scores + full.astype(np.float32) * _NEG
        done_scores = done_scores + (~improvable).astype(np.float32) * _NEG
        done_scores = done_scores + (~just_done).astype(np.float32) * _NEG
        merged = np.concatenate([scores, done_scores], axis=1)
        best = _topk(merged, k)[1]
        sequences = _take(np.concatenate([sequences, top_running], axis=1), best)
        beams = _take(np.concatenate([beams, top_beams], axis=1), best)
        finished = _take(np.concatenate([finished, just_done], axis=1), best)
        scores = _take(merged, best)

        cur += 1
        if early_stopping == "never" and length_penalty > 0.0:
            best_length = max_length - prompt_len
        else:
            best_length = cur - prompt_len
        best_running = running_scores[:, :1] / np.float32(best_length**length_penalty)
        worst_done = np.where(finished, scores.min(-1, keepdims=True), _NEG)
        improvable &= (best_running > worst_done).any(-1, keepdims=True)
        stop_full = finished.all() and early_stopping is True
        if not improvable.any() or stop_full or hits.all():
            break
        session.reorder(running_beams[:, :, cur - 1 - prompt_len].reshape(-1))
        logits = session.next_logits(running[:, :, cur - 1].reshape(-1)).float().numpy()

    generated = int(((beams[:, 0] + 1) != 0).sum(-1).max())
    return sequences[:, 0, : prompt_len + generated]
