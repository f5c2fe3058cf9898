"""``FuseAttentionPass``: scaled dot-product attention, in the form onnxruntime runs fastest.

Pattern (``Q``, ``K``, ``V`` of rank 3 or 4 with equal batch dims; ``a``, ``b``, ``c``
optional one-element constants, the scale their product), as hand-written ``softmax(q @
k.transpose(-2, -1) / sqrt(d) + mask) @ v`` traces and ``torch.onnx.export`` writes it::

    MatMul(Q [* a], Transpose(K) [* b]) [* c | / c] [+ mask] -> Softmax(-1) -> MatMul(., V)

Measured (``docs/attention_fusion.md``): on onnxruntime 1.31's CPU provider the decomposed
pattern is the fastest form graphcap can emit. onnxruntime fuses ``MatMul(Q, Transpose(K))``
and a scalar scale, wherever it sits, into a contrib ``FusedMatMul``; ONNX ``Attention``
(opset 23), whose four outputs graphcap's writer names (so all four are computed), is 1-38%
slower; contrib ``MultiHeadAttention`` 18-125% slower. So ``target="decomposed"`` (default,
``optimize(level=3)``) rewrites to the canonical ``MatMul(Q * s, Transpose(K)) [+ mask] ->
Softmax -> MatMul(V)``: one scale, on ``Q`` (none when 1; the interpreter's fastest place),
as graphcap's ``scaled_dot_product_attention`` emits. A canonical pattern stays as it is.
``target="attention"`` (4-D) emits ``Attention(Q, K, V, mask, scale=s)``, for runtimes with
a fast kernel, or once the writer leaves unused outputs unnamed (masked Attention is then
4-16% faster). ``K`` is the Transpose's input (re-permuted unless it swapped the last two
axes); a mask is ``Expand``ed to the query length (onnxruntime needs it); ``s`` must be
positive; a row with every key at ``-inf`` gives zeros, not NaN (ONNX's rule).

No rewrite when the Softmax is not over the last axis; an intermediate (transposed K, scores,
probabilities...) is used outside the pattern or is a graph output (attention weights
returned); ranks or batch dims of ``Q``, ``K``, ``V`` differ; the mask's last dim is not the
key length, its dtype not ``Q``'s, or it broadcasts the scores larger; a scale is not a
constant (``torch.onnx.export`` computes sdpa's from shapes: constant-fold first).
"""

from __future__ import annotations

from functools import partial
from typing import NamedTuple

import numpy as np

from ir.graph import Graph, Node, Value
from ir.ops.registry import ints, op
from ir.passes import _match as pm
from ir.passes.base import Pass, PassResult


class FuseAttentionPass(Pass):
    """Rewrite attention patterns into the fastest form (see the module docstring).

    Args:
        target: "decomposed" (canonical MatMul/Softmax form) or "attention" (ONNX Attention).

    Raises:
        ValueError: another ``target``.
    """

    name = "fuse_attention"

    def __init__(self, target: str = "decomposed") -> None:
        if target not in ("decomposed", "attention"):
            raise ValueError(f"target={target!r}: expected 'decomposed' or 'attention'")
        self.fused = target == "attention"

    def call(self, graph: Graph) -> PassResult:
        """Rewrite every match; see the module docstring for the rules."""
        match, rewrite = partial(_match, fused=self.fused), partial(_rewrite, fused=self.fused)
        return PassResult(graph, pm.fuse_all(graph, ("Softmax",), match, rewrite))


class _Attn(NamedTuple):
    q: Value
    kt: Value  # Transpose(K)
    v: Value
    mask: Value | None
    scale: float
    root: Node  # the last MatMul
    nodes: list[Node]


def _match(softmax: Node, fused: bool) -> _Attn | None:
    probs, logits = softmax.outputs[0], softmax.inputs[0]
    out = probs.uses[0][0] if len(probs.uses) == 1 and probs.uses[0][1] == 0 else None
    if not (out and pm.node_of(out.outputs[0], "MatMul") and logits and (rank := logits.type.rank)):
        return None
    add = pm.node_of(logits, "Add")
    for scores, mask in [*(pm.pairs(add) if add else []), (logits, None)]:
        found = _scores(scores)
        if found is None or not scores or (mask and logits.type != scores.type):
            continue  # (a mask that broadcasts the scores up)
        q, kt, scale, canonical, nodes = found
        if (scale <= 0 or rank != 4) if fused else canonical:
            continue  # Attention takes a positive scale, 4-D here; a canonical form stays
        v, nodes = out.inputs[1], [*nodes, *([add] if mask and add else []), softmax, out]
        axis_ok = softmax.full_attrs["axis"] % rank == rank - 1
        if axis_ok and v and _types_ok(q, kt, v, mask) and pm.private(nodes, out):
            return _Attn(q, kt, v, mask, scale, out, nodes)
    return None


def _scores(v: Value | None) -> tuple[Value, Value, float, bool, list[Node]] | None:
    """``(Q, K^T, scale, canonical, nodes)`` when ``v`` is ``MatMul(Q, Transpose(K))`` scaled."""
    v, c, after = _unscale(v)
    mm = pm.node_of(v, "MatMul")
    q, a, on_q = _unscale(mm.inputs[0] if mm else None)
    kt, b, on_k = _unscale(mm.inputs[1] if mm else None)
    t = pm.node_of(kt, "Transpose")
    if mm is None or t is None or kt is None or q is None:
        return None
    canonical = not after and not on_k and all(n.op.op_type == "Mul" for n in on_q)
    return q, kt, a * b * c, canonical, [t, *on_q, *on_k, mm, *after]


def _unscale(v: Value | None) -> tuple[Value | None, float, list[Node]]:
    """``(x, s, [node])`` when ``v`` is ``x * s``, ``s * x`` or ``x / s`` with ``s`` a scalar."""
    n = pm.node_of(v, "Mul", "Div")
    div = n is not None and n.op.op_type == "Div"
    for x, s in (pm.pairs(n)[:1] if div else pm.pairs(n)) if n else []:
        c = pm.scalar_of(s)
        if n and x and s and c and (s.type.rank or 0) <= (x.type.rank or -1):  # no broadcast
            return x, (1 / c if div else c), [n]
    return v, 1.0, []


def _types_ok(q: Value, kt: Value, v: Value, mask: Value | None) -> bool:
    """Q, K^T and V float, one rank (3 or 4) and batch dims; a mask adds along the keys."""
    qs, ks, vs = (x.type.shape or () for x in (q, kt, v))
    if not len(qs) == len(ks) == len(vs) or len(qs) not in (3, 4) or q.dtype != kt.dtype:
        return False
    ms = (None,) if mask is None else mask.type.shape or (None,)
    keys = mask is None or (ms[-1] is not None and ms[-1] == ks[-1] and mask.dtype == q.dtype)
    same = pm.same_dims(qs[:-2], ks[:-2]) and pm.same_dims(qs[:-2], vs[:-2])
    return keys and same and np.issubdtype(q.dtype, np.floating)


def _rewrite(graph: Graph, m: _Attn, fused: bool) -> None:
    """The canonical form, or one ``Attention`` node (``K`` from the Transpose's input)."""
    start, mask = len(graph.nodes), m.mask
    if not fused:
        q = m.q if m.scale == 1.0 else op.Mul(m.q, np.asarray(m.scale, m.q.dtype))
        s = op.MatMul(q, m.kt) if mask is None else op.Add(op.MatMul(q, m.kt), mask)
        y = op.MatMul(op.Softmax(s, axis=-1), m.v)
        return pm.splice(graph, start, m.root.outputs[0], y, m.nodes)
    t = m.kt.producer
    assert t is not None and t.inputs[0] is not None
    perm = list(t.attrs.get("perm") or (3, 2, 1, 0))
    perm[-2:] = perm[:-3:-1]  # K = K0.transpose(perm) with its last two axes swapped back
    k = t.inputs[0] if perm == [0, 1, 2, 3] else op.Transpose(t.inputs[0], perm=perm)
    if mask is not None and (mask.ndim < 2 or mask.shape[-2] != m.q.shape[-2]):
        rows = op.Shape(m.q, start=-2, end=-1)  # the query length
        lead = ints([1] * (max(mask.ndim, 2) - 2))
        mask = op.Expand(mask, op.Concat(lead, rows, ints([1]), axis=0))
    y = op.Attention(*([m.q, k, m.v] if mask is None else [m.q, k, m.v, mask]), scale=m.scale)
    pm.splice(graph, start, m.root.outputs[0], y[0], m.nodes)
