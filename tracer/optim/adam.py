"""``Adam`` and ``AdamW``: adaptive moment estimation, PyTorch's update rules."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from ir import dtypes
from ir.ops.registry import op, scalar
from tracer.optim.optimizer import Optimizer, as_dtype_of, increment


class Adam(Optimizer):
    """Adam (Kingma and Ba), optionally AMSGrad, as ``torch.optim.Adam``.

    For each parameter with a gradient ``g`` at step ``t``: ``g += wd * p`` (or, with
    ``decoupled_weight_decay``, ``p *= 1 - lr * wd`` as AdamW does); ``m = b1 * m + (1 - b1)
    * g``; ``v = b2 * v + (1 - b2) * g * g``; with AMSGrad ``v_max = max(v_max, v)`` is used
    in place of ``v``; ``p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``.
    State per parameter: ``step`` (a Python int), ``exp_avg``, ``exp_avg_sq`` and, with
    AMSGrad, ``max_exp_avg_sq``; the functional state of
    :meth:`~tracer.optim.Optimizer.functional_update` has the same keys in that order.

    Args:
        params: tensors or param-group dicts (see :class:`Optimizer`).
        lr: learning rate.
        betas: decay rates of the first and second moment averages.
        eps: added to the denominator for numerical stability.
        weight_decay: weight decay (an L2 penalty on the gradient unless decoupled).
        amsgrad: use the AMSGrad variant.
        maximize: maximize the objective instead of minimizing it.
        foreach: accepted for PyTorch compatibility; ignored.
        decoupled_weight_decay: decay the weights directly (AdamW).

    Raises:
        ValueError: a hyper-parameter out of its range (negative lr, eps or weight decay,
            betas outside [0, 1)).
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 0,
        amsgrad: bool = False,
        *,
        foreach: bool | None = None,
        maximize: bool = False,
        decoupled_weight_decay: bool = False,
    ) -> None:
        if not lr >= 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not eps >= 0.0:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for i, beta in enumerate(betas):
            if not 0.0 <= beta < 1.0:
                raise ValueError(f"Invalid beta parameter at index {i}: {beta}")
        if not weight_decay >= 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        defaults = {
            "lr": lr,
            "betas": tuple(betas),
            "eps": eps,
            "weight_decay": weight_decay,
            "amsgrad": amsgrad,
            "maximize": maximize,
            "decoupled_weight_decay": decoupled_weight_decay,
        }
        super().__init__(params, defaults)

    def _functional_keys(self, group: Mapping[str, Any]) -> tuple[str, ...]:
        return ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")[: 3 if group["amsgrad"] else 2]

    def _functional_update(
        self, group: Mapping[str, Any], p: Any, grad: Any, state: dict[str, Any], lr: Any
    ) -> tuple[Any, dict[str, Any]]:
        beta1, beta2 = group["betas"]
        weight_decay = group["weight_decay"]
        step = increment(state["step"])
        g = op.Neg(grad) if group["maximize"] else grad
        if weight_decay != 0:
            if group.get("decoupled_weight_decay", False):
                shrink = op.Sub(scalar(1.0, lr), op.Mul(lr, scalar(weight_decay, lr)))
                p = op.Mul(p, as_dtype_of(shrink, p))
            else:
                g = op.Add(g, op.Mul(scalar(weight_decay, p), p))
        exp_avg = _lerp(state["exp_avg"], g, 1 - beta1)
        # addcmul_(g, g, value=1 - b2) computes (value * g) * g.
        exp_avg_sq = op.Add(
            op.Mul(state["exp_avg_sq"], scalar(beta2, p)),
            op.Mul(op.Mul(scalar(1 - beta2, p), g), g),
        )
        new_state = {"step": step, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
        second = exp_avg_sq
        if group["amsgrad"]:
            second = new_state["max_exp_avg_sq"] = op.Max(state["max_exp_avg_sq"], exp_avg_sq)
        step_size, correction2_sqrt = _bias_corrections(step, lr, beta1, beta2)
        denom = op.Add(
            op.Div(op.Sqrt(second), as_dtype_of(correction2_sqrt, p)),
            scalar(group["eps"], p),
        )
        # addcdiv_(m, denom, value=-step_size) computes p + (value * m) / denom; negating
        # is exact, so p - (step_size * m) / denom is the same number with one op less.
        update = op.Div(op.Mul(as_dtype_of(step_size, p), exp_avg), denom)
        return op.Sub(p, update), new_state


def _lerp(start: Any, end: Any, weight: float) -> Any:
    """``start.lerp_(end, weight)`` with PyTorch's two formulas, chosen by the weight's size."""
    w = scalar(weight, start)
    if abs(weight) < 0.5:
        return op.Add(start, op.Mul(w, op.Sub(end, start)))
    # 1 - w in the tensor's dtype, as PyTorch's kernel computes it.
    return op.Sub(end, op.Mul(op.Sub(end, start), op.Sub(scalar(1.0, start), w)))


def _bias_corrections(step: Any, lr: Any, beta1: float, beta2: float) -> tuple[Any, Any]:
    """``lr / (1 - b1**t)`` and ``(1 - b2**t) ** 0.5`` in float64, as PyTorch's Python does."""
    t = op.Cast(step, to=dtypes.to_onnx(np.dtype(np.float64)))
    one = scalar(1.0, lr)
    correction1 = op.Sub(one, op.Pow(scalar(beta1, lr), t))
    correction2 = op.Sub(one, op.Pow(scalar(beta2, lr), t))
    return op.Div(lr, correction1), op.Pow(correction2, scalar(0.5, lr))


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov and Hutter), as ``torch.optim.AdamW``.

    Identical to ``Adam(..., decoupled_weight_decay=True)``, with ``weight_decay=1e-2`` by
    default: the weights shrink by ``lr * weight_decay`` before the Adam update instead of the
    penalty being added to the gradient.

    Args:
        params: tensors or param-group dicts (see :class:`Optimizer`).
        lr: learning rate.
        betas: decay rates of the first and second moment averages.
        eps: added to the denominator for numerical stability.
        weight_decay: decoupled weight decay.
        amsgrad: use the AMSGrad variant.
        maximize: maximize the objective instead of minimizing it.
        foreach: accepted for PyTorch compatibility; ignored.

    Raises:
        ValueError: a hyper-parameter out of its range.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        betas: tuple[float, float] = (0.9, 0.999),
        eps: float = 1e-8,
        weight_decay: float = 1e-2,
        amsgrad: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        super().__init__(
            params,
            lr,
            betas,
            eps,
            weight_decay,
            amsgrad,
            maximize=maximize,
            decoupled_weight_decay=True,
        )
