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

from ir.graph import Graph, Node, Value
from ir.ops.registry import op
from ir.passes._match import fuse_all, node_of, pairs, single_use, splice
from ir.passes.base import Pass, PassResult

_FLOATS = ("float16", "float32", "float64")


class FuseGemmPass(Pass):
    """Fuse ``MatMul`` + bias ``Add`` into ``Gemm``, absorbing operand transposes."""

    name = "fuse_gemm"

    def call(self, graph: Graph) -> PassResult:
        """Rewrite every match; see the module docstring for the rules."""
        return PassResult(graph, fuse_all(graph, ("Add", "Gemm"), _match, _rewrite))


# (root, matmul, A, B, C, attrs)
_Match = tuple[Node, Node | None, Value, Value, Value | None, dict[str, float]]


def _match(node: Node) -> _Match | None:
    return _match_add(node) if node.op.op_type == "Add" else _match_gemm(node)


def _match_add(add: Node) -> _Match | None:
    for prod, bias in pairs(add):
        mm = node_of(prod, "MatMul")
        if mm is None or not single_use(prod) or bias is None:
            continue
        a, b = mm.inputs[0], mm.inputs[1]
        assert a is not None and b is not None and prod is not None
        if not (_is_2d(a) and _is_2d(b) and str(a.dtype) in _FLOATS):
            continue
        if bias.dtype != a.dtype or not _broadcasts(bias, prod.shape):
            continue
        a, ta = _untranspose(a)
        b, tb = _untranspose(b)
        return add, mm, a, b, bias, {"transA": ta, "transB": tb}
    return None


def _match_gemm(gemm: Node) -> _Match | None:
    """A Gemm with a transposed operand left to absorb."""
    attrs = gemm.full_attrs
    a, b = gemm.inputs[0], gemm.inputs[1]
    assert a is not None and b is not None
    a2, ta = _untranspose(a)
    b2, tb = _untranspose(b)
    if a2 is a and b2 is b:
        return None
    trans = {"transA": attrs["transA"] ^ ta, "transB": attrs["transB"] ^ tb}
    extra = {k: attrs[k] for k in ("alpha", "beta") if attrs[k] != 1.0}
    c = gemm.inputs[2] if len(gemm.inputs) > 2 else None
    return gemm, None, a2, b2, c, {**trans, **extra}


def _is_2d(v: Value) -> bool:
    return v.type.shape is not None and len(v.type.shape) == 2


def _untranspose(v: Value) -> tuple[Value, int]:
    """``(X, 1)`` when ``v`` is a single-use 2-D ``Transpose(X)``, else ``(v, 0)``."""
    t = node_of(v, "Transpose")
    if t is None or not single_use(v) or not _is_2d(v):
        return v, 0
    perm = t.attrs.get("perm")
    if perm is not None and list(perm) != [1, 0]:
        return v, 0
    x = t.inputs[0]
    assert x is not None
    return x, 1


def _broadcasts(c: Value, out: tuple[object, ...]) -> bool:
    """C broadcasts to ``out`` without growing it (ONNX unidirectional broadcasting)."""
    shape = c.type.shape
    if shape is None or len(shape) > len(out):
        return False
    tail = out[len(out) - len(shape) :]
    return all(d == 1 or (d is not None and d == o) for d, o in zip(shape, tail, strict=True))


def _rewrite(graph: Graph, found: _Match) -> None:
    root, mm, a, b, c, attrs = found
    start = len(graph.nodes)
    # Flags only when set, so the text form stays the plain ``Gemm(a, b, c)``.
    given = {k: v for k, v in attrs.items() if v or not k.startswith("trans")}
    y = op.Gemm(a, b, c, **given)
    matched = [n for n in (root, mm) if n is not None]
    for v in (*(mm.inputs if mm else ()), *root.inputs):
        t = node_of(v, "Transpose")
        if t is not None:
            matched.append(t)
    splice(graph, start, root.outputs[0], y, matched)
