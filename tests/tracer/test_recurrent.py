"""LSTM, GRU and RNN against torch.nn (values and gradients) and onnx.reference; capture.

torch's modules use other gate orders (LSTM ``i f g o``, GRU ``r z n``) than ONNX (``i o f c``,
``z r h``); the weights are reordered here, as the nn layer has to. Variable lengths go
through ``pack_padded_sequence``, so torch, like ONNX's ``sequence_lens``, never lets padded
positions leak into outputs, final states or gradients.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import ir
import tracer as gc
from ir.errors import DTypeError, ShapeError, UnsupportedOpError
from runtime import Session
from tests import oracles
from tests.op_specs import recurrent as specs

SEQ, BATCH, INPUT, HIDDEN = 5, 3, 4, 3
# ONNX's gate blocks, as indices of torch's blocks.
TORCH_TO_ONNX = {"LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2], "RNN": [0]}
LAYER_CASES = [
    ("LSTM", "tanh"),
    ("GRU", "tanh"),
    ("RNN", "tanh"),
    ("RNN", "relu"),
]


def _reorder(t: np.ndarray, kind: str) -> np.ndarray:
    """Torch's gate blocks along axis 0 in ONNX's order (works for weights and biases)."""
    blocks = np.split(t, len(TORCH_TO_ONNX[kind]), axis=0)
    return np.concatenate([blocks[i] for i in TORCH_TO_ONNX[kind]], axis=0)


def _torch_module(torch: Any, kind: str, nonlinearity: str, nd: int, batch_first: bool) -> Any:
    torch.manual_seed(0)
    cls = getattr(torch.nn, kind)
    extra = {"nonlinearity": nonlinearity} if kind == "RNN" else {}
    m = cls(INPUT, HIDDEN, bidirectional=nd == 2, batch_first=batch_first, **extra)
    return m.double()


def _onnx_weights(m: Any, kind: str, nd: int) -> list[np.ndarray]:
    """W, R, B of ONNX's layer from a torch module's parameters."""
    suffixes = ["", "_reverse"][:nd]

    def get(name: str, s: str) -> np.ndarray:
        return _reorder(getattr(m, f"{name}_l0{s}").detach().numpy(), kind)

    w = np.stack([get("weight_ih", s) for s in suffixes])
    r = np.stack([get("weight_hh", s) for s in suffixes])
    b = np.stack([np.concatenate([get("bias_ih", s), get("bias_hh", s)]) for s in suffixes])
    return [w, r, b]


def _onnx_grads(m: Any, kind: str, nd: int) -> list[np.ndarray]:
    """The torch parameters' gradients, arranged as ONNX's W, R, B."""
    suffixes = ["", "_reverse"][:nd]

    def get(name: str, s: str) -> np.ndarray:
        return _reorder(getattr(m, f"{name}_l0{s}").grad.numpy(), kind)

    gw = np.stack([get("weight_ih", s) for s in suffixes])
    gr = np.stack([get("weight_hh", s) for s in suffixes])
    gb = np.stack([np.concatenate([get("bias_ih", s), get("bias_hh", s)]) for s in suffixes])
    return [gw, gr, gb]


def _torch_run(
    torch: Any, m: Any, kind: str, x: np.ndarray, init: list[np.ndarray], lens: Any, layout: int
) -> tuple[list[Any], list[Any]]:
    """The torch module's outputs in ONNX's layout, and its leaves: x and initial states."""
    nn_utils = torch.nn.utils.rnn
    xt = torch.tensor(x, requires_grad=True)
    # torch's initial states are [num_dir, batch, hidden] whatever batch_first says.
    states = [torch.tensor(s.swapaxes(0, 1) if layout else s, requires_grad=True) for s in init]
    feed = xt
    if lens is not None:
        feed = nn_utils.pack_padded_sequence(
            xt, torch.tensor(lens), batch_first=bool(layout), enforce_sorted=False
        )
    out, final = m(feed, tuple(states) if kind == "LSTM" else states[0])
    if lens is not None:
        out, _ = nn_utils.pad_packed_sequence(out, batch_first=bool(layout), total_length=SEQ)
    finals = list(final) if kind == "LSTM" else [final]
    nd = finals[0].shape[0]
    if layout:
        y = out.reshape(BATCH, SEQ, nd, HIDDEN)
        finals = [f.permute(1, 0, 2) for f in finals]
    else:
        y = out.reshape(SEQ, BATCH, nd, HIDDEN).permute(0, 2, 1, 3)
    return [y, *finals], [xt, *states]


@pytest.mark.parametrize(("kind", "nonlinearity"), LAYER_CASES)
@pytest.mark.parametrize("nd", [1, 2], ids=["forward", "bidirectional"])
@pytest.mark.parametrize("lens", [None, [5, 2, 4]], ids=["full", "lengths"])
@pytest.mark.parametrize("layout", [0, 1], ids=["seq_first", "batch_first"])
def test_matches_torch(
    kind: str, nonlinearity: str, nd: int, lens: list[int] | None, layout: int
) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    m = _torch_module(torch, kind, nonlinearity, nd, bool(layout))
    x = rng.standard_normal((BATCH, SEQ, INPUT) if layout else (SEQ, BATCH, INPUT))
    n_states = 2 if kind == "LSTM" else 1
    state_shape = (BATCH, nd, HIDDEN) if layout else (nd, BATCH, HIDDEN)
    init = [rng.standard_normal(state_shape) for _ in range(n_states)]
    theirs, leaves = _torch_run(torch, m, kind, x, init, lens, layout)

    w, r, b = _onnx_weights(m, kind, nd)
    seq_lens = None if lens is None else np.asarray(lens, np.int32)
    inputs: list[Any] = [x, w, r, b, seq_lens, *init]
    attrs: dict[str, Any] = {
        "hidden_size": HIDDEN,
        "direction": "bidirectional" if nd == 2 else "forward",
        "layout": layout,
    }
    if kind == "GRU":
        attrs["linear_before_reset"] = 1  # torch's GRU
    if kind == "RNN":
        attrs["activations"] = [nonlinearity.capitalize()] * nd
    op = ir.ops.get(kind)
    tensors = [
        None if a is None else gc.tensor(a, requires_grad=a.dtype.kind == "f") for a in inputs
    ]
    ours = op(*tensors, **attrs)
    for mine, want in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(mine.detach().numpy(), want.detach().numpy(), atol=1e-10)

    cotangents = [rng.standard_normal(t.shape) for t in theirs]
    loss = sum((t * torch.tensor(c)).sum() for t, c in zip(theirs, cotangents, strict=True))
    loss.backward()
    wanted = [tensors[i] for i in (0, 1, 2, 3, 5, 6) if i < len(tensors)]
    grads = gc.autograd.grad(list(ours), wanted, [gc.tensor(c) for c in cotangents])
    gx, gw, gr, gb, *g_init = (g.numpy() for g in grads)
    np.testing.assert_allclose(gx, leaves[0].grad.numpy(), atol=1e-10)
    for mine, want in zip([gw, gr, gb], _onnx_grads(m, kind, nd), strict=True):
        np.testing.assert_allclose(mine, want, atol=1e-10)
    for mine, leaf in zip(g_init, leaves[1:], strict=True):
        want = leaf.grad.numpy()
        np.testing.assert_allclose(mine, want.swapaxes(0, 1) if layout else want, atol=1e-10)


def _reference_samples(kind: str, dtype: np.dtype) -> list[tuple[list[Any], dict[str, Any]]]:
    """Samples without the features onnx.reference ignores (sequence_lens, clip, ...)."""
    rng = np.random.default_rng(1)
    lstm = kind == "LSTM"
    every = {"bias": True, "init": True, "peepholes": lstm}
    h = {"hidden_size": specs.HIDDEN}
    cases = [
        (specs.layer_inputs(rng, dtype, kind), h),
        (specs.layer_inputs(rng, dtype, kind, **every), {**h, "direction": "reverse"}),
        (specs.layer_inputs(rng, dtype, kind, nd=2, **every), {**h, "direction": "bidirectional"}),
        (specs.layer_inputs(rng, dtype, kind, layout=1, **every), {**h, "layout": 1}),
        (
            specs.layer_inputs(rng, dtype, kind, nd=2, layout=1, **every),
            {**h, "layout": 1, "direction": "bidirectional"},
        ),
    ]
    if kind == "GRU":
        cases.append(
            (specs.layer_inputs(rng, dtype, kind, **every), {**h, "linear_before_reset": 1})
        )
    return cases


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_matches_onnx_reference(kind: str, dtype: type) -> None:
    op = ir.ops.get(kind)
    for inputs, attrs in _reference_samples(kind, np.dtype(dtype)):
        ours = op.kernel(*inputs, **attrs)
        theirs = oracles.run_reference(op, inputs, attrs, len(ours))
        for a, b in zip(ours, theirs, strict=True):
            assert a.dtype == b.dtype and a.shape == b.shape
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def _lstm_inputs(rng: np.random.Generator, lens: list[int] | None = None) -> list[Any]:
    inputs = specs.layer_inputs(rng, np.dtype(np.float64), "LSTM", bias=True, init=True, lens=lens)
    return [
        gc.tensor(a, requires_grad=a.dtype.kind == "f") if a is not None else None for a in inputs
    ]


def test_padded_positions_get_no_gradient() -> None:
    """Y's gradient past a length is ignored; the final state's reaches the last valid step."""
    rng = np.random.default_rng(2)
    lens = [2, 4, 1]
    inputs = _lstm_inputs(rng, lens)
    y, y_h, _ = ir.ops.get("LSTM")(*inputs, hidden_size=specs.HIDDEN)
    assert np.all(y.detach().numpy()[2:, :, 0] == 0) and np.all(y.detach().numpy()[1:, :, 2] == 0)
    ones = gc.ones(*y.shape, dtype=gc.float64)
    (gx,) = gc.autograd.grad([y], [inputs[0]], [ones], retain_graph=True)
    gx = gx.numpy()
    for b, n in enumerate(lens):
        assert np.all(gx[n:, b] == 0), f"sequence {b} of length {n} got gradient past its end"
        assert np.all(gx[n - 1, b] != 0)
    (gx_h,) = gc.autograd.grad([y_h], [inputs[0]], [gc.ones(*y_h.shape, dtype=gc.float64)])
    assert np.all(gx_h.numpy()[lens[2] :, 2] == 0) and np.all(gx_h.numpy()[0, 2] != 0)


def test_second_order_is_refused_clearly() -> None:
    inputs = _lstm_inputs(np.random.default_rng(3))
    y, _, _ = ir.ops.get("LSTM")(*inputs, hidden_size=specs.HIDDEN)
    (gw,) = gc.autograd.grad([(y * y).sum()], [inputs[1]], create_graph=True)
    with pytest.raises(UnsupportedOpError, match=r"LSTMGrad.*second order through recurrences"):
        gc.autograd.grad([gw.sum()], [inputs[1]])


def test_bad_attributes_and_inputs_raise() -> None:
    rng = np.random.default_rng(4)
    x, w, r = specs.layer_inputs(rng, np.dtype(np.float32), "GRU")
    gru = ir.ops.get("GRU").kernel
    with pytest.raises(UnsupportedOpError, match="activation 'Gelu' is not supported"):
        gru(x, w, r, activations=["Sigmoid", "Gelu"])
    with pytest.raises(ShapeError, match=r"expected 2 .*Sigmoid, Tanh"):
        gru(x, w, r, activations=["Sigmoid"])
    with pytest.raises(ShapeError, match="direction must be"):
        gru(x, w, r, direction="sideways")
    with pytest.raises(ShapeError, match="hidden_size=5"):
        gru(x, w, r, hidden_size=5)
    with pytest.raises(ShapeError, match="sequence_lens"):
        gru(x, w, r, None, np.asarray([1, 9, 2], np.int32))
    with pytest.raises(DTypeError, match="int32"):
        gru(x, w, r, None, np.asarray([1, 2, 2], np.int64))
    with pytest.raises(ShapeError, match="W must have shape"):
        gru(x, w[:, :4], r)


def test_capture_runs_on_onnxruntime_and_training_step_on_the_interpreter() -> None:
    """A layer exports as one LSTM node; its backward is one LSTMGrad node (interpreter only)."""
    rng = np.random.default_rng(5)
    x, w, r, b = (
        gc.tensor(a) for a in specs.layer_inputs(rng, np.dtype(np.float32), "LSTM", bias=True)
    )
    lstm = ir.ops.get("LSTM")

    def layer(x: gc.Tensor, w: gc.Tensor, r: gc.Tensor, b: gc.Tensor) -> Any:
        y, _, y_c = lstm(x, w, r, b, hidden_size=specs.HIDDEN)
        return y, y_c

    axes = {"x": {0: "seq", 1: "batch"}}
    graph = gc.trace(layer, (x, w, r, b), dynamic_axes=axes)
    assert [n.op.op_type for n in graph.nodes] == ["LSTM"]
    feeds = {"x": rng.standard_normal((7, 2, specs.INPUT)).astype(np.float32)}
    feeds |= {"w": w.numpy(), "r": r.numpy(), "b": b.numpy()}
    eager = [t.numpy() for t in layer(*(gc.tensor(feeds[k]) for k in ("x", "w", "r", "b")))]
    ort = Session(graph, backend="onnxruntime")
    for got, want in zip(ort.run(feeds).values(), eager, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)

    def step(x: gc.Tensor, w: gc.Tensor, r: gc.Tensor, b: gc.Tensor) -> Any:
        params = [t.detach().requires_grad_() for t in (w, r, b)]
        y, _, y_c = lstm(x, *params, hidden_size=specs.HIDDEN)
        return gc.autograd.grad([(y * y).sum() + y_c.sum()], params)

    graph = gc.trace(step, (x, w, r, b), dynamic_axes=axes, differentiable=True)
    assert [n.op.key for n in graph.nodes if n.op.domain] == [("ai.graphcap", "LSTMGrad")]
    session = Session(graph)
    assert session.backend == "interpreter" and "LSTMGrad" in session.reason
    eager = [t.numpy() for t in step(*(gc.tensor(feeds[k]) for k in ("x", "w", "r", "b")))]
    for got, want in zip(session.run(feeds).values(), eager, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
