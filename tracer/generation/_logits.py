"""Next-token scores: temperature, top-k and top-p filters, and sampling, as tensor ops.

Each function takes and returns ``tracer`` tensors built from registry ops (TopK, Softmax,
CumSum, Where), so the same code runs eagerly and traces into a graph. The filters follow
``transformers``' warpers (applied in the order temperature, top-k, top-p; a filtered score
is -inf; at least one token is always kept).
"""

from __future__ import annotations

import numpy as np

import tracer
from tracer.tensor import Tensor


def check_sampling(temperature: float, top_k: int | None, top_p: float | None) -> None:
    """Raise ``ValueError`` for a temperature, top-k or top-p outside its domain."""
    if not (isinstance(temperature, int | float) and temperature > 0):
        raise ValueError(f"temperature must be a positive number, got {temperature!r}")
    if top_k is not None and not (isinstance(top_k, int) and top_k >= 0):
        raise ValueError(f"top_k must be a non-negative int (0 or None: no filter), got {top_k!r}")
    if top_p is not None and not (isinstance(top_p, int | float) and 0 < top_p <= 1):
        raise ValueError(f"top_p must be in (0, 1], got {top_p!r}")


def top_k_filter(scores: Tensor, k: int) -> Tensor:
    """``scores`` ``[B, V]`` with everything below each row's ``k``-th largest set to -inf.

    Ties with the ``k``-th score are kept, as ``transformers``' ``TopKLogitsWarper``.
    """
    k = min(max(k, 1), scores.shape[-1])
    kth = scores.topk(k, dim=-1)[0][:, -1:]
    return scores.masked_fill(scores < kth, float("-inf"))


def top_p_filter(scores: Tensor, p: float) -> Tensor:
    """Nucleus filter: keep the fewest top tokens whose probabilities sum to at least ``p``.

    As ``transformers``' ``TopPLogitsWarper``: in ascending order, tokens whose cumulative
    probability is at most ``1 - p`` are removed, the most likely token always stays. Tokens
    whose score ties the smallest kept score are kept too.
    """
    ascending = scores.sort(dim=-1)[0]
    cumulative = ascending.softmax(-1).cumsum(-1)
    not_last = tracer.arange(scores.shape[-1]) < scores.shape[-1] - 1
    removed = (cumulative <= 1.0 - p).logical_and(not_last)  # the most likely token stays
    # The kept tokens are a suffix of the ascending order: its first score is the threshold.
    threshold = ascending.masked_fill(removed, float("inf")).amin(-1, keepdim=True)
    return scores.masked_fill(scores < threshold, float("-inf"))


def warp(scores: Tensor, temperature: float, top_k: int | None, top_p: float | None) -> Tensor:
    """Temperature, then top-k, then top-p, each only where it changes something."""
    if temperature != 1.0:
        scores = scores / float(temperature)
    if top_k:
        scores = top_k_filter(scores, top_k)
    if top_p is not None and top_p < 1.0:
        scores = top_p_filter(scores, top_p)
    return scores


def sample(probs: Tensor, uniform: Tensor) -> Tensor:
    """One token per row of ``probs`` ``[B, V]`` by inverting its CDF at ``uniform`` ``[B]``.

    ``uniform`` holds draws from [0, 1); they are scaled by each row's total, so a
    zero-probability token is never picked. Computed in float64.
    """
    cdf = probs.double().cumsum(-1)
    x = uniform.double().unsqueeze(-1) * cdf[:, -1:]
    picked = (cdf <= x).long().sum(-1)
    return picked.clamp(max=probs.shape[-1] - 1)


def uniform_draws(generator: np.random.Generator, batch: int) -> Tensor:
    """``batch`` uniform [0, 1) draws from a NumPy generator, as a float64 tensor."""
    return tracer.from_numpy(generator.random(batch))
