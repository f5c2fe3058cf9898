"""EmbeddingBag, RNN cells, Transformer, activations, distances, Bilinear and padding.

Each layer against torch 2.13 (weights copied by ``state_dict`` name; values, input,
parameter gradients) in float32 and float64, then traced and run on onnxruntime.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tracer
from tests.nn_parity import compare, export_check
from tracer import nn
from tracer.nn import functional as F  # noqa: N812 - PyTorch's name


@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


def _x(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def _wrap(base: Any, cell: Any, two_states: bool) -> Any:
    """A module calling ``cell(x, (h, c))`` so both libraries take three plain inputs."""

    class Wrapped(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.cell = cell

        def forward(self, x: Any, h: Any, c: Any = None) -> Any:
            return self.cell(x, (h, c)) if two_states else self.cell(x, h)

    return Wrapped()


INDICES = np.array([1, 2, 4, 5, 4, 3, 2, 9, 0, 0], np.int64)
OFFSETS = np.array([0, 2, 2, 5], np.int64)  # bags of 2, 0, 3 and 5 positions

# (class name, args, kwargs, inputs as a function of the seed)
LAYERS: list[tuple[str, tuple[Any, ...], dict[str, Any], Any]] = [
    ("EmbeddingBag", (10, 3), {"mode": "sum"}, lambda: [INDICES, OFFSETS]),
    ("EmbeddingBag", (10, 3), {"mode": "mean", "padding_idx": 0}, lambda: [INDICES, OFFSETS]),
    ("EmbeddingBag", (10, 3), {"mode": "max", "padding_idx": 2}, lambda: [INDICES, OFFSETS]),
    (
        "EmbeddingBag",
        (10, 3),
        {"mode": "sum", "include_last_offset": True, "padding_idx": 4},
        lambda: [INDICES, np.array([0, 2, 2, 5, 10]), np.linspace(0.1, 2, 10)],
    ),
    ("EmbeddingBag", (10, 3), {"mode": "mean"}, lambda: [INDICES.reshape(2, 5)]),
    ("EmbeddingBag", (10, 3), {"mode": "max", "padding_idx": 4}, lambda: [INDICES.reshape(5, 2)]),
    ("RNNCell", (4, 5), {}, lambda: [_x(3, 4), _x(3, 5, seed=1)]),
    ("RNNCell", (4, 5), {"nonlinearity": "relu", "bias": False}, lambda: [_x(3, 4)]),
    ("GRUCell", (4, 5), {}, lambda: [_x(3, 4), _x(3, 5, seed=1)]),
    ("GRUCell", (4, 5), {}, lambda: [_x(4), _x(5, seed=1)]),
    ("LSTMCell", (4, 5), {}, lambda: [_x(3, 4)]),
    ("SiLU", (), {}, lambda: [_x(3, 4)]),
    ("Mish", (), {}, lambda: [_x(3, 4) * 3]),
    ("Hardtanh", (-0.5, 0.8), {}, lambda: [_x(3, 4)]),
    ("CosineSimilarity", (), {"dim": 2}, lambda: [_x(2, 3, 4), _x(1, 3, 4, seed=1)]),
    ("CosineSimilarity", (0,), {}, lambda: [_x(4), _x(4, seed=1)]),
    ("PairwiseDistance", (), {}, lambda: [_x(3, 4), _x(3, 4, seed=1)]),
    ("PairwiseDistance", (1.0,), {"keepdim": True}, lambda: [_x(3, 4), _x(4, seed=1)]),
    ("PairwiseDistance", (3.0,), {}, lambda: [_x(2, 3, 4), _x(2, 3, 4, seed=1)]),
    ("Bilinear", (4, 3, 5), {}, lambda: [_x(2, 6, 4), _x(2, 6, 3, seed=1)]),
    ("Bilinear", (4, 3, 5), {"bias": False}, lambda: [_x(6, 4), _x(6, 3, seed=1)]),
    ("ZeroPad1d", (2,), {}, lambda: [_x(2, 3, 4)]),
    ("ConstantPad1d", ((1, 3), 2.5), {}, lambda: [_x(3, 4)]),
    ("ZeroPad2d", ((1, 0, 2, 1),), {}, lambda: [_x(2, 3, 4)]),
    ("ConstantPad2d", (1, -1.0), {}, lambda: [_x(2, 3, 4)]),
]


def _ids(case: Any) -> str:
    if callable(case) and not isinstance(case, nn.Module):
        return "inputs"  # a lambda's repr holds its address, which differs between workers
    return str(case).replace(" ", "").replace("\n", "")[:28]


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "args", "kwargs", "inputs"), LAYERS, ids=_ids)
def test_layer_matches_torch(
    torch: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], inputs: Any, dtype: Any
) -> None:
    torch.manual_seed(0)
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    if name == "LSTMCell":
        ours, theirs = _wrap(nn.Module, ours, True), _wrap(torch.nn.Module, theirs, True)
        arrays = [*inputs(), _x(3, 5, seed=1), _x(3, 5, seed=2)]
    else:
        arrays = inputs()
    compare(torch, ours, theirs, arrays, dtype)


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:enable_nested_tensor is True")
@pytest.mark.parametrize("batch_first", [False, True])
def test_transformer_matches_torch(torch: Any, batch_first: bool) -> None:
    """Encoder-decoder with a causal target mask and a source padding mask, float64."""
    torch.manual_seed(0)
    kwargs = {"num_encoder_layers": 2, "num_decoder_layers": 2, "dim_feedforward": 16}
    kwargs |= {"dropout": 0.0, "batch_first": batch_first}
    ours, theirs = nn.Transformer(8, 2, **kwargs), torch.nn.Transformer(8, 2, **kwargs)
    mask = nn.Transformer.generate_square_subsequent_mask(4)
    torch_mask = torch.nn.Transformer.generate_square_subsequent_mask(4)
    np.testing.assert_array_equal(mask.numpy(), torch_mask.numpy())
    pad = np.array([[False] * 5, [False] * 3 + [True] * 2])

    def call(model: Any, lib: Any, m: Any) -> Any:
        def forward(src: Any, tgt: Any) -> Any:
            return model(src, tgt, tgt_mask=m, src_key_padding_mask=lib.tensor(pad))

        return forward

    shape = (2, 5, 8) if batch_first else (5, 2, 8)
    tgt_shape = (2, 4, 8) if batch_first else (4, 2, 8)
    theirs.double()
    wrapped_ours = _Call(ours, call(ours, tracer, mask.double()))
    wrapped_theirs = _TorchCall(torch, theirs, call(theirs, torch, torch_mask.double()))
    compare(torch, wrapped_ours, wrapped_theirs, [_x(*shape), _x(*tgt_shape, seed=1)], np.float64)


class _Call(nn.Module):
    def __init__(self, model: nn.Module, fn: Any) -> None:
        super().__init__()
        self.model = model
        self._fn = fn

    def forward(self, *args: Any) -> Any:
        return self._fn(*args)


def _TorchCall(torch: Any, model: Any, fn: Any) -> Any:
    class Call(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *args: Any) -> Any:
            return fn(*args)

    return Call()


@pytest.mark.torch
def test_transformer_decoder_keys_and_init_match_torch(torch: Any) -> None:
    layer = nn.TransformerDecoderLayer(8, 2, 16)
    ours = nn.TransformerDecoder(layer, 2, nn.LayerNorm(8))
    theirs = torch.nn.TransformerDecoder(
        torch.nn.TransformerDecoderLayer(8, 2, 16), 2, torch.nn.LayerNorm(8)
    )
    assert [(k, tuple(v.shape)) for k, v in ours.state_dict().items()] == [
        (k, tuple(v.shape)) for k, v in theirs.state_dict().items()
    ]
    model = nn.Transformer(8, 2, 1, 1, 16)
    w = model.encoder.layers[0].linear1.weight.detach().numpy()
    bound = np.sqrt(6 / (8 + 16))  # Xavier uniform over every matrix, as torch
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound


def test_embedding_bag_errors() -> None:
    bag = nn.EmbeddingBag(10, 3, mode="mean")
    text = tracer.tensor(INDICES)
    with pytest.raises(ValueError, match="offsets has to be a 1D Tensor but got None"):
        bag(text)
    with pytest.raises(ValueError, match=r"offsets\[0\] has to be 0"):
        bag(text, tracer.tensor([1, 3]))
    with pytest.raises(ValueError, match="offsets has to be None"):
        bag(text.reshape(2, 5), tracer.tensor([0, 1]))
    with pytest.raises(NotImplementedError, match="only supported for mode='sum'"):
        bag(text, tracer.tensor(OFFSETS), tracer.ones(10))
    with pytest.raises(IndexError, match="index out of range"):
        bag(tracer.tensor([1, 10]), tracer.tensor([0]))
    assert F.embedding_bag(text, bag.weight, tracer.tensor([0, 10]), mode="max")[1].eq(0).all()


def test_cells_reject_bad_shapes() -> None:
    with pytest.raises(ValueError, match="1D or 2D"):
        nn.GRUCell(4, 5)(tracer.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="input_size"):
        nn.RNNCell(4, 5)(tracer.zeros(2, 3))
    with pytest.raises(ValueError, match="tuple"):
        nn.LSTMCell(4, 5)(tracer.zeros(2, 4), tracer.zeros(2, 5))


def _cell(cls: Any) -> Any:
    return _wrap(nn.Module, cls(4, 5), cls is nn.LSTMCell)


# (module, inputs, an op the graph must hold)
EXPORTS: list[tuple[Any, list[np.ndarray], str]] = [
    (nn.EmbeddingBag(10, 3, mode="mean"), [INDICES, OFFSETS], "MatMul"),
    (nn.EmbeddingBag(10, 3, mode="max"), [INDICES.reshape(2, 5)], "ReduceMax"),
    (_cell(nn.RNNCell), [_x(3, 4), _x(3, 5)], "RNN"),
    (_cell(nn.GRUCell), [_x(3, 4), _x(3, 5)], "GRU"),
    (_cell(nn.LSTMCell), [_x(3, 4), _x(3, 5), _x(3, 5, seed=1)], "LSTM"),
    (nn.Mish(), [_x(3, 4)], "Mish"),
    (nn.Hardtanh(), [_x(3, 4)], "Clip"),
    (nn.SiLU(), [_x(3, 4)], "Sigmoid"),
    (nn.CosineSimilarity(), [_x(3, 4), _x(3, 4, seed=1)], "ReduceL2"),
    (nn.PairwiseDistance(), [_x(3, 4), _x(3, 4, seed=1)], "ReduceL2"),
    (nn.Bilinear(4, 3, 5), [_x(6, 4), _x(6, 3)], "Einsum"),
    (nn.ConstantPad1d((1, 2), 0.5), [_x(2, 3, 4)], "Pad"),
    (nn.ZeroPad2d(1), [_x(2, 3, 4)], "Pad"),
]


@pytest.mark.parametrize(("module", "arrays", "op_type"), EXPORTS, ids=_ids)
def test_layer_exports_and_runs_on_onnxruntime(
    module: Any, arrays: list[np.ndarray], op_type: str
) -> None:
    arrays = [a.astype(np.float32) if a.dtype.kind == "f" else a for a in arrays]
    ops = export_check(module, arrays, [op_type])
    if op_type in ("RNN", "GRU", "LSTM"):  # one recurrent node; the rest reorders weights
        assert ops.count(op_type) == 1


def test_transformer_exports_and_runs_on_onnxruntime() -> None:
    model = nn.Transformer(8, 2, 1, 1, 16)

    class Seq2Seq(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, src: Any, tgt: Any) -> Any:
            mask = nn.Transformer.generate_square_subsequent_mask(tgt.shape[0])
            return self.model(src, tgt, tgt_mask=mask)

    arrays = [_x(5, 2, 8).astype(np.float32), _x(4, 2, 8, seed=1).astype(np.float32)]
    export_check(Seq2Seq(), arrays, ["LayerNormalization", "Softmax"])


def test_embedding_bag_traces_with_dynamic_tokens_and_bags() -> None:
    """The text_sentiment_ngrams model: offsets are a graph input of dynamic length."""

    class TextClassification(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.embedding = nn.EmbeddingBag(20, 4, mode="mean")
            self.fc = nn.Linear(4, 2)

        def forward(self, text: Any, offsets: Any) -> Any:
            return self.fc(self.embedding(text, offsets))

    feeds = [np.random.default_rng(2).integers(0, 20, 11), np.array([0, 3, 3, 7])]
    export_check(
        TextClassification(),
        [np.arange(6), np.array([0, 2])],
        dynamic_axes={"text": {0: "tokens"}, "offsets": {0: "bags"}},
        feeds=feeds,
    )
