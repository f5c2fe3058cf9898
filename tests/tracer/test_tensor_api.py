"""The PyTorch-named tensor API against PyTorch itself, plus NumPy-reference checks.

Each torch case is one function ``fn(lib, *tensors)`` run twice, with ``lib`` = ``tracer``
and with ``lib`` = ``torch``, on the same inputs: values, dtypes and shapes of every output
must agree, and so must the gradients of a random weighting of the floating outputs.
The NumPy-reference tests at the end run without torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

import ir
import tracer
from ir.errors import DTypeError

F32, F64, I64, I32 = np.float32, np.float64, np.int64, np.int32
Maker = Callable[[np.random.Generator], np.ndarray]


def f(*shape: int, dtype: Any = F32, lo: float | None = None, hi: float | None = None) -> Maker:
    """Normal floats, or uniform in [lo, hi) when given."""
    if lo is None:
        return lambda r: r.standard_normal(shape).astype(dtype)
    return lambda r: r.uniform(lo, hi, shape).astype(dtype)


def pos(*shape: int, dtype: Any = F32) -> Maker:
    return f(*shape, dtype=dtype, lo=0.5, hi=2.0)


def i(*shape: int, lo: int = -5, hi: int = 6, dtype: Any = I64, nonzero: bool = False) -> Maker:
    def make(r: np.random.Generator) -> np.ndarray:
        v = r.integers(lo, hi, shape).astype(dtype)
        return np.where(v == 0, 1, v).astype(dtype) if nonzero else v

    return make


def b(*shape: int) -> Maker:
    return lambda r: r.random(shape) < 0.5


def const(value: Any) -> Maker:
    return lambda r: np.asarray(value)


@dataclass
class Case:
    name: str
    fn: Callable[..., Any]
    makers: tuple[Maker, ...]
    grad: bool = True
    rtol: float = 1e-5
    atol: float = 1e-6


def C(name: str, fn: Callable[..., Any], *makers: Maker, **kw: Any) -> Any:
    return pytest.param(Case(name, fn, makers, **kw), id=name)


NAN_INF = const(np.array([[1.0, np.nan, -np.inf], [np.inf, -2.0, 0.0]], dtype=F32))

# fmt: off
MATH = [
    # operators and promotion
    C("add", lambda m, x, y: x + y, f(3, 4), f(4)),
    C("add-scalar", lambda m, x: 1.5 + x + 2, f(3, 4)),
    C("sub", lambda m, x, y: x - y, f(3, 1), f(1, 4)),
    C("rsub", lambda m, x: 2 - x, f(3, 4)),
    C("mul", lambda m, x, y: x * y, f(2, 3, 4), f(3, 1)),
    C("div", lambda m, x, y: x / y, f(3, 4), pos(3, 4)),
    C("rdiv", lambda m, x: 1 / x, pos(5)),
    C("div-int", lambda m, x, y: x / y, i(6), i(6, nonzero=True)),
    C("int-plus-float", lambda m, x: x + 1.5, i(4)),
    C("int-times-float-tensor", lambda m, x, y: x * y, i(4), f(4)),
    C("f32-plus-f64-0d", lambda m, x, y: x + y, f(4), f(dtype=F64)),
    C("f64-plus-f32", lambda m, x, y: x + y, f(4, dtype=F64), f(4)),
    C("int32-plus-int64-0d", lambda m, x, y: x + y, i(4, dtype=I32), i()),
    C("bool-plus-int", lambda m, x: x + 3, b(4)),
    C("floordiv", lambda m, x, y: x // y, f(3, 4), pos(3, 4), grad=False),
    C("floordiv-int", lambda m, x, y: x // y, i(20), i(20, nonzero=True)),
    C("rfloordiv-int", lambda m, x: 7 // x, i(20, nonzero=True)),
    C("mod", lambda m, x, y: x % y, f(3, 4), f(3, 4)),
    C("mod-scalar", lambda m, x: x % 1.5, f(3, 4)),
    # torch has no grad for it
    C("rmod", lambda m, x: 5.0 % x, pos(6), grad=False),
    C("mod-int", lambda m, x, y: x % y, i(20), i(20, nonzero=True)),
    C("pow-2", lambda m, x: x ** 2, f(3, 4)),
    C("pow-tensor", lambda m, x, y: x ** y, pos(3, 4), f(3, 4)),
    C("pow-half", lambda m, x: x ** 0.5, pos(5)),
    C("rpow", lambda m, x: 2 ** x, f(5)),
    C("pow-int", lambda m, x: x ** 2, i(5)),
    C("pow-int-float", lambda m, x: x ** 0.5, i(5, lo=1)),
    C("matmul", lambda m, x, y: x @ y, f(3, 4), f(4, 5)),
    C("matmul-batch", lambda m, x, y: x @ y, f(2, 3, 4), f(4, 2)),
    C("matmul-vec", lambda m, x, y: x @ y, f(4), f(2, 4, 3)),
    C("neg", lambda m, x: -x, f(3, 4)),
    C("abs-builtin", lambda m, x: abs(x), f(3, 4)),
    C("pos", lambda m, x: +x, f(3)),
    # comparisons and logic
    C("eq", lambda m, x, y: x == y, i(10, lo=0, hi=3), i(10, lo=0, hi=3)),
    C("ne", lambda m, x: x != 1, i(10, lo=0, hi=3)),
    C("lt", lambda m, x, y: x < y, f(3, 4), f(4)),
    C("le", lambda m, x: x <= 0, f(3, 4)),
    C("gt", lambda m, x, y: x > y, f(3, 4), f(3, 4)),
    C("ge-mixed", lambda m, x, y: x >= y, i(6), f(6)),
    C("and", lambda m, x, y: x & y, b(8), b(8)),
    C("or", lambda m, x, y: x | y, b(8), b(8)),
    C("xor", lambda m, x, y: x ^ y, b(8), b(8)),
    C("invert", lambda m, x: ~x, b(8)),
    C("and-scalar", lambda m, x: x & True, b(8)),
    C("eq-method", lambda m, x, y: x.eq(y), f(4), f(4)),
    C("ne-method", lambda m, x: x.ne(0.5), f(4)),
    C("lt-le-gt-ge", lambda m, x: (x.lt(0), x.le(0.1), x.gt(0), x.ge(-0.1)), f(6)),
    C("logical", lambda m, x, y: (x.logical_not(), x.logical_and(y), x.logical_or(y),
      x.logical_xor(y)), i(8, lo=0, hi=2), f(8)),
    C("isnan-isinf", lambda m, x: (x.isnan(), x.isinf(), x.isfinite()), NAN_INF),
    C("isnan-int", lambda m, x: (x.isnan(), x.isinf()), i(4)),
    # named arithmetic
    C("add-alpha", lambda m, x, y: x.add(y, alpha=2), f(3), f(3)),
    C("sub-alpha", lambda m, x, y: x.sub(y, alpha=0.5), f(3), f(3)),
    C("mul-method", lambda m, x, y: x.mul(y), f(3), f(3)),
    C("div-method", lambda m, x: x.div(3), i(5)),
    C("div-trunc", lambda m, x, y: x.div(y, rounding_mode="trunc"), f(8), pos(8), grad=False),
    C("div-floor", lambda m, x, y: x.div(y, rounding_mode="floor"), f(8), pos(8), grad=False),
    C("div-trunc-int", lambda m, x, y: x.div(y, rounding_mode="trunc"), i(20), i(20, nonzero=True)),
    C("div-floor-int", lambda m, x, y: x.div(y, rounding_mode="floor"), i(20), i(20, nonzero=True)),
    C("true-divide", lambda m, x, y: x.true_divide(y), i(5), i(5, nonzero=True)),
    C("floor-divide", lambda m, x: x.floor_divide(3), i(9)),
    C("remainder", lambda m, x, y: x.remainder(y), f(6), pos(6)),
    C("fmod", lambda m, x, y: x.fmod(y), f(6), f(6, lo=0.5, hi=2.0)),
    C("fmod-int", lambda m, x, y: x.fmod(y), i(20), i(20, nonzero=True)),
    C("pow-method", lambda m, x: x.pow(3), f(5)),
    C("maximum", lambda m, x, y: x.maximum(y), f(3, 4), f(4)),
    C("minimum", lambda m, x, y: x.minimum(y), f(3, 4), f(3, 4)),
    C("maximum-mixed", lambda m, x, y: m.maximum(x, y), i(5), f(5)),
    C("matmul-method", lambda m, x, y: x.matmul(y), f(3, 4), f(4)),
    C("dot", lambda m, x, y: x.dot(y), f(5), f(5)),
    # unary math
    C("unary", lambda m, x: (x.neg(), x.abs(), x.sign(), x.exp(), x.sin(), x.cos(), x.tanh(),
      x.sigmoid(), x.erf(), x.relu()), f(3, 4)),
    C("unary-positive", lambda m, x: (x.log(), x.sqrt(), x.rsqrt(), x.reciprocal()), pos(3, 4)),
    C("unary-f64", lambda m, x: (x.exp(), x.tanh(), x.sigmoid(), x.erf()), f(5, dtype=F64)),
    C("unary-int-to-float", lambda m, x: (x.exp(), x.sqrt(), x.log(), x.sin(), x.tanh(),
      x.sigmoid(), x.reciprocal(), x.rsqrt()), i(5, lo=1)),
    C("unary-int-keeps", lambda m, x: (x.abs(), x.neg(), x.sign(), x.floor(), x.ceil(), x.round(),
      x.trunc()), i(7)),
    C("rounding", lambda m, x: (x.floor(), x.ceil(), x.round(), x.trunc()), f(10, lo=-5, hi=5),
      grad=False),
    C("round-decimals", lambda m, x: x.round(decimals=2), f(10), grad=False),
    C("clamp", lambda m, x: x.clamp(-0.5, 0.5), f(4, 5)),
    C("clamp-min", lambda m, x: x.clamp(min=0.1), f(4, 5)),
    C("clamp-max", lambda m, x: x.clamp(max=0.1), f(4, 5)),
    C("clamp-tensor", lambda m, x, lo, hi: x.clamp(lo, hi), f(4, 5), f(5, lo=-1, hi=-0.2), f(4, 1,
      lo=0.2, hi=1)),
    C("clamp-min-tensor", lambda m, x, lo: x.clamp(min=lo), f(4, 5), f(5)),
    C("clip", lambda m, x: x.clip(-1, 1), f(6)),
    C("clamp-int-float", lambda m, x: x.clamp(min=0.5), i(6)),
    C("clamp-int", lambda m, x: x.clamp(-2, 2), i(6)),
    C("masked-fill", lambda m, x, mask: x.masked_fill(mask, -1000000000.0), f(3, 4), b(3, 4)),
    C("masked-fill-inf", lambda m, x, mask: x.masked_fill(mask, float("-inf")).softmax(-1), f(3, 4),
      const(np.array([False, True, False, True]))),
    C("masked-fill-tensor", lambda m, x, mask, v: x.masked_fill(mask, v), f(3, 4), b(4), f()),
    C("masked-fill-int", lambda m, x, mask: x.masked_fill(mask, 7), i(3, 4), b(3, 4)),
]
# fmt: on

# fmt: off
REDUCE = [
    C("sum", lambda m, x: (x.sum(), x.sum(1), x.sum(-1, keepdim=True), x.sum((0, 2))), f(2, 3, 4)),
    C("sum-dim-empty", lambda m, x: x.sum(dim=()), f(2, 3)),
    C("sum-int", lambda m, x: (x.sum(), x.sum(0)), i(3, 4, dtype=I32)),
    C("sum-bool", lambda m, x: x.sum(1), b(3, 4)),
    C("sum-dtype", lambda m, x: x.sum(dtype=m.float64), f(3, 4)),
    C("prod", lambda m, x: (x.prod(), x.prod(1), x.prod(0, keepdim=True)), f(3, 4)),
    C("prod-int", lambda m, x: x.prod(1), i(3, 4, dtype=I32)),
    C("mean", lambda m, x: (x.mean(), x.mean(1), x.mean((0, 2), keepdim=True)), f(2, 3, 4)),
    C("mean-dtype", lambda m, x: x.mean(dtype=m.float32), i(3, 4)),
    C("var", lambda m, x: (x.var(), x.var(1), x.var(0, keepdim=True), x.var(1, unbiased=False),
      x.var((0, 1), correction=0), x.var(False)), f(3, 4, 2), rtol=0.0001),
    C("std", lambda m, x: (x.std(), x.std(1), x.std(0, keepdim=True, correction=2)), f(4, 5),
      rtol=0.0001),
    C("amax-amin", lambda m, x: (x.amax(), x.amax(1), x.amin((0, 2)), x.amin(-1, keepdim=True)),
      f(2, 3, 4)),
    C("max-all", lambda m, x: (x.max(), x.min()), f(3, 4)),
    C("max-dim", lambda m, x: (*x.max(1), *x.min(0, keepdim=True), *x.max(dim=-1)), f(3, 4)),
    C("max-int", lambda m, x: (*x.max(1), x.max()), i(3, 4, lo=-100, hi=100)),
    C("max-other", lambda m, x, y: (x.max(y), x.min(y)), f(3, 4), f(4)),
    C("argmax", lambda m, x: (x.argmax(), x.argmax(1), x.argmin(0, keepdim=True), x.argmin(),
      x.argmax(keepdim=True)), f(3, 4)),
    C("all-any", lambda m, x: (x.all(), x.any(), x.all(1), x.any(0, keepdim=True)), b(3, 4)),
    C("all-any-float", lambda m, x: (x.all(), x.any(1)), i(3, 4, lo=0, hi=3)),
    C("logsumexp", lambda m, x: (x.logsumexp(1), x.logsumexp((0, 1), keepdim=True)), f(3, 4, lo=-50,
      hi=50)),
    C("logsumexp-int", lambda m, x: x.logsumexp(0), i(4)),
    C("norm", lambda m, x: (x.norm(), x.norm(1), x.norm(float("inf")), x.norm(3, dim=1),
      x.norm(dim=0, keepdim=True), x.norm(p=2, dim=(0, 1))), f(3, 4), rtol=0.0001),
    C("cumsum", lambda m, x: (x.cumsum(0), x.cumsum(-1)), f(3, 4)),
    C("cumsum-int", lambda m, x: (x.cumsum(1), x.cumsum(0, dtype=m.float32)), i(3, 4, dtype=I32)),
    C("cumsum-bool", lambda m, x: x.cumsum(1), b(3, 4)),
    C("softmax", lambda m, x: (x.softmax(-1), x.softmax(0), x.softmax(1, dtype=m.float64)), f(3, 4,
      5)),
    C("log-softmax", lambda m, x: (x.log_softmax(-1), x.log_softmax(1)), f(3, 4, 5)),
    C("softmax-int-dtype", lambda m, x: x.softmax(0, dtype=m.float32), i(5)),
    C("topk", lambda m, x: (*x.topk(2), *x.topk(3, dim=0, largest=False)), f(4, 5)),
    C("sort", lambda m, x: (*x.sort(), *x.sort(0, descending=True), x.argsort(1)), f(4, 5)),
    C("sort-ties", lambda m, x: (*x.sort(stable=True), *x.sort(descending=True, stable=True)), i(12,
      lo=0, hi=3), grad=False),
]
# fmt: on

# fmt: off
SHAPE = [
    C("reshape", lambda m, x: (x.reshape(-1), x.reshape(4, 6), x.reshape((2, -1)), x.view(3, 8),
      x.view(-1, 2, 2)), f(2, 3, 4)),
    C("reshape-empty", lambda m, x: x.reshape(0, 4), f(0, 2, 2)),
    C("reshape-as", lambda m, x, y: (x.reshape_as(y), x.view_as(y)), f(2, 6), f(3, 4)),
    C("flatten", lambda m, x: (x.flatten(), x.flatten(1), x.flatten(0, 1), x.flatten(-2)), f(2, 3,
      4)),
    C("flatten-0d", lambda m, x: x.flatten(), f()),
    C("unflatten", lambda m, x: x.unflatten(1, (2, -1)), f(3, 8)),
    C("transpose", lambda m, x: (x.transpose(0, 1), x.transpose(-1, 0), x.swapaxes(1, 2)), f(2, 3,
      4)),
    C("t", lambda m, x, v: (x.t(), v.t(), x.T, x.mT), f(3, 4), f(5)),
    C("T-3d", lambda m, x: x.mT, f(2, 3, 4)),
    C("permute", lambda m, x: (x.permute(2, 0, 1), x.permute((1, 2, 0)), x.permute(-1, -2, -3)),
      f(2, 3, 4)),
    C("unsqueeze", lambda m, x: (x.unsqueeze(0), x.unsqueeze(-1), x.unsqueeze(1)), f(3, 4)),
    C("squeeze", lambda m, x: (x.squeeze(), x.squeeze(0), x.squeeze(1), x.squeeze(-1), x.squeeze((0,
      1, 3))), f(1, 3, 1, 1)),
    C("expand", lambda m, x: (x.expand(2, 3, 4), x.expand(-1, 4), x.expand((5, 3, -1))), f(3, 1)),
    C("expand-as", lambda m, x, y: x.expand_as(y), f(4), f(3, 4), grad=True),
    C("repeat", lambda m, x: (x.repeat(2, 3), x.repeat(2, 1, 2)), f(2, 3)),
    C("split", lambda m, x: (*x.split(2), *x.split(3, dim=1), *x.split([1, 4], 1)), f(5, 5)),
    C("chunk", lambda m, x: (*x.chunk(2), *x.chunk(3, 1), *x.chunk(4, 1)), f(5, 6)),
    C("unbind", lambda m, x: (*x.unbind(), *x.unbind(-1)), f(3, 2)),
    C("narrow", lambda m, x: (x.narrow(1, 1, 2), x.narrow(0, -2, 1)), f(3, 4)),
    C("gather", lambda m, x, idx: x.gather(1, idx), f(3, 4), i(3, 2, lo=0, hi=4)),
    C("gather-dim0", lambda m, x, idx: x.gather(0, idx), f(3, 4), i(2, 4, lo=0, hi=3)),
    C("index-select", lambda m, x, idx: (x.index_select(0, idx), x.index_select(-1, idx)), f(4, 4),
      const(np.array([3, 0, 0, 2]))),
    C("index-select-0d", lambda m, x, idx: x.index_select(1, idx), f(3, 4), const(np.array(2))),
    C("tril-triu", lambda m, x: (x.tril(), x.triu(), x.tril(-1), x.triu(1), x.tril(2)), f(2, 4, 5)),
    C("flip", lambda m, x: (x.flip(0), x.flip((0, 2)), x.flip(-1)), f(2, 3, 4)),
    C("contiguous-clone", lambda m, x: (x.contiguous(), x.clone()), f(3, 4)),
    C("conversions", lambda m, x: (x.float(), x.double(), x.long(), x.int(), x.bool(), x.half(),
      x.to(m.float64), x.to(dtype=m.int64)), f(6, lo=-3, hi=3), grad=True, rtol=0.001),
    C("conversions-int", lambda m, x: (x.float(), x.long(), x.bool(), x.to("cpu")), i(6)),
    C("type-as", lambda m, x, y: (x.type_as(y), x.to(y)), i(4), f(2, dtype=F64)),
]
# fmt: on

# fmt: off
FUNCTIONS = [
    C("cat", lambda m, x, y: (m.cat([x, y]), m.cat((x, x), dim=1), m.cat([x, y], -2)), f(2, 3), f(4,
      3)),
    C("cat-promote", lambda m, x, y: m.cat([x, y], 0), i(2, 3), f(1, 3)),
    C("cat-skip-empty", lambda m, x, y: m.cat([x, y]), f(2, 3), const(np.zeros(0, F32))),
    C("stack", lambda m, x, y: (m.stack([x, y]), m.stack([x, y], 1), m.stack((x, y), dim=-1)), f(2,
      3), f(2, 3)),
    C("where", lambda m, c, x, y: m.where(c, x, y), b(3, 4), f(3, 4), f(4)),
    C("where-scalars", lambda m, c, x: (m.where(c, x, 0.0), m.where(c, 1.0, x), m.where(c, 2, 3),
      m.where(c, 1.0, 0)), b(5), f(5)),
    C("where-int-float", lambda m, c, x: m.where(c, x, 0.5), b(5), i(5)),
    C("where-cond-only", lambda m, c: m.where(c), b(3, 4)),
    C("einsum", lambda m, x, y: (m.einsum("ij,jk->ik", x, y), m.einsum("ij->ji", x),
      m.einsum("ij,jk", [x, y]), m.einsum("ij -> ", x)), f(3, 4), f(4, 5)),
    C("einsum-batch", lambda m, x, y: m.einsum("bhqd,bhkd->bhqk", x, y), f(2, 2, 3, 4), f(2, 2, 5,
      4)),
    C("einsum-ellipsis", lambda m, x, y: m.einsum("...ij,...jk->...ik", x, y), f(2, 3, 4), f(2, 4,
      2)),
    C("maximum-minimum", lambda m, x, y: (m.maximum(x, y), m.minimum(x, y)), f(3, 4), f(3, 4)),
    C("pow-fn", lambda m, x: (m.pow(x, 2), m.pow(2.0, x)), f(4)),
    C("tril-triu-fn", lambda m, x: (m.tril(x), m.triu(x, 1)), f(4, 4)),
    C("math-fns", lambda m, x: (m.rsqrt(x), m.erf(x), m.exp(x), m.log(x), m.sqrt(x), m.sigmoid(x),
      m.tanh(x), m.abs(x), m.clamp(x, 0.7, 1.2)), pos(3, 4)),
    C("reduce-fns", lambda m, x: (m.sum(x), m.sum(x, 1), m.mean(x, 0), *m.max(x, 1), m.max(x),
      m.amax(x, 1), m.logsumexp(x, 1), m.softmax(x, 1), m.log_softmax(x, -1), m.cumsum(x, 0),
      m.argmax(x, 1), m.var(x, 1), m.std(x), m.norm(x)), f(3, 4), rtol=0.0001),
    C("max-fn-binary", lambda m, x, y: (m.max(x, y), m.min(x, y)), f(3), f(3)),
    C("shape-fns", lambda m, x: (m.reshape(x, (4, 3)), m.flatten(x), m.transpose(x, 0, 1),
      m.permute(x, (1, 0)), m.unsqueeze(x, 0), m.squeeze(x), *m.split(x, 2), *m.chunk(x, 2, 1),
      *m.unbind(x, 1), m.gather(x, 0, m.zeros(1, 4, dtype=m.int64)), m.index_select(x, 1,
      m.arange(2)), m.clone(x), m.flip(x, [0]), m.narrow(x, 0, 1, 2), m.t(x)), f(3, 4)),
    C("masked-fill-fn", lambda m, x, mask: m.masked_fill(x, mask, 0.0), f(4), b(4)),
    C("topk-sort-fns", lambda m, x: (*m.topk(x, 2), *m.sort(x), m.argsort(x)), f(6)),
    C("like", lambda m, x: (x + m.ones_like(x), x * m.zeros_like(x), m.full_like(x, 7),
      m.ones_like(x, dtype=m.int64), m.full_like(x, 2.5, dtype=m.float64)), f(2, 3)),
    C("broadcast-to", lambda m, x: m.broadcast_to(x, (2, 3, 4)), f(3, 1)),
    C("logical-fns", lambda m, x, y: (m.logical_and(x, y), m.logical_not(x), m.eq(x, y),
      m.isnan(x)), b(5), b(5)),
    C("arith-fns", lambda m, x, y: (m.add(x, y), m.sub(x, y, alpha=2), m.mul(x, y), m.div(x, y),
      m.remainder(x, y), m.fmod(x, y), m.neg(x), m.sign(x), m.reciprocal(y), m.matmul(x, y),
      m.dot(x, y)), f(4), pos(4)),
]
# fmt: on

# fmt: off
EDGES = [
    C("reduce-0d", lambda m, x: (x.sum(0), x.mean(-1), x.amax(0), *x.max(0), x.argmax(0),
      x.cumsum(0), x.flatten(), x.squeeze(0), x.unsqueeze(0)), f()),
    C("reduce-empty", lambda m, x: (x.sum(), x.sum(0), x.sum(1), x.amax(1), *x.split(2)), f(0, 3)),
    C("norm-p", lambda m, x: (x.norm(float("-inf")), x.norm(0.5)), f(5), rtol=0.0001),
    # a count: no gradient here
    C("norm-0", lambda m, x: x.norm(0), f(5), grad=False),
    C("nan-propagation", lambda m, x, y: (m.maximum(x, y), m.minimum(x, y), x.clamp(0, 1), x.max(),
      x.amax(), x.argmax(), *x.max(0)), const(np.array([1.0, np.nan, 3.0], F32)),
      const(np.array([0.0, 2.0, np.nan], F32)), grad=False),
    C("argmax-ties", lambda m, x: (x.argmax(), x.argmax(1), *x.max(1), *x.min(0)),
      const(np.array([[1, 3, 3], [2, 2, 1]]))),
    C("round-half-even", lambda m, x: (x.round(), x.round(decimals=1)), const(np.array([0.5, 1.5,
      2.5, -0.5, -2.5, 0.25], F32)), grad=False),
    C("softmax-neg-inf", lambda m, x: (x.softmax(-1), x.log_softmax(-1)[:, 1:]),
      const(np.array([[-np.inf, 0.0, 1.0], [-np.inf, 2.0, -1.0]], F32))),
    C("float16", lambda m, x: (x + 1, x * x, x.sum(), x.exp(), x.float()), f(5, dtype=np.float16),
      rtol=0.002, atol=0.001),
    C("where-scalar-ints", lambda m, c: (m.where(c, 1, 0), m.where(c, True, False)), b(3, 4)),
    C("gather-smaller-index", lambda m, x, idx: x.gather(1, idx), f(3, 4), const(np.array([[0], [3],
      [1]]))),
    C("masked-fill-0d-mask", lambda m, x, mk: x.masked_fill(mk, 0.0), f(3, 4), const(True)),
    C("einsum-trace-outer", lambda m, x, y: (m.einsum("ii", x), m.einsum("i,j->ij", y, y)), f(3, 3),
      f(4)),
    C("conversions-truncate", lambda m, x: (x.long(), x.int(), x.bool()), const(np.array([-1.7, 1.7,
      0.0, -0.2], F32)), grad=False),
    C("div-rounding-int-by-float", lambda m, x: (x.div(2.5, rounding_mode="floor"), x.div(2.5,
      rounding_mode="trunc")), i(10, lo=-5, hi=5)),
    C("nan-compare", lambda m, x: (x != x, x == x, x < 1), const(np.array([np.nan, 1.0], F32)),
      grad=False),
]
# fmt: on

# fmt: off
CREATION = [
    C("zeros-ones", lambda m: (m.zeros(2, 3), m.ones((2, 3)), m.zeros([4], dtype=m.int64), m.ones(2,
      dtype=m.bool)), grad=False),
    C("full", lambda m: (m.full((2, 2), 3), m.full((2, ), 1.5), m.full((3, ), True), m.full((2, ),
      2, dtype=m.float64)), grad=False),
    C("arange", lambda m: (m.arange(5), m.arange(1, 7, 2), m.arange(0, 1, 0.1), m.arange(5,
      dtype=m.float32), m.arange(2.5), m.arange(10, 0, -3), m.arange(-1.0, 1.0, 0.25)), grad=False),
    C("linspace", lambda m: (m.linspace(0, 1, 5), m.linspace(-2, 3, 11), m.linspace(1, 1, 1)),
      grad=False),
    C("eye", lambda m: (m.eye(3), m.eye(2, 4), m.eye(3, dtype=m.int64)), grad=False),
]
# fmt: on


def _np_dtype(torch: Any, t: Any) -> np.dtype:
    return torch.empty(0, dtype=t.dtype).numpy().dtype


def _flat(out: Any) -> list[Any]:
    if isinstance(out, tuple | list):
        return [y for x in out for y in _flat(x)]
    return [out]


def _run(lib: Any, case: Case, arrays: list[np.ndarray], torch: Any) -> tuple[list, list]:
    is_torch = lib is torch
    inputs = []
    for a in arrays:
        t = lib.tensor(a)
        if case.grad and a.dtype.kind == "f":
            t.requires_grad_(True)
        inputs.append(t)
    outs = _flat(case.fn(lib, *inputs))
    rng = np.random.default_rng(1)
    loss = None
    for o in outs:
        if not (is_torch and isinstance(o, torch.Size)) and o.requires_grad:
            w = lib.tensor(rng.standard_normal(tuple(o.shape)).astype(_dtype_of(o, torch)))
            term = (o * w).sum()
            loss = term if loss is None else loss + term.to(loss.dtype)
    if loss is not None:
        loss.backward()
    grads = [getattr(t, "grad", None) for t in inputs]
    return outs, grads


def _dtype_of(t: Any, torch: Any) -> np.dtype:
    return _np_dtype(torch, t) if isinstance(t, torch.Tensor) else t.dtype


def _numpy(t: Any, torch: Any) -> np.ndarray:
    if isinstance(t, torch.Size):
        return np.asarray(tuple(t))
    if isinstance(t, tuple):  # tracer shapes are tuples of ints
        return np.asarray(t)
    return t.detach().numpy()


def _check(case: Case) -> None:
    torch = pytest.importorskip("torch")
    arrays = [mk(np.random.default_rng(7 + k)) for k, mk in enumerate(case.makers)]
    ours, our_grads = _run(tracer, case, arrays, torch)
    theirs, their_grads = _run(torch, case, arrays, torch)
    assert len(ours) == len(theirs), f"{len(ours)} outputs, torch gives {len(theirs)}"
    for k, (a, e) in enumerate(zip(ours, theirs, strict=True)):
        got, want = _numpy(a, torch), _numpy(e, torch)
        assert got.dtype == want.dtype, f"output {k}: dtype {got.dtype}, torch {want.dtype}"
        assert got.shape == want.shape, f"output {k}: shape {got.shape}, torch {want.shape}"
        rtol = max(case.rtol, 1e-3) if got.dtype == np.float16 else case.rtol
        np.testing.assert_allclose(got, want, rtol=rtol, atol=case.atol, err_msg=f"output {k}")
        if not isinstance(e, torch.Size):
            assert a.requires_grad == e.requires_grad, f"output {k}: requires_grad differs"
    for k, (g, e) in enumerate(zip(our_grads, their_grads, strict=True)):
        if e is None or e.numel() == 0:
            assert g is None or not np.any(g.numpy()), f"grad {k}: torch gives None"
            continue
        assert g is not None, f"grad {k}: None, torch gives one"
        assert g.dtype == _np_dtype(torch, e), f"grad {k}: dtype {g.dtype}"
        np.testing.assert_allclose(
            g.numpy(), e.numpy(), rtol=max(case.rtol, 1e-4), atol=1e-5, err_msg=f"grad {k}"
        )


@pytest.mark.torch
@pytest.mark.parametrize("case", MATH)
def test_math_matches_torch(case: Case) -> None:
    _check(case)


@pytest.mark.torch
@pytest.mark.parametrize("case", REDUCE)
def test_reduce_matches_torch(case: Case) -> None:
    _check(case)


@pytest.mark.torch
@pytest.mark.parametrize("case", SHAPE)
def test_shape_matches_torch(case: Case) -> None:
    _check(case)


@pytest.mark.torch
@pytest.mark.parametrize("case", FUNCTIONS)
def test_functions_match_torch(case: Case) -> None:
    _check(case)


@pytest.mark.torch
@pytest.mark.parametrize("case", EDGES)
def test_edge_cases_match_torch(case: Case) -> None:
    _check(case)


@pytest.mark.torch
@pytest.mark.parametrize("case", CREATION)
def test_creation_matches_torch(case: Case) -> None:
    _check(case)


SECOND_ORDER = [
    ("var", lambda x: x.var(1).sum()),
    ("std", lambda x: x.std(0).sum()),
    ("norm", lambda x: x.norm()),
    ("logsumexp", lambda x: x.logsumexp(1).sum()),
    ("softmax", lambda x: (x.softmax(1) * x).sum()),
    ("log-softmax", lambda x: (x.log_softmax(0) ** 2).sum()),
    ("remainder", lambda x: ((x * 3) % 1.5 * x).sum()),
    ("pow-sigmoid-erf", lambda x: (x.sigmoid() ** 3 + x.erf() * x.sin()).sum()),
    ("max-dim", lambda x: (x.max(1).values ** 2).sum()),
    ("clamp-where", lambda x: (x.clamp(-0.5, 0.5) * x + x.masked_fill(x > 0, 0.0) ** 2).sum()),
]


@pytest.mark.torch
@pytest.mark.parametrize(("name", "fn"), SECOND_ORDER, ids=[c[0] for c in SECOND_ORDER])
def test_second_order_gradients_match_torch(name: str, fn: Callable[[Any], Any]) -> None:
    torch = pytest.importorskip("torch")
    x_np = np.random.default_rng(3).standard_normal((3, 4))
    results = []
    for m, grad in ((tracer, tracer.autograd.grad), (torch, torch.autograd.grad)):
        x = m.tensor(x_np, requires_grad=True)
        (g,) = grad(fn(x), x, create_graph=True)
        (gg,) = grad((g * g).sum(), x)
        results.append((g.detach().numpy(), gg.detach().numpy()))
    for ours, theirs in zip(results[0], results[1], strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-7, atol=1e-10)


ERRORS = [
    ("mean-int", lambda m: m.tensor([1, 2]).mean()),
    ("var-int", lambda m: m.tensor([1, 2]).var()),
    ("softmax-int", lambda m: m.tensor([1, 2]).softmax(0)),
    ("norm-int", lambda m: m.tensor([1, 2]).norm()),
    ("int-negative-pow", lambda m: m.tensor([1, 2]) ** -1),
    ("expand-bad", lambda m: m.zeros(3, 2).expand(3, 4)),
    ("expand-fewer", lambda m: m.zeros(3, 2).expand(2)),
    ("repeat-fewer", lambda m: m.zeros(3, 2).repeat(2)),
    ("cat-empty", lambda m: m.cat([])),
    ("cat-0d", lambda m: m.cat([m.tensor(1.0), m.tensor(2.0)])),
    ("stack-shapes", lambda m: m.stack([m.zeros(2), m.zeros(3)])),
    ("where-non-bool", lambda m: m.where(m.tensor([1, 0]), 1.0, 0.0)),
    ("masked-fill-non-bool", lambda m: m.zeros(2).masked_fill(m.tensor([1, 0]), 1.0)),
    ("split-bad-sections", lambda m: m.zeros(5).split([2, 2])),
    ("flatten-bad", lambda m: m.zeros(2, 3).flatten(1, 0)),
    ("permute-bad", lambda m: m.zeros(2, 3).permute(0, 0)),
    ("unsqueeze-range", lambda m: m.zeros(2, 3).unsqueeze(3)),
    ("transpose-range", lambda m: m.zeros(2, 3).transpose(0, 2)),
    ("dot-2d", lambda m: m.zeros(2, 3).dot(m.zeros(2, 3))),
    ("t-3d", lambda m: m.zeros(2, 3, 4).t()),
    ("mT-1d", lambda m: m.zeros(2).mT),
    ("clamp-none", lambda m: m.zeros(2).clamp()),
    ("arange-bad-step", lambda m: m.arange(0, 5, -1)),
    ("div-bad-mode", lambda m: m.zeros(2).div(2, rounding_mode="round")),
    ("to-cuda", lambda m: m.zeros(2).to("cuda:0")),
]


@pytest.mark.torch
@pytest.mark.parametrize(("name", "fn"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_match_torch(name: str, fn: Callable[[Any], Any]) -> None:
    torch = pytest.importorskip("torch")
    if name != "to-cuda" or not torch.cuda.is_available():
        with pytest.raises(Exception):  # noqa: B017 - torch's error types vary by op
            fn(torch)
    with pytest.raises((RuntimeError, TypeError, ValueError, IndexError, NotImplementedError)):
        fn(tracer)


@pytest.mark.torch
def test_random_functions_match_torch_dtypes_and_ranges() -> None:
    torch = pytest.importorskip("torch")
    for m in (tracer, torch):
        m.manual_seed(0)
    pairs = [
        (tracer.rand(3, 4), torch.rand(3, 4)),
        (tracer.randn((2, 5)), torch.randn((2, 5))),
        (tracer.randint(0, 10, (100,)), torch.randint(0, 10, (100,))),
        (tracer.randint(3, (4, 2)), torch.randint(3, (4, 2))),
        (
            tracer.rand_like(tracer.zeros(2, dtype=tracer.float64)),
            torch.rand_like(torch.zeros(2, dtype=torch.float64)),
        ),
        (tracer.randn_like(tracer.zeros(3)), torch.randn_like(torch.zeros(3))),
        (tracer.randperm(6), torch.randperm(6)),
    ]
    for ours, theirs in pairs:
        assert ours.shape == tuple(theirs.shape)
        assert ours.dtype == _np_dtype(torch, theirs)
    assert tracer.rand(1000).min().item() >= 0 and tracer.rand(1000).max().item() < 1
    r = tracer.randint(2, 5, (1000,))
    assert r.min().item() >= 2 and r.max().item() <= 4
    assert sorted(tracer.randperm(6).tolist()) == list(range(6))
    assert tracer.rand(2, requires_grad=True).requires_grad


# ---------------------------------------------------------------- without torch


def _t(values: Any, requires_grad: bool = False) -> tracer.Tensor:
    return tracer.tensor(np.asarray(values), requires_grad=requires_grad)


def test_promotion_dtypes() -> None:
    f32 = _t(np.ones(2, F32))
    f64_0d = _t(np.float64(1.0))
    i64 = _t([1, 2])
    i32 = _t(np.ones(2, I32))
    bools = _t([True, False])
    assert (f32 + f64_0d).dtype == np.float32  # a 0-d tensor does not widen a dimensioned one
    assert (i64 + 1.5).dtype == np.float32
    assert (i32 + i64).dtype == np.int64
    assert (bools + 1).dtype == np.int64
    assert (i64 / i64).dtype == np.float32
    assert (i64 == 1.5).dtype == np.bool_
    assert i64.sum().dtype == np.int64 and i32.sum().dtype == np.int64
    assert bools.sum().dtype == np.int64 and bools.cumsum(0).dtype == np.int64
    assert i64.exp().dtype == np.float32 and i64.sqrt().dtype == np.float32
    assert i64.abs().dtype == np.int64 and i64.floor().dtype == np.int64
    assert tracer.where(bools, i64, 0.5).dtype == np.float32
    assert tracer.cat([i64, f32]).dtype == np.float32


def test_floor_division_and_remainder_follow_python() -> None:
    xs = np.arange(-7, 8)
    ys = np.array([3, -3])
    for y in ys:
        x_t = _t(xs)
        np.testing.assert_array_equal((x_t // int(y)).numpy(), xs // y)
        np.testing.assert_array_equal((x_t % int(y)).numpy(), xs % y)
        np.testing.assert_array_equal(x_t.fmod(int(y)).numpy(), np.fmod(xs, y))
        np.testing.assert_array_equal(
            x_t.div(int(y), rounding_mode="trunc").numpy(), np.trunc(xs / y).astype(np.int64)
        )
    xf = np.linspace(-5, 5, 21).astype(F32)
    np.testing.assert_allclose((_t(xf) % 1.5).numpy(), np.mod(xf, np.float32(1.5)), atol=1e-6)
    np.testing.assert_allclose((_t(xf) // 1.5).numpy(), np.floor_divide(xf, np.float32(1.5)))


def test_max_with_dim_returns_values_and_indices() -> None:
    x = np.array([[1.0, 5.0, 3.0], [7.0, 2.0, 0.0]], F32)
    out = _t(x).max(1)
    assert isinstance(out, tracer.ValuesIndices)
    values, _ = out
    np.testing.assert_array_equal(values.numpy(), x.max(1))
    np.testing.assert_array_equal(out.indices.numpy(), x.argmax(1))
    assert out.indices.dtype == np.int64
    kept = _t(x).min(0, keepdim=True)
    assert kept.values.shape == (1, 3) and kept.indices.shape == (1, 3)


def test_gradients_against_closed_forms() -> None:
    x_np = np.random.default_rng(0).standard_normal((3, 4))
    x = _t(x_np, requires_grad=True)
    x.var(1).sum().backward()
    expected = 2 * (x_np - x_np.mean(1, keepdims=True)) / 3
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6)

    x = _t(x_np, requires_grad=True)
    x.max(1).values.sum().backward()
    onehot = np.zeros_like(x_np)
    onehot[np.arange(3), x_np.argmax(1)] = 1
    np.testing.assert_array_equal(x.grad.numpy(), onehot)

    x = _t(x_np, requires_grad=True)
    x.clamp(-0.5, 0.5).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), (np.abs(x_np) <= 0.5).astype(F64))

    x = _t(x_np, requires_grad=True)
    (x.softmax(1) * _t(np.arange(4.0))).sum().backward()
    s = np.exp(x_np) / np.exp(x_np).sum(1, keepdims=True)
    w = np.arange(4.0)
    np.testing.assert_allclose(
        x.grad.numpy(), s * (w - (s * w).sum(1, keepdims=True)), rtol=1e-6, atol=1e-12
    )


def test_shape_methods_against_numpy() -> None:
    x_np = np.arange(24.0, dtype=F32).reshape(2, 3, 4)
    x = _t(x_np)
    np.testing.assert_array_equal(x.flatten(1).numpy(), x_np.reshape(2, 12))
    np.testing.assert_array_equal(x.permute(2, 0, 1).numpy(), x_np.transpose(2, 0, 1))
    np.testing.assert_array_equal(x.transpose(0, 2).numpy(), x_np.swapaxes(0, 2))
    np.testing.assert_array_equal(x.mT.numpy(), x_np.swapaxes(1, 2))
    assert [p.shape for p in x.split(2, dim=2)] == [(2, 3, 2), (2, 3, 2)]
    assert [p.shape for p in x.chunk(2, dim=1)] == [(2, 2, 4), (2, 1, 4)]
    assert [p.shape for p in x.split([1, 3], dim=-1)] == [(2, 3, 1), (2, 3, 3)]
    assert len(x.unbind(1)) == 3 and x.unbind(1)[0].shape == (2, 4)
    assert x.unsqueeze(-1).shape == (2, 3, 4, 1)
    assert x.squeeze(0).shape == (2, 3, 4)  # a dim of size 2 is not squeezed, as in PyTorch
    assert x.expand(5, -1, -1, -1).shape == (5, 2, 3, 4)
    np.testing.assert_array_equal(x.repeat(1, 1, 2).numpy(), np.tile(x_np, (1, 1, 2)))
    np.testing.assert_array_equal(x.tril(-1).numpy(), np.tril(x_np, -1))
    np.testing.assert_array_equal(x.triu(1).numpy(), np.triu(x_np, 1))
    np.testing.assert_array_equal(x.flip(-1).numpy(), x_np[..., ::-1])
    idx = _t(np.array([[0, 2], [1, 1]]))
    np.testing.assert_array_equal(
        _t(x_np[0]).gather(1, idx).numpy(), np.take_along_axis(x_np[0, :2], idx.numpy(), 1)
    )


def test_reductions_against_numpy() -> None:
    x_np = np.random.default_rng(1).standard_normal((3, 4, 5)).astype(F32)
    x = _t(x_np)
    np.testing.assert_allclose(x.sum((0, 2)).numpy(), x_np.sum((0, 2)), rtol=1e-5)
    np.testing.assert_allclose(
        x.mean(-1, keepdim=True).numpy(), x_np.mean(-1, keepdims=True), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(x.var(1).numpy(), x_np.var(1, ddof=1), rtol=1e-5)
    np.testing.assert_allclose(x.std(unbiased=False).numpy(), x_np.std(), rtol=1e-5)
    np.testing.assert_allclose(x.logsumexp(2).numpy(), np.log(np.exp(x_np).sum(2)), rtol=1e-5)
    np.testing.assert_allclose(x.norm().numpy(), np.linalg.norm(x_np.ravel()), rtol=1e-5)
    np.testing.assert_array_equal(x.argmax().numpy(), x_np.argmax())
    np.testing.assert_array_equal(x.argmin(1).numpy(), x_np.argmin(1))
    np.testing.assert_allclose(x.cumsum(1).numpy(), x_np.cumsum(1), rtol=1e-5, atol=1e-6)
    values, _ = x.topk(2, dim=1)
    np.testing.assert_array_equal(values.numpy(), -np.sort(-x_np, 1)[:, :2])
    np.testing.assert_array_equal(x.sort(0).values.numpy(), np.sort(x_np, 0))
    assert (x > 0).any().item() and not (x > 10).all().item()
    with pytest.raises(DTypeError):
        _t([1, 2]).mean()


def test_creation_functions() -> None:
    assert tracer.zeros(2, 3).dtype == np.float32 and tracer.zeros(2, 3).shape == (2, 3)
    assert tracer.ones((4,), dtype=tracer.int64).dtype == np.int64
    assert tracer.full((2,), 3).dtype == np.int64
    assert tracer.full((2,), 3.0).dtype == np.float32
    assert tracer.full((2,), False).dtype == np.bool_
    np.testing.assert_array_equal(tracer.arange(1, 10, 3).numpy(), [1, 4, 7])
    assert tracer.arange(3).dtype == np.int64 and tracer.arange(0.0, 1.0, 0.5).dtype == np.float32
    assert len(tracer.arange(0, 1, 0.1)) == 10
    np.testing.assert_allclose(tracer.linspace(0, 1, 3).numpy(), [0, 0.5, 1])
    np.testing.assert_array_equal(tracer.eye(2, 3).numpy(), np.eye(2, 3))
    z = tracer.zeros(3, requires_grad=True)
    assert z.requires_grad and z.is_leaf
    like = tracer.full_like(_t(np.ones((2, 2), F64)), 4)
    assert like.dtype == np.float64 and like.numpy().tolist() == [[4, 4], [4, 4]]


def test_manual_seed_makes_random_functions_reproducible() -> None:
    tracer.manual_seed(123)
    first = (tracer.rand(4), tracer.randn(4), tracer.randint(0, 100, (4,)), tracer.randperm(5))
    tracer.manual_seed(123)
    second = (tracer.rand(4), tracer.randn(4), tracer.randint(0, 100, (4,)), tracer.randperm(5))
    for a, b_ in zip(first, second, strict=True):
        np.testing.assert_array_equal(a.numpy(), b_.numpy())
    assert tracer.randn(1000).std().item() == pytest.approx(1, abs=0.1)


def test_manual_seed_also_seeds_dropout() -> None:
    dropout, x = ir.ops.get("Dropout"), tracer.ones(64)
    masks = []
    for _ in range(2):
        tracer.manual_seed(7)
        _, mask = dropout(x, np.asarray(0.5, F32), np.asarray(True))
        masks.append(mask.numpy())
    np.testing.assert_array_equal(masks[0], masks[1])
    assert 0 < masks[0].sum() < 64


def test_tensor_identity_semantics() -> None:
    x = _t(np.ones(3, F32))
    assert isinstance(x == x, tracer.Tensor)
    assert len({x, x, _t(np.ones(3, F32))}) == 2  # hashing stays by identity
    assert x.contiguous() is x and x.float() is x and x.to(tracer.float32) is x
    c = x.clone()
    c.add_(1)
    assert x.numpy().tolist() == [1, 1, 1]  # clone does not share memory
    assert (x == None) is False  # noqa: E711 - comparison with non-tensors falls back
    with pytest.raises(RuntimeError):
        x.to("cuda")
    with pytest.raises(DTypeError):
        _ = _t([1, 2]) & _t([3, 4])  # bitwise ops on integers are not supported


def test_ops_are_recorded_for_autograd() -> None:
    x = _t(np.array([[0.5, -1.0], [2.0, 3.0]]), requires_grad=True)
    y = tracer.where(x > 0, x.exp(), x.abs()).logsumexp(1).sum()
    assert y.grad_fn is not None
    y.backward()
    assert x.grad is not None and x.grad.shape == (2, 2)
    assert y.grad_fn.name() == "ReduceSum"


def test_rounding_cuts_the_graph_with_a_zero_gradient() -> None:
    # Floor/Ceil/Round have no vjp in the registry; PyTorch's gradient for them is zero.
    x = _t(np.array([0.3, 1.7, -2.2]), requires_grad=True)
    (x * 2 + x.floor() + x.ceil() + x.round() + x.trunc() + x // 0.5).sum().backward()
    np.testing.assert_array_equal(x.grad.numpy(), [2.0, 2.0, 2.0])
