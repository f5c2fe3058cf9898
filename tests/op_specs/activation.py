"""Specs of ``ir/ops/activation.py``."""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import OpSpec, Sample, rand, unary_samples


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
]
