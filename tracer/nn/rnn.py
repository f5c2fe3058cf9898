"""Recurrent layers with PyTorch's interface: ``RNN``, ``LSTM`` and ``GRU``.

Each layer of a module is ONE registry node (ONNX ``RNN``/``GRU``/``LSTM``), so a traced
model exports one native node per layer instead of an unrolled loop, and eager autograd runs
the op's own backward. Parameters keep PyTorch's names, shapes, gate order and default
initialisation (``weight_ih_l0``, ``bias_hh_l1_reverse``, ... drawn from U(-1/√hidden,
1/√hidden)), so ``state_dict``s move between torch and graphcap by name. At every call the
weights are reordered into ONNX's gate order (LSTM ``ifgo`` -> ``iofc``, GRU ``rzn`` ->
``zrh`` with ``linear_before_reset=1``) with registry ops (``Split``/``Concat``), so the
gradients flow back to the PyTorch-layout parameters.

``forward`` takes a padded batch with ``lengths`` (an integer tensor of per-sequence
lengths), or PyTorch's :class:`~tracer.nn.utils.rnn.PackedSequence`, which is run as the
padded batch with its lengths and returned packed in the same layout (final states in the
caller's batch order, as PyTorch). Both lower to ONNX ``sequence_lens``. Padded positions
never leak into states or outputs: outputs past a sequence's length are zero and the final
states are those of its last valid step (the reverse direction starts at that step), as
``pack_padded_sequence`` followed by ``pad_packed_sequence(total_length=seq)`` gives in
PyTorch.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import tracer
from ir.ops.registry import op
from tracer.nn import functional as F  # noqa: N812 - PyTorch's customary name
from tracer.nn.module import Module, Parameter
from tracer.nn.utils.rnn import PackedSequence, pad_packed_sequence, repack
from tracer.tensor import Tensor

_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}
# PyTorch's gate chunks, in the order ONNX stacks them (LSTM i,f,g,o -> i,o,f,c; GRU r,z,n
# -> z,r,h).
_ONNX_ORDER = {"LSTM": (0, 3, 1, 2), "GRU": (1, 0, 2), "RNN_TANH": (0,), "RNN_RELU": (0,)}


class RNNBase(Module):
    """The machinery shared by :class:`RNN`, :class:`LSTM` and :class:`GRU`.

    Args:
        mode: ``"LSTM"``, ``"GRU"``, ``"RNN_TANH"`` or ``"RNN_RELU"``.
        input_size: features of each input step.
        hidden_size: features of the hidden state.
        num_layers: stacked layers; layer ``k > 0`` reads layer ``k - 1``'s output.
        bias: whether the layers have ``bias_ih``/``bias_hh``.
        batch_first: inputs and outputs are ``[batch, seq, feature]`` (states are not).
        dropout: dropout probability on the outputs of every layer but the last, in training.
        bidirectional: run each layer forward and backward and concatenate the outputs.
        dtype: the parameters' dtype (default float32).

    Raises:
        ValueError: a non-positive size, a dropout outside [0, 1], or an unknown mode.
    """

    def __init__(
        self,
        mode: str,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = None,
    ) -> None:
        super().__init__()
        if mode not in _GATES:
            raise ValueError(f"unknown RNN mode {mode!r}; expected one of {sorted(_GATES)}")
        for name, value in (("input_size", input_size), ("hidden_size", hidden_size)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not isinstance(num_layers, int) or num_layers <= 0:
            raise ValueError(f"num_layers must be a positive int, got {num_layers!r}")
        if not 0.0 <= float(dropout) <= 1.0:
            raise ValueError(f"dropout should be a number in [0, 1], got {dropout}")
        self.mode = mode
        self.input_size = input_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bias = bias
        self.batch_first = batch_first
        self.dropout = float(dropout)
        self.bidirectional = bidirectional
        if dropout > 0 and num_layers == 1:
            warnings.warn(
                "dropout option adds dropout after all but last recurrent layer, so non-zero "
                f"dropout expects num_layers greater than 1, but got dropout={dropout} and "
                f"num_layers={num_layers}",
                stacklevel=2,
            )
        self._make_parameters(tracer.float32 if dtype is None else dtype)
        self.reset_parameters()

    def _make_parameters(self, dtype: Any) -> None:
        """Register PyTorch's parameters, in PyTorch's order (layer, direction, kind)."""
        gates = _GATES[self.mode] * self.hidden_size
        for layer in range(self.num_layers):
            width = self.input_size if layer == 0 else self.hidden_size * self._num_directions
            for suffix in self._suffixes:
                shapes: dict[str, tuple[int, ...]] = {
                    "weight_ih": (gates, width),
                    "weight_hh": (gates, self.hidden_size),
                }
                if self.bias:
                    shapes |= {"bias_ih": (gates,), "bias_hh": (gates,)}
                for name, shape in shapes.items():
                    param = Parameter(tracer.empty(*shape, dtype=dtype))
                    setattr(self, f"{name}_l{layer}{suffix}", param)

    @property
    def _num_directions(self) -> int:
        return 2 if self.bidirectional else 1

    @property
    def _suffixes(self) -> tuple[str, ...]:
        return ("", "_reverse") if self.bidirectional else ("",)

    def flatten_parameters(self) -> None:
        """Accepted for PyTorch compatibility; a no-op (there is no cuDNN weight buffer)."""

    def reset_parameters(self) -> None:
        """Draw every parameter from U(-1/√hidden_size, 1/√hidden_size), as PyTorch does."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        with tracer.no_grad():
            for p in self.parameters():
                p.uniform_(-bound, bound)

    def extra_repr(self) -> str:
        """The constructor arguments that differ from the defaults."""
        s = f"{self.input_size}, {self.hidden_size}"
        if self.mode == "RNN_RELU":
            s += ", nonlinearity='relu'"
        for name, default in (
            ("num_layers", 1),
            ("bias", True),
            ("batch_first", False),
            ("dropout", 0.0),
            ("bidirectional", False),
        ):
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s

    # ------------------------------------------------------------ weights in ONNX's layout

    def _onnx_weights(self, layer: int) -> tuple[Tensor, Tensor, Tensor | None]:
        """Layer ``layer``'s ``W``, ``R`` and ``B`` in ONNX's gate order and layout."""
        ws, rs, bs = [], [], []
        for suffix in self._suffixes:
            ws.append(self._reorder(getattr(self, f"weight_ih_l{layer}{suffix}")))
            rs.append(self._reorder(getattr(self, f"weight_hh_l{layer}{suffix}")))
            if self.bias:
                b_ih = self._reorder(getattr(self, f"bias_ih_l{layer}{suffix}"))
                b_hh = self._reorder(getattr(self, f"bias_hh_l{layer}{suffix}"))
                bs.append(tracer.cat([b_ih, b_hh]))
        b = tracer.stack(bs) if bs else None
        return tracer.stack(ws), tracer.stack(rs), b

    def _reorder(self, w: Tensor) -> Tensor:
        order = _ONNX_ORDER[self.mode]
        if len(order) == 1:
            return w
        chunks = w.chunk(len(order), 0)
        return tracer.cat([chunks[i] for i in order])

    # ------------------------------------------------------------ forward

    def _check_input(self, x: Tensor) -> bool:
        """Whether ``x`` is batched; raises on a wrong rank or feature size."""
        if not isinstance(x, Tensor):
            raise TypeError(f"{type(self).__name__}: input must be a tensor, got {type(x)}")
        if x.ndim not in (2, 3):
            raise ValueError(
                f"{type(self).__name__}: expected a 2-D (unbatched) or 3-D input, "
                f"got {x.ndim}-D with shape {list(x.shape)}"
            )
        if x.shape[-1] != self.input_size:
            raise ValueError(
                f"{type(self).__name__}: input.size(-1) must be equal to input_size. "
                f"Expected {self.input_size}, got {x.shape[-1]}"
            )
        return x.ndim == 3

    def _check_state(self, h: Tensor, batch: Any, name: str) -> None:
        expected = (self.num_layers * self._num_directions, self.hidden_size)
        shape = tuple(h.shape)
        if h.ndim != 3 or (shape[0], shape[2]) != expected:
            raise ValueError(
                f"{type(self).__name__}: expected {name} of shape "
                f"[{expected[0]}, batch={batch}, {expected[1]}], got {list(shape)}"
            )

    def _layer_state(self, state: Tensor | None, layer: int) -> Tensor | None:
        """Layer ``layer``'s rows of a stacked initial state."""
        if state is None or self.num_layers == 1:
            return state
        nd = self._num_directions
        return state[layer * nd : (layer + 1) * nd]

    def _run(
        self, x: Tensor, states: list[Tensor | None], lengths: Tensor | None
    ) -> tuple[Tensor, list[Tensor]]:
        """Run every layer on batched ``x`` (``[seq, batch, feature]``).

        Returns the last layer's output and each state stacked over layers and directions.
        """
        nd = self._num_directions
        seq_lens = None if lengths is None else lengths.int()
        direction = "bidirectional" if self.bidirectional else "forward"
        attrs: dict[str, Any] = {"hidden_size": self.hidden_size, "direction": direction}
        if self.mode == "GRU":
            attrs["linear_before_reset"] = 1
        elif self.mode == "RNN_RELU":
            attrs["activations"] = ["Relu"] * nd
        ops = {"LSTM": op.LSTM, "GRU": op.GRU}.get(self.mode, op.RNN)
        finals: list[list[Tensor]] = [[] for _ in states]
        for layer in range(self.num_layers):
            if layer > 0 and self.dropout > 0 and self.training:
                x = F.dropout(x, self.dropout, training=True)
            w, r, b = self._onnx_weights(layer)
            init = [self._layer_state(s, layer) for s in states]
            y, *final = ops(x, w, r, b, seq_lens, *init, **attrs)
            # Y is [seq, num_dir, batch, hidden]: directions side by side in the features.
            y = y.transpose(1, 2)
            x = y.reshape(y.shape[0], y.shape[1], -1)
            for acc, state in zip(finals, final, strict=True):
                acc.append(state)
        return x, [tracer.cat(acc) if len(acc) > 1 else acc[0] for acc in finals]

    def _forward(
        self, x: Any, hx: tuple[Tensor | None, ...], lengths: Tensor | None
    ) -> tuple[Any, list[Tensor]]:
        if isinstance(x, PackedSequence):
            if lengths is not None:
                raise ValueError(f"{type(self).__name__}: a PackedSequence carries its lengths")
            padded, lengths = pad_packed_sequence(x)
            y, finals = self._forward_padded(padded, hx, lengths, time_major=True)
            return repack(y, x), finals
        return self._forward_padded(x, hx, lengths, time_major=False)

    def _forward_padded(
        self,
        x: Tensor,
        hx: tuple[Tensor | None, ...],
        lengths: Tensor | None,
        time_major: bool,
    ) -> tuple[Tensor, list[Tensor]]:
        batched = self._check_input(x)
        names = ("h_0", "c_0")
        if not batched:
            x = x.unsqueeze(1)
            if lengths is not None:
                lengths = lengths.reshape(1)
            hx = tuple(None if h is None else h.unsqueeze(1) for h in hx)
        elif self.batch_first and not time_major:
            x = x.transpose(0, 1)
        batch = x.shape[1]
        for h, name in zip(hx, names, strict=False):
            if h is not None:
                self._check_state(h, batch, name)
        if lengths is not None and (lengths.ndim != 1 or lengths.is_floating_point()):
            raise ValueError(
                f"{type(self).__name__}: lengths must be a 1-D integer tensor of one length "
                f"per sequence, got {lengths.dtype} of shape {list(lengths.shape)}"
            )
        y, finals = self._run(x, list(hx), lengths)
        if not batched:
            return y.squeeze(1), [f.squeeze(1) for f in finals]
        if self.batch_first and not time_major:
            y = y.transpose(0, 1)
        return y, finals


class RNN(RNNBase):
    """Elman RNN, ``h_t = act(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)``, as PyTorch's.

    Args:
        input_size: features of each input step.
        hidden_size: features of the hidden state.
        num_layers: stacked layers.
        nonlinearity: ``"tanh"`` or ``"relu"``.
        bias: whether the layers have biases.
        batch_first: inputs and outputs are ``[batch, seq, feature]``.
        dropout: dropout between layers, in training.
        bidirectional: run each layer in both directions.
        dtype: the parameters' dtype.

    Raises:
        ValueError: an unknown nonlinearity (and see :class:`RNNBase`).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        bias: bool = True,
        batch_first: bool = False,
        dropout: float = 0.0,
        bidirectional: bool = False,
        dtype: Any = None,
    ) -> None:
        if nonlinearity not in ("tanh", "relu"):
            raise ValueError(f"Unknown nonlinearity {nonlinearity!r}; expected 'tanh' or 'relu'")
        self.nonlinearity = nonlinearity
        mode = "RNN_TANH" if nonlinearity == "tanh" else "RNN_RELU"
        super().__init__(
            mode, input_size, hidden_size, num_layers, bias, batch_first, dropout, bidirectional,
            dtype,
        )  # fmt: skip

    def forward(
        self, input: Any, hx: Tensor | None = None, lengths: Tensor | None = None
    ) -> tuple[Any, Tensor]:
        """Run the RNN.

        Args:
            input: ``[seq, batch, input_size]`` (``[batch, seq, ...]`` if ``batch_first``) or
                unbatched ``[seq, input_size]``, or a ``PackedSequence``.
            hx: initial hidden state ``[num_layers * num_directions, batch, hidden_size]``
                (zeros if None).
            lengths: optional integer tensor ``[batch]`` of valid lengths.

        Returns:
            ``(output, h_n)``: ``output`` ``[seq, batch, num_directions * hidden_size]``
            (zero past each length; packed like ``input`` if that is packed), ``h_n`` the
            final hidden states.
        """
        y, (h_n,) = self._forward(input, (hx,), lengths)
        return y, h_n


class LSTM(RNNBase):
    """Long short-term memory, as PyTorch's ``nn.LSTM`` (no ``proj_size``).

    Args:
        input_size: features of each input step.
        hidden_size: features of the hidden and cell states.
        num_layers: stacked layers.
        bias: whether the layers have biases.
        batch_first: inputs and outputs are ``[batch, seq, feature]``.
        dropout: dropout between layers, in training.
        bidirectional: run each layer in both directions.
        dtype: the parameters' dtype.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__("LSTM", *args, **kwargs)

    def forward(
        self,
        input: Any,
        hx: tuple[Tensor, Tensor] | None = None,
        lengths: Tensor | None = None,
    ) -> tuple[Any, tuple[Tensor, Tensor]]:
        """Run the LSTM.

        Args:
            input: ``[seq, batch, input_size]`` (``[batch, seq, ...]`` if ``batch_first``) or
                unbatched ``[seq, input_size]``, or a ``PackedSequence``.
            hx: optional ``(h_0, c_0)``, each ``[num_layers * num_directions, batch,
                hidden_size]`` (zeros if None).
            lengths: optional integer tensor ``[batch]`` of valid lengths.

        Returns:
            ``(output, (h_n, c_n))`` with PyTorch's shapes; ``output`` is zero past each
            length (packed like ``input`` if that is packed).

        Raises:
            ValueError: ``hx`` is not a pair, or a state of the wrong shape.
        """
        if hx is None:
            hx = (None, None)  # type: ignore[assignment]
        elif not isinstance(hx, tuple | list) or len(hx) != 2:
            raise ValueError("LSTM: hx must be a tuple (h_0, c_0)")
        y, (h_n, c_n) = self._forward(input, tuple(hx), lengths)  # type: ignore[arg-type]
        return y, (h_n, c_n)


class GRU(RNNBase):
    """Gated recurrent unit, as PyTorch's ``nn.GRU`` (ONNX GRU, ``linear_before_reset=1``).

    Args:
        input_size: features of each input step.
        hidden_size: features of the hidden state.
        num_layers: stacked layers.
        bias: whether the layers have biases.
        batch_first: inputs and outputs are ``[batch, seq, feature]``.
        dropout: dropout between layers, in training.
        bidirectional: run each layer in both directions.
        dtype: the parameters' dtype.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__("GRU", *args, **kwargs)

    def forward(
        self, input: Any, hx: Tensor | None = None, lengths: Tensor | None = None
    ) -> tuple[Any, Tensor]:
        """Run the GRU; arguments and results as :meth:`RNN.forward`."""
        y, (h_n,) = self._forward(input, (hx,), lengths)
        return y, h_n
