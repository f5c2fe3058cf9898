"""The spec-table format: one :class:`OpSpec` per registry op, with sample generators."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

F32, F64 = np.dtype(np.float32), np.dtype(np.float64)
I32, I64 = np.dtype(np.int32), np.dtype(np.int64)
BOOL = np.dtype(np.bool_)
FLOATS = (F32, F64)
INTS = (I32, I64)
NUMERIC = (F32, F64, I32, I64)


@dataclass(frozen=True)
class Sample:
    """One application of an op: its inputs (None = absent optional input) and attributes.

    ``wrt`` lists the inputs the gradient checks perturb; None means every floating input.
    """

    inputs: tuple[np.ndarray | None, ...]
    attrs: dict[str, Any] = field(default_factory=dict)
    wrt: tuple[int, ...] | None = None


SampleFn = Callable[[np.random.Generator, np.dtype], Sequence[Sample]]


@dataclass(frozen=True)
class OpSpec:
    """How to test one registry op.

    Attributes:
        op_type: the registry key (default domain unless ``domain``).
        samples: ``samples(rng, dtype)`` gives the cases for one dtype.
        dtypes: the dtypes forward tests run in; gradient tests use float64.
        grad_order: 0 (no vjp), 1 or 2: the highest order checked by finite differences.
        rtol, atol: forward tolerance against the oracles.
        oracle_skip: why a forward oracle is not run: keys "reference" or "onnxruntime" skip
            it for every dtype, "onnxruntime/int64" (oracle/dtype) for one dtype.
        no_second_order: why ``grad_order`` stops at 1, when it does.
        random: outputs are random (Dropout in training): oracles compare shapes only.
    """

    op_type: str
    samples: SampleFn
    dtypes: tuple[np.dtype, ...] = FLOATS
    grad_order: int = 2
    rtol: float = 1e-5
    atol: float = 1e-6
    oracle_skip: dict[str, str] = field(default_factory=dict)
    no_second_order: str = ""
    domain: str = ""
    random: bool = False


def rand(
    rng: np.random.Generator,
    shape: Sequence[int],
    dtype: np.dtype,
    low: float = -2.0,
    high: float = 2.0,
) -> np.ndarray:
    """Uniform values in [low, high) (integers for integer dtypes, coin flips for bool)."""
    if dtype == BOOL:
        return np.asarray(rng.random(shape) < 0.5)
    if dtype.kind in "iu":
        return rng.integers(int(low) - 1, int(high) + 2, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def positive(
    rng: np.random.Generator,
    shape: Sequence[int],
    dtype: np.dtype,
    low: float = 0.5,
    high: float = 2.0,
) -> np.ndarray:
    """Values in [low, high), for ops defined on positive inputs (log, sqrt, ...)."""
    if dtype.kind in "iu":
        return rng.integers(max(1, int(low)), int(high) + 3, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def i64(values: Any) -> np.ndarray:
    """An int64 operand (axes, shapes, indices)."""
    return np.asarray(values, dtype=np.int64)


BROADCAST_PAIRS = [
    ((3, 4), (3, 4)),
    ((2, 3, 4), (4,)),
    ((3, 1), (1, 5)),
    ((), (2, 3)),
    ((2, 1, 3), (4, 1)),
]


def binary_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    """Broadcasting pairs for binary elementwise ops."""
    return [Sample((rand(rng, a, dtype), rand(rng, b, dtype))) for a, b in BROADCAST_PAIRS]


def unary_samples(
    rng: np.random.Generator, dtype: np.dtype, gen: Callable[..., np.ndarray] = rand
) -> list[Sample]:
    """A few shapes, 0-d included, for unary elementwise ops."""
    return [Sample((gen(rng, s, dtype),)) for s in [(), (5,), (3, 4), (2, 3, 4)]]
