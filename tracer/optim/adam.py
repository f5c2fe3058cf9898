"""``Adam`` and ``AdamW``: adaptive moment estimation, PyTorch's update rules."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from tracer._creation import zeros_like
from tracer._functions import maximum
from tracer.optim.optimizer import Optimizer


class Adam(Optimizer):
    """Adam (Kingma and Ba), optionally AMSGrad, as ``torch.optim.Adam``.

    For each parameter with a gradient ``g`` at step ``t``: ``g += wd * p`` (or, with
    ``decoupled_weight_decay``, ``p *= 1 - lr * wd`` as AdamW does); ``m = b1 * m + (1 - b1)
    * g``; ``v = b2 * v + (1 - b2) * g * g``; with AMSGrad ``v_max = max(v_max, v)`` is used
    in place of ``v``; ``p -= lr / (1 - b1**t) * m / (sqrt(v) / sqrt(1 - b2**t) + eps)``.
    State per parameter: ``step`` (a Python int), ``exp_avg``, ``exp_avg_sq`` and, with
    AMSGrad, ``max_exp_avg_sq``.

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

    def _update_group(self, group: dict[str, Any]) -> None:
        lr, eps, weight_decay = group["lr"], group["eps"], group["weight_decay"]
        beta1, beta2 = group["betas"]
        for p in group["params"]:
            if p.grad is None:
                continue
            grad = -p.grad if group["maximize"] else p.grad
            state = self._init_state(p, group["amsgrad"])
            state["step"] += 1
            step = state["step"]
            if weight_decay != 0:
                if group.get("decoupled_weight_decay", False):
                    p.mul_(1 - lr * weight_decay)
                else:
                    grad = grad.add(p, alpha=weight_decay)
            exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
            # PyTorch's lerp_ with weight < 0.5: m + w * (g - m).
            exp_avg.add_(grad - exp_avg, alpha=1 - beta1)
            exp_avg_sq.mul_(beta2).add_(grad * grad, alpha=1 - beta2)
            step_size = lr / (1 - beta1**step)
            bias_correction2_sqrt = (1 - beta2**step) ** 0.5
            if group["amsgrad"]:
                state["max_exp_avg_sq"].copy_(maximum(state["max_exp_avg_sq"], exp_avg_sq))
                second = state["max_exp_avg_sq"]
            else:
                second = exp_avg_sq
            denom = second.sqrt() / bias_correction2_sqrt + eps
            p.add_(exp_avg / denom, alpha=-step_size)

    def _init_state(self, p: Any, amsgrad: bool) -> dict[str, Any]:
        state = self.state[p]
        if not state:
            state["step"] = 0
            state["exp_avg"] = zeros_like(p)
            state["exp_avg_sq"] = zeros_like(p)
        if amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = zeros_like(p)
        return state


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
