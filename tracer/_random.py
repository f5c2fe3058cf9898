"""Sampling from tensors of probabilities: ``multinomial`` and ``bernoulli``, PyTorch's semantics.

The samples are drawn eagerly from NumPy (the generator ``tracer.manual_seed`` seeds, or a
``tracer.Generator``), so they are leaves with no gradient, as in PyTorch. They are not
graph ops: while tracing, sampling from probabilities that depend on the traced inputs
raises a ``TraceError`` instead of baking one draw into the graph.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from tracer._creation import _gen
from tracer._tensor_base import TensorBase, wrap

if TYPE_CHECKING:
    from tracer.tensor import Tensor


def _probabilities(input: TensorBase, name: str) -> np.ndarray:
    input._read_into_python(f"{name}()")
    if input._data.dtype.kind != "f":
        raise RuntimeError(
            f"{name} only supports floating-point dtypes for input, got {input.dtype}"
        )
    return input._data.astype(np.float64)


def multinomial(
    input: TensorBase, num_samples: int, replacement: bool = False, *, generator: Any = None
) -> Tensor:
    """Indices drawn from the categories of each row of ``input`` (weights, not logits).

    ``input`` is 1-d (one distribution) or 2-d (one per row); weights need not sum to 1.
    Without ``replacement`` each index appears at most once per row; once the categories
    with weight are used up, categories of weight 0 follow, as in PyTorch.

    Returns:
        int64 indices of shape ``[num_samples]`` or ``[rows, num_samples]``.

    Raises:
        RuntimeError: ``input`` is not 1-d or 2-d, has negative, infinite or NaN weights or
            a row summing to 0, or more samples than categories without replacement.
    """
    p = _probabilities(input, "multinomial")
    if p.ndim not in (1, 2):
        raise RuntimeError(f"prob_dist must be 1 or 2 dim, got {p.ndim}")
    rows = p.reshape(-1, p.shape[-1])
    n = rows.shape[1]
    if not isinstance(num_samples, int) or num_samples <= 0:
        raise RuntimeError(f"cannot sample n_sample <= 0 samples, got {num_samples!r}")
    if not replacement and num_samples > n:
        raise RuntimeError(
            f"cannot sample n_sample > prob_dist.size(-1) samples without replacement "
            f"({num_samples} > {n})"
        )
    if not np.all(np.isfinite(rows)) or np.any(rows < 0):
        raise RuntimeError("probability tensor contains either `inf`, `nan` or element < 0")
    totals = rows.sum(axis=1)
    if np.any(totals <= 0):
        raise RuntimeError("invalid multinomial distribution (sum of probabilities <= 0)")
    rng = _gen(generator)
    if replacement:
        cdf = np.cumsum(rows / totals[:, None], axis=1)
        u = rng.random((rows.shape[0], num_samples))
        picks = np.stack([np.searchsorted(c, r, side="right") for c, r in zip(cdf, u, strict=True)])
        picks = np.minimum(picks, n - 1)  # a u that rounds past the last cumulative sum
    else:
        # Weight over an Exp(1) draw, largest first: sampling without replacement, the
        # trick PyTorch uses too (categories of weight 0 come last).
        keys = rows / rng.exponential(size=rows.shape)
        picks = np.argsort(-keys, axis=1, kind="stable")[:, :num_samples]
    out = picks.astype(np.int64)
    return wrap(out.reshape(num_samples) if p.ndim == 1 else out)


def bernoulli_draw(probs: np.ndarray, dtype: np.dtype, generator: Any) -> np.ndarray:
    """1 with probability ``probs`` (elementwise), else 0, in ``dtype``.

    Raises:
        RuntimeError: a probability outside [0, 1].
    """
    if np.any((probs < 0) | (probs > 1)) or np.any(np.isnan(probs)):
        raise RuntimeError("bernoulli: all probabilities must be in [0, 1]")
    return (_gen(generator).random(probs.shape) < probs).astype(dtype)


def bernoulli(input: TensorBase, p: float | None = None, *, generator: Any = None) -> Tensor:
    """0/1 samples in ``input``'s shape and dtype: 1 with probability ``input`` (or ``p``).

    Raises:
        RuntimeError: a probability outside [0, 1], or an integer ``input`` without ``p``.
    """
    if p is None:
        probs = _probabilities(input, "bernoulli")
    else:
        probs = np.full(input._data.shape, float(p))
    dtype = input._data.dtype if input._data.dtype.kind == "f" else np.dtype(np.float32)
    return wrap(bernoulli_draw(probs, dtype, generator))


class RandomMixin(TensorBase):
    """``multinomial`` and ``bernoulli`` as methods of ``tracer.Tensor``."""

    __slots__ = ()

    def multinomial(
        self, num_samples: int, replacement: bool = False, *, generator: Any = None
    ) -> Tensor:
        """See :func:`tracer.multinomial`."""
        return multinomial(self, num_samples, replacement, generator=generator)

    def bernoulli(self, p: float | None = None, *, generator: Any = None) -> Tensor:
        """See :func:`tracer.bernoulli`."""
        return bernoulli(self, p, generator=generator)
