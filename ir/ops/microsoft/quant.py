"""``com.microsoft`` ``DynamicQuantizeLSTM``: the LSTM onnxruntime's ``quantize_dynamic`` writes.

Inputs are ONNX ``LSTM``'s, then ``W_scale, W_zero_point, R_scale, R_zero_point``; ``W`` and
``R`` are int8 or uint8 and laid out ``[num_directions, input or hidden, 4 * hidden]`` (ONNX
LSTM's transposed), with scales and zero points per direction (``[num_directions]``) or per
output channel (``[num_directions, 4 * hidden]``). graphcap dequantizes the weights,
``(W - zero_point) * scale``, and runs ONNX ``LSTM``'s kernel and shape rule on them.

onnxruntime besides quantizes the activations on the fly: X over all steps and each step's
hidden state to uint8 with a range taken per matrix product (and, with its thread pool, per
slice of the batch it hands each thread). graphcap computes those products in float instead,
so its results differ from onnxruntime's by that rounding (about 2e-3 on activations of
order 1; ``tests/ir/test_microsoft_ops.py`` compares within 1e-2). No vjp: the weights are
integers; differentiate the float model before quantizing it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.dtypes import int8, uint8
from ir.errors import ShapeError
from ir.ops import recurrent  # noqa: F401  (registers ONNX LSTM, whose rules serve here)
from ir.ops.infer import check_dtype
from ir.ops.microsoft.common import DOMAIN, floats
from ir.ops.registry import InferContext, OpDef, get, register
from ir.types import TensorType

_LSTM = get("LSTM")
_QUANTIZED = (int8, uint8)


def _dequantize(w: np.ndarray, scale: np.ndarray, zero_point: np.ndarray, what: str) -> np.ndarray:
    """``[dirs, k, 4h]`` integers as float ``[dirs, 4h, k]`` (ONNX LSTM's layout)."""
    if (
        w.ndim != 3
        or scale.shape != zero_point.shape
        or scale.shape
        not in (
            (w.shape[0],),
            (w.shape[0], w.shape[2]),
        )
    ):
        raise ShapeError(
            f"DynamicQuantizeLSTM: {what} {list(w.shape)} needs a scale and zero point of shape "
            f"[{w.shape[0]}] or [{w.shape[0]}, {w.shape[-1]}], got {list(scale.shape)} and "
            f"{list(zero_point.shape)}"
        )
    s = scale.reshape(w.shape[0], 1, -1)
    z = zero_point.astype(np.float32).reshape(w.shape[0], 1, -1)
    return ((w.astype(np.float32) - z) * s).astype(scale.dtype).transpose(0, 2, 1)


def _dq_lstm(
    x: np.ndarray,
    w: np.ndarray,
    r: np.ndarray,
    b: np.ndarray | None,
    sequence_lens: np.ndarray | None,
    initial_h: np.ndarray | None,
    initial_c: np.ndarray | None,
    p: np.ndarray | None,
    w_scale: np.ndarray,
    w_zero_point: np.ndarray,
    r_scale: np.ndarray,
    r_zero_point: np.ndarray,
    *,
    activation_alpha: list[float] | None = None,
    activation_beta: list[float] | None = None,
    activations: list[str] | None = None,
    clip: float | None = None,
    direction: str = "forward",
    hidden_size: int | None = None,
    input_forget: int = 0,
) -> tuple[np.ndarray, ...]:
    wf = _dequantize(w, w_scale, w_zero_point, "W")
    rf = _dequantize(r, r_scale, r_zero_point, "R")
    attrs = _lstm_attrs(activation_alpha, activation_beta, activations, clip, direction)
    return _LSTM.kernel(
        x, wf, rf, b, sequence_lens, initial_h, initial_c, p,
        hidden_size=hidden_size, input_forget=input_forget, **attrs,
    )  # fmt: skip


def _lstm_attrs(
    alpha: list[float] | None,
    beta: list[float] | None,
    activations: list[str] | None,
    clip: float | None,
    direction: str,
) -> dict[str, Any]:
    given = {
        "activation_alpha": alpha,
        "activation_beta": beta,
        "activations": activations,
        "clip": clip,
        "direction": direction,
    }
    return {k: v for k, v in given.items() if v is not None}


def _dq_lstm_infer(
    ctx: InferContext,
    x: TensorType,
    w: TensorType,
    r: TensorType,
    b: TensorType | None,
    sequence_lens: TensorType | None,
    initial_h: TensorType | None,
    initial_c: TensorType | None,
    p: TensorType | None,
    w_scale: TensorType,
    w_zero_point: TensorType,
    r_scale: TensorType,
    r_zero_point: TensorType,
    *,
    hidden_size: int | None = None,
    input_forget: int = 0,
    **attrs: Any,
) -> tuple[TensorType, ...]:
    for t, what in [(w, "W"), (r, "R"), (w_zero_point, "W_zero_point")]:
        check_dtype(t, _QUANTIZED, f"DynamicQuantizeLSTM {what}")
    check_dtype(r_zero_point, _QUANTIZED, "DynamicQuantizeLSTM R_zero_point")
    floats((x, b, initial_h, initial_c, p, w_scale, r_scale), "DynamicQuantizeLSTM floats")
    wf, rf = (_as_float(t, x) for t in (w, r))
    given = _lstm_attrs(
        attrs["activation_alpha"],
        attrs["activation_beta"],
        attrs["activations"],
        attrs["clip"],
        attrs["direction"],
    )
    full = _LSTM.full_attrs({**given, "hidden_size": hidden_size, "input_forget": input_forget})
    return _LSTM.infer(ctx, x, wf, rf, b, sequence_lens, initial_h, initial_c, p, **full)  # type: ignore[return-value]


def _as_float(w: TensorType, x: TensorType) -> TensorType:
    """An integer ``[dirs, k, 4h]`` weight's type as ONNX LSTM's float ``[dirs, 4h, k]``."""
    if w.shape is None or len(w.shape) != 3:
        return TensorType(x.dtype, w.shape)
    return TensorType(x.dtype, (w.shape[0], w.shape[2], w.shape[1]))


register(
    OpDef(
        "DynamicQuantizeLSTM",
        1,
        _dq_lstm,
        _dq_lstm_infer,
        None,
        no_vjp="a quantized inference op (integer weights): differentiate the float model",
        domain=DOMAIN,
        num_outputs=3,
        optional_inputs=(3, 4, 5, 6, 7),  # B, sequence_lens, initial_h, initial_c, P
    )
)
