"""``SGD``: stochastic gradient descent with momentum, PyTorch's update rule."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ir.ops.registry import op, scalar
from tracer.optim.optimizer import Optimizer, as_dtype_of, increment


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with (Nesterov) momentum, as ``torch.optim.SGD``.

    For each parameter with a gradient ``g``: ``g = -g`` when ``maximize``; ``g += wd * p``;
    with momentum, ``buf = g`` on the first step and ``buf = momentum * buf + (1 - dampening)
    * g`` after, then ``g = g + momentum * buf`` (Nesterov) or ``g = buf``; finally
    ``p -= lr * g``. The buffer lives in ``state[p]["momentum_buffer"]``. The rule is
    :meth:`~tracer.optim.Optimizer.functional_update`, whose state is ``"step"`` and, with
    momentum, ``"momentum_buffer"``.

    Args:
        params: tensors or param-group dicts (see :class:`Optimizer`).
        lr: learning rate.
        momentum: momentum factor.
        dampening: dampening of the momentum.
        weight_decay: L2 penalty added to the gradient.
        nesterov: use Nesterov momentum.
        maximize: maximize the objective instead of minimizing it.
        foreach: accepted for PyTorch compatibility; ignored.

    Raises:
        ValueError: a negative lr, momentum or weight decay, or Nesterov without momentum
            or with dampening.
    """

    def __init__(
        self,
        params: Iterable[Any],
        lr: float = 1e-3,
        momentum: float = 0,
        dampening: float = 0,
        weight_decay: float = 0,
        nesterov: bool = False,
        *,
        maximize: bool = False,
        foreach: bool | None = None,
    ) -> None:
        if lr < 0.0:
            raise ValueError(f"Invalid learning rate: {lr}")
        if momentum < 0.0:
            raise ValueError(f"Invalid momentum value: {momentum}")
        if weight_decay < 0.0:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = {
            "lr": lr,
            "momentum": momentum,
            "dampening": dampening,
            "weight_decay": weight_decay,
            "nesterov": nesterov,
            "maximize": maximize,
        }
        super().__init__(params, defaults)

    # PyTorch keeps no step count for SGD; the functional "step" only tells the first
    # update (which sets the momentum buffer to the gradient) from the others.
    _stores_step = False

    def _functional_keys(self, group: Mapping[str, Any]) -> tuple[str, ...]:
        return ("momentum_buffer",) if group["momentum"] != 0 else ()

    def _functional_update(
        self, group: Mapping[str, Any], p: Any, grad: Any, state: dict[str, Any], lr: Any
    ) -> tuple[Any, dict[str, Any]]:
        momentum, weight_decay = group["momentum"], group["weight_decay"]
        g = op.Neg(grad) if group["maximize"] else grad
        if weight_decay != 0:
            g = op.Add(g, op.Mul(scalar(weight_decay, p), p))
        step = state["step"]
        new_state = {"step": increment(step)}
        if momentum != 0:
            buf = _momentum_buffer(state["momentum_buffer"], g, step, momentum, group["dampening"])
            new_state["momentum_buffer"] = buf
            g = op.Add(g, op.Mul(scalar(momentum, p), buf)) if group["nesterov"] else buf
        # p.add_(g, alpha=-lr): lr rounded to p's dtype, as torch converts its alpha.
        return op.Sub(p, op.Mul(as_dtype_of(lr, p), g)), new_state


def _momentum_buffer(buf: Any, g: Any, step: Any, momentum: float, dampening: float) -> Any:
    """``buf * momentum + (1 - dampening) * g``, and exactly ``g`` on the first step.

    PyTorch's first step clones ``g``. Here the factors depend on the step instead (0-d
    Wheres, cheap), on the zero buffer :meth:`functional_state` gives before it: ``-0.0 *
    +0 + g`` is ``g`` bit for bit, its sign of zero included, without a full-size Where.
    """
    first = op.Equal(step, scalar(0, step))
    decay = op.Where(first, scalar(-0.0, buf), scalar(momentum, buf))
    if dampening != 0:  # a factor of 1 - 0 is exact: skip it (the common case)
        g = op.Mul(op.Where(first, scalar(1.0, buf), scalar(1 - dampening, buf)), g)
    return op.Add(op.Mul(buf, decay), g)
