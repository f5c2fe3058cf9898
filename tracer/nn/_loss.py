"""Loss functions of ``tracer.nn.functional`` (re-exported there), PyTorch's semantics.

``cross_entropy`` lowers to ONNX SoftmaxCrossEntropyLoss and ``nll_loss`` to
NegativeLogLikelihoodLoss; both take the class dim at axis 1 (``[N, C, d1, ..., dk]``) or
an unbatched ``[C]`` input. Label smoothing is composed from the op's ``log_prob`` output
exactly as PyTorch defines it.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING, Any

from ir.errors import DTypeError
from ir.ops.registry import op

if TYPE_CHECKING:
    from tracer.tensor import Tensor

_REDUCTIONS = ("none", "mean", "sum")


def _reduction(reduction: str, size_average: bool | None, reduce: bool | None) -> str:
    if size_average is not None or reduce is not None:  # PyTorch's legacy arguments
        size_average = True if size_average is None else size_average
        reduce = True if reduce is None else reduce
        legacy = "mean" if size_average and reduce else "sum" if reduce else "none"
        warnings.warn(
            f"size_average and reduce args will be deprecated, please use reduction='{legacy}' "
            "instead.",
            stacklevel=3,
        )
        return legacy
    if reduction not in _REDUCTIONS:
        raise ValueError(f"{reduction} is not a valid value for reduction")
    return reduction


def _reduce(loss: Any, reduction: str) -> Any:
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def _class_weight_view(weight: Tensor, ndim: int) -> Any:
    """``weight`` ([C]) shaped to broadcast along axis 1 of an ``ndim``-d input."""
    return weight.reshape(1, -1, *([1] * (ndim - 2)))


def _check_targets(target: Tensor, name: str) -> None:
    if target._data.dtype.kind not in "iu":
        raise DTypeError(
            f"{name}: expected class-index targets of an integer dtype (int64), "
            f"but got {target._data.dtype}"
        )


def cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
) -> Tensor:
    """Cross entropy between logits ``input`` and ``target``, as ``torch.nn.functional``.

    ``input`` is ``[N, C, d1, ..., dk]`` (or ``[C]``). ``target`` holds class indices
    (``[N, d1, ..., dk]``, integer) or class probabilities (the shape of ``input``,
    floating). ``weight[c]`` scales class ``c``; positions whose target is ``ignore_index``
    are left out, and "mean" divides by the summed weights of the kept positions.
    ``label_smoothing`` mixes in the uniform distribution over classes.

    Raises:
        ValueError: an unknown reduction or a ``label_smoothing`` outside ``[0, 1]``.
        ShapeError: shapes that do not fit.
    """
    reduction = _reduction(reduction, size_average, reduce)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    unbatched = input._data.ndim == 1
    if unbatched:
        input = input.unsqueeze(0)
        target = target.unsqueeze(0)
    if target._data.dtype.kind == "f":
        loss = _soft_cross_entropy(input, target, weight, reduction, label_smoothing)
    else:
        _check_targets(target, "cross_entropy")
        loss = _hard_cross_entropy(input, target, weight, ignore_index, reduction, label_smoothing)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss


def _hard_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None,
    ignore_index: int,
    reduction: str,
    label_smoothing: float,
) -> Any:
    ignore = int(ignore_index)
    if label_smoothing == 0.0:
        loss, _ = op.SoftmaxCrossEntropyLoss(
            input, target, weight, ignore_index=ignore, reduction=reduction
        )
        return loss
    # PyTorch: (1 - eps) * nll + eps / C * smooth, where smooth = -sum_c w_c log p_c per
    # position (0 where ignored), both normalised like the weighted nll for "mean".
    nll, log_prob = op.SoftmaxCrossEntropyLoss(
        input, target, weight, ignore_index=ignore, reduction="none"
    )
    ndim = input._data.ndim
    lp = log_prob if weight is None else log_prob * _class_weight_view(weight, ndim)
    ignored = target == ignore_index
    smooth = (-lp.sum(1)).masked_fill(ignored, 0.0)
    n_classes = input._data.shape[1]
    loss = nll * (1.0 - label_smoothing) + smooth * (label_smoothing / n_classes)
    if reduction != "mean":
        return _reduce(loss, reduction)
    if weight is None:
        denom = ignored.logical_not().to(loss.dtype).sum()
    else:
        safe = target.masked_fill(ignored, 0)
        picked = op.Gather(weight, safe, axis=0)
        denom = picked.masked_fill(ignored, 0.0).sum()
    return loss.sum() / denom


def _soft_cross_entropy(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None,
    reduction: str,
    label_smoothing: float,
) -> Any:
    if target._data.shape != input._data.shape:
        raise ValueError(
            "cross_entropy: probability targets must have the input's shape "
            f"{list(input._data.shape)}, got {list(target._data.shape)}"
        )
    n_classes = input._data.shape[1]
    if label_smoothing > 0.0:
        target = target * (1.0 - label_smoothing) + label_smoothing / n_classes
    prod = input.log_softmax(1) * target
    if weight is not None:
        prod = prod * _class_weight_view(weight, input._data.ndim)
    loss = -prod.sum(1)
    return _reduce(loss, reduction)


def nll_loss(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    ignore_index: int = -100,
    reduce: bool | None = None,
    reduction: str = "mean",
) -> Tensor:
    """Negative log likelihood of log-probabilities ``input`` (``[N, C, ...]`` or ``[C]``).

    Lowers to ONNX NegativeLogLikelihoodLoss; ``weight``, ``ignore_index`` and "mean"
    behave as in :func:`cross_entropy`.

    Raises:
        ValueError: an unknown reduction.
        DTypeError: non-integer targets.
    """
    reduction = _reduction(reduction, size_average, reduce)
    _check_targets(target, "nll_loss")
    unbatched = input._data.ndim == 1
    if unbatched:
        input = input.unsqueeze(0)
        target = target.unsqueeze(0)
    attrs = {"ignore_index": int(ignore_index), "reduction": reduction}
    loss = op.NegativeLogLikelihoodLoss(input, target, weight, **attrs)
    return loss.squeeze(0) if unbatched and reduction == "none" else loss


def binary_cross_entropy_with_logits(
    input: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    size_average: bool | None = None,
    reduce: bool | None = None,
    reduction: str = "mean",
    pos_weight: Tensor | None = None,
) -> Tensor:
    """Binary cross entropy of logits, computed stably as PyTorch does.

    ``loss = (1 - t) x + (1 + (pos_weight - 1) t) softplus(-x)``, times ``weight``;
    ``softplus`` is ONNX Softplus, which never overflows.

    Raises:
        ValueError: ``target`` and ``input`` shapes differ, or an unknown reduction.
    """
    reduction = _reduction(reduction, size_average, reduce)
    if target._data.shape != input._data.shape:
        raise ValueError(
            f"Target size ({list(target._data.shape)}) must be the same as input size "
            f"({list(input._data.shape)})"
        )
    softplus_neg = op.Softplus(-input)
    if pos_weight is not None:
        softplus_neg = softplus_neg * ((pos_weight - 1) * target + 1)
    loss = (1 - target) * input + softplus_neg
    if weight is not None:
        loss = loss * weight
    return _reduce(loss, reduction)
