"""Linear algebra: MatMul (NumPy ``matmul`` semantics, batch dims broadcast), Gemm, Einsum."""

from __future__ import annotations

import string
from typing import Any

import numpy as np

from ir.errors import ShapeError, UnsupportedOpError
from ir.ops.grad_util import shape_of, unbroadcast
from ir.ops.infer import broadcast_dim, broadcast_shapes, same_dtype
from ir.ops.registry import InferContext, Legacy, OpDef, VjpContext, ints, op, register, scalar
from ir.types import Dim, TensorType


def _matmul_infer(ctx: InferContext, a: TensorType, b: TensorType) -> TensorType:
    dtype = same_dtype((a, b))
    if a.shape is None or b.shape is None:
        return TensorType(dtype, None)
    if not a.shape or not b.shape:
        raise ShapeError("MatMul: inputs must have at least one dimension, got a 0-d input")
    sa = (1, *a.shape) if len(a.shape) == 1 else a.shape
    sb = (*b.shape, 1) if len(b.shape) == 1 else b.shape
    k1, k2 = sa[-1], sb[-2]
    if isinstance(k1, int) and isinstance(k2, int) and k1 != k2:
        raise ShapeError(f"MatMul: contracted dims differ: {list(a.shape)} @ {list(b.shape)}")
    batch = broadcast_shapes(sa[:-2], sb[:-2])
    out: list[Dim] = [*batch, sa[-2], sb[-1]]
    if len(a.shape) == 1:
        del out[-2]
    if len(b.shape) == 1:
        del out[-1]
    return TensorType(dtype, tuple(out))


def swap_last(x: Any) -> Any:
    """``x`` with its last two axes swapped (a registry Transpose)."""
    perm = list(range(x.ndim))
    perm[-2], perm[-1] = perm[-1], perm[-2]
    return op.Transpose(x, perm=perm)


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.matmul``, with a 2-D right operand as one 2-D GEMM over ``a``'s leading dims.

    NumPy runs ``[B, T, K] @ [K, N]`` as ``B`` separate products (12x slower on a language
    model's output projection); float16 goes through float32 so BLAS does the product.
    """
    if a.dtype == np.float16 and b.dtype == np.float16:
        return _matmul(a.astype(np.float32), b.astype(np.float32)).astype(np.float16)
    if a.ndim > 2 and b.ndim == 2:
        rows = int(np.prod(a.shape[:-1]))
        flat = np.matmul(a.reshape(rows, a.shape[-1]), b)
        return flat.reshape(*a.shape[:-1], b.shape[1])
    return np.matmul(a, b)


def _matmul_vjp(ctx: VjpContext, g: Any, a: Any, b: Any) -> list[Any]:
    if a.ndim == 1 and b.ndim == 1:
        return [
            op.Mul(g, b) if ctx.needs_input_grad[0] else None,
            op.Mul(g, a) if ctx.needs_input_grad[1] else None,
        ]
    a2 = op.Unsqueeze(a, ints([0])) if a.ndim == 1 else a
    b2 = op.Unsqueeze(b, ints([1])) if b.ndim == 1 else b
    g2 = op.Unsqueeze(g, ints([-2])) if a.ndim == 1 else g
    g2 = op.Unsqueeze(g2, ints([-1])) if b.ndim == 1 else g2
    ga = gb = None
    if ctx.needs_input_grad[0]:
        ga = unbroadcast(op.MatMul(g2, swap_last(b2)), a2)
        ga = op.Squeeze(ga, ints([0])) if a.ndim == 1 else ga
    if ctx.needs_input_grad[1] and a.ndim > 2 and b.ndim == 2:
        # One [K, rows] @ [rows, N] product over the flattened leading dims, not a batched
        # product into [..., K, N] summed over the batch afterwards.
        rows_a, rows_g = op.Flatten(a, axis=a.ndim - 1), op.Flatten(g, axis=g.ndim - 1)
        gb = op.MatMul(op.Transpose(rows_a, perm=[1, 0]), rows_g)
    elif ctx.needs_input_grad[1]:
        gb = unbroadcast(op.MatMul(swap_last(a2), g2), b2)
        gb = op.Squeeze(gb, ints([1])) if b.ndim == 1 else gb
    return [ga, gb]


register(OpDef("MatMul", 13, _matmul, _matmul_infer, _matmul_vjp, saves="others"))


# ---------------------------------------------------------------- Gemm


def _gemm(
    a: np.ndarray,
    b: np.ndarray,
    c: np.ndarray | None = None,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    transA: int = 0,  # noqa: N803 - ONNX's attribute name
    transB: int = 0,  # noqa: N803
) -> np.ndarray:
    y = _matmul(a.T if transA else a, b.T if transB else b)  # float16 through float32
    if alpha != 1.0:
        y = y * alpha
    if c is not None:
        y = y + (c * beta if beta != 1.0 else c)
    return np.asarray(y).astype(a.dtype, copy=False)


def _gemm_infer(
    ctx: InferContext,
    a: TensorType,
    b: TensorType,
    c: TensorType | None = None,
    *,
    alpha: float = 1.0,
    beta: float = 1.0,
    transA: int = 0,  # noqa: N803
    transB: int = 0,  # noqa: N803
) -> TensorType:
    dtype = same_dtype((a, b, c))
    if a.shape is None or b.shape is None:
        return TensorType(dtype, None)
    if len(a.shape) != 2 or len(b.shape) != 2:
        raise ShapeError(f"Gemm: A and B must be 2-D, got {list(a.shape)} and {list(b.shape)}")
    (m, k1), (k2, n) = a.shape[:: -1 if transA else 1], b.shape[:: -1 if transB else 1]
    if isinstance(k1, int) and isinstance(k2, int) and k1 != k2:
        raise ShapeError(f"Gemm: contracted dims differ: A' is {[m, k1]}, B' is {[k2, n]}")
    if c is not None and c.shape is not None and broadcast_shapes(c.shape, (m, n)) != (m, n):
        raise ShapeError(f"Gemm: C {list(c.shape)} does not broadcast to {[m, n]}")
    return TensorType(dtype, (m, n))


def _gemm_vjp(
    ctx: VjpContext,
    g: Any,
    a: Any,
    b: Any,
    c: Any = None,
    *,
    alpha: float,
    beta: float,
    transA: int,  # noqa: N803
    transB: int,  # noqa: N803
) -> list[Any]:
    ga = gb = gc = None
    # Each gradient is itself one Gemm, its operands ordered and transposed to match.
    if ctx.needs_input_grad[0]:
        if transA:
            ga = op.Gemm(b, g, alpha=alpha, transA=transB, transB=1)
        else:
            ga = op.Gemm(g, b, alpha=alpha, transB=1 - transB)
    if ctx.needs_input_grad[1]:
        if transB:
            gb = op.Gemm(g, a, alpha=alpha, transA=1, transB=transA)
        else:
            gb = op.Gemm(a, g, alpha=alpha, transA=1 - transA)
    if c is not None and ctx.needs_input_grad[2]:
        gc = unbroadcast(g if beta == 1.0 else op.Mul(g, scalar(beta, g)), c)
    return [ga, gb, gc]


# Gemm-6 and older had a `broadcast` attribute for C; from 7 C always broadcasts.
register(
    OpDef("Gemm", 13, _gemm, _gemm_infer, _gemm_vjp, saves="others", legacy=Legacy(broadcast=True))
)


# ---------------------------------------------------------------- Einsum


def _terms(text: str) -> list[str]:
    """Tokens of one einsum term: single letters and "..."."""
    if text.count("...") > 1:
        raise ShapeError(f"Einsum: term {text!r} has more than one ellipsis")
    tokens = ["..." if ch == "." else ch for ch in text.replace("...", ".")]
    bad = [t for t in tokens if t != "..." and not t.isalpha()]
    if bad:
        raise ShapeError(f"Einsum: term {text!r} has invalid subscripts {bad}")
    return tokens


def parse_einsum(equation: str, ranks: list[int]) -> tuple[list[list[str]], list[str]]:
    """Letters naming each input's axes and the output's, with "..." spelled out.

    The implicit form (no "->") outputs the letters that occur once, in ASCII order, after
    the ellipsis. An ellipsis stands for the same number of axes in every input (ONNX's
    rule); it is replaced by that many fresh letters, so rules never see "...".

    Raises:
        ShapeError: a malformed equation, one whose terms do not fit the input ranks, or
            ellipses of different ranks.
    """
    lhs, arrow, rhs = equation.replace(" ", "").partition("->")
    ins = [_terms(t) for t in lhs.split(",")]
    if len(ins) != len(ranks):
        raise ShapeError(
            f"Einsum: equation {equation!r} has {len(ins)} terms, got {len(ranks)} inputs"
        )
    if arrow:
        out = _terms(rhs)
    else:
        letters = [t for term in ins for t in term if t != "..."]
        once = sorted(t for t in set(letters) if letters.count(t) == 1)
        out = (["..."] if any("..." in t for t in ins) else []) + once
    widths = {_ellipsis_rank(term, rank) for term, rank in zip(ins, ranks, strict=True)}
    widths.discard(-1)
    if len(widths) > 1:
        raise ShapeError(f"Einsum: {equation!r} has ellipses of different ranks {sorted(widths)}")
    used = {t for term in (*ins, out) for t in term}
    fresh = [ch for ch in string.ascii_letters if ch not in used][: max(widths, default=0)]
    if "..." in out and not any("..." in t for t in ins):
        raise ShapeError(f"Einsum: {equation!r} has an ellipsis in the output only")

    def spell(term: list[str]) -> list[str]:
        return [d for t in term for d in (fresh if t == "..." else [t])]

    return [spell(t) for t in ins], spell(out)


def _ellipsis_rank(term: list[str], rank: int) -> int:
    """Axes the term's ellipsis stands for; -1 when it has none."""
    n = rank - len([t for t in term if t != "..."])
    if n < 0 or (n > 0 and "..." not in term):
        raise ShapeError(f"Einsum: term {''.join(term)!r} does not fit an input of rank {rank}")
    return n if "..." in term else -1


def _spec(ins: list[list[str]], out: list[str]) -> str:
    return ",".join("".join(t) for t in ins) + "->" + "".join(out)


def _einsum(x: np.ndarray, *rest: np.ndarray, equation: str) -> np.ndarray:
    inputs = (x, *rest)
    ins, out = parse_einsum(equation, [i.ndim for i in inputs])
    # Spelled-out letters also cover what NumPy refuses: an ellipsis summed away ("i...->i").
    y = np.asarray(np.einsum(_spec(ins, out), *inputs))
    # NumPy may return a view (transpose, diagonal); an op's result owns its memory.
    return y.copy() if any(np.may_share_memory(y, i) for i in inputs) else y


def _einsum_infer(ctx: InferContext, *types: TensorType, equation: str) -> TensorType:
    dtype = same_dtype(types)
    if any(t.shape is None for t in types):
        return TensorType(dtype, None)
    shapes = [t.shape for t in types if t.shape is not None]
    ins, out = parse_einsum(equation, [len(s) for s in shapes])
    sizes: dict[str, Dim] = {}
    for term, shape in zip(ins, shapes, strict=True):
        for letter, dim in zip(term, shape, strict=True):
            sizes[letter] = broadcast_dim(sizes.get(letter, 1), dim)
    missing = [t for t in out if t not in sizes]
    if missing:
        raise ShapeError(f"Einsum: output subscripts {missing} of {equation!r} are in no input")
    return TensorType(dtype, tuple(sizes[t] for t in out))


def _einsum_vjp(ctx: VjpContext, g: Any, *xs: Any, equation: str) -> list[Any]:
    ins, out = parse_einsum(equation, [x.ndim for x in xs])
    return [
        _einsum_operand_grad(g, xs, ins, out, k) if ctx.needs_input_grad[k] else None
        for k in range(len(xs))
    ]


def _einsum_operand_grad(
    g: Any, xs: tuple[Any, ...], ins: list[list[str]], out: list[str], k: int
) -> Any:
    """Gradient of operand ``k``: an Einsum of ``g`` with the other operands.

    A letter of ``k`` found nowhere else (summed inside ``k`` alone) gets a ones vector, so
    the gradient is constant along it; a repeated letter (a diagonal) gets an identity
    matrix, so the gradient is zero off the diagonal. Both constants need a static size.
    """
    x = xs[k]
    terms = [out, *(ins[j] for j in range(len(xs)) if j != k)]
    operands = [g, *(xs[j] for j in range(len(xs)) if j != k)]
    available = {t for term in terms for t in term}
    used = {t for term in (*ins, out) for t in term}
    fresh = iter(ch for ch in string.ascii_letters if ch not in used)
    result: list[str] = []
    for letter, dim in zip(ins[k], x.shape, strict=True):
        if letter in result:  # a diagonal: the gradient lives on it only
            twin = next(fresh)
            terms.append([letter, twin])
            operands.append(np.eye(_static(dim, letter), dtype=x.dtype))
            result.append(twin)
            continue
        if letter not in available and ins[k].count(letter) == 1:
            terms.append([letter])
            operands.append(np.ones(_static(dim, letter), dtype=x.dtype))
        result.append(letter)
    return _fit(op.Einsum(*operands, equation=_spec(terms, result)), x)


def _static(dim: Dim, letter: str) -> int:
    if not isinstance(dim, int):
        raise UnsupportedOpError(
            f"Einsum vjp: axis {letter!r} is summed inside one operand or repeated in it, so "
            f"its gradient needs the axis size, which is symbolic ({dim!r}); not supported"
        )
    return dim


def _fit(grad: Any, x: Any) -> Any:
    """``grad`` brought to ``x``'s shape: axes where ``x`` had size 1 and broadcast summed."""
    pairs = list(zip(grad.shape, x.shape, strict=True))
    axes = [i for i, (gd, xd) in enumerate(pairs) if xd == 1 and gd != 1]
    if axes:
        grad = op.ReduceSum(grad, ints(axes), keepdims=1)
    if any(gd == 1 and xd != 1 for gd, xd in pairs):  # the others had size 1 there
        grad = op.Expand(grad, shape_of(x))
    return grad


register(OpDef("Einsum", 12, _einsum, _einsum_infer, _einsum_vjp, saves="others"))
