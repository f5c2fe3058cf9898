"""Recurrent layers as single ONNX nodes: RNN, GRU and LSTM, with sequence_lens.

Each op is one layer of ONNX's ``RNN``/``GRU``/``LSTM`` (opset 14; version 22 only adds
element types), forward, reverse or bidirectional. Inputs ``X`` are ``[seq, batch, input]``
(``layout=0``) or ``[batch, seq, input]`` (``layout=1``); ``W``/``R`` stack the gates' weights
along axis 1; ``B`` is ``[Wb, Rb]`` concatenated. Outputs: ``Y`` ``[seq, num_dir, batch,
hidden]`` (layout 1: ``[batch, seq, num_dir, hidden]``), ``Y_h`` (and ``Y_c``) ``[num_dir,
batch, hidden]`` (layout 1: ``[batch, num_dir, hidden]``). Kernels are vectorised over the
batch and loop over time.

Gate order is ONNX's, not PyTorch's, so weights moved from ``torch.nn`` must be reordered:

- LSTM rows are ``i, o, f, c``; PyTorch's ``weight_ih_l0`` rows are ``i, f, g, o``
  (``g`` is ONNX's ``c``). ``B`` is ``[bias_ih, bias_hh]`` reordered the same way.
- GRU rows are ``z, r, h``; PyTorch's are ``r, z, n``. PyTorch's GRU is ONNX's with
  ``linear_before_reset=1`` (the reset gate multiplies ``h @ R_h^T + Rb_h``).
- RNN has one gate; PyTorch's ``nonlinearity="relu"`` is ``activations=["Relu"]``.
- PyTorch's ``batch_first=True`` is ``layout=1``, but onnxruntime's CPU kernels refuse
  ``layout=1`` ("Batchwise recurrent operations are not supported") and have no float64
  kernels: an exporter should transpose around a ``layout=0`` node instead.

``sequence_lens`` (int32 ``[batch]``): sequence ``b`` is ``X[:len_b, b]``. ``Y`` is zero past
each length, ``Y_h``/``Y_c`` are the state at the last valid step (the reverse direction of
sequence ``b`` runs from position ``len_b - 1`` down to 0), and a sequence of length 0 has
zero final states, as onnxruntime computes. Activations are ONNX's list (``Relu, Tanh,
Sigmoid, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign,
Softplus``, case-insensitive); ``activation_alpha``/``_beta`` are consumed in order by the
functions that take them, with onnxruntime's defaults when the list runs out. ``clip``
bounds every activation's input, except ``h``'s (LSTM's cell output), to ``[-clip, clip]``.

Backward: the vjp of each op is ONE node of a dedicated op, ``LSTMGrad``/``GRUGrad``/
``RNNGrad`` in the custom domain ``ai.graphcap``, whose NumPy kernel recomputes the forward
and runs backpropagation through time. Written with per-step registry ops instead, the
backward would unroll into ``seq`` copies of the cell on a graph (and could not follow a
symbolic sequence length), which defeats exporting one native node per layer. A graph
holding a ``*Grad`` node runs on graphcap's interpreter; for other runtimes,
``ir.lower_recurrent.lower_recurrent_grads`` (which ``ir.grad`` calls) rewrites each one into
standard ONNX ops around two ``Scan`` loops per direction. ``*Grad`` ops have no vjp, so
second-order gradients through a recurrence raise a clear error. Their inputs are the
forward's, followed by the gradients of its outputs (any may be absent, meaning zero); their
outputs are the gradients of every float input, absent optional ones included (as if zero).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ir.dtypes import FLOATING, int32
from ir.errors import ShapeError
from ir.ops.infer import check_dtype, same_dtype
from ir.ops.recurrent_kernels import (
    GRU,
    LSTM,
    RNN,
    GRUAttrs,
    Kind,
    LSTMAttrs,
    RecurrentAttrs,
    RNNAttrs,
    backward,
    forward,
)
from ir.ops.registry import OpDef, VjpContext, register, with_attrs
from ir.types import Dim, TensorType

DOMAIN = "ai.graphcap"

# ---------------------------------------------------------------- registry entries
#
# Kernel signatures spell out ONNX's inputs (lower-case, so the names stay PEP 8); their
# attributes are RecurrentAttrs' fields, which with_attrs adds and the registry reads off.
# The *Grad kernels share their forward's attributes.


@with_attrs(LSTMAttrs)
def _lstm(
    x: np.ndarray,
    w: np.ndarray,
    r: np.ndarray,
    b: np.ndarray | None = None,
    sequence_lens: np.ndarray | None = None,
    initial_h: np.ndarray | None = None,
    initial_c: np.ndarray | None = None,
    p: np.ndarray | None = None,
    *,
    attrs: LSTMAttrs,
) -> tuple[np.ndarray, ...]:
    """ONNX LSTM (14): one layer; see the module docstring."""
    return forward(LSTM, (x, w, r, b, sequence_lens, initial_h, initial_c, p), attrs)


@with_attrs(LSTMAttrs)
def _lstm_grad(
    x: np.ndarray,
    w: np.ndarray,
    r: np.ndarray,
    b: np.ndarray | None = None,
    sequence_lens: np.ndarray | None = None,
    initial_h: np.ndarray | None = None,
    initial_c: np.ndarray | None = None,
    p: np.ndarray | None = None,
    grad_y: np.ndarray | None = None,
    grad_y_h: np.ndarray | None = None,
    grad_y_c: np.ndarray | None = None,
    *,
    attrs: LSTMAttrs,
) -> tuple[np.ndarray, ...]:
    """ai.graphcap LSTMGrad (1): the gradients of LSTM's inputs."""
    inputs = (x, w, r, b, sequence_lens, initial_h, initial_c, p)
    return backward(LSTM, inputs, (grad_y, grad_y_h, grad_y_c), attrs)


@with_attrs(GRUAttrs)
def _gru(
    x: np.ndarray,
    w: np.ndarray,
    r: np.ndarray,
    b: np.ndarray | None = None,
    sequence_lens: np.ndarray | None = None,
    initial_h: np.ndarray | None = None,
    *,
    attrs: GRUAttrs,
) -> tuple[np.ndarray, ...]:
    """ONNX GRU (14): one layer; see the module docstring."""
    return forward(GRU, (x, w, r, b, sequence_lens, initial_h), attrs)


@with_attrs(GRUAttrs)
def _gru_grad(
    x: np.ndarray,
    w: np.ndarray,
    r: np.ndarray,
    b: np.ndarray | None = None,
    sequence_lens: np.ndarray | None = None,
    initial_h: np.ndarray | None = None,
    grad_y: np.ndarray | None = None,
    grad_y_h: np.ndarray | None = None,
    *,
    attrs: GRUAttrs,
) -> tuple[np.ndarray, ...]:
    """ai.graphcap GRUGrad (1): the gradients of GRU's inputs."""
    return backward(GRU, (x, w, r, b, sequence_lens, initial_h), (grad_y, grad_y_h), attrs)


@with_attrs(RNNAttrs)
def _rnn(
    x: np.ndarray,
    w: np.ndarray,
    r: np.ndarray,
    b: np.ndarray | None = None,
    sequence_lens: np.ndarray | None = None,
    initial_h: np.ndarray | None = None,
    *,
    attrs: RNNAttrs,
) -> tuple[np.ndarray, ...]:
    """ONNX RNN (14): one layer; see the module docstring."""
    return forward(RNN, (x, w, r, b, sequence_lens, initial_h), attrs)


@with_attrs(RNNAttrs)
def _rnn_grad(
    x: np.ndarray,
    w: np.ndarray,
    r: np.ndarray,
    b: np.ndarray | None = None,
    sequence_lens: np.ndarray | None = None,
    initial_h: np.ndarray | None = None,
    grad_y: np.ndarray | None = None,
    grad_y_h: np.ndarray | None = None,
    *,
    attrs: RNNAttrs,
) -> tuple[np.ndarray, ...]:
    """ai.graphcap RNNGrad (1): the gradients of RNN's inputs."""
    return backward(RNN, (x, w, r, b, sequence_lens, initial_h), (grad_y, grad_y_h), attrs)


def _layer_dims(
    kind: Kind, x: TensorType, r: TensorType, attrs: RecurrentAttrs
) -> tuple[Dim, Dim, int, Dim]:
    """(seq, batch, num_directions, hidden) as far as the types tell."""
    nd = len(attrs.reverse)
    hidden: Dim = attrs.hidden_size
    if hidden is None and r.shape is not None and len(r.shape) == 3:
        hidden = r.shape[2]
    if x.shape is None:
        return None, None, nd, hidden
    if len(x.shape) != 3:
        raise ShapeError(f"{kind.op_type}: X must be 3-D, got {list(x.shape)}")
    seq, batch = (x.shape[1], x.shape[0]) if attrs.layout else x.shape[:2]
    return seq, batch, nd, hidden


def _check_types(kind: Kind, types: Sequence[TensorType | None]) -> np.dtype:
    floats = [t for i, t in enumerate(types) if i != 4]
    dtype = same_dtype(floats, f"{kind.op_type} inputs")
    check_dtype(types[0], FLOATING, f"{kind.op_type} X")  # type: ignore[arg-type]
    if len(types) > 4 and types[4] is not None:
        check_dtype(types[4], (int32,), f"{kind.op_type} sequence_lens")
    return dtype


def _infer(kind: Kind, types: Sequence[TensorType | None], attrs: RecurrentAttrs) -> Any:
    x, r = types[0], types[2]
    if x is None or r is None:  # not an assert: it must hold under python -O too
        raise ShapeError(f"{kind.op_type}: inputs X and R are required")
    dtype = _check_types(kind, types)
    seq, batch, nd, n = _layer_dims(kind, x, r, attrs)
    y: tuple[Dim, ...]
    state: tuple[Dim, ...]
    if attrs.layout:
        y, state = (batch, seq, nd, n), (batch, nd, n)
    else:
        y, state = (seq, nd, batch, n), (nd, batch, n)
    return (TensorType(dtype, y), *(TensorType(dtype, state) for _ in range(kind.states)))


def _infer_grad(kind: Kind, types: Sequence[TensorType | None], attrs: RecurrentAttrs) -> Any:
    x, w, r = types[:3]
    if x is None or w is None or r is None:
        raise ShapeError(f"{kind.op_type}: inputs X, W and R are required")
    dtype = _check_types(kind, types)
    seq, batch, nd, n = _layer_dims(kind, x, r, attrs)
    del seq

    def times(k: int) -> Dim:
        return k * n if isinstance(n, int) else None

    state: tuple[Dim, ...] = (batch, nd, n) if attrs.layout else (nd, batch, n)
    out = [x, w, r, TensorType(dtype, (nd, times(2 * kind.gates)))]
    out += [TensorType(dtype, state)] * kind.states
    if kind.op_type == "LSTM":
        out.append(TensorType(dtype, (nd, times(3))))
    return tuple(out)


def _vjp(
    grad_op: OpDef, ctx: VjpContext, grads: Any, inputs: Sequence[Any], attrs: dict[str, Any]
) -> list[Any]:
    """The gradients of a layer's inputs: one node of its ``*Grad`` op."""
    needs = [*ctx.needs_input_grad, *[False] * len(inputs)]
    wanted = [x is not None and need for x, need in zip(inputs, needs, strict=False)]
    wanted[4] = False  # sequence_lens: integers
    if not any(wanted):
        return [None] * len(inputs)
    given = {k: v for k, v in attrs.items() if v is not None}  # unset ones stay unset
    grad_inputs = list(grad_op(*inputs, *grads, **given))
    grad_inputs.insert(4, None)
    return [g if keep else None for g, keep in zip(grad_inputs, wanted, strict=True)]


def _pad(values: Sequence[Any], n: int) -> tuple[Any, ...]:
    """``values`` with absent trailing optional inputs made explicit."""
    return (*values, *[None] * (n - len(values)))


def _entry(kind: Kind, forward: Callable[..., Any], backward: Callable[..., Any]) -> None:
    n_in = 8 if kind.op_type == "LSTM" else 6
    grad_op = register(
        OpDef(
            f"{kind.op_type}Grad",
            1,
            backward,
            lambda ctx, *types, **attrs: _infer_grad(kind, types, kind.attrs(**attrs)),
            None,
            no_vjp="second order through recurrences is not supported",
            domain=DOMAIN,
            num_outputs=n_in - 1,
        )
    )
    register(
        OpDef(
            kind.op_type,
            14,
            forward,
            lambda ctx, *types, **attrs: _infer(kind, _pad(types, n_in), kind.attrs(**attrs)),
            lambda ctx, grads, *inputs, **attrs: _vjp(
                grad_op, ctx, grads, _pad(inputs, n_in), attrs
            ),
            num_outputs=1 + kind.states,
        )
    )


_entry(LSTM, _lstm, _lstm_grad)
_entry(GRU, _gru, _gru_grad)
_entry(RNN, _rnn, _rnn_grad)

# How the ai.graphcap ops look to ONNX, for whoever registers their schemas with onnx (the
# writer, the op tests): the op whose attributes they share, their inputs past the
# forward's, and their outputs. Every input past ``X, W, R`` is optional.
GRAD_SCHEMAS: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "LSTMGrad": (
        "LSTM",
        ("grad_Y", "grad_Y_h", "grad_Y_c"),
        ("grad_X", "grad_W", "grad_R", "grad_B", "grad_initial_h", "grad_initial_c", "grad_P"),
    ),
    "GRUGrad": (
        "GRU",
        ("grad_Y", "grad_Y_h"),
        ("grad_X", "grad_W", "grad_R", "grad_B", "grad_initial_h"),
    ),
    "RNNGrad": (
        "RNN",
        ("grad_Y", "grad_Y_h"),
        ("grad_X", "grad_W", "grad_R", "grad_B", "grad_initial_h"),
    ),
}
