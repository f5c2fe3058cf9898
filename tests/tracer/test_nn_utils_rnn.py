"""``tracer.nn.utils.rnn`` against ``torch.nn.utils.rnn``, and packed input to RNN/LSTM/GRU.

Packing, unpacking and padding are compared field by field with torch (``data``,
``batch_sizes``, ``sorted_indices``, ``unsorted_indices``) and through their gradients;
recurrent layers fed a ``PackedSequence`` must return torch's packed output, final states
in the caller's batch order, and torch's gradients for the input, ``hx`` and weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tracer
from tests.nn_parity import export_check
from tracer import TraceError, nn
from tracer.nn.utils import rnn
from tracer.nn.utils.rnn import PackedSequence

LENGTHS = [2, 5, 3, 5]  # unsorted, with a tie
SORTED = [5, 5, 3, 2]


@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


def _x(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


def _same_layout(ours: PackedSequence, theirs: Any) -> None:
    np.testing.assert_array_equal(ours.batch_sizes.numpy(), theirs.batch_sizes.numpy())
    for name in ("sorted_indices", "unsorted_indices"):
        a, b = getattr(ours, name), getattr(theirs, name)
        assert (a is None) == (b is None), name
        if a is not None:
            np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)


@pytest.mark.torch
@pytest.mark.parametrize(("lengths", "enforce_sorted"), [(SORTED, True), (LENGTHS, False)])
@pytest.mark.parametrize("batch_first", [False, True])
def test_pack_and_pad_round_trip_matches_torch(
    torch: Any, lengths: list[int], enforce_sorted: bool, batch_first: bool
) -> None:
    x = _x(4, 5, 3) if batch_first else _x(5, 4, 3)
    a, b = tracer.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ours = rnn.pack_padded_sequence(a, lengths, batch_first, enforce_sorted)
    theirs = torch.nn.utils.rnn.pack_padded_sequence(
        b, torch.tensor(lengths), batch_first, enforce_sorted
    )
    np.testing.assert_array_equal(ours.data.detach().numpy(), theirs.data.detach().numpy())
    _same_layout(ours, theirs)
    pa, la = rnn.pad_packed_sequence(ours, batch_first, padding_value=-2.0, total_length=7)
    pb, lb = torch.nn.utils.rnn.pad_packed_sequence(theirs, batch_first, -2.0, 7)
    np.testing.assert_array_equal(pa.detach().numpy(), pb.detach().numpy())
    np.testing.assert_array_equal(la.numpy(), lb.numpy())
    assert la.dtype == tracer.int64
    weights = _x(*pa.shape, seed=1)
    (pa * tracer.tensor(weights)).sum().backward()
    (pb * torch.tensor(weights)).sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), b.grad.numpy())


@pytest.mark.torch
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_pack_and_unpack_sequences_match_torch(torch: Any, side: str) -> None:
    seqs = [_x(n, 2, seed=n) for n in (3, 1, 4)]
    ours = rnn.pad_sequence([tracer.tensor(s) for s in seqs], True, 0.5, side)
    theirs = torch.nn.utils.rnn.pad_sequence([torch.tensor(s) for s in seqs], True, 0.5, side)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())
    packed = rnn.pack_sequence([tracer.tensor(s) for s in seqs], enforce_sorted=False)
    expected = torch.nn.utils.rnn.pack_sequence([torch.tensor(s) for s in seqs], False)
    np.testing.assert_array_equal(packed.data.numpy(), expected.data.numpy())
    _same_layout(packed, expected)
    for got, want in zip(rnn.unpack_sequence(packed), seqs, strict=True):
        np.testing.assert_array_equal(got.numpy(), want)
    padded = rnn.pad_sequence([tracer.tensor(s) for s in seqs])
    for got, want in zip(rnn.unpad_sequence(padded, [3, 1, 4]), seqs, strict=True):
        np.testing.assert_array_equal(got.numpy(), want)


# (class name, kwargs, whether the input is sorted)
RECURRENT = [
    ("LSTM", {"num_layers": 2, "bidirectional": True}, False),
    ("LSTM", {"batch_first": True}, True),
    ("GRU", {"bidirectional": True, "batch_first": True}, False),
    ("RNN", {"nonlinearity": "relu"}, False),
    ("RNN", {"num_layers": 2}, True),
]


@pytest.mark.torch
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "kwargs", "presorted"), RECURRENT, ids=str)
def test_recurrent_layers_take_packed_sequences_as_torch(
    torch: Any, name: str, kwargs: dict[str, Any], presorted: bool, dtype: Any
) -> None:
    torch.manual_seed(0)
    theirs = getattr(torch.nn, name)(3, 4, **kwargs).to(getattr(torch, np.dtype(dtype).name))
    ours = getattr(nn, name)(3, 4, **kwargs).to(dtype)
    ours.load_state_dict(
        {k: tracer.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()}
    )
    ours.flatten_parameters()  # accepted, a no-op
    lengths = SORTED if presorted else LENGTHS
    batch_first = kwargs.get("batch_first", False)
    x = (_x(4, 5, 3) if batch_first else _x(5, 4, 3)).astype(dtype)
    layers = kwargs.get("num_layers", 1) * (2 if kwargs.get("bidirectional") else 1)
    h0 = _x(layers, 4, 4, seed=1).astype(dtype)
    xa, xb = tracer.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
    ha, hb = tracer.tensor(h0, requires_grad=True), torch.tensor(h0, requires_grad=True)
    pa = rnn.pack_padded_sequence(xa, lengths, batch_first, enforce_sorted=presorted)
    pb = torch.nn.utils.rnn.pack_padded_sequence(xb, torch.tensor(lengths), batch_first, presorted)
    if name == "LSTM":
        ya, (hna, cna) = ours(pa, (ha, ha * 0.5))
        yb, (hnb, cnb) = theirs(pb, (hb, hb * 0.5))
        finals = [(hna, hnb), (cna, cnb)]
    else:
        (ya, hna), (yb, hnb) = ours(pa, ha), theirs(pb, hb)
        finals = [(hna, hnb)]
    assert isinstance(ya, PackedSequence)
    _same_layout(ya, yb)
    tol = {"rtol": 1e-4, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-9, "atol": 1e-10}
    np.testing.assert_allclose(ya.data.detach().numpy(), yb.data.detach().numpy(), **tol)
    for a, b in finals:
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), **tol)
    sum((a * a).sum() for a, _ in finals).add((ya.data * ya.data).sum()).backward()
    sum((b * b).sum() for _, b in finals).add((yb.data * yb.data).sum()).backward()
    np.testing.assert_allclose(xa.grad.numpy(), xb.grad.numpy(), **tol)
    np.testing.assert_allclose(ha.grad.numpy(), hb.grad.numpy(), **tol)
    theirs_params = dict(theirs.named_parameters())
    for key, p in ours.named_parameters():
        np.testing.assert_allclose(
            p.grad.numpy(), theirs_params[key].grad.numpy(), err_msg=key, **tol
        )


def test_bad_packing_arguments_raise() -> None:
    x = tracer.tensor(_x(5, 4, 3))
    with pytest.raises(RuntimeError, match="sorted in decreasing order"):
        rnn.pack_padded_sequence(x, LENGTHS)
    with pytest.raises(RuntimeError, match="greater than 0"):
        rnn.pack_padded_sequence(x, [5, 0, 3, 2], enforce_sorted=False)
    with pytest.raises(RuntimeError, match="batch_size"):
        rnn.pack_padded_sequence(x, [5, 3])
    with pytest.raises(RuntimeError, match="greater than the sequence length"):
        rnn.pack_padded_sequence(x, [6, 3, 2, 1])
    packed = rnn.pack_padded_sequence(x, SORTED)
    with pytest.raises(ValueError, match="total_length"):
        rnn.pad_packed_sequence(packed, total_length=3)
    with pytest.raises(ValueError, match="carries its lengths"):
        nn.GRU(3, 4)(packed, lengths=tracer.tensor(SORTED))
    with pytest.raises(RuntimeError, match="empty list"):
        rnn.pad_sequence([])


def test_packed_sequence_conversions() -> None:
    packed = rnn.pack_sequence([tracer.ones(3, 2), tracer.ones(2, 2)])
    assert packed.double().data.dtype == tracer.float64
    assert packed.to(tracer.float64).float().data.dtype == tracer.float32
    assert not packed.is_cuda and packed.cpu() is packed
    data, batch_sizes, sorted_indices, unsorted_indices = packed
    assert batch_sizes.tolist() == [2, 2, 1] and sorted_indices is None
    assert unsorted_indices is None and tuple(data.shape) == (5, 2)


class _PackedTagger(nn.Module):
    """pack -> bidirectional LSTM -> pad -> Linear, as PyTorch taggers are written."""

    def __init__(self, lengths: list[int] | None = None) -> None:
        super().__init__()
        self.lstm = nn.LSTM(3, 4, bidirectional=True)
        self.fc = nn.Linear(8, 2)
        self.lengths = lengths

    def forward(self, x: Any, lengths: Any = None) -> Any:
        lengths = self.lengths if lengths is None else lengths
        packed = rnn.pack_padded_sequence(x, lengths, enforce_sorted=False)
        out, _ = self.lstm(packed)
        padded, _ = rnn.pad_packed_sequence(out, total_length=x.shape[0])
        return self.fc(padded)


def test_packed_model_traces_with_known_lengths_and_refuses_traced_ones() -> None:
    x = _x(5, 4, 3).astype(np.float32)
    export_check(_PackedTagger(LENGTHS), [x], ["LSTM"])
    model = _PackedTagger()
    with pytest.raises(TraceError, match="tolist"):
        tracer.trace(model, (tracer.tensor(x), tracer.tensor(np.array(LENGTHS))))
