"""Specs of ``ir/ops/signal.py``."""

from __future__ import annotations

import numpy as np

from tests.op_specs.common import BOOL, F32, F64, FLOATS, I32, I64, OpSpec, Sample, i64, rand


def _dft_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    real = rand(rng, (2, 6, 1), dtype)
    cplx = rand(rng, (2, 6, 2), dtype)
    batch = rand(rng, (2, 4, 3, 2), dtype)
    return [
        Sample((real,)),
        Sample((cplx,)),
        Sample((real, None, i64(1)), {"onesided": 1}),
        Sample((real, i64(8), i64(1)), {"onesided": 1}),  # zero-padded, odd bins
        Sample((cplx, i64(4))),  # truncated
        Sample((cplx, None, i64(-2)), {"inverse": 1}),
        Sample((cplx, i64(9), i64(1)), {"inverse": 1}),  # zero-padded
        Sample((batch, None, i64(1))),
        Sample((batch, i64(5), i64(-3)), {"inverse": 1}),
        Sample((rand(rng, (2, 4, 2), dtype),), {"inverse": 1, "onesided": 1}, wrt=()),
        Sample(
            (rand(rng, (3, 4, 2), dtype), i64(6), i64(1)), {"inverse": 1, "onesided": 1}, wrt=()
        ),
    ]


def _stft_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    sig = rand(rng, (2, 20, 1), dtype)
    window = np.hanning(8).astype(dtype)
    return [
        Sample((sig, i64(4), None, i64(8))),
        Sample((sig, i64(3), window)),
        Sample((sig, i64(5), window, i64(8)), {"onesided": 0}),
        Sample((rand(rng, (1, 16, 2), dtype), i64(4), None, i64(6)), {"onesided": 0}),
    ]


def _window_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    size = np.asarray(10, dtype)
    return [
        Sample((size,)),
        Sample((size,), {"periodic": 0}),
        Sample((np.asarray(7, dtype),), {"output_datatype": 11}),
        Sample((np.asarray(5, dtype),), {"output_datatype": 11, "periodic": 0}),
        Sample((np.asarray(1, dtype),)),
    ]


def _mel_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    def case(mels: int, length: int, rate: int, lo: float, hi: float) -> tuple[np.ndarray, ...]:
        f = np.float32
        return (
            np.asarray(mels, dtype),
            np.asarray(length, dtype),
            np.asarray(rate, dtype),
            np.asarray(lo, f),
            np.asarray(hi, f),
        )

    return [
        Sample(case(8, 16, 8192, 0.0, 4096.0)),
        Sample(case(10, 64, 16000, 20.0, 7600.0)),
        Sample(case(4, 32, 8000, 100.0, 3000.0), {"output_datatype": 11}),
    ]


def _det_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((rand(rng, (3, 3), dtype),)),
        Sample((rand(rng, (2, 2), dtype),)),
        Sample((rand(rng, (4, 2, 2), dtype),)),
        Sample((rand(rng, (2, 3, 4, 4), dtype),)),
        Sample((rand(rng, (1, 1), dtype),)),
    ]


def _unique_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    x = np.asarray([2, 1, 1, 3, 4, 3, 0, 2], dtype)
    rows = np.asarray([[1, 0, 0], [1, 0, 0], [2, 3, 4], [0, 1, 1]], dtype)
    return [
        Sample((x,)),
        Sample((x,), {"sorted": 0}),
        Sample((rows,), {"axis": 0}),
        Sample((rows,), {"axis": 0, "sorted": 0}),
        Sample((rows,), {"axis": -1}),
        Sample((rows,)),  # flattened
        Sample((rand(rng, (2, 4, 2), dtype, 0, 1),), {"axis": 1}),
        Sample((np.asarray([5], dtype),)),
    ]


def _reverse_sequence_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((rand(rng, (4, 3), dtype), i64([4, 2, 1]))),  # time-major
        Sample((rand(rng, (3, 4), dtype), i64([1, 3, 4])), {"batch_axis": 0, "time_axis": 1}),
        Sample((rand(rng, (5, 2, 3), dtype), i64([3, 5]))),
        Sample((rand(rng, (2, 4, 3), dtype), i64([0, 2])), {"batch_axis": 0, "time_axis": 1}),
    ]


SPECS = [
    OpSpec("DFT", _dft_samples, atol=1e-5),
    OpSpec("STFT", _stft_samples, grad_order=0, atol=1e-5),
    *(
        OpSpec(name, _window_samples, dtypes=(I32, I64), grad_order=0)
        for name in ("HannWindow", "HammingWindow", "BlackmanWindow")
    ),
    OpSpec("MelWeightMatrix", _mel_samples, dtypes=(I32, I64), grad_order=0),
    OpSpec(
        "Det",
        _det_samples,
        dtypes=FLOATS,
        grad_order=0,
        rtol=1e-4,
        atol=1e-5,
        oracle_skip={"onnxruntime/float64": "onnxruntime 1.31 has no float64 Det kernel"},
    ),
    OpSpec(
        "Unique",
        _unique_samples,
        dtypes=(F32, F64, I32, I64),
        grad_order=0,
        oracle_skip={"onnxruntime/int32": "onnxruntime 1.31 has no int32 Unique kernel"},
    ),
    OpSpec("ReverseSequence", _reverse_sequence_samples, dtypes=(F32, F64, I32, I64, BOOL)),
]
