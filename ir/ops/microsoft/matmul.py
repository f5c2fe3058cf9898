"""``com.microsoft`` ``FusedMatMul``: ``alpha * op(A) @ op(B)``, MatMul with transposes folded in.

``op(X)`` first moves X's axis 0 behind its other batch axes when ``transBatchX`` is set
(``[d0, d1, .., dn-2, dn-1]`` becomes ``[d1, .., dn-2, d0, dn-1]``; onnxruntime requires
both inputs then to have one rank, at least 3), then swaps the last two axes when
``transX`` is set (a 1-D input is never transposed). The product is ONNX ``MatMul``'s, with
its broadcasting; the kernel, shape rule and vjp are MatMul's, around the transposes.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.errors import ShapeError
from ir.ops import linalg  # noqa: F401  (registers MatMul, whose rules serve here)
from ir.ops.microsoft.common import DOMAIN, floats, sub_ctx
from ir.ops.registry import InferContext, OpDef, VjpContext, get, op, register, scalar
from ir.types import TensorType

_MATMUL = get("MatMul")


def _perm(rank: int, trans: int, trans_batch: int) -> list[int]:
    """The axes permutation ``op(X)`` applies to an input of ``rank``."""
    perm = list(range(rank))
    if trans_batch:
        perm = [*range(1, rank - 1), 0, rank - 1]
    if trans and rank >= 2:
        perm[-2], perm[-1] = perm[-1], perm[-2]
    return perm


def _check_ranks(ra: int, rb: int, trans_batch: bool) -> None:
    if trans_batch and not ra == rb >= 3:
        raise ShapeError(
            f"FusedMatMul: transBatchA/transBatchB need A and B of one rank, at least 3; got "
            f"ranks {ra} and {rb}"
        )


def _fused_matmul(
    a: np.ndarray,
    b: np.ndarray,
    *,
    alpha: float = 1.0,
    transA: int = 0,  # noqa: N803 - onnxruntime's attribute names
    transB: int = 0,  # noqa: N803
    transBatchA: int = 0,  # noqa: N803
    transBatchB: int = 0,  # noqa: N803
) -> np.ndarray:
    _check_ranks(a.ndim, b.ndim, bool(transBatchA or transBatchB))
    a2 = a.transpose(_perm(a.ndim, transA, transBatchA))
    b2 = b.transpose(_perm(b.ndim, transB, transBatchB))
    y = np.matmul(a2, b2)
    return (y if alpha == 1.0 else y * y.dtype.type(alpha)).astype(a.dtype, copy=False)


def _fused_matmul_infer(
    ctx: InferContext,
    a: TensorType,
    b: TensorType,
    *,
    alpha: float = 1.0,
    transA: int = 0,  # noqa: N803
    transB: int = 0,  # noqa: N803
    transBatchA: int = 0,  # noqa: N803
    transBatchB: int = 0,  # noqa: N803
) -> TensorType:
    dtype = floats((a, b), "FusedMatMul A and B")
    if a.shape is None or b.shape is None:
        return TensorType(dtype, None)
    _check_ranks(len(a.shape), len(b.shape), bool(transBatchA or transBatchB))
    pa, pb = _perm(len(a.shape), transA, transBatchA), _perm(len(b.shape), transB, transBatchB)
    a2 = TensorType(dtype, tuple(a.shape[i] for i in pa))
    b2 = TensorType(dtype, tuple(b.shape[i] for i in pb))
    return _MATMUL.infer(ctx, a2, b2)  # type: ignore[return-value]


def _fused_matmul_vjp(
    ctx: VjpContext, g: Any, a: Any, b: Any, *, alpha: float, **trans: int
) -> list[Any]:
    pa = _perm(a.ndim, trans["transA"], trans["transBatchA"])
    pb = _perm(b.ndim, trans["transB"], trans["transBatchB"])
    a2, b2 = op.Transpose(a, perm=pa), op.Transpose(b, perm=pb)
    scaled = g if alpha == 1.0 else op.Mul(g, scalar(alpha, g))
    ga2, gb2 = _MATMUL.vjp(sub_ctx(ctx, ctx.needs_input_grad), scaled, a2, b2)  # type: ignore[misc]
    back_a, back_b = [int(i) for i in np.argsort(pa)], [int(i) for i in np.argsort(pb)]
    return [
        None if ga2 is None else op.Transpose(ga2, perm=back_a),
        None if gb2 is None else op.Transpose(gb2, perm=back_b),
    ]


register(
    OpDef(
        "FusedMatMul",
        1,
        _fused_matmul,
        _fused_matmul_infer,
        _fused_matmul_vjp,
        domain=DOMAIN,
        saves="others",
    )
)
