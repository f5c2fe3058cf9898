"""Element-wise and pairwise losses of ``tracer.nn.functional`` (re-exported there).

``mse_loss``, ``l1_loss``, ``smooth_l1_loss``, ``huber_loss``, ``binary_cross_entropy``, ``kl_div``,
``cosine_embedding_loss`` and ``margin_ranking_loss`` with PyTorch 2.13's signatures,
formulas, reductions and warnings. Each is a composition of registry ops, so autograd and
``tracer.trace`` record it; ONNX has no native op for any of them.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from tracer._functions import where
from tracer.nn._loss import _reduce, _reduction

if TYPE_CHECKING:
    from tracer.tensor import Tensor

# PyTorch's epsilon in cosine_embedding_loss's squared magnitudes.
_COSINE_EPS = 1e-12


def _warn_broadcast(input: Tensor, target: Tensor) -> None:
    """PyTorch's warning for a target that only fits the input by broadcasting."""
    if tuple(target.shape) != tuple(input.shape):
        warnings.warn(
            f"Using a target size ({list(target.shape)}) that is different to the input size "
            f"({list(input.shape)}). This will likely lead to incorrect results due to "
            "broadcasting. Please ensure they have the same size.",
            stacklevel=3,
        )


def _check_weight(weight: Tensor, input: Tensor) -> None:
    if tuple(weight.shape) != tuple(input.shape):
        raise ValueError("Weights and input must have the same size.")


def _weighted(loss: Any, weight: Tensor | None, reduction: str, mean_by_weight: bool) -> Any:
    """``loss * weight`` reduced; "mean" divides by ``weight.sum()`` when ``mean_by_weight``."""
    if weight is None:
        return _reduce(loss, reduction)
    loss = loss * weight
    if reduction == "mean" and mean_by_weight:
        return loss.sum() / weight.sum()
    return _reduce(loss, reduction)


def mse_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Squared error ``(input - target)^2``, reduced; the two broadcast (with a warning).

    With ``weight`` (the input's shape) the errors are scaled and "mean" divides by
    ``weight.sum()``, as PyTorch 2.13.

    Raises:
        ValueError: an unknown reduction, or a ``weight`` not of the input's shape.
    """
    _warn_broadcast(input, target)
    reduction = _reduction(reduction, size_average, reduce)
    if weight is not None:
        _check_weight(weight, input)
    diff = input - target
    return _weighted(diff * diff, weight, reduction, mean_by_weight=True)


def l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    weight: Tensor | None = None,
) -> Tensor:
    """Absolute error ``|input - target|``, reduced; the two broadcast (with a warning).

    With ``weight`` (the input's shape) the errors are scaled and "mean" divides by
    ``weight.sum()``, as PyTorch 2.13.

    Raises:
        ValueError: an unknown reduction, or a ``weight`` not of the input's shape.
    """
    _warn_broadcast(input, target)
    reduction = _reduction(reduction, size_average, reduce)
    if weight is not None:
        _check_weight(weight, input)
    return _weighted((input - target).abs(), weight, reduction, mean_by_weight=True)


def smooth_l1_loss(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    beta: float = 1.0,
) -> Tensor:
    """``0.5 d^2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 beta`` (``d = input - target``).

    ``beta == 0`` is :func:`l1_loss`.

    Raises:
        ValueError: an unknown reduction.
        RuntimeError: a negative ``beta``.
    """
    if beta < 0:
        raise RuntimeError("smooth_l1_loss does not support negative values for beta.")
    _warn_broadcast(input, target)
    reduction = _reduction(reduction, size_average, reduce)
    d = input - target
    z = d.abs()
    if beta == 0.0:
        return _reduce(z, reduction)
    loss = where(z < beta, d * d * (0.5 / beta), z - 0.5 * beta)
    return _reduce(loss, reduction)


def huber_loss(
    input: Tensor,
    target: Tensor,
    reduction: str = "mean",
    delta: float = 1.0,
    weight: Tensor | None = None,
) -> Tensor:
    """``0.5 d^2`` where ``|d| < delta``, else ``delta (|d| - 0.5 delta)``.

    With ``weight`` (the input's shape) the losses are scaled and "mean" is their plain
    mean, as PyTorch 2.13.

    Raises:
        ValueError: an unknown reduction, or a ``weight`` not of the input's shape.
        RuntimeError: a ``delta`` that is not positive.
    """
    if delta <= 0:
        raise RuntimeError(
            f"huber_loss does not support non-positive values for delta, got {delta}"
        )
    _warn_broadcast(input, target)
    reduction = _reduction(reduction, None, None)
    if weight is not None:
        _check_weight(weight, input)
    d = input - target
    z = d.abs()
    loss = where(z < delta, d * d * 0.5, (z - 0.5 * delta) * delta)
    return _weighted(loss, weight, reduction, mean_by_weight=False)


def binary_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``-w (t log x + (1 - t) log(1 - x))`` of probabilities ``x``, each log clamped at -100.

    ``weight`` broadcasts to the target's shape.

    Raises:
        ValueError: ``target`` and ``input`` shapes differ, or an unknown reduction.
        RuntimeError: an input value outside ``[0, 1]``.
    """
    reduction = _reduction(reduction, size_average, reduce)
    if tuple(target.shape) != tuple(input.shape):
        raise ValueError(
            f"Using a target size ({list(target.shape)}) that is different to the input size "
            f"({list(input.shape)}) is deprecated. Please ensure they have the same size."
        )
    data = input._data
    if data.size and ((data < 0).any() or (data > 1).any()):
        raise RuntimeError("all elements of input should be between 0 and 1")
    log_x = input.log().clamp(min=-100.0)
    log_1mx = (1 - input).log().clamp(min=-100.0)
    loss = -(target * log_x + (1 - target) * log_1mx)
    return _weighted(loss, weight, reduction, mean_by_weight=False)


def kl_div(
    input: Tensor,
    target: Tensor,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    log_target: bool = False,
) -> Tensor:
    """Kullback-Leibler divergence ``t (log t - x)`` of log-probabilities ``input``.

    ``target`` holds probabilities (``0 log 0 = 0``), or log-probabilities when
    ``log_target``. ``reduction="batchmean"`` divides the sum by ``input.size(0)`` (the
    mathematical KL divergence); "mean" divides by every element and warns, as PyTorch.

    Raises:
        ValueError: an unknown reduction.
    """
    if size_average is not None or reduce is not None:
        reduction = _reduction(reduction, size_average, reduce)
    elif reduction == "mean":
        warnings.warn(
            "reduction: 'mean' divides the total loss by both the batch size and the support "
            "size.'batchmean' divides only by the batch size, and aligns with the KL div math "
            "definition.'mean' will be changed to behave the same as 'batchmean' in the next "
            "major release.",
            stacklevel=2,
        )
    elif reduction != "batchmean":
        _reduction(reduction, None, None)
    if log_target:
        loss = target.exp() * (target - input)
    else:
        # xlogy(t, t): 0 where t == 0, with a gradient that stays finite there.
        safe = where(target == 0, 1.0, target)
        loss = target * safe.log() - target * input
    if reduction != "batchmean":
        return _reduce(loss, reduction)
    total = loss.sum()
    return total / input.shape[0] if input.ndim else total


def cosine_embedding_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``1 - cos(x1, x2)`` where ``target == 1``, ``max(0, cos - margin)`` where it is -1.

    ``input1`` and ``input2`` are ``[N, D]`` with ``target`` ``[N]``, or unbatched ``[D]``
    with a 0-d ``target``; the cosine is PyTorch's (``1e-12`` added to each squared norm).

    Raises:
        RuntimeError: inputs that are not 1-d or 2-d, or a target of the wrong rank.
        ValueError: an unknown reduction.
    """
    reduction = _reduction(reduction, size_average, reduce)
    if input1.ndim not in (1, 2) or target.ndim != input1.ndim - 1:
        raise RuntimeError(
            f"cosine_embedding_loss: expected 1-D inputs with a 0-D target or 2-D inputs with a "
            f"1-D target, got inputs {list(input1.shape)} and target {list(target.shape)}"
        )
    dim = input1.ndim - 1
    prod = (input1 * input2).sum(dim)
    mag1 = (input1 * input1).sum(dim) + _COSINE_EPS
    mag2 = (input2 * input2).sum(dim) + _COSINE_EPS
    cos = prod / (mag1 * mag2).sqrt()
    zeros = cos * 0.0
    pos = where(target == 1, 1 - cos, zeros)
    neg = where(target == -1, (cos - margin).clamp(min=0.0), zeros)
    return _reduce(pos + neg, reduction)


def margin_ranking_loss(
    input1: Tensor,
    input2: Tensor,
    target: Tensor,
    margin: float = 0,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """``max(0, -target (input1 - input2) + margin)``; ``target`` holds 1 or -1.

    Raises:
        RuntimeError: the three inputs' ranks differ.
        ValueError: an unknown reduction.
    """
    reduction = _reduction(reduction, size_average, reduce)
    if not input1.ndim == input2.ndim == target.ndim:
        raise RuntimeError(
            "margin_ranking_loss : All input tensors should have same dimension but got sizes: "
            f"input1: {list(input1.shape)}, input2: {list(input2.shape)}, "
            f"target: {list(target.shape)} "
        )
    loss = (-target * (input1 - input2) + margin).clamp(min=0.0)
    return _reduce(loss, reduction)
