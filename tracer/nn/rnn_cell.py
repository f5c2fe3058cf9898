"""``RNNCell``, ``LSTMCell`` and ``GRUCell``: one time step, with PyTorch's interface.

Parameters are PyTorch's (``weight_ih`` ``[gates * hidden, input]``, ``weight_hh``,
``bias_ih``, ``bias_hh``, all drawn from U(-1/sqrt(hidden), 1/sqrt(hidden))), so weights
move by name. A step is one ONNX ``RNN``/``LSTM``/``GRU`` node over a sequence of length
1, with the weights reordered into ONNX's gate order by registry ops (as ``nn.LSTM``
does), so it exports as one native node and gradients reach the PyTorch-layout weights.
"""

from __future__ import annotations

import math
from typing import Any

import tracer
from ir.ops.registry import op
from tracer._creation import empty
from tracer.nn._factory import param_dtype
from tracer.nn.module import Module, Parameter
from tracer.nn.rnn import _ONNX_ORDER
from tracer.tensor import Tensor

__all__ = ["GRUCell", "LSTMCell", "RNNCell"]


class RNNCellBase(Module):
    """The parameters and the one-step run shared by the three cells."""

    _mode = ""
    _gates = 1

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, device: Any = None,
        dtype: Any = None,
    ) -> None:  # fmt: skip
        super().__init__()
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.bias = bias
        dt = param_dtype(device, dtype)
        rows = self._gates * hidden_size
        self.weight_ih = Parameter(empty(rows, input_size, dtype=dt))
        self.weight_hh = Parameter(empty(rows, hidden_size, dtype=dt))
        if bias:
            self.bias_ih = Parameter(empty(rows, dtype=dt))
            self.bias_hh = Parameter(empty(rows, dtype=dt))
        else:
            self.register_parameter("bias_ih", None)
            self.register_parameter("bias_hh", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Draw every parameter from U(-1/sqrt(hidden_size), 1/sqrt(hidden_size))."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        with tracer.no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound)

    def extra_repr(self) -> str:
        """PyTorch's settings line."""
        s = f"{self.input_size}, {self.hidden_size}"
        if not self.bias:
            s += ", bias=False"
        if getattr(self, "nonlinearity", "tanh") != "tanh":
            s += f", nonlinearity={self.nonlinearity}"
        return s

    def _reorder(self, w: Tensor) -> Tensor:
        order = _ONNX_ORDER[self._mode]
        if len(order) == 1:
            return w
        chunks = w.chunk(len(order), 0)
        return tracer.cat([chunks[i] for i in order])

    def _check(self, input: Tensor, states: tuple[Tensor | None, ...]) -> bool:
        """Whether ``input`` is batched; raises on ranks or sizes that do not fit."""
        name = type(self).__name__
        if input.ndim not in (1, 2):
            raise ValueError(f"{name}: Expected input to be 1D or 2D, got {input.ndim}D instead")
        if input.shape[-1] != self.input_size:
            raise ValueError(
                f"{name}: input has inconsistent input_size: got {input.shape[-1]} expected "
                f"{self.input_size}"
            )
        for h in states:
            if h is not None and (h.ndim != input.ndim or h.shape[-1] != self.hidden_size):
                raise ValueError(
                    f"{name}: Expected hidden of shape {[*input.shape[:-1], self.hidden_size]}, "
                    f"got {list(h.shape)}"
                )
        return input.ndim == 2

    def _step(
        self, input: Tensor, states: tuple[Tensor | None, ...], **attrs: Any
    ) -> tuple[Tensor, ...]:
        """Run one step; returns the new states (h, or h and c), shaped as given."""
        batched = self._check(input, states)
        x = input.unsqueeze(0) if batched else input.reshape(1, 1, -1)
        init = [
            None if h is None else (h.unsqueeze(0) if batched else h.reshape(1, 1, -1))
            for h in states
        ]
        w = self._reorder(self.weight_ih).unsqueeze(0)
        r = self._reorder(self.weight_hh).unsqueeze(0)
        b = None
        if self.bias_ih is not None:
            b = tracer.cat([self._reorder(self.bias_ih), self._reorder(self.bias_hh)]).unsqueeze(0)
        ops = {"LSTM": op.LSTM, "GRU": op.GRU}.get(self._mode, op.RNN)
        _, *finals = ops(x, w, r, b, None, *init, hidden_size=self.hidden_size, **attrs)
        # Y_h (and Y_c) are [num_directions=1, batch, hidden].
        return tuple(f.squeeze(0) if batched else f.reshape(-1) for f in finals)


class RNNCell(RNNCellBase):
    """``h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh)`` with ``act`` tanh or relu.

    Raises:
        ValueError: an unknown nonlinearity.
    """

    def __init__(
        self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
        device: Any = None, dtype: Any = None,
    ) -> None:  # fmt: skip
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity: {nonlinearity}. Select from 'tanh' or 'relu'.")
        self.nonlinearity = nonlinearity
        self._mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(input_size, hidden_size, bias, device, dtype)

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """One step from ``input`` ``[batch, input_size]`` (or ``[input_size]``) and ``hx``.

        ``hx`` defaults to zeros; returns the new hidden state.
        """
        attrs = {"activations": ["Relu"]} if self.nonlinearity == "relu" else {}
        (h,) = self._step(input, (hx,), **attrs)
        return h


class LSTMCell(RNNCellBase):
    """One LSTM step (gates i, f, g, o as PyTorch); one ONNX LSTM node."""

    _mode = "LSTM"
    _gates = 4

    def forward(
        self, input: Tensor, hx: tuple[Tensor, Tensor] | None = None
    ) -> tuple[Tensor, Tensor]:
        """One step from ``input`` and ``hx = (h, c)`` (zeros if None); returns ``(h', c')``.

        Raises:
            ValueError: ``hx`` is not a pair, or shapes that do not fit.
        """
        if hx is None:
            states: tuple[Tensor | None, ...] = (None, None)
        elif isinstance(hx, tuple | list) and len(hx) == 2:
            states = tuple(hx)
        else:
            raise ValueError("LSTMCell: hx must be a tuple (h_0, c_0)")
        h, c = self._step(input, states)
        return h, c


class GRUCell(RNNCellBase):
    """One GRU step (PyTorch's, ONNX GRU with ``linear_before_reset=1``)."""

    _mode = "GRU"
    _gates = 3

    def forward(self, input: Tensor, hx: Tensor | None = None) -> Tensor:
        """One step from ``input`` and ``hx`` (zeros if None); returns the new hidden state."""
        (h,) = self._step(input, (hx,), linear_before_reset=1)
        return h
