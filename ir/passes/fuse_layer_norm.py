"""``FuseLayerNormPass``: layer normalization written out op by op -> ``LayerNormalization``.

Rule, over the trailing ``k`` axes of ``x``, ``d = x - ReduceMean(x)`` (keepdims):
``d / Sqrt(var + eps) [* gamma] [+ beta]`` -> ``LayerNormalization(x, gamma, beta, axis=-k,
epsilon=eps)``. ``var``: ``ReduceMean(d2)`` or ``ReduceSum(d2) / n`` (or ``* 1/n``), ``n`` the
count of normalized elements (biased, as ``nn.LayerNorm``); ``d2``: ``Pow(d', 2)`` or
``Mul(d', d')``, ``d'`` being ``d`` or an equal ``x - ReduceMean(x)`` (tracer code's
``x.var(-1, unbiased=False)`` takes the mean again). ``/ Sqrt(ve)`` may be ``*
Reciprocal(Sqrt(ve))`` (``rsqrt``) or ``* Pow(ve, -0.5)``; without ``gamma`` the scale is ones.
That covers ``torch.onnx.export`` of ``nn.LayerNorm`` at opsets 14-16 and tracer code such as
``(x - x.mean(-1, keepdim=True)) / (x.var(-1, keepdim=True, unbiased=False) + eps).sqrt() * w
+ b``. Float16 gets float32 statistics (``stash_type=1``), which is more exact.

It does not fire when the axes are not the trailing ones, differ between reductions, or
``keepdims=0``; the variance is unbiased (``/ (n - 1)``); ``n`` is not static or ``eps`` not
a constant; an intermediate (the mean, ``d``, the variance...) is used outside the pattern or
is a graph output; ``x`` is not floating point. A ``gamma``/``beta`` not shaped exactly like
the normalized dims (it would broadcast the result), or ``beta`` without ``gamma``, is left
out of the fusion.
"""

from __future__ import annotations

import math

import numpy as np

from ir.graph import Graph, Node, Value
from ir.ops.registry import op
from ir.passes.base import Pass, PassResult
from ir.passes.pattern import Const, Match, Or, Pattern, Var, close, same_dims, scalar_of
from ir.passes.rewriter import RewriteRule, apply_rules


class FuseLayerNormPass(Pass):
    """Fuse decomposed layer normalization into ``LayerNormalization``."""

    name = "fuse_layer_norm"

    def call(self, graph: Graph) -> PassResult:
        """Rewrite every match; see the module docstring for the rules."""
        return PassResult(graph, apply_rules(graph, [_RULE]))


def _centred(x: Var, name: str) -> Pattern:
    """``x - ReduceMean(x)``, the mean bound to ``<name>_mean``."""
    mean = op.ReduceMean(x, Var(f"{name}_axes")).named(f"{name}_mean")
    return op.Sub(x, mean).named(name)


def _pattern() -> Pattern:
    """``d / Sqrt(var + eps) [* gamma] [+ beta]``, ``d`` centred ``x``, in every form above."""
    x = Var("x")
    d = _centred(x, "d")
    d2 = _centred(x, "d2")  # d itself, or the mean taken again
    square = Or(op.Pow(d2, 2.0), op.Mul(d2, d2))
    total = op.ReduceSum(square, Var("var_axes")).named("var_reduce")
    variance = Or(
        op.ReduceMean(square, Var("var_axes")).named("var_reduce"),
        op.Div(total, Const("n")),
        op.Mul(total, Const("inverse_n")),
    )
    biased = op.Add(variance, Const("eps"))
    inverse_std = Or(op.Reciprocal(op.Sqrt(biased)), op.Pow(biased, -0.5))
    norm = Or(op.Div(d, op.Sqrt(biased)), op.Mul(d, inverse_std))
    gamma, beta = Var("gamma"), Var("beta")
    return Or(op.Add(op.Mul(norm, gamma), beta), op.Mul(norm, gamma), norm)


def _check(m: Match) -> bool:
    x = m["x"]
    k = _normalized_rank(m)
    if k is None or not np.issubdtype(x.dtype, np.floating) or m.value.type != x.type:
        return False
    dims = x.shape[x.ndim - k :]
    for name in ("gamma", "beta"):  # shaped as the normalized dims, or the result broadcasts
        w = m.get(name)
        if w is not None and not same_dims(w.type.shape or (None,), dims):
            return False
    static = all(isinstance(d, int) for d in dims)
    if "n" in m or "inverse_n" in m:  # ReduceSum over n, the count of normalized elements
        count = math.prod(d for d in dims if isinstance(d, int))
        if not static or not close(_divisor(m), count):
            return False
    return "gamma" in m or static  # a scale of ones needs a static shape


def _divisor(m: Match) -> float | None:
    """The ``n`` that the variance's ``ReduceSum`` is divided by (``/ n`` or ``* 1/n``)."""
    if "n" in m:
        return scalar_of(m["n"])
    inverse = scalar_of(m["inverse_n"])
    return 1 / inverse if inverse else None


def _rewrite(m: Match) -> Value:
    x, k = m["x"], _normalized_rank(m)
    assert k is not None
    scale = m.get("gamma")
    if scale is None:
        dims = [d for d in x.shape[x.ndim - k :] if isinstance(d, int)]  # all are: checked
        scale = x.graph.constant(np.ones(dims, x.dtype), "layer_norm_scale")
    inputs = [x, scale] if "beta" not in m else [x, scale, m["beta"]]
    eps = scalar_of(m["eps"])
    return op.LayerNormalization(*inputs, axis=-k, epsilon=eps)[0]


def _normalized_rank(m: Match) -> int | None:
    """``k`` when every reduction is over the same trailing ``k`` axes of ``x``, else None."""
    x = m["x"]
    axes = _reduce_axes(m["d_mean"].producer)
    if axes is None:
        return None
    k = x.ndim - min(axes)
    same = [_reduce_axes(m[name].producer) for name in ("d2_mean", "var_reduce")]
    if axes != tuple(range(x.ndim - k, x.ndim)) or any(a != axes for a in same):
        return None
    return k


def _reduce_axes(reduce: Node) -> tuple[int, ...] | None:
    """The sorted non-negative axes of a ``Reduce*`` node that keeps dims, else None.

    Constant ``axes``, or none at all (every axis); anything else gives None.
    """
    x = reduce.inputs[0]
    given = reduce.inputs[1] if len(reduce.inputs) > 1 else None
    if x is None or x.type.shape is None or not reduce.full_attrs["keepdims"]:
        return None
    if given is None:
        return tuple(range(x.ndim)) or None
    if given.const is None or given.const.size == 0:
        return None
    return tuple(sorted(int(a) % x.ndim for a in given.const.reshape(-1)))


_RULE = RewriteRule("layer_norm", _pattern(), _check, _rewrite)
