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
from ir.passes import _match as pm
from ir.passes.base import Pass, PassResult


class FuseLayerNormPass(Pass):
    """Fuse decomposed layer normalization into ``LayerNormalization``."""

    name = "fuse_layer_norm"

    def call(self, graph: Graph) -> PassResult:
        """Rewrite every match; see the module docstring for the rules."""
        return PassResult(graph, pm.fuse_all(graph, ("Div", "Mul"), _match, _rewrite))


_Match = tuple[Node, Value, int, float, Value | None, Value | None, list[Node]]


def _rewrite(graph: Graph, found: _Match) -> None:
    root, x, k, eps, scale, bias, nodes = found
    start = len(graph.nodes)
    if scale is None:
        dims = [d for d in x.shape[x.ndim - k :] if isinstance(d, int)]  # all are: checked
        scale = graph.constant(np.ones(dims, x.dtype), "layer_norm_scale")
    inputs = [x, scale] if bias is None else [x, scale, bias]
    y = op.LayerNormalization(*inputs, axis=-k, epsilon=eps)[0]
    pm.splice(graph, start, root.outputs[0], y, nodes)


def _match(norm: Node) -> _Match | None:
    """``norm`` divides by the standard deviation, or multiplies by its inverse."""
    div = norm.op.op_type == "Div"
    for d, std in [(norm.inputs[0], norm.inputs[1])] if div else pm.pairs(norm):
        centred, sd = _centred(d), _std(std, inverse=not div)
        if centred is None or sd is None or not np.issubdtype(centred[0].dtype, np.floating):
            continue
        (x, axes, nodes), (var_eps, eps, std_nodes) = centred, sd
        k = x.ndim - min(axes)
        if axes != tuple(range(x.ndim - k, x.ndim)) or not (var := _variance(var_eps, x, axes)):
            continue
        nodes += [*std_nodes, *var, norm]
        dims = x.shape[x.ndim - k :]
        root, scale, bias = _affine(norm, dims, x, nodes)
        static = scale is not None or all(isinstance(d, int) for d in dims)
        if static and root.outputs[0].type == x.type and pm.private(nodes, root):
            return root, x, k, eps, scale, bias, nodes
    return None


def _centred(d: Value | None) -> tuple[Value, tuple[int, ...], list[Node]] | None:
    """``(x, axes, nodes)`` when ``d`` is ``x - ReduceMean(x, axes, keepdims=1)``."""
    sub = pm.node_of(d, "Sub")
    mean = pm.node_of(sub.inputs[1], "ReduceMean") if sub else None
    if sub is None or mean is None or mean.inputs[0] is not sub.inputs[0]:
        return None
    x, axes = sub.inputs[0], pm.reduce_axes(mean)
    return None if x is None or axes is None else (x, axes, [sub, mean])


def _std(v: Value | None, inverse: bool) -> tuple[Value, float, list[Node]] | None:
    """``(var, eps, nodes)`` when ``v`` is ``Sqrt(var + eps)``, or its inverse."""
    if not inverse and (sqrt := pm.node_of(v, "Sqrt")):
        nodes, ve = [sqrt], sqrt.inputs[0]
    elif inverse and (p := pm.node_of(v, "Pow")) and pm.close(pm.scalar_of(p.inputs[1]), -0.5):
        nodes, ve = [p], p.inputs[0]
    elif (
        inverse and (r := pm.node_of(v, "Reciprocal")) and (sqrt := pm.node_of(r.inputs[0], "Sqrt"))
    ):
        nodes, ve = [r, sqrt], sqrt.inputs[0]
    else:
        return None
    if (add := pm.node_of(ve, "Add")) is None:
        return None
    for var, eps in pm.pairs(add):
        if var is not None and (e := pm.scalar_of(eps)) is not None:
            return var, e, [*nodes, add]
    return None


def _variance(v: Value, x: Value, axes: tuple[int, ...]) -> list[Node] | None:
    """The nodes computing ``v``, when it is the biased variance of ``x`` over ``axes``."""
    scaled = pm.node_of(v, "Div", "Mul")
    reduce = pm.node_of(scaled.inputs[0] if scaled else v, "ReduceMean", "ReduceSum")
    if reduce is None or pm.reduce_axes(reduce) != axes:
        return None
    nodes = [reduce] if scaled is None else [reduce, scaled]
    if reduce.op.op_type == "ReduceSum":  # over n, the count of normalized elements
        n = math.prod(float(d) if isinstance(d, int) else math.nan for d in x.shape[min(axes) :])
        c = pm.scalar_of(scaled.inputs[1]) if scaled else None
        if scaled is None or not c or not pm.close(c if scaled.op.op_type == "Div" else 1 / c, n):
            return None
    elif scaled is not None:
        return None
    if (power := pm.node_of(reduce.inputs[0], "Pow", "Mul")) is None:
        return None
    a, b = power.inputs[0], power.inputs[1]
    centred = _centred(a)
    square = a is b if power.op.op_type == "Mul" else pm.close(pm.scalar_of(b), 2.0)
    if not square or centred is None or centred[0] is not x or centred[1] != axes:
        return None
    return [*nodes, power, *centred[2]]


def _affine(
    norm: Node, dims: tuple[object, ...], x: Value, nodes: list[Node]
) -> tuple[Node, Value | None, Value | None]:
    """The last node of ``norm [* gamma] [+ beta]``, and gamma and beta (None when absent)."""
    root, found = norm, []
    for op_type in ("Mul", "Add"):
        out = root.outputs[0]
        user = out.uses[0][0] if len(out.uses) == 1 else None
        if user is None or user.op.domain or user.op.op_type != op_type:
            break
        w = next(w for v, w in pm.pairs(user) if v is out)
        if w is None or w is out or not pm.same_dims(w.type.shape or (None,), dims):
            break
        root = user
        nodes.append(user)
        found.append(w)
    scale, bias = (*found, None, None)[:2]
    return root, scale, bias
