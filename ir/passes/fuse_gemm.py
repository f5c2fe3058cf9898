"""``FuseGemmPass``: a 2-D ``MatMul`` plus a bias ``Add`` becomes one ``Gemm``.

Rewrite rules:

- ``Add(MatMul(A, B), C)`` (either operand order) -> ``Gemm(A, B, C)``;
- an operand of that MatMul, or of a ``Gemm`` already in the graph, that is
  ``Transpose(X)`` of a 2-D ``X`` (perm ``[1, 0]`` or none) is absorbed:
  ``Gemm(X, ..., transA=1)`` / ``Gemm(..., X, transB=1)``. This is what ``nn.Linear``
  traces to (``x @ weight.t() + bias``) on 2-D input.

It does not fire when:

- A or B is not 2-D (Gemm has no batch dims; a 3-D ``[batch, seq, d]`` linear stays a
  MatMul + Add) or its rank is unknown;
- C does not broadcast *unidirectionally* to ``[M, N]`` (Gemm's rule): a C of rank above 2,
  or a dim that is neither 1 nor equal to the output's (a symbolic dim must be the same
  symbol), as in ``MatMul`` + ``Add`` that broadcasts the product up;
- the MatMul output has another use, or is a graph output (the product is needed alone);
- a Transpose output has another use (absorbing it would not remove it);
- the dtype is not floating point (onnxruntime's Gemm is float-only), or C's dtype differs.
"""

from __future__ import annotations

from ir.graph import Graph, Value
from ir.ops.registry import op
from ir.passes.base import Pass, PassResult
from ir.passes.pattern import Match, Or, Pattern, Var
from ir.passes.rewriter import RewriteRule, apply_rules

_FLOATS = ("float16", "float32", "float64")


class FuseGemmPass(Pass):
    """Fuse ``MatMul`` + bias ``Add`` into ``Gemm``, absorbing operand transposes."""

    name = "fuse_gemm"

    def call(self, graph: Graph) -> PassResult:
        """Rewrite every match; see the module docstring for the rules."""
        return PassResult(graph, apply_rules(graph, _RULES))


def _operand(side: str) -> Pattern:
    """Operand ``side`` ("a" or "b"): ``Transpose(<side>_t)`` to absorb, or the value as is."""
    return Or(op.Transpose(Var(f"{side}_t")).named(f"{side}_transposed"), Var(side))


# ---------------------------------------------------------------- Add(MatMul(A, B), C)


def _linear_check(m: Match) -> bool:
    a, b, c = _given(m, "a"), _given(m, "b"), m["c"]
    if not (_is_2d(a) and _is_2d(b) and str(a.dtype) in _FLOATS) or c is None:
        return False
    return c.dtype == a.dtype and _broadcasts(c, m["product"].shape) and _transposes_ok(m)


def _linear_rewrite(m: Match) -> Value:
    (a, trans_a), (b, trans_b) = _untransposed(m, "a"), _untransposed(m, "b")
    return op.Gemm(a, b, m["c"], **_flags(trans_a, trans_b))


# ---------------------------------------------------------------- Gemm(Transpose(A), ...)


def _transposed_gemm_check(m: Match) -> bool:
    absorbs = "a_transposed" in m or "b_transposed" in m
    return absorbs and _transposes_ok(m)


def _transposed_gemm_rewrite(m: Match) -> Value:
    attrs = m.root.full_attrs
    (a, trans_a), (b, trans_b) = _untransposed(m, "a"), _untransposed(m, "b")
    scales = {k: attrs[k] for k in ("alpha", "beta") if attrs[k] != 1.0}
    flags = _flags(attrs["transA"] ^ trans_a, attrs["transB"] ^ trans_b)
    return op.Gemm(a, b, m["c"], **flags, **scales)


_RULES = [
    RewriteRule(
        "matmul_add",
        op.Add(op.MatMul(_operand("a"), _operand("b")).named("product"), Var("c")),
        _linear_check,
        _linear_rewrite,
    ),
    RewriteRule(
        "gemm_transpose",
        op.Gemm(_operand("a"), _operand("b"), Var("c")),
        _transposed_gemm_check,
        _transposed_gemm_rewrite,
    ),
]


# ---------------------------------------------------------------- shared conditions


def _given(m: Match, side: str) -> Value:
    """The operand as the MatMul or Gemm is given it (the Transpose's output, if any)."""
    return m.get(f"{side}_transposed") or m[side]


def _untransposed(m: Match, side: str) -> tuple[Value, int]:
    """The operand for the new Gemm and its ``trans`` flag: 1 when a Transpose is absorbed."""
    if f"{side}_t" in m:
        return m[f"{side}_t"], 1
    return m[side], 0


def _transposes_ok(m: Match) -> bool:
    """Each absorbed Transpose is of a 2-D value, with perm ``[1, 0]`` or none."""
    for side in ("a", "b"):
        t = m.get(f"{side}_transposed")
        if t is None:
            continue
        perm = t.producer.attrs.get("perm")
        if not _is_2d(t) or (perm is not None and list(perm) != [1, 0]):
            return False
    return True


def _flags(trans_a: int, trans_b: int) -> dict[str, int]:
    # Flags only when set, so the text form stays the plain ``Gemm(a, b, c)``.
    flags = {"transA": trans_a, "transB": trans_b}
    return {k: v for k, v in flags.items() if v}


def _is_2d(v: Value) -> bool:
    return v.type.shape is not None and len(v.type.shape) == 2


def _broadcasts(c: Value, out: tuple[object, ...]) -> bool:
    """C broadcasts to ``out`` without growing it (ONNX unidirectional broadcasting)."""
    shape = c.type.shape
    if shape is None or len(shape) > len(out):
        return False
    tail = out[len(out) - len(shape) :]
    return all(d == 1 or (d is not None and d == o) for d, o in zip(shape, tail, strict=True))
