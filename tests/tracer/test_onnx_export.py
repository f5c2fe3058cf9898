"""``tracer.onnx.export``: ``torch.onnx.export``'s call, checked by running the file in onnxruntime.

The model is a small LSTM language model called as the word-language-model example calls
it, ``export(model, (input, (h, c)), f)``: nested inputs and outputs are flattened, names and
dynamic axes apply to the flattened ones, the export runs in eval mode, and ``f`` may be a
path or a file object. Outputs are compared with the eager model and, where torch is
installed, with torch running the same weights.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

import tracer
import tracer.nn as nn
import tracer.nn.functional as F  # noqa: N812 - PyTorch's customary name

ort = pytest.importorskip("onnxruntime")


class TinyLM(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.drop = nn.Dropout(0.5)
        self.encoder = nn.Embedding(11, 6)
        self.rnn = nn.LSTM(6, 5, 2)
        self.decoder = nn.Linear(5, 11)

    def forward(self, input: tracer.Tensor, hidden: tuple[tracer.Tensor, tracer.Tensor]):
        output, hidden = self.rnn(self.drop(self.encoder(input)), hidden)
        return F.log_softmax(self.decoder(self.drop(output)), dim=-1), hidden


def _inputs(
    seq: int = 4, batch: int = 3
) -> tuple[tracer.Tensor, tuple[tracer.Tensor, tracer.Tensor]]:
    rng = np.random.default_rng(0)
    ids = tracer.tensor(rng.integers(0, 11, (seq, batch)))
    h = tracer.tensor(rng.standard_normal((2, batch, 5)).astype(np.float32))
    return ids, (h, h * 0.5)


def _run(model_bytes: bytes, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    session = ort.InferenceSession(model_bytes, providers=["CPUExecutionProvider"])
    return session.run(None, feeds)


def test_export_flattens_names_and_matches_eager(tmp_path: Path) -> None:
    tracer.manual_seed(0)
    model = TinyLM()
    model.train()
    ids, (h, c) = _inputs()
    path = tmp_path / "lm.onnx"
    tracer.onnx.export(
        model,
        (ids, (h, c)),
        str(path),
        input_names=["input", "h0", "c0"],
        output_names=["log_probs", "hn", "cn"],
        dynamic_axes={"input": {0: "seq", 1: "batch"}, "h0": {1: "batch"}, "c0": {1: "batch"}},
        opset_version=18,
    )
    assert model.training  # restored after the eval-mode export
    proto = path.read_bytes()
    session = ort.InferenceSession(proto, providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input", "h0", "c0"]
    assert [o.name for o in session.get_outputs()] == ["log_probs", "hn", "cn"]
    model.eval()
    for seq, batch in [(4, 3), (7, 2)]:  # the dynamic axes at work
        ids, (h, c) = _inputs(seq, batch)
        got = _run(proto, {"input": ids.numpy(), "h0": h.numpy(), "c0": c.numpy()})
        with tracer.no_grad():
            out, (hn, cn) = model(ids, (h, c))
        for g, w in zip(got, [out, hn, cn], strict=True):
            np.testing.assert_allclose(g, w.numpy(), rtol=1e-5, atol=1e-6)
    import onnx

    assert onnx.load(str(path)).opset_import[0].version == 18


def test_export_to_a_file_object_with_default_names_and_kwargs() -> None:
    tracer.manual_seed(1)
    model = TinyLM().eval()
    ids, hidden = _inputs()
    buf = io.BytesIO()
    tracer.onnx.export(model, (ids, {"hidden": hidden}), buf)
    got = _run(
        buf.getvalue(),
        {"input_0": ids.numpy(), "input_1": hidden[0].numpy(), "input_2": hidden[1].numpy()},
    )
    with tracer.no_grad():
        want = model(ids, hidden=hidden)[0]
    np.testing.assert_allclose(got[0], want.numpy(), rtol=1e-5, atol=1e-6)
    assert len(got) == 3


def test_export_matches_torch_on_the_same_weights() -> None:
    torch = pytest.importorskip("torch")

    class TorchLM(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.drop = torch.nn.Dropout(0.5)
            self.encoder = torch.nn.Embedding(11, 6)
            self.rnn = torch.nn.LSTM(6, 5, 2)
            self.decoder = torch.nn.Linear(5, 11)

        def forward(self, input, hidden):
            output, hidden = self.rnn(self.drop(self.encoder(input)), hidden)
            return torch.log_softmax(self.decoder(self.drop(output)), dim=-1), hidden

    ref = TorchLM().eval()
    model = TinyLM()
    model.load_state_dict({k: tracer.tensor(v.numpy()) for k, v in ref.state_dict().items()})
    ids, (h, c) = _inputs()
    buf = io.BytesIO()
    tracer.onnx.export(model, (ids, (h, c)), buf, input_names=["input", "h0", "c0"])
    got = _run(buf.getvalue(), {"input": ids.numpy(), "h0": h.numpy(), "c0": c.numpy()})
    with torch.no_grad():
        out, (hn, cn) = ref(
            torch.tensor(ids.numpy()), (torch.tensor(h.numpy()), torch.tensor(c.numpy()))
        )
    for g, w in zip(got, [out, hn, cn], strict=True):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-5)


def test_export_options_graphcap_does_not_have_raise() -> None:
    model, args = TinyLM(), _inputs()
    with pytest.raises(TypeError, match="operator_export_type"):
        tracer.onnx.export(model, args, io.BytesIO(), operator_export_type=None)
    with pytest.raises(NotImplementedError, match="initializers"):
        tracer.onnx.export(model, args, io.BytesIO(), export_params=False)
    with pytest.raises(TypeError, match="needs f"):
        tracer.onnx.export(model, args)
    with pytest.raises(ValueError, match="dynamic_axes"):
        tracer.onnx.export(model, args, io.BytesIO(), dynamic_axes={"nope": [0]})
