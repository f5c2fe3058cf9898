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

from dataclasses import dataclass

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


@dataclass
class _Rules:
    """The fixed settings of one search (``transformers``' names)."""

    batch: int
    beams: int
    prompt_len: int
    max_length: int
    eos: list[int]
    length_penalty: float
    early_stopping: bool | str

    @property
    def keep(self) -> int:
        """Continuations looked at per step: enough that ``beams`` of them do not stop."""
        return max(2, 1 + len(self.eos)) * self.beams


@dataclass
class _Hypotheses:
    """Token ids ``[B, K, max_length]``, scores ``[B, K]`` and source rows ``[B, K, new]``."""

    tokens: np.ndarray
    scores: np.ndarray
    rows: np.ndarray

    def take(self, index: np.ndarray) -> _Hypotheses:
        """The hypotheses at ``index`` ``[B, J]`` along the beam axis."""
        return _Hypotheses(
            _take(self.tokens, index), _take(self.scores, index), _take(self.rows, index)
        )


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
    session.repeat(num_beams)
    prompt_len = session.prompt.shape[1]
    rules = _Rules(
        batch, num_beams, prompt_len, prompt_len + max_new_tokens, eos, length_penalty,
        early_stopping,
    )  # fmt: skip
    fill = (pad or eos[0]) if eos else -1  # transformers' fill value, quirks included
    tokens = np.full((batch, num_beams, rules.max_length), fill, np.int64)
    tokens[:, :, :prompt_len] = session.prompt.reshape(batch, num_beams, prompt_len)
    rows = np.full((batch, num_beams, max_new_tokens), -1, np.int64)
    # Only the first beam is live at first, so the first step does not pick one token K times.
    live = np.zeros((batch, num_beams), np.float32)
    live[:, 1:] = _NEG
    running = _Hypotheses(tokens, live, rows)
    done = _Hypotheses(tokens.copy(), np.full((batch, num_beams), _NEG, np.float32), rows.copy())
    finished = np.zeros((batch, num_beams), bool)
    improvable = np.ones((batch, 1), bool)

    cur = prompt_len
    logits = session.first_logits().float().numpy()
    while True:
        top, hits = _continuations(rules, running, logits, cur)
        # The best num_beams continuations that did not just stop keep running.
        top_alive = _Hypotheses(top.tokens, top.scores + hits * _NEG, top.rows)
        running = top_alive.take(_topk(top_alive.scores, num_beams)[1])
        done, finished = _finish(rules, done, finished, top, hits, improvable, cur)
        cur += 1
        improvable &= _can_improve(rules, running, done, finished, cur)
        stop_full = finished.all() and early_stopping is True
        if not improvable.any() or stop_full or hits.all():
            break
        session.reorder(running.rows[:, :, cur - 1 - prompt_len].reshape(-1))
        logits = session.next_logits(running.tokens[:, :, cur - 1].reshape(-1)).float().numpy()

    generated = int(((done.rows[:, 0] + 1) != 0).sum(-1).max())
    return done.tokens[:, 0, : prompt_len + generated]


def _continuations(
    rules: _Rules, running: _Hypotheses, logits: np.ndarray, cur: int
) -> tuple[_Hypotheses, np.ndarray]:
    """The ``keep`` best one-token extensions of all running beams, and which of them stop."""
    b, k = rules.batch, rules.beams
    log_probs = _log_softmax(logits).reshape(b, k, -1) + running.scores[:, :, None]
    vocab = log_probs.shape[-1]
    scores, index = _topk(log_probs.reshape(b, k * vocab), rules.keep)
    source = index // vocab
    top = _Hypotheses(_take(running.tokens, source), scores, _take(running.rows, source))
    top.tokens[:, :, cur] = index % vocab
    top.rows[:, :, cur - rules.prompt_len] = source + np.arange(b)[:, None] * k
    hits = np.isin(top.tokens[:, :, cur], rules.eos) | (cur + 1 >= rules.max_length)
    return top, hits


def _finish(
    rules: _Rules,
    done: _Hypotheses,
    finished: np.ndarray,
    top: _Hypotheses,
    hits: np.ndarray,
    improvable: np.ndarray,
    cur: int,
) -> tuple[_Hypotheses, np.ndarray]:
    """Stopped ones among the top ``beams`` join the finished set where they score higher."""
    just_done = hits & (np.arange(rules.keep) < rules.beams)[None, :]
    scores = top.scores / np.float32((cur + 1 - rules.prompt_len) ** rules.length_penalty)
    full = finished.all(-1, keepdims=True) & (rules.early_stopping is True)
    for barred in (full, ~improvable, ~just_done):
        scores = scores + barred.astype(np.float32) * _NEG
    merged = _Hypotheses(
        np.concatenate([done.tokens, top.tokens], axis=1),
        np.concatenate([done.scores, scores], axis=1),
        np.concatenate([done.rows, top.rows], axis=1),
    )
    best = _topk(merged.scores, rules.beams)[1]
    return merged.take(best), _take(np.concatenate([finished, just_done], axis=1), best)


def _can_improve(
    rules: _Rules, running: _Hypotheses, done: _Hypotheses, finished: np.ndarray, cur: int
) -> np.ndarray:
    """Per row, whether the best running beam could still beat the worst finished one."""
    if rules.early_stopping == "never" and rules.length_penalty > 0.0:
        length = rules.max_length - rules.prompt_len
    else:
        length = cur - rules.prompt_len
    best_running = running.scores[:, :1] / np.float32(length**rules.length_penalty)
    worst_done = np.where(finished, done.scores.min(-1, keepdims=True), _NEG)
    return np.asarray((best_running > worst_done).any(-1, keepdims=True))
