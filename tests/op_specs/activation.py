"""Specs of ``ir/ops/activation.py``."""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import (
    F32,
    F64,
    I32,
    I64,
    OpSpec,
    Sample,
    rand,
    unary_samples,
)


def _wide(low: float, high: float, attrs: list[dict[str, object]] | None = None):
    """Unary samples in [-2, 2) plus one in [low, high), once per attribute set."""

    def samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        base = [*unary_samples(rng, dtype), Sample((rand(rng, (4, 5), dtype, low, high),))]
        return [Sample(s.inputs, a) for a in attrs or [{}] for s in base]

    return samples


def _off_zero(low: float, high: float, attrs: list[dict[str, object]]):
    """Like ``_wide``, with inputs kept off the kink at 0 (for finite differences)."""
    inner = _wide(low, high, attrs)

    def samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        out = []
        for s in inner(rng, dtype):
            (x,) = s.inputs
            assert x is not None
            out.append(Sample((np.where(np.abs(x) < 0.05, x + 0.2, x).astype(dtype),), s.attrs))
        return out

    return samples


def _away(x: np.ndarray, kinks: list[float], margin: float = 0.05) -> np.ndarray:
    """``x`` with values near a kink moved off it, for finite differences."""
    if x.dtype.kind != "f":
        return x
    for k in kinks:
        x = np.where(np.abs(x - k) < margin, k + 3 * margin, x)
    return x.astype(x.dtype)


def _kinked(low: float, high: float, kinks: list[float], attrs: list[dict[str, object]]):
    """``_wide`` samples in [low, high) with the inputs kept off ``kinks``."""
    inner = _wide(low, high, attrs)

    def samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        out = []
        for s in inner(rng, dtype):
            (x,) = s.inputs
            assert x is not None
            out.append(Sample((_away(x, kinks),), s.attrs))
        return out

    return samples


def _in(low: float, high: float):
    """Unary samples in [low, high) (the domain of asin, acosh, ...)."""

    def samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
        return unary_samples(rng, dtype, lambda r, s, d: rand(r, s, d, low, high))

    return samples


def _hard_sigmoid_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    # Kinks where alpha x + beta is 0 or 1: x = -2.5, 2.5 by default; -1, 3 with (0.5, 0.5).
    default = _kinked(-6, 6, [-2.5, 2.5], [{}])(rng, dtype)
    other = _kinked(-6, 6, [-1.0, 1.0], [{"alpha": 0.5, "beta": 0.5}])(rng, dtype)
    return [*default, *other]


def _shrink_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    attrs: list[dict[str, object]] = [{}, {"lambd": 1.5, "bias": 0.25}, {"lambd": 0.25}]
    if dtype.kind in "iu":
        x = np.arange(-4, 5, dtype=dtype).reshape(3, 3)
        return [Sample((x,), a) for a in [*attrs, {"lambd": 1.0, "bias": 2.0}]]
    out = []
    for a in attrs:
        lambd = float(a.get("lambd", 0.5))  # type: ignore[arg-type]
        out += _kinked(-4, 4, [-lambd, lambd], [a])(rng, dtype)
    return out


def _prelu_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def x(shape: tuple[int, ...]) -> np.ndarray:
        return _away(rand(rng, shape, dtype), [0.0])

    def slope(shape: tuple[int, ...]) -> np.ndarray:
        return rand(rng, shape, dtype, -1, 1)

    return [
        Sample((x((3, 4)), slope((3, 4)))),
        Sample((x((2, 3, 4)), slope((3, 1)))),  # per channel
        Sample((x((2, 3, 4)), slope((4,)))),
        Sample((x((2, 3)), slope(()))),
        Sample((x((5,)), slope((1,)))),
    ]


def _softsign_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    # No 0-d sample: onnx.reference's Softsign crashes on one (np.divide into a scalar).
    return [s for s in _off_zero(-5, 5, [{}])(rng, dtype) if s.inputs[0].ndim]  # type: ignore[union-attr]


def _no_f64(op_type: str) -> dict[str, str]:
    return {"onnxruntime/float64": f"onnxruntime 1.31 has no float64 {op_type} kernel"}


SPECS = [
    OpSpec("Sigmoid", _wide(-40, 40)),
    OpSpec("Softplus", _wide(-30, 30), oracle_skip=_no_f64("Softplus")),
    OpSpec(
        "LeakyRelu",
        _off_zero(-5, 5, [{}, {"alpha": 0.2}, {"alpha": -0.5}]),
        oracle_skip=_no_f64("LeakyRelu"),
    ),
    OpSpec("Elu", _off_zero(-5, 5, [{}, {"alpha": 0.5}]), oracle_skip=_no_f64("Elu")),
    OpSpec(
        "Gelu",
        _wide(-6, 6, [{}, {"approximate": "tanh"}]),
        # Its exact form runs as the ONNX function body, whose Erf has no float64 kernel.
        oracle_skip=_no_f64("Gelu (approximate='none')"),
    ),
    OpSpec("Erf", _wide(-5, 5), oracle_skip=_no_f64("Erf")),
    OpSpec("HardSigmoid", _hard_sigmoid_samples, oracle_skip=_no_f64("HardSigmoid")),
    OpSpec(
        "HardSwish",
        _kinked(-6, 6, [-3.0, 3.0], [{}]),
        # onnxruntime runs its function body, whose HardSigmoid has no float64 kernel.
        oracle_skip=_no_f64("HardSwish (HardSigmoid in its function body)"),
    ),
    OpSpec(
        "Selu",
        _off_zero(-5, 5, [{}, {"alpha": 2.0, "gamma": 3.0}]),
        oracle_skip=_no_f64("Selu"),
    ),
    OpSpec(
        "Celu",
        _off_zero(-5, 5, [{}, {"alpha": 2.0}, {"alpha": 0.5}]),
        # Celu-12 admits float32 only (every float type from Celu-28 on, same meaning).
        oracle_skip={"onnxruntime/float64": "onnxruntime refuses Celu-12 on float64"},
    ),
    OpSpec(
        "ThresholdedRelu",
        _kinked(-4, 4, [1.0, 0.5, -0.5], [{}, {"alpha": 0.5}, {"alpha": -0.5}]),
        oracle_skip=_no_f64("ThresholdedRelu"),
    ),
    OpSpec("Mish", _wide(-30, 30), oracle_skip=_no_f64("Mish (Softplus in its function body)")),
    OpSpec("Softsign", _softsign_samples, oracle_skip=_no_f64("Softsign")),
    OpSpec("Shrink", _shrink_samples, dtypes=(F32, F64, I32, I64)),
    OpSpec(
        "PRelu",
        _prelu_samples,
        dtypes=(F32, F64, I32, I64),
        oracle_skip={
            f"onnxruntime/{t}": f"onnxruntime 1.31 has no {t} PRelu kernel (float32 only)"
            for t in ("float64", "int32", "int64")
        },
    ),
    OpSpec("Tan", _in(-1.4, 1.4), oracle_skip=_no_f64("Tan")),
    OpSpec("Asin", _in(-0.9, 0.9), oracle_skip=_no_f64("Asin")),
    OpSpec("Acos", _in(-0.9, 0.9), oracle_skip=_no_f64("Acos")),
    OpSpec("Atan", _in(-4, 4), oracle_skip=_no_f64("Atan")),
    OpSpec("Sinh", _in(-4, 4), oracle_skip=_no_f64("Sinh")),
    OpSpec("Cosh", _in(-4, 4), oracle_skip=_no_f64("Cosh")),
    OpSpec("Asinh", _in(-4, 4), oracle_skip=_no_f64("Asinh")),
    OpSpec("Acosh", _in(1.1, 5), oracle_skip=_no_f64("Acosh")),
    OpSpec("Atanh", _in(-0.9, 0.9), oracle_skip=_no_f64("Atanh")),
]
