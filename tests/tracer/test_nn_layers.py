"""Recurrent, attention and transformer modules against torch (values and gradients).

Weights move from torch to graphcap by ``state_dict`` name; every comparison runs in float64
so the tolerances are tight. The trace tests capture an LSTM tagger and a one-layer encoder
with dynamic batch and sequence axes and run them on the NumPy interpreter at two sizes.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import tracer
from runtime import Session
from tracer.nn.attention import MultiheadAttention, causal_mask
from tracer.nn.layers import Embedding, LayerNorm, Linear
from tracer.nn.module import Module
from tracer.nn.rnn import GRU, LSTM, RNN
from tracer.nn.transformer import (
    PositionalEmbedding,
    SinusoidalPositionalEmbedding,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

TOL = {"rtol": 1e-9, "atol": 1e-10}


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _copy_from_torch(ours: Module, theirs: object) -> None:
    state = {k: tracer.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()}  # type: ignore[attr-defined]
    ours.load_state_dict(state)


def _assert_same_keys(ours: Module, theirs: object) -> None:
    mine = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    torch_ = {k: tuple(v.shape) for k, v in theirs.state_dict().items()}  # type: ignore[attr-defined]
    assert list(mine) == list(torch_)
    assert mine == torch_


def _assert_grads(ours: Module, theirs: object) -> None:
    grads = dict(theirs.named_parameters())  # type: ignore[attr-defined]
    for name, p in ours.named_parameters():
        expected = grads[name].grad
        assert p.grad is not None, name
        np.testing.assert_allclose(
            p.grad.detach().numpy(), expected.detach().numpy(), err_msg=name, **TOL
        )


def _pair(data: np.ndarray, torch_mod: object, grad: bool = True) -> tuple[tracer.Tensor, object]:
    torch = torch_mod
    return (
        tracer.tensor(data, requires_grad=grad),
        torch.tensor(data, requires_grad=grad),  # type: ignore[attr-defined]
    )


# ---------------------------------------------------------------- recurrent layers

RNN_CASES = [
    # (class name, kwargs)
    ("LSTM", {}),
    ("LSTM", {"num_layers": 2, "bidirectional": True}),
    ("LSTM", {"batch_first": True, "bidirectional": True}),
    ("GRU", {}),
    ("GRU", {"num_layers": 2, "bidirectional": True, "batch_first": True}),
    ("RNN", {"nonlinearity": "tanh", "num_layers": 2}),
    ("RNN", {"nonlinearity": "relu", "bidirectional": True}),
    ("LSTM", {"bias": False, "num_layers": 2}),
]
OURS = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}


def _rnn_pair(torch: object, kind: str, kwargs: dict, input_size: int = 3, hidden: int = 4):
    theirs = getattr(torch.nn, kind)(input_size, hidden, **kwargs).double()  # type: ignore[attr-defined]
    ours = OURS[kind](input_size, hidden, **kwargs).double()
    _copy_from_torch(ours, theirs)
    return ours, theirs


def _states(kind: str, out: object) -> list:
    return list(out) if kind == "LSTM" else [out]  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", ["LSTM", "GRU", "RNN"])
def test_rnn_parameters_match_torch(kind: str) -> None:
    torch = pytest.importorskip("torch")
    kwargs = {"num_layers": 2, "bidirectional": True}
    theirs = getattr(torch.nn, kind)(3, 5, **kwargs)
    tracer.manual_seed(0)
    ours = OURS[kind](3, 5, **kwargs)
    _assert_same_keys(ours, theirs)
    bound = 1 / math.sqrt(5)
    for name, p in ours.named_parameters():
        values = p.detach().numpy()
        assert values.dtype == np.float32, name
        assert np.all(np.abs(values) <= bound), name
        assert len(np.unique(values)) == values.size, name  # drawn, not left at zero
    everything = np.concatenate([p.detach().numpy().ravel() for p in ours.parameters()])
    assert abs(everything.std() - bound / math.sqrt(3)) < 0.1 * bound  # U(-b, b) has std b/√3


@pytest.mark.parametrize(("kind", "kwargs"), RNN_CASES)
@pytest.mark.parametrize("with_hx", [False, True])
def test_rnn_matches_torch(kind: str, kwargs: dict, with_hx: bool) -> None:
    torch = pytest.importorskip("torch")
    ours, theirs = _rnn_pair(torch, kind, kwargs)
    rng = _rng(1)
    seq, batch = 5, 3
    shape = (batch, seq, 3) if kwargs.get("batch_first") else (seq, batch, 3)
    x, tx = _pair(rng.standard_normal(shape), torch)
    nd = 2 if kwargs.get("bidirectional") else 1
    state_shape = (kwargs.get("num_layers", 1) * nd, batch, 4)
    hx = thx = None
    if with_hx:
        pairs = [
            _pair(rng.standard_normal(state_shape), torch) for _ in range(1 + (kind == "LSTM"))
        ]
        hx, thx = (tuple(p[0] for p in pairs), tuple(p[1] for p in pairs))
        if kind != "LSTM":
            hx, thx = hx[0], thx[0]
    y, state = ours(x, hx)
    ty, tstate = theirs(tx, thx)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), **TOL)
    states, tstates = _states(kind, state), _states(kind, tstate)
    for s, ts in zip(states, tstates, strict=True):
        np.testing.assert_allclose(s.detach().numpy(), ts.detach().numpy(), **TOL)
    # Gradients through the output and every final state.
    wy = rng.standard_normal(y.shape)
    ws = [rng.standard_normal(s.shape) for s in states]
    loss = (y * tracer.tensor(wy)).sum() + sum(
        (s * tracer.tensor(w)).sum() for s, w in zip(states, ws, strict=True)
    )
    tloss = (ty * torch.tensor(wy)).sum() + sum(
        (s * torch.tensor(w)).sum() for s, w in zip(tstates, ws, strict=True)
    )
    loss.backward()
    tloss.backward()
    _assert_grads(ours, theirs)
    np.testing.assert_allclose(x.grad.detach().numpy(), tx.grad.detach().numpy(), **TOL)
    if with_hx:
        for h, th in zip(
            hx if kind == "LSTM" else (hx,), thx if kind == "LSTM" else (thx,), strict=True
        ):
            np.testing.assert_allclose(h.grad.detach().numpy(), th.grad.detach().numpy(), **TOL)


@pytest.mark.parametrize(
    ("kind", "kwargs"),
    [
        ("LSTM", {"bidirectional": True, "num_layers": 2}),
        ("LSTM", {"batch_first": True}),
        ("GRU", {"bidirectional": True, "batch_first": True}),
        ("RNN", {"bidirectional": True}),
    ],
)
def test_rnn_lengths_match_packed_sequences(kind: str, kwargs: dict) -> None:
    torch = pytest.importorskip("torch")
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

    ours, theirs = _rnn_pair(torch, kind, kwargs)
    rng = _rng(2)
    seq, batch = 6, 4
    batch_first = kwargs.get("batch_first", False)
    shape = (batch, seq, 3) if batch_first else (seq, batch, 3)
    lengths = np.array([4, 6, 1, 3], dtype=np.int64)
    x, tx = _pair(rng.standard_normal(shape), torch)
    y, state = ours(x, lengths=tracer.tensor(lengths))
    packed = pack_padded_sequence(
        tx, torch.tensor(lengths), batch_first=batch_first, enforce_sorted=False
    )
    tpacked, tstate = theirs(packed)
    ty, _ = pad_packed_sequence(tpacked, batch_first=batch_first, total_length=seq)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), **TOL)
    # Padded positions are exactly zero.
    ys = y.detach().numpy() if batch_first else y.detach().numpy().swapaxes(0, 1)
    for b, n in enumerate(lengths):
        assert np.all(ys[b, n:] == 0)
    states, tstates = _states(kind, state), _states(kind, tstate)
    for s, ts in zip(states, tstates, strict=True):
        np.testing.assert_allclose(s.detach().numpy(), ts.detach().numpy(), **TOL)
    wy = rng.standard_normal(y.shape)
    loss = (y * tracer.tensor(wy)).sum() + sum(s.sum() for s in states)
    tloss = (ty * torch.tensor(wy)).sum() + sum(s.sum() for s in tstates)
    loss.backward()
    tloss.backward()
    _assert_grads(ours, theirs)
    np.testing.assert_allclose(x.grad.detach().numpy(), tx.grad.detach().numpy(), **TOL)


def test_rnn_unbatched_input_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    ours, theirs = _rnn_pair(torch, "LSTM", {"bidirectional": True})
    rng = _rng(3)
    x, tx = _pair(rng.standard_normal((5, 3)), torch)
    h, th = _pair(rng.standard_normal((2, 4)), torch)
    c, tc = _pair(rng.standard_normal((2, 4)), torch)
    y, (h_n, c_n) = ours(x, (h, c))
    ty, (th_n, tc_n) = theirs(tx, (th, tc))
    for a, b in ((y, ty), (h_n, th_n), (c_n, tc_n)):
        assert a.shape == tuple(b.shape)
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **TOL)


def test_rnn_dropout_between_layers_only_in_training() -> None:
    torch = pytest.importorskip("torch")
    ours, theirs = _rnn_pair(torch, "GRU", {"num_layers": 2, "dropout": 0.5})
    x = _rng(4).standard_normal((5, 2, 3))
    ours.eval()
    theirs.eval()
    y, _ = ours(tracer.tensor(x))
    np.testing.assert_allclose(
        y.detach().numpy(), theirs(torch.tensor(x))[0].detach().numpy(), **TOL
    )
    ours.train()
    tracer.manual_seed(0)
    y_train, _ = ours(tracer.tensor(x))
    assert not np.allclose(y_train.detach().numpy(), y.detach().numpy())


def test_rnn_rejects_bad_inputs() -> None:
    lstm = LSTM(3, 4, num_layers=2)
    with pytest.raises(ValueError, match="input_size"):
        lstm(tracer.zeros(5, 2, 7))
    with pytest.raises(ValueError, match="h_0"):
        lstm(tracer.zeros(5, 2, 3), (tracer.zeros(1, 2, 4), tracer.zeros(2, 2, 4)))
    with pytest.raises(ValueError, match="nonlinearity"):
        RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="lengths"):
        lstm(tracer.zeros(5, 2, 3), lengths=tracer.zeros(2))


# ---------------------------------------------------------------- multi-head attention


def _mha_pair(torch: object, embed: int = 8, heads: int = 2, **kwargs: object):
    theirs = torch.nn.MultiheadAttention(embed, heads, **kwargs).double()  # type: ignore[attr-defined]
    ours = MultiheadAttention(embed, heads, **kwargs).double()
    _copy_from_torch(ours, theirs)
    return ours, theirs


def test_mha_parameters_match_torch() -> None:
    torch = pytest.importorskip("torch")
    for bias in (True, False):
        _assert_same_keys(
            MultiheadAttention(8, 2, bias=bias), torch.nn.MultiheadAttention(8, 2, bias=bias)
        )
    mha = MultiheadAttention(8, 2)
    bound = math.sqrt(6 / 32)
    assert np.all(np.abs(mha.in_proj_weight.detach().numpy()) <= bound)
    assert np.all(mha.in_proj_bias.detach().numpy() == 0) and np.all(
        mha.out_proj.bias.detach().numpy() == 0
    )
    with pytest.raises(ValueError, match="divisible"):
        MultiheadAttention(10, 3)


MHA_CASES = [
    # (batch_first, need_weights, average, masks, cross)
    (False, True, True, "none", False),
    (True, True, False, "padding", False),
    (False, False, True, "padding", True),
    (True, True, True, "causal_bool", False),
    (False, False, True, "causal_float", False),
    (True, False, True, "causal_hint", False),
    (False, True, True, "both", False),
    (True, True, True, "per_head", True),
]


@pytest.mark.parametrize(("batch_first", "need_weights", "average", "masks", "cross"), MHA_CASES)
def test_mha_matches_torch(
    batch_first: bool, need_weights: bool, average: bool, masks: str, cross: bool
) -> None:
    torch = pytest.importorskip("torch")
    ours, theirs = _mha_pair(torch, batch_first=batch_first)
    rng = _rng(5)
    batch, tgt, src, embed = 3, 4, 5 if cross else 4, 8

    def shaped(n: int) -> tuple[int, int, int]:
        return (batch, n, embed) if batch_first else (n, batch, embed)

    q, tq = _pair(rng.standard_normal(shaped(tgt)), torch)
    if cross:
        k, tk = _pair(rng.standard_normal(shaped(src)), torch)
        v, tv = _pair(rng.standard_normal(shaped(src)), torch)
    else:
        k, tk, v, tv = q, tq, q, tq
    kwargs: dict = {}
    tkwargs: dict = {}
    padding = np.zeros((batch, src), dtype=bool)
    padding[0, -2:] = True
    padding[2, -1] = True
    causal = np.triu(np.ones((tgt, src), dtype=bool), 1)
    if masks in ("padding", "both"):
        kwargs["key_padding_mask"], tkwargs["key_padding_mask"] = (
            tracer.tensor(padding),
            torch.tensor(padding),
        )
    if masks in ("causal_bool", "both", "causal_hint"):
        kwargs["attn_mask"], tkwargs["attn_mask"] = tracer.tensor(causal), torch.tensor(causal)
    if masks == "causal_hint":
        kwargs["is_causal"] = tkwargs["is_causal"] = True
    if masks == "causal_float":
        m = np.where(causal, -np.inf, 0.0)
        kwargs["attn_mask"], tkwargs["attn_mask"] = tracer.tensor(m), torch.tensor(m)
    if masks == "per_head":
        m = rng.standard_normal((batch * 2, tgt, src))
        kwargs["attn_mask"], tkwargs["attn_mask"] = tracer.tensor(m), torch.tensor(m)
    out, w = ours(q, k, v, need_weights=need_weights, average_attn_weights=average, **kwargs)
    tout, tw = theirs(
        tq, tk, tv, need_weights=need_weights, average_attn_weights=average, **tkwargs
    )
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), **TOL)
    if need_weights:
        assert w.shape == tuple(tw.shape)
        np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), **TOL)
    else:
        assert w is None and tw is None
    g = rng.standard_normal(out.shape)
    (out * tracer.tensor(g)).sum().backward()
    (tout * torch.tensor(g)).sum().backward()
    _assert_grads(ours, theirs)
    for a, b in ((q, tq), (k, tk), (v, tv)):
        np.testing.assert_allclose(a.grad.detach().numpy(), b.grad.detach().numpy(), **TOL)


def test_mha_unbatched_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    ours, theirs = _mha_pair(torch)
    x = _rng(6).standard_normal((4, 8))
    out, w = ours(tracer.tensor(x), tracer.tensor(x), tracer.tensor(x))
    tout, tw = theirs(torch.tensor(x), torch.tensor(x), torch.tensor(x))
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), **TOL)
    np.testing.assert_allclose(w.detach().numpy(), tw.detach().numpy(), **TOL)


def test_causal_mask_is_torchs_square_subsequent_mask() -> None:
    torch = pytest.importorskip("torch")
    expected = torch.nn.Transformer.generate_square_subsequent_mask(5).detach().numpy()
    np.testing.assert_array_equal(causal_mask(5).detach().numpy(), expected)


# ---------------------------------------------------------------- transformer layers


def test_transformer_keys_match_torch() -> None:
    torch = pytest.importorskip("torch")
    _assert_same_keys(TransformerEncoderLayer(8, 2, 16), torch.nn.TransformerEncoderLayer(8, 2, 16))
    _assert_same_keys(TransformerDecoderLayer(8, 2, 16), torch.nn.TransformerDecoderLayer(8, 2, 16))
    mine = TransformerEncoder(TransformerEncoderLayer(8, 2, 16), 2, norm=LayerNorm(8))
    theirs = torch.nn.TransformerEncoder(
        torch.nn.TransformerEncoderLayer(8, 2, 16),
        2,
        norm=torch.nn.LayerNorm(8),
        enable_nested_tensor=False,
    )
    _assert_same_keys(mine, theirs)
    a, b = mine.layers[0].linear1.weight, mine.layers[1].linear1.weight
    assert a is not b  # deep copies


ENCODER_CASES = [
    # (norm_first, activation, batch_first, masks)
    (False, "relu", False, "none"),
    (False, "gelu", True, "padding"),
    (True, "relu", True, "causal"),
    (True, "gelu", False, "both"),
]


def _encoder_inputs(torch: object, batch_first: bool, masks: str, rng: np.random.Generator):
    batch, seq, d = 3, 5, 8
    x, tx = _pair(rng.standard_normal((batch, seq, d) if batch_first else (seq, batch, d)), torch)
    kwargs: dict = {}
    tkwargs: dict = {}
    if masks in ("padding", "both"):
        pad = np.zeros((batch, seq), dtype=bool)
        pad[1, -2:] = True
        if masks == "both":  # a float padding mask, as torch wants it beside a float src_mask
            pad = np.where(pad, -np.inf, 0.0)
        kwargs["src_key_padding_mask"] = tracer.tensor(pad)
        tkwargs["src_key_padding_mask"] = torch.tensor(pad)  # type: ignore[attr-defined]
    if masks in ("causal", "both"):
        m = np.triu(np.full((seq, seq), -np.inf), 1)
        kwargs["src_mask"], tkwargs["src_mask"] = tracer.tensor(m), torch.tensor(m)  # type: ignore[attr-defined]
        kwargs["is_causal"] = tkwargs["is_causal"] = True
    return x, tx, kwargs, tkwargs


@pytest.mark.parametrize(("norm_first", "activation", "batch_first", "masks"), ENCODER_CASES)
def test_encoder_layer_matches_torch(
    norm_first: bool, activation: str, batch_first: bool, masks: str
) -> None:
    torch = pytest.importorskip("torch")
    kwargs = {
        "dim_feedforward": 16,
        "activation": activation,
        "batch_first": batch_first,
        "norm_first": norm_first,
    }
    theirs = torch.nn.TransformerEncoderLayer(8, 2, **kwargs).double().eval()
    ours = TransformerEncoderLayer(8, 2, **kwargs).double().eval()
    _copy_from_torch(ours, theirs)
    x, tx, mk, tmk = _encoder_inputs(torch, batch_first, masks, _rng(7))
    y, ty = ours(x, **mk), theirs(tx, **tmk)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), **TOL)
    g = _rng(8).standard_normal(y.shape)
    (y * tracer.tensor(g)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    _assert_grads(ours, theirs)
    np.testing.assert_allclose(x.grad.detach().numpy(), tx.grad.detach().numpy(), **TOL)


def test_encoder_stack_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    layer = torch.nn.TransformerEncoderLayer(8, 2, 16, batch_first=True)
    theirs = (
        torch.nn.TransformerEncoder(
            layer, 2, norm=torch.nn.LayerNorm(8), enable_nested_tensor=False
        )
        .double()
        .eval()
    )
    ours = (
        TransformerEncoder(
            TransformerEncoderLayer(8, 2, 16, batch_first=True), 2, norm=LayerNorm(8)
        )
        .double()
        .eval()
    )
    _copy_from_torch(ours, theirs)
    x, tx, mk, tmk = _encoder_inputs(torch, True, "padding", _rng(9))
    y, ty = ours(x, **mk), theirs(tx, **tmk)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), **TOL)
    y.sum().backward()
    ty.sum().backward()
    _assert_grads(ours, theirs)


@pytest.mark.parametrize("norm_first", [False, True])
def test_decoder_layer_matches_torch(norm_first: bool) -> None:
    torch = pytest.importorskip("torch")
    kwargs = {"dim_feedforward": 16, "batch_first": True, "norm_first": norm_first}
    theirs = torch.nn.TransformerDecoderLayer(8, 2, **kwargs).double().eval()
    ours = TransformerDecoderLayer(8, 2, **kwargs).double().eval()
    _copy_from_torch(ours, theirs)
    rng = _rng(10)
    tgt, ttgt = _pair(rng.standard_normal((2, 4, 8)), torch)
    mem, tmem = _pair(rng.standard_normal((2, 6, 8)), torch)
    causal = np.triu(np.full((4, 4), -np.inf), 1)
    pad = np.zeros((2, 6), dtype=bool)
    pad[0, -3:] = True
    y = ours(
        tgt,
        mem,
        tgt_mask=tracer.tensor(causal),
        memory_key_padding_mask=tracer.tensor(pad),
        tgt_is_causal=True,
    )
    ty = theirs(
        ttgt,
        tmem,
        tgt_mask=torch.tensor(causal),
        memory_key_padding_mask=torch.tensor(pad),
        tgt_is_causal=True,
    )
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), **TOL)
    y.sum().backward()
    ty.sum().backward()
    _assert_grads(ours, theirs)
    np.testing.assert_allclose(mem.grad.detach().numpy(), tmem.grad.detach().numpy(), **TOL)


def test_positional_embeddings() -> None:
    x = tracer.tensor(_rng(11).standard_normal((2, 5, 6)).astype(np.float32))
    learned = PositionalEmbedding(10, 6)
    assert list(learned.state_dict()) == ["weight"]
    np.testing.assert_allclose(
        learned(x).detach().numpy(),
        x.detach().numpy() + learned.weight.detach().numpy()[:5],
        rtol=1e-6,
    )
    fixed = SinusoidalPositionalEmbedding(10, 6, batch_first=False)
    assert list(fixed.state_dict()) == []
    pos, i = np.arange(10)[:, None], np.arange(3)[None, :]
    angle = pos / 10000 ** (2 * i / 6)
    expected = np.stack([np.sin(angle), np.cos(angle)], -1).reshape(10, 6)
    xs = x.transpose(0, 1)
    np.testing.assert_allclose(
        fixed(xs).detach().numpy(), xs.detach().numpy() + expected[:5, None], rtol=1e-5, atol=1e-6
    )
    with pytest.raises(ValueError, match="max_len"):
        learned(tracer.zeros(1, 11, 6))
    # Gradients reach the learned table only at the positions used.
    learned(x).sum().backward()
    grad = learned.weight.grad.detach().numpy()
    assert np.all(grad[:5] == 2) and np.all(grad[5:] == 0)


# ---------------------------------------------------------------- tracing


class _Tagger(Module):
    def __init__(self) -> None:
        super().__init__()
        self.embedding = Embedding(20, 6)
        self.lstm = LSTM(6, 5, batch_first=True, bidirectional=True)
        self.out = Linear(10, 4)

    def forward(self, tokens: tracer.Tensor, lengths: tracer.Tensor) -> tracer.Tensor:
        y, _ = self.lstm(self.embedding(tokens), lengths=lengths)
        return self.out(y).log_softmax(-1)


def _backends() -> list[str]:
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return ["interpreter"]
    return ["interpreter", "onnxruntime"]


def _run_graph(graph: object, feeds: dict) -> list[np.ndarray]:
    """The graph's first output on the interpreter (and onnxruntime, when installed)."""
    return [
        next(iter(Session(graph, backend=backend).run(feeds).values())) for backend in _backends()
    ]


def test_lstm_tagger_traces_to_one_lstm_node() -> None:
    tracer.manual_seed(0)
    model = _Tagger().eval()
    rng = _rng(12)
    tokens = tracer.tensor(rng.integers(0, 20, (3, 7)))
    lengths = tracer.tensor(np.array([7, 2, 5]))
    graph = tracer.trace(
        model,
        (tokens, lengths),
        dynamic_axes={"tokens": {0: "batch", 1: "seq"}, "lengths": {0: "batch"}},
    )
    ops = [n.op.op_type for n in graph.nodes]
    assert ops.count("LSTM") == 1
    assert not {"Loop", "Scan"} & set(ops)
    for batch, seq in ((3, 7), (5, 4)):
        toks = rng.integers(0, 20, (batch, seq))
        lens = rng.integers(1, seq + 1, batch)
        expected = model(tracer.tensor(toks), tracer.tensor(lens)).detach().numpy()
        for got in _run_graph(graph, {"tokens": toks, "lengths": lens}):
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_encoder_traces_with_dynamic_batch_and_seq() -> None:
    tracer.manual_seed(0)
    layer = TransformerEncoderLayer(8, 2, 16, dropout=0.1, batch_first=True)
    model = TransformerEncoder(layer, 1).eval()
    rng = _rng(13)

    def encode(x: tracer.Tensor, pad: tracer.Tensor) -> tracer.Tensor:
        return model(x, src_key_padding_mask=pad)

    x = tracer.tensor(rng.standard_normal((2, 5, 8)).astype(np.float32))
    pad = tracer.tensor(np.zeros((2, 5), dtype=bool))
    graph = tracer.trace(
        encode, (x, pad), dynamic_axes={"x": {0: "batch", 1: "seq"}, "pad": {0: "batch", 1: "seq"}}
    )
    for batch, seq in ((2, 5), (3, 9)):
        xs = rng.standard_normal((batch, seq, 8)).astype(np.float32)
        mask = np.zeros((batch, seq), dtype=bool)
        mask[0, seq // 2 :] = True
        expected = encode(tracer.tensor(xs), tracer.tensor(mask)).detach().numpy()
        for got in _run_graph(graph, {"x": xs, "pad": mask}):
            np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("need_weights", [False, True])
def test_mha_is_causal_without_mask_applies_the_causal_mask(need_weights: bool) -> None:
    # PyTorch requires attn_mask with is_causal; graphcap builds the mask itself.
    torch = pytest.importorskip("torch")
    ours, theirs = _mha_pair(torch, batch_first=True)
    x = _rng(14).standard_normal((2, 5, 8))
    pad = np.zeros((2, 5), dtype=bool)
    pad[1, -1] = True
    out, _ = ours(
        *[tracer.tensor(x)] * 3,
        key_padding_mask=tracer.tensor(pad),
        need_weights=need_weights,
        is_causal=True,
    )
    tout, _ = theirs(
        *[torch.tensor(x)] * 3,
        key_padding_mask=torch.tensor(np.where(pad, -np.inf, 0.0)),
        attn_mask=torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64),
        need_weights=need_weights,
    )
    np.testing.assert_allclose(out.detach().numpy(), tout.detach().numpy(), **TOL)
