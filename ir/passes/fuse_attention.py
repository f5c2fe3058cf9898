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

import numpy as np

from ir.graph import Graph, Value
from ir.ops.registry import ints, op
from ir.passes.base import Pass, PassResult
from ir.passes.pattern import Const, Match, Or, Pattern, Var, same_dims, scalar_of
from ir.passes.rewriter import RewriteRule, apply_rules


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
        self.rule = _ATTENTION if target == "attention" else _DECOMPOSED

    def call(self, graph: Graph) -> PassResult:
        """Rewrite every match; see the module docstring for the rules."""
        return PassResult(graph, apply_rules(graph, [self.rule]))


def _scaled(p: Pattern, name: str) -> Pattern:
    """``p * <name>``, ``p / <name>_div`` (scalar constants) or ``p`` alone."""
    return Or(op.Mul(p, Const(name)), op.Div(p, Const(f"{name}_div")), p)


def _pattern() -> Pattern:
    """``MatMul(Softmax(MatMul(Q [* a], Transpose(K) [* b]) [* c] [+ mask]), V)``."""
    q, k, v, mask = Var("q"), Var("k"), Var("v"), Var("mask")
    kt = op.Transpose(k).named("kt")
    scores = _scaled(op.MatMul(_scaled(q, "a"), _scaled(kt, "b")).named("qk"), "c")
    logits = Or(op.Add(scores.named("scores"), mask), scores.named("scores"))
    return op.MatMul(op.Softmax(logits.named("logits")).named("probs"), v)


def _scale(m: Match) -> float | None:
    """The product of the scales found, or None when one is zero or broadcasts its operand."""
    scale = 1.0
    for name, operand in (("a", m["q"]), ("b", m["kt"]), ("c", m["qk"])):
        for key, inverse in ((name, False), (f"{name}_div", True)):
            s = m.get(key)
            if s is None:
                continue
            c = scalar_of(s)
            if not c or (s.type.rank or 0) > (operand.type.rank or -1):
                return None
            scale *= 1 / c if inverse else c
    return scale


def _canonical(m: Match) -> bool:
    """Already ``MatMul(Q [* s], Transpose(K)) [+ mask]``: one scale, a product, on ``Q``."""
    return not any(key in m for key in ("a_div", "b", "b_div", "c", "c_div"))


def _check(m: Match) -> bool:
    """Softmax over the last axis of scores of float Q, K^T and V of one rank and batch."""
    logits, scores, mask = m["logits"], m["scores"], m.get("mask")
    rank = logits.type.rank
    if not rank or (mask is not None and logits.type != scores.type):
        return False  # (a mask that broadcasts the scores up)
    axis_ok = m["probs"].producer.full_attrs["axis"] % rank == rank - 1
    return axis_ok and _types_ok(m["q"], m["kt"], m["v"], mask) and _scale(m) is not None


def _types_ok(q: Value, kt: Value, v: Value, mask: Value | None) -> bool:
    """Q, K^T and V float, one rank (3 or 4) and batch dims; a mask adds along the keys."""
    qs, ks, vs = (x.type.shape or () for x in (q, kt, v))
    if not len(qs) == len(ks) == len(vs) or len(qs) not in (3, 4) or q.dtype != kt.dtype:
        return False
    ms = (None,) if mask is None else mask.type.shape or (None,)
    keys = mask is None or (ms[-1] is not None and ms[-1] == ks[-1] and mask.dtype == q.dtype)
    same = same_dims(qs[:-2], ks[:-2]) and same_dims(qs[:-2], vs[:-2])
    return keys and same and np.issubdtype(q.dtype, np.floating)


def _decomposed_rewrite(m: Match) -> Value:
    """The canonical form: one scale, on ``Q`` (none when it is 1)."""
    q, kt, mask, scale = m["q"], m["kt"], m.get("mask"), _scale(m)
    if scale != 1.0:
        q = op.Mul(q, np.asarray(scale, q.dtype))
    s = op.MatMul(q, kt) if mask is None else op.Add(op.MatMul(q, kt), mask)
    return op.MatMul(op.Softmax(s, axis=-1), m["v"])


def _attention_rewrite(m: Match) -> Value:
    """One ``Attention`` node; ``K`` is the Transpose's input, re-permuted when needed."""
    q, k0, v, mask = m["q"], m["k"], m["v"], m.get("mask")
    perm = list(m["kt"].producer.attrs.get("perm") or (3, 2, 1, 0))
    perm[-2:] = perm[:-3:-1]  # K = K0.transpose(perm) with its last two axes swapped back
    k = k0 if perm == [0, 1, 2, 3] else op.Transpose(k0, perm=perm)
    if mask is not None and (mask.ndim < 2 or mask.shape[-2] != q.shape[-2]):
        rows = op.Shape(q, start=-2, end=-1)  # the query length
        lead = ints([1] * (max(mask.ndim, 2) - 2))
        mask = op.Expand(mask, op.Concat(lead, rows, ints([1]), axis=0))
    inputs = [q, k, v] if mask is None else [q, k, v, mask]
    return op.Attention(*inputs, scale=_scale(m))[0]


def _fused_check(m: Match) -> bool:
    scale = _scale(m)  # Attention takes a positive scale, 4-D here
    return _check(m) and scale is not None and scale > 0 and m["logits"].type.rank == 4


_DECOMPOSED = RewriteRule(
    "attention_decomposed",
    _pattern(),
    lambda m: _check(m) and not _canonical(m),
    _decomposed_rewrite,
)
_ATTENTION = RewriteRule("attention", _pattern(), _fused_check, _attention_rewrite)
