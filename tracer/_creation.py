"""Functions that make new leaf tensors: zeros, ones, full, arange, rand, randn, eye, ...

Signatures and default dtypes are PyTorch's: floating results are float32, integer ones
int64, and ``full`` takes its dtype from the fill value. Random functions draw from one
process-wide NumPy generator that :func:`manual_seed` reseeds.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.ops import nn
from ir.ops.registry import op
from tracer import _state
from tracer._promote import scalar_dtype
from tracer._symint import SymInt, is_symbolic
from tracer._tensor_base import TensorBase, to_array, wrap

if TYPE_CHECKING:
    from tracer.tensor import Tensor

_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Seed the generator behind rand/randn/randint/randperm and the Dropout op's.

    Returns:
        The new generator.
    """
    global _rng
    _rng = np.random.default_rng(seed)
    nn.set_seed(seed)
    return _rng


def default_generator() -> np.random.Generator:
    """The generator random functions draw from when none is passed."""
    return _rng


def _size(size: tuple[Any, ...]) -> tuple[Any, ...]:
    """``zeros(2, 3)`` or ``zeros((2, 3))`` arguments as a shape (SymInts kept)."""
    if len(size) == 1 and not isinstance(size[0], int | SymInt):
        size = tuple(size[0])
    return tuple(d if isinstance(d, SymInt) else int(d) for d in size)


def _symbolic_fill(size: tuple[Any, ...], value: Any, dtype: np.dtype) -> Tensor:
    """A recorded ``ConstantOfShape`` for sizes that hold dynamic dims (while tracing)."""
    from tracer._shape import symbolic_shape

    fill = np.asarray([value], dtype=dtype)
    return op.ConstantOfShape(symbolic_shape(size), value=fill)


def _fill(size: tuple[Any, ...], value: Any, dtype: np.dtype, requires_grad: bool) -> Tensor:
    if is_symbolic(size):
        if requires_grad:
            raise ValueError("a tensor of dynamic size cannot be a leaf that requires grad")
        return _symbolic_fill(size, value, dtype)
    return _leaf(np.full(size, value, dtype), requires_grad)


def _like_size(input: TensorBase) -> tuple[Any, ...]:
    """``input``'s shape, symbolic while tracing, so ``*_like`` stays dynamic."""
    return tuple(input.shape) if _state.tracer is not None else input._data.shape


def _dtype(dtype: Any, default: np.dtype) -> np.dtype:
    return default if dtype is None else np.dtype(dtype)


def _leaf(data: np.ndarray, requires_grad: bool) -> Tensor:
    t = wrap(to_array(data))
    if requires_grad:
        t.requires_grad = True
    return t


# ---------------------------------------------------------------- constant fills


def zeros(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of shape ``size`` (float32 unless ``dtype``)."""
    return _fill(_size(size), 0, _dtype(dtype, D.float32), requires_grad)


def ones(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of shape ``size`` (float32 unless ``dtype``)."""
    return _fill(_size(size), 1, _dtype(dtype, D.float32), requires_grad)


def empty(*size: Any, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of shape ``size`` whose values are unspecified (zeros here)."""
    return zeros(*size, dtype=dtype, requires_grad=requires_grad)


def full(
    size: Sequence[int], fill_value: Any, *, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    """A tensor of shape ``size`` filled with ``fill_value``.

    The dtype defaults to the value's: bool, int64 for ints, float32 for floats.
    """
    if isinstance(fill_value, TensorBase):
        fill_value = fill_value.item()
    dt = _dtype(dtype, scalar_dtype(fill_value))
    return _fill(_size((size,)), fill_value, dt, requires_grad)


def zeros_like(input: TensorBase, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Zeros of ``input``'s shape and (unless ``dtype``) dtype."""
    return _fill(_like_size(input), 0, _dtype(dtype, input.dtype), requires_grad)


def ones_like(input: TensorBase, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Ones of ``input``'s shape and (unless ``dtype``) dtype."""
    return _fill(_like_size(input), 1, _dtype(dtype, input.dtype), requires_grad)


def empty_like(input: TensorBase, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """A tensor of ``input``'s shape and dtype with unspecified values (zeros here)."""
    return zeros_like(input, dtype=dtype, requires_grad=requires_grad)


def full_like(
    input: TensorBase,
    fill_value: Any,
    *,
    dtype: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """``fill_value`` in ``input``'s shape and (unless ``dtype``) dtype."""
    return _fill(_like_size(input), fill_value, _dtype(dtype, input.dtype), requires_grad)


def eye(n: int, m: int | None = None, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """An ``n`` x ``m`` matrix with ones on the diagonal (``m`` defaults to ``n``)."""
    return _leaf(np.eye(n, m, dtype=_dtype(dtype, D.float32)), requires_grad)


# ---------------------------------------------------------------- ranges


def arange(
    start: float,
    end: float | None = None,
    step: float = 1,
    *,
    dtype: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Values from ``start`` (default 0) up to, not including, ``end`` by ``step``.

    The dtype is int64 when every argument is an int, else float32.

    Raises:
        ValueError: ``step`` is zero or has the wrong sign for the range.
    """
    if end is None:
        start, end = 0, start
    if is_symbolic([start, end, step]):
        return _symbolic_range(start, end, step, dtype)
    if step == 0 or (end - start) * step < 0:
        raise ValueError(
            f"arange: upper bound {end} and lower bound {start} inconsistent with step {step}"
        )
    integral = all(isinstance(v, int) for v in (start, end, step))
    dt = _dtype(dtype, D.int64 if integral else D.float32)
    values: np.ndarray
    if integral:
        values = np.arange(start, end, step, dtype=np.int64)
    else:
        # Computed in float64 and rounded once, as PyTorch accumulates in double.
        n = max(math.ceil((end - start) / step), 0)
        values = start + step * np.arange(n, dtype=np.float64)
    return _leaf(values.astype(dt), requires_grad)


def _symbolic_range(start: Any, end: Any, step: Any, dtype: Any) -> Tensor:
    """A recorded ``Range`` for bounds that hold dynamic dims (while tracing)."""
    if not all(isinstance(v, int | SymInt) for v in (start, end, step)):
        raise TypeError("arange with a dynamic bound takes integer start, end and step")
    bounds = [
        v.tensor if isinstance(v, SymInt) else wrap(np.asarray(v, np.int64))
        for v in (start, end, step)
    ]
    out = op.Range(*bounds)
    dt = _dtype(dtype, D.int64)
    return out if dt == D.int64 else op.Cast(out, to=D.to_onnx(dt))


def linspace(
    start: float, end: float, steps: int, *, dtype: Any = None, requires_grad: bool = False
) -> Tensor:
    """``steps`` evenly spaced values from ``start`` to ``end``, both included (float32)."""
    values = np.linspace(start, end, steps, dtype=np.float64)
    return _leaf(values.astype(_dtype(dtype, D.float32)), requires_grad)


# ---------------------------------------------------------------- random


def _gen(generator: np.random.Generator | None) -> np.random.Generator:
    return _rng if generator is None else generator


def rand(
    *size: Any,
    generator: np.random.Generator | None = None,
    dtype: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Uniform samples from [0, 1) of shape ``size`` (float32 unless ``dtype``)."""
    values = _gen(generator).random(_size(size))
    return _leaf(values.astype(_dtype(dtype, D.float32)), requires_grad)


def randn(
    *size: Any,
    generator: np.random.Generator | None = None,
    dtype: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Standard normal samples of shape ``size`` (float32 unless ``dtype``)."""
    values = _gen(generator).standard_normal(_size(size))
    return _leaf(values.astype(_dtype(dtype, D.float32)), requires_grad)


def randint(
    *args: Any,
    size: Sequence[int] | None = None,
    generator: np.random.Generator | None = None,
    dtype: Any = None,
    requires_grad: bool = False,
) -> Tensor:
    """Integers uniform in [low, high): ``randint(high, size)`` or ``randint(low, high, size)``.

    Raises:
        TypeError: the arguments match neither form.
    """
    if size is None:
        if not args:
            raise TypeError("randint() missing required argument 'size'")
        *args, size = args  # type: ignore[assignment]
    if len(args) not in (1, 2):
        raise TypeError("randint() expects (high, size) or (low, high, size)")
    low, high = (0, args[0]) if len(args) == 1 else args
    values = _gen(generator).integers(low, high, size=_size((size,)))
    return _leaf(values.astype(_dtype(dtype, D.int64)), requires_grad)


def rand_like(input: TensorBase, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Uniform samples from [0, 1) in ``input``'s shape and (unless ``dtype``) dtype."""
    return rand(input.shape, dtype=_dtype(dtype, input.dtype), requires_grad=requires_grad)


def randn_like(input: TensorBase, *, dtype: Any = None, requires_grad: bool = False) -> Tensor:
    """Standard normal samples in ``input``'s shape and (unless ``dtype``) dtype."""
    return randn(input.shape, dtype=_dtype(dtype, input.dtype), requires_grad=requires_grad)


def randperm(n: int, *, generator: np.random.Generator | None = None, dtype: Any = None) -> Tensor:
    """A random permutation of ``0..n-1`` (int64 unless ``dtype``)."""
    return _leaf(_gen(generator).permutation(n).astype(_dtype(dtype, D.int64)), False)
