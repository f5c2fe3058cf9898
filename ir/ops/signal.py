"""Signal and small linear-algebra ops.

DFT, STFT, window functions (Hann, Hamming, Blackman), MelWeightMatrix, Det, Unique,
ReverseSequence.

Complex values are real tensors whose last axis holds (real, imaginary), as in ONNX; a real
signal has a last axis of size 1. Transforms run in complex64 (complex128 for float64) and
are cast back to the input's dtype. Sizes that are op inputs (window size, dft_length, ...)
decide output shapes, so shape rules know them only when those inputs are constants.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.errors import ShapeError, UnsupportedOpError
from ir.ops.grad_util import known_value
from ir.ops.infer import check_dtype, const_ints, normalize_axis
from ir.ops.registry import (
    AttrInput,
    InferContext,
    Legacy,
    OpDef,
    VjpContext,
    ints,
    op,
    register,
    scalar,
)
from ir.types import Dim, TensorType

# ---------------------------------------------------------------- DFT


def _complex(x: np.ndarray) -> np.ndarray:
    """``[..., 1]`` real or ``[..., 2]`` (real, imaginary) pairs as a complex array.

    complex64 for float32/float16 inputs: ONNX's expected outputs are computed at that
    precision, and rounding-level imaginary parts must match theirs.
    """
    dtype = np.complex128 if x.dtype == D.float64 else np.complex64
    if x.shape[-1] == 1:
        return x[..., 0].astype(dtype)
    if x.shape[-1] == 2:
        return x[..., 0].astype(dtype) + np.asarray(1j, dtype) * x[..., 1].astype(dtype)
    raise ShapeError(f"the last axis must be 1 (real) or 2 (complex), got shape {list(x.shape)}")


def _pairs(z: np.ndarray, dtype: np.dtype) -> np.ndarray:
    return np.stack([z.real, z.imag], axis=-1).astype(dtype)


def _dft_axis(axis: Any, rank: int) -> int:
    a = -2 if axis is None else int(np.asarray(axis).reshape(-1)[0])
    a = normalize_axis(a, rank, "DFT axis")
    if a == rank - 1:
        raise ShapeError("DFT: the last axis holds (real, imaginary) and cannot be transformed")
    return a


def _dft_size(n: Dim, dft_length: Any, inverse: int, onesided: int) -> Dim:
    if dft_length is not None:
        return int(np.asarray(dft_length).reshape(-1)[0])
    if inverse and onesided:
        return None if not isinstance(n, int) else 2 * (n - 1)
    return n


def _dft(
    x: np.ndarray,
    dft_length: np.ndarray | None = None,
    axis: np.ndarray | None = None,
    *,
    inverse: int = 0,
    onesided: int = 0,
) -> np.ndarray:
    a = _dft_axis(axis, x.ndim)
    z = _complex(x)
    size = _dft_size(x.shape[a], dft_length, inverse, onesided)
    assert isinstance(size, int)  # a kernel sees concrete shapes
    if inverse and onesided:  # IRFFT: one-sided spectrum in, real signal out
        return np.fft.irfft(z, n=size, axis=a)[..., None].astype(x.dtype)
    y = (np.fft.ifft if inverse else np.fft.fft)(z, n=size, axis=a)
    if onesided:
        y = y.take(np.arange(size // 2 + 1), axis=a)
    return _pairs(y, x.dtype)


def _dft_infer(
    ctx: InferContext,
    x: TensorType,
    dft_length: TensorType | None = None,
    axis: TensorType | None = None,
    *,
    inverse: int = 0,
    onesided: int = 0,
) -> TensorType:
    check_dtype(x, D.FLOATING, "DFT input")
    if x.shape is None:
        return TensorType(x.dtype, None)
    axis_value = ctx.value(2) if axis is not None else None
    if axis is not None and axis_value is None:
        return TensorType(
            x.dtype, (*(None,) * (len(x.shape) - 1), 1 if inverse and onesided else 2)
        )
    a = _dft_axis(axis_value, len(x.shape))
    size: Dim = None
    if dft_length is None or ctx.value(1) is not None:
        size = _dft_size(
            x.shape[a], ctx.value(1) if dft_length is not None else None, inverse, onesided
        )
    if onesided and not inverse and isinstance(size, int):
        size = size // 2 + 1
    elif onesided and not inverse:
        size = None
    out = list(x.shape)
    out[a] = size
    out[-1] = 1 if inverse and onesided else 2
    return TensorType(x.dtype, tuple(out))


def _dft_vjp(
    ctx: VjpContext,
    g: Any,
    x: Any,
    dft_length: Any = None,
    axis: Any = None,
    *,
    inverse: int,
    onesided: int,
) -> list[Any]:
    """The adjoint of a (padded or truncated) DFT is the opposite DFT, scaled.

    ``y = F P x``: ``x`` padded/truncated to L, then ``F`` (``fft``, or ``ifft = conj(fft)/L``).
    Its adjoint is ``P^T F^H g`` with ``F^H = L * ifft`` (forward) or ``fft / L`` (inverse).
    A one-sided output is the full spectrum truncated, so ``g`` is zero-padded back first.
    """
    if not ctx.needs_input_grad[0]:
        return [None, None, None]
    if inverse and onesided:
        raise UnsupportedOpError("DFT vjp: the IRFFT form (inverse and onesided) has no rule")
    a = _dft_axis(None if axis is None else _known(axis), x.ndim)
    n = x.shape[a]
    size = _dft_size(n, None if dft_length is None else _known(dft_length), inverse, onesided)
    if not isinstance(size, int) or not isinstance(n, int):
        raise UnsupportedOpError("DFT vjp: needs static signal and dft lengths")
    if onesided:
        g = _resize_axis(g, a, g.shape[a], size)
    gx = op.DFT(g, None, ints(a), inverse=1 - inverse)
    gx = op.Mul(gx, scalar(1.0 / size if inverse else float(size), gx))
    gx = _resize_axis(gx, a, size, n)
    if x.shape[-1] == 1:  # a real signal: only the real part of the cotangent
        gx = op.Slice(gx, ints([0]), ints([1]), ints([-1]))
    return [gx, None, None]


def _known(v: Any) -> np.ndarray:
    """An int operand's value, which the DFT rule needs (see ``known_value``)."""
    value = known_value(v)
    if value is None:
        raise UnsupportedOpError("DFT vjp: dft_length and axis must be known constants")
    return value


def _resize_axis(t: Any, axis: int, have: int, want: int) -> Any:
    """``t`` truncated or zero-padded at the end of ``axis`` from ``have`` to ``want``."""
    if want < have:
        return op.Slice(t, ints([0]), ints([want]), ints([axis]))
    if want > have:
        pads = [0] * (2 * t.ndim)
        pads[t.ndim + axis] = want - have
        return op.Pad(t, ints(pads))
    return t


# DFT-17's axis attribute defaulted to 1; DFT-20's input defaults to -2.
_DFT_AXIS = AttrInput("axis", 2, "int", 20, default=1)
register(OpDef("DFT", 20, _dft, _dft_infer, _dft_vjp, legacy=Legacy(inputs=(_DFT_AXIS,))))


# ---------------------------------------------------------------- STFT


def _stft(
    signal: np.ndarray,
    frame_step: np.ndarray,
    window: np.ndarray | None = None,
    frame_length: np.ndarray | None = None,
    *,
    onesided: int = 1,
) -> np.ndarray:
    step = int(frame_step)
    length = _frame_length(signal.shape[1], window, frame_length)
    z = _complex(signal)  # (batch, samples)
    frames = sliding_window_view(z, length, axis=1)[:, ::step]  # (batch, frames, length)
    if window is not None:
        frames = frames * window.astype(frames.real.dtype)
    y = np.fft.fft(frames, axis=-1)
    if onesided:
        y = y[..., : length // 2 + 1]
    return _pairs(y, signal.dtype)


def _frame_length(samples: Any, window: Any, frame_length: Any) -> Any:
    if frame_length is not None:
        return int(np.asarray(frame_length))
    if window is not None:
        return int(window.shape[0])
    return samples


def _stft_infer(
    ctx: InferContext,
    signal: TensorType,
    frame_step: TensorType,
    window: TensorType | None = None,
    frame_length: TensorType | None = None,
    *,
    onesided: int = 1,
) -> TensorType:
    check_dtype(signal, D.FLOATING, "STFT signal")
    if signal.shape is None:
        return TensorType(signal.dtype, None)
    last = signal.shape[-1] if signal.shape else None
    if len(signal.shape) != 3 or (isinstance(last, int) and last not in (1, 2)):
        raise ShapeError(f"STFT: signal must be (batch, samples, 1 or 2), got {signal}")
    step = const_ints(ctx, 1)
    length: Dim = None
    if frame_length is not None:
        known = const_ints(ctx, 3)
        length = None if known is None else known[0]
    elif window is not None and window.shape is not None:
        length = window.shape[0]
    elif window is None:
        length = signal.shape[1]
    samples = signal.shape[1]
    if step is not None and step[0] < 1:
        raise ShapeError(f"STFT: frame_step must be positive, got {step[0]}")
    if isinstance(length, int) and length < 1:
        raise ShapeError(f"STFT: the frame length must be positive, got {length}")
    if isinstance(length, int) and isinstance(samples, int) and length > samples:
        raise ShapeError(f"STFT: frames of {length} samples do not fit a signal of {samples}")
    frames: Dim = None
    if step is not None and isinstance(length, int) and isinstance(samples, int):
        frames = 1 + (samples - length) // step[0]
    bins: Dim = length
    if onesided and isinstance(length, int):
        bins = length // 2 + 1
    elif onesided:
        bins = None
    return TensorType(signal.dtype, (signal.shape[0], frames, bins, 2))


register(
    OpDef(
        "STFT",
        17,
        _stft,
        _stft_infer,
        None,
        no_vjp="not provided: STFT is used for feature extraction before any trainable layer",
    )
)


# ---------------------------------------------------------------- windows


def _window_fn(terms: tuple[float, ...]) -> Any:
    """A cosine-sum window ``sum_k (-1)^k a_k cos(2 pi k n / N)``."""

    def kernel(size: np.ndarray, *, output_datatype: int = 1, periodic: int = 1) -> np.ndarray:
        count = int(size)
        denom = count if periodic else count - 1
        n = np.arange(count, dtype=np.float64)
        w = np.zeros(count)
        for k, a in enumerate(terms):
            w = w + (-1) ** k * a * np.cos(2 * np.pi * k * n / denom)
        return w.astype(D.from_onnx(output_datatype))

    return kernel


def _window_infer(
    ctx: InferContext, size: TensorType, *, output_datatype: int = 1, periodic: int = 1
) -> TensorType:
    check_dtype(size, {D.int32, D.int64}, "window size")
    known = const_ints(ctx, 0)
    return TensorType(D.from_onnx(output_datatype), (None if known is None else known[0],))


_NO_WINDOW_VJP = "the only input is an integer size"
for _name, _terms in (
    ("HannWindow", (0.5, 0.5)),
    ("HammingWindow", (25 / 46, 21 / 46)),
    ("BlackmanWindow", (0.42, 0.5, 0.08)),
):
    register(OpDef(_name, 17, _window_fn(_terms), _window_infer, None, no_vjp=_NO_WINDOW_VJP))


# ---------------------------------------------------------------- MelWeightMatrix


def _mel_weight_matrix(
    num_mel_bins: np.ndarray,
    dft_length: np.ndarray,
    sample_rate: np.ndarray,
    lower_edge_hertz: np.ndarray,
    upper_edge_hertz: np.ndarray,
    *,
    output_datatype: int = 1,
) -> np.ndarray:
    # The same operations, in the same dtypes, as ONNX's reference: the floor division
    # makes the bin edges sensitive to the last bit.
    mels = int(num_mel_bins)
    bins = int(dft_length) // 2 + 1
    edges = np.arange(0, mels + 2)
    low = 2595 * np.log1p(lower_edge_hertz / 700) / np.log(10)
    high = 2595 * np.log1p(upper_edge_hertz / 700) / np.log(10)
    step = (high - low) / edges.shape[0]
    hz = 700 * np.expm1((edges * step + low) / 2595 * np.log(10))
    edge = (((dft_length + 1) * hz) // sample_rate).astype(np.int64)
    left, center, right = edge[:-2], edge[1:-1], edge[2:]
    j = np.arange(bins)[:, None]
    rise = np.where(center > left, center - left, 1)
    fall = np.where(right > center, right - center, 1)
    out = np.where((j >= left) & (j <= center), (j - left) / rise, 0.0)
    out = np.where((center == left) & (j == center), 1.0, out)
    out = np.where((right > center) & (j >= center) & (j < right), (right - j) / fall, out)
    return out.astype(D.from_onnx(output_datatype))


def _mel_weight_matrix_infer(
    ctx: InferContext, *types: TensorType, output_datatype: int = 1
) -> TensorType:
    mels, length = const_ints(ctx, 0), const_ints(ctx, 1)
    shape = (None if length is None else length[0] // 2 + 1, None if mels is None else mels[0])
    return TensorType(D.from_onnx(output_datatype), shape)


register(
    OpDef(
        "MelWeightMatrix",
        17,
        _mel_weight_matrix,
        _mel_weight_matrix_infer,
        None,
        no_vjp="a constant built from integer sizes and band edges",
    )
)


# ---------------------------------------------------------------- Det


def _det(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.linalg.det(x.astype(np.float64))).astype(x.dtype)


def _det_infer(ctx: InferContext, x: TensorType) -> TensorType:
    check_dtype(x, D.FLOATING, "Det input")
    if x.shape is None:
        return TensorType(x.dtype, None)
    if len(x.shape) < 2:
        raise ShapeError(f"Det: the input must be [..., M, M], got {list(x.shape)}")
    return TensorType(x.dtype, tuple(x.shape[:-2]))


register(
    OpDef(
        "Det",
        22,
        _det,
        _det_infer,
        None,
        no_vjp="d det(X) = det(X) inv(X)^T needs a matrix inverse, which no registry op gives",
    )
)


# ---------------------------------------------------------------- Unique


def _unique(
    x: np.ndarray,
    *,
    axis: int | None = None,
    sorted: int = 1,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    if axis is None:
        y, first, inverse, counts = np.unique(x.reshape(-1), True, True, True)
        a = 0
    else:
        a = normalize_axis(axis, x.ndim, "Unique axis")
        y, first, inverse, counts = np.unique(x, True, True, True, axis=a)
    inverse = inverse.reshape(-1)
    if not sorted:  # order of first occurrence
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        first, inverse, counts = first[order], rank[inverse], counts[order]
        y = np.take(x.reshape(-1) if axis is None else x, first, axis=a)
    i64 = np.int64
    return y, first.astype(i64), inverse.astype(i64), counts.astype(i64)


def _unique_infer(
    ctx: InferContext,
    x: TensorType,
    *,
    axis: int | None = None,
    sorted: int = 1,
) -> tuple[TensorType, ...]:
    value = ctx.value(0)
    if value is not None:
        outs = _unique(value, axis=axis, sorted=sorted)
        return tuple(TensorType(o.dtype, o.shape) for o in outs)
    i64 = D.int64
    y_shape: tuple[Dim, ...] | None
    if x.shape is None:
        y_shape = None if axis is not None else (None,)
        return (TensorType(x.dtype, y_shape), *(TensorType(i64, (None,)),) * 3)
    if axis is None:
        static = all(isinstance(d, int) for d in x.shape)
        size: Dim = int(np.prod(np.asarray(x.shape, dtype=np.int64))) if static else None
        y_shape = (None,)
        n = size
    else:
        a = normalize_axis(axis, len(x.shape), "Unique axis")
        y_shape = tuple(None if i == a else d for i, d in enumerate(x.shape))
        n = x.shape[a]
    return (
        TensorType(x.dtype, y_shape),
        TensorType(i64, (None,)),
        TensorType(i64, (n,)),
        TensorType(i64, (None,)),
    )


register(
    OpDef(
        "Unique",
        11,
        _unique,
        _unique_infer,
        None,
        no_vjp="outputs are a selection decided by equality, and integer indices and counts",
        num_outputs=4,
    )
)


# ---------------------------------------------------------------- ReverseSequence


def _reverse_sequence(
    x: np.ndarray, sequence_lens: np.ndarray, *, batch_axis: int = 1, time_axis: int = 0
) -> np.ndarray:
    t = np.arange(x.shape[time_axis])
    lens = sequence_lens.astype(np.int64)[:, None]  # (batch, time)
    src = np.where(t < lens, lens - 1 - t, t)
    # Lay (batch, time) out along the input's axes, then gather along time.
    shape = [1] * x.ndim
    shape[batch_axis], shape[time_axis] = src.shape[0], src.shape[1]
    idx = src if batch_axis < time_axis else src.T
    return np.take_along_axis(x, idx.reshape(shape), axis=time_axis)


def _reverse_sequence_infer(
    ctx: InferContext, x: TensorType, sequence_lens: TensorType, **attrs: Any
) -> TensorType:
    check_dtype(sequence_lens, {D.int64}, "ReverseSequence sequence_lens")
    return x


def _reverse_sequence_vjp(
    ctx: VjpContext, g: Any, x: Any, sequence_lens: Any, *, batch_axis: int, time_axis: int
) -> list[Any]:
    # Reversing each prefix is a permutation that is its own inverse (and transpose).
    return [
        op.ReverseSequence(g, sequence_lens, batch_axis=batch_axis, time_axis=time_axis),
        None,
    ]


register(
    OpDef(
        "ReverseSequence",
        10,
        _reverse_sequence,
        _reverse_sequence_infer,
        _reverse_sequence_vjp,
        saves="others",
    )
)
