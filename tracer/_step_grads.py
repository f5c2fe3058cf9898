"""What a compiled training step does to the gradients between backward and the update.

Gradient accumulation over micro-batches and clipping by value and by norm, written with
registry ops (``op.X``) as the optimizers' update rules are: on graph values they emit the
nodes of the step graph, on NumPy arrays they run at once. The semantics are PyTorch's
``clip_grad_value_`` and ``clip_grad_norm_`` (total norm over all parameters together).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ir import dtypes
from ir.ops.registry import op, scalar


@dataclass(frozen=True)
class GradOptions:
    """Gradient handling of a compiled step (see :func:`tracer.compile_step`).

    Attributes:
        max_norm: clip the total norm of all gradients to this (None: no norm clipping).
        norm_type: the p of that norm; ``float("inf")`` for the largest absolute value.
        clip_value: clamp every gradient element into ``[-clip_value, clip_value]`` first.
        accumulation_steps: micro-batches whose mean gradient makes one update.
    """

    max_norm: float | None = None
    norm_type: float = 2.0
    clip_value: float | None = None
    accumulation_steps: int = 1

    def __post_init__(self) -> None:
        if self.max_norm is not None and not self.max_norm >= 0:
            raise ValueError(f"max_norm={self.max_norm!r}: expected a number >= 0 or None")
        if not float(self.norm_type) > 0:
            raise ValueError(f"norm_type={self.norm_type!r}: expected p > 0 or float('inf')")
        if self.clip_value is not None and not self.clip_value >= 0:
            raise ValueError(f"clip_value={self.clip_value!r}: expected a number >= 0 or None")
        steps = self.accumulation_steps
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
            raise ValueError(f"accumulation_steps={steps!r}: expected an int >= 1")


def total_norm(grads: Sequence[Any], norm_type: float) -> Any:
    """The p-norm of all ``grads`` together, as if concatenated into one vector (0-d).

    Computed in the first gradient's dtype; ``inf`` gives the largest absolute value.
    """
    like = grads[0]
    parts = []
    for g in grads:
        g = g if g.dtype == like.dtype else op.Cast(g, to=dtypes.to_onnx(like.dtype))
        if math.isinf(norm_type):
            parts.append(op.ReduceMax(op.Abs(g), keepdims=0))
        elif norm_type == 2:
            parts.append(op.ReduceSumSquare(g, keepdims=0))
        else:
            parts.append(op.ReduceSum(op.Pow(op.Abs(g), scalar(norm_type, like)), keepdims=0))
    total = parts[0]
    for part in parts[1:]:
        total = op.Max(total, part) if math.isinf(norm_type) else op.Add(total, part)
    if math.isinf(norm_type):
        return total
    if norm_type == 2:
        return op.Sqrt(total)
    return op.Pow(total, scalar(1.0 / norm_type, like))


def clip(grads: Sequence[Any], options: GradOptions) -> tuple[list[Any], Any]:
    """``grads`` clipped by value then by total norm, and the total norm (None if unclipped).

    As ``clip_grad_value_`` then ``clip_grad_norm_``: every gradient is multiplied by
    ``min(1, max_norm / (total_norm + 1e-6))``; the norm returned is the one before that.
    """
    out = list(grads)
    if options.clip_value is not None:
        c = options.clip_value
        out = [op.Clip(g, scalar(-c, g), scalar(c, g)) for g in out]
    if options.max_norm is None or not out:
        return out, None
    norm = total_norm(out, float(options.norm_type))
    coef = op.Div(scalar(options.max_norm, norm), op.Add(norm, scalar(1e-6, norm)))
    coef = op.Min(coef, scalar(1.0, norm))
    scaled = []
    for g in out:
        c = coef if g.dtype == coef.dtype else op.Cast(coef, to=dtypes.to_onnx(g.dtype))
        scaled.append(op.Mul(g, c))
    return scaled, norm
