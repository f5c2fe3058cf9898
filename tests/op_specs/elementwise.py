"""Specs of ``ir/ops/elementwise.py``."""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import (
    BOOL,
    F32,
    F64,
    FLOATS,
    I32,
    I64,
    NUMERIC,
    OpSpec,
    Sample,
    binary_samples,
    positive,
    rand,
    unary_samples,
)

_INT_RELU = "onnxruntime 1.31 has no int64 Relu kernel"
_PAIRS = [((3, 4), (3, 4)), ((2, 3, 4), (4,)), ((3, 1), (1, 5)), ((), (2, 3)), ((2, 1, 3), (4, 1))]


def _away_from(x: np.ndarray, points: list[float], margin: float = 0.05) -> np.ndarray:
    """``x`` with values within ``margin`` of a point moved off it (kinks, for FD checks)."""
    if x.dtype.kind != "f":
        return x
    for p in points:
        x = np.where(np.abs(x - p) < margin, p + 3 * margin, x)
    return x.astype(x.dtype)


def _nonzero(rng: np.random.Generator, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
    y = rand(rng, shape, dtype)
    return np.where(np.abs(y) < 0.5, np.ones_like(y) * 3, y).astype(dtype)


def _div_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [Sample((rand(rng, a, dtype), _nonzero(rng, b, dtype))) for a, b in _PAIRS]


def _pow_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    if dtype.kind in "iu":
        return [
            Sample((rand(rng, a, dtype), rng.integers(0, 4, b).astype(dtype))) for a, b in _PAIRS
        ] + [
            Sample((rand(rng, (3, 4), dtype), rng.integers(0, 4, (4,)).astype(I64))),
            Sample((positive(rng, (3, 4), dtype), rng.uniform(0, 2, (3, 4)).astype(F32))),
        ]
    other = F64 if dtype == F32 else F32
    return [Sample((positive(rng, a, dtype), rand(rng, b, dtype))) for a, b in _PAIRS] + [
        # Any base to an integer power; and an exponent of another float dtype.
        Sample((rand(rng, (3, 4), dtype), rng.integers(0, 4, (3, 4)).astype(I64))),
        Sample((_nonzero(rng, (2, 3), dtype), rng.integers(-2, 4, (3,)).astype(I32))),
        Sample((positive(rng, (3, 4), dtype), rand(rng, (4,), other)), wrt=(0,)),
    ]


def _mod_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    out = []
    # Float fmod=0 (Mod-28's floor modulo) is left to ONNX's conformance cases
    # (test_mod_*_fmod_0*): onnxruntime runs Mod-13, which refuses it at run time, and the
    # runtime tests send every sample to onnxruntime.
    for fmod in (1,) if dtype.kind == "f" else (0, 1):
        for a, b in _PAIRS:
            x, y = rand(rng, a, dtype, -6, 6), _nonzero(rng, b, dtype)
            # Redraw until x/y is off integers, where Mod jumps (finite differences).
            while dtype.kind == "f" and np.any(np.abs(x / y - np.round(x / y)) < 0.05):
                x = rand(rng, a, dtype, -6, 6)
            out.append(Sample((x, y), {"fmod": fmod}))
    return out


_VARIADIC = [[(3, 4)], [(3, 4), (3, 4)], [(2, 3, 4), (4,), ()], [(3, 5), (3, 1), (1, 5), (5,)]]


def _variadic_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    groups = [*_VARIADIC, [(3, 1), (1, 5), (3, 5)]]
    return [Sample(tuple(rand(rng, s, dtype) for s in g)) for g in groups]


def _mean_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    # The first input has the full shape: onnx.reference's Mean adds into a copy of it.
    return [Sample(tuple(rand(rng, s, dtype) for s in g)) for g in _VARIADIC]


def _reciprocal_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [Sample((_nonzero(rng, s, dtype),)) for s in [(), (5,), (3, 4)]]


def _extremum_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    shapes = [
        [(3, 4)],
        [(3, 4), (3, 4)],
        [(2, 3, 4), (4,)],
        [(3, 1), (1, 5), ()],
        [(2, 3), (2, 3), (2, 3), (3,)],
    ]
    return [Sample(tuple(rand(rng, s, dtype) for s in group)) for group in shapes]


def _clip_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    lo, hi = np.asarray(-0.6, dtype), np.asarray(0.7, dtype)
    if dtype.kind in "iu":
        lo, hi = np.asarray(-1, dtype), np.asarray(1, dtype)

    def x(shape: tuple[int, ...]) -> np.ndarray:
        return _away_from(rand(rng, shape, dtype), [float(lo), float(hi)])

    return [
        Sample((x((3, 4)), lo, hi)),
        Sample((x((2, 3, 4)), lo)),
        Sample((x((5,)), None, hi)),
        Sample((x(()), lo, hi)),
        Sample((x((3, 4)),)),
        Sample((x((3, 4)), hi, lo)),  # min > max: every element becomes max
    ]


def _rounding_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    halves = np.asarray([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 0.0, -0.0], dtype)
    # The halves sit on the steps, where finite differences mean nothing: forward only.
    return [
        *unary_samples(rng, dtype, lambda r, s, d: rand(r, s, d, -5, 5)),
        Sample((halves,), wrt=()),
    ]


def _comparison_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    out = binary_samples(rng, dtype)
    x = rand(rng, (3, 4), dtype)
    y = np.where(rand(rng, (3, 4), BOOL), x, rand(rng, (3, 4), dtype)).astype(dtype)
    return [*out, Sample((x, y))]  # with ties


def _is_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    special = np.asarray([np.inf, -np.inf, np.nan, 0.0, -1.5, 2.0], dtype)
    scalar_nan = special[2:3].reshape(())
    return [Sample((special,)), Sample((rand(rng, (3, 4), dtype),)), Sample((scalar_nan,))]


def _is_inf_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    base = _is_samples(rng, dtype)
    flags = [
        {},
        {"detect_negative": 0},
        {"detect_positive": 0},
        {"detect_negative": 0, "detect_positive": 0},
    ]
    return [*base, *(Sample(base[0].inputs, f) for f in flags)]


def _where_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((rand(rng, (3, 4), BOOL), rand(rng, (3, 4), dtype), rand(rng, (3, 4), dtype))),
        Sample((rand(rng, (4,), BOOL), rand(rng, (3, 4), dtype), rand(rng, (), dtype))),
    ]


def _cast_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((rand(rng, (3, 4), dtype),), {"to": to})
        for to in (1, 11, 7, 6, 9)  # float32, float64, int64, int32, bool
    ]


def _unary(gen=rand):
    return lambda rng, dt: unary_samples(rng, dt, gen)


_AWAY_FROM_ZERO = _unary(lambda r, s, d: _away_from(rand(r, s, d), [0.0]))
_NO_VJP = {"grad_order": 0}

SPECS = [
    OpSpec("Add", binary_samples, dtypes=NUMERIC),
    OpSpec("Sub", binary_samples, dtypes=NUMERIC),
    OpSpec("Mul", binary_samples, dtypes=NUMERIC),
    OpSpec("Div", _div_samples, dtypes=NUMERIC),
    OpSpec("Pow", _pow_samples, dtypes=NUMERIC),
    OpSpec("Mod", _mod_samples, dtypes=NUMERIC),
    OpSpec("Sum", _variadic_samples),
    OpSpec(
        "Mean",
        _mean_samples,
        oracle_skip={"onnxruntime/float64": "onnxruntime 1.31 has no float64 Mean kernel"},
    ),
    OpSpec("Neg", unary_samples, dtypes=NUMERIC),
    OpSpec("Abs", _AWAY_FROM_ZERO, dtypes=NUMERIC),
    OpSpec("Sign", _AWAY_FROM_ZERO, dtypes=NUMERIC),
    OpSpec("Exp", unary_samples),
    OpSpec("Log", _unary(positive)),
    OpSpec("Sqrt", _unary(positive)),
    OpSpec("Reciprocal", _reciprocal_samples),
    OpSpec("Sin", _unary(lambda r, s, d: rand(r, s, d, -4, 4))),
    OpSpec("Cos", _unary(lambda r, s, d: rand(r, s, d, -4, 4))),
    OpSpec("Tanh", unary_samples),
    OpSpec(
        "Relu",
        _AWAY_FROM_ZERO,
        dtypes=(F32, F64, I64),
        oracle_skip={"onnxruntime/int64": _INT_RELU},
    ),
    OpSpec("Floor", _rounding_samples),
    OpSpec("Ceil", _rounding_samples),
    OpSpec("Round", _rounding_samples),
    OpSpec("Identity", unary_samples, dtypes=(*NUMERIC, BOOL)),
    OpSpec("Max", _extremum_samples, dtypes=NUMERIC),
    OpSpec("Min", _extremum_samples, dtypes=NUMERIC),
    OpSpec("Clip", _clip_samples, dtypes=NUMERIC),
    OpSpec("Equal", _comparison_samples, dtypes=(*NUMERIC, BOOL), **_NO_VJP),
    OpSpec("Greater", _comparison_samples, dtypes=NUMERIC, **_NO_VJP),
    OpSpec("Less", _comparison_samples, dtypes=NUMERIC, **_NO_VJP),
    OpSpec("GreaterOrEqual", _comparison_samples, dtypes=NUMERIC, **_NO_VJP),
    OpSpec("LessOrEqual", _comparison_samples, dtypes=NUMERIC, **_NO_VJP),
    OpSpec("Not", unary_samples, dtypes=(BOOL,), **_NO_VJP),
    OpSpec("And", binary_samples, dtypes=(BOOL,), **_NO_VJP),
    OpSpec("Or", binary_samples, dtypes=(BOOL,), **_NO_VJP),
    OpSpec("Xor", binary_samples, dtypes=(BOOL,), **_NO_VJP),
    OpSpec("IsNaN", _is_samples, dtypes=FLOATS, **_NO_VJP),
    OpSpec("IsInf", _is_inf_samples, dtypes=FLOATS, **_NO_VJP),
    OpSpec(
        "Where",
        _where_samples,
        dtypes=(F32, F64, I64, BOOL),
        oracle_skip={"onnxruntime/bool": "onnxruntime 1.31 has no bool Where kernel"},
    ),
    OpSpec("Cast", _cast_samples, dtypes=(F32, F64, I32, I64)),
]
