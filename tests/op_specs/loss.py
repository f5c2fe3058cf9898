"""Specs of ``ir/ops/loss.py``."""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import I32, OpSpec, Sample, positive, rand


def _targets(rng: np.random.Generator, shape: tuple[int, ...], n_classes: int) -> np.ndarray:
    return rng.integers(0, n_classes, size=shape).astype(np.int64)


def _with_ignored(target: np.ndarray, value: int, every: int = 3) -> np.ndarray:
    """``target`` with every ``every``-th position set to ``value`` (an ignore_index hit)."""
    hit = target.copy().reshape(-1)
    hit[::every] = value
    return hit.reshape(target.shape)


def _loss_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    """Samples shared by both losses: [N, C] and K-dimensional inputs, weights, ignore_index."""
    x2 = rand(rng, (4, 5), dtype)
    t2 = _targets(rng, (4,), 5)
    w = positive(rng, (5,), dtype)
    xk = rand(rng, (3, 4, 2, 3), dtype)
    tk = _targets(rng, (3, 2, 3), 4)
    wk = positive(rng, (4,), dtype)
    x1 = rand(rng, (2, 3, 5), dtype)
    t1 = _targets(rng, (2, 5), 3)
    samples = []
    for reduction in ("none", "sum", "mean"):
        r = {"reduction": reduction}
        samples += [
            Sample((x2, t2), r),
            Sample((x2, t2, w), r),
            # ignore_index hits: a class index, and PyTorch's out-of-range default -100.
            Sample((x2, _with_ignored(t2, 2, 2), w), {**r, "ignore_index": 2}),
            Sample((x2, _with_ignored(t2, -100, 2)), {**r, "ignore_index": -100}),
            # K-dimensional: [N, C, d1, d2] with [N, d1, d2] targets.
            Sample((xk, tk), r),
            Sample((xk, _with_ignored(tk, 1), wk), {**r, "ignore_index": 1}),
            Sample((x1, _with_ignored(t1, -100, 4), None), {**r, "ignore_index": -100}),
        ]
    samples += [
        Sample((x2, t2)),  # the default reduction, mean
        Sample((x1, _with_ignored(t1, 0), positive(rng, (3,), dtype)), {"ignore_index": 0}),
        # An ignore_index that no target hits, and int32 targets.
        Sample((xk, tk.astype(I32), wk), {"ignore_index": 7, "reduction": "mean"}),
        Sample((x2, t2.astype(I32)), {"reduction": "sum"}),
    ]
    return samples


SPECS = [
    OpSpec(
        "NegativeLogLikelihoodLoss",
        _loss_samples,
        # Samples avoid ignore_index=-1 without weights under "mean": onnx.reference then
        # averages over ignored positions too (its `ignore_index != -1` test), unlike ONNX's
        # function body, onnxruntime and PyTorch.
    ),
    OpSpec("SoftmaxCrossEntropyLoss", _loss_samples),
]
