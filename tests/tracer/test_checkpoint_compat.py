"""``tracer.save`` / ``tracer.load`` as PyTorch code calls them.

File objects, whole checkpoints (nested state dicts), and clear refusals for modules,
pickles and PyTorch zip checkpoints, which are never unpickled.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest

import tracer
import tracer.nn as nn
from tracer.serialization import CheckpointError


def _model() -> nn.Module:
    tracer.manual_seed(0)
    return nn.Sequential(nn.Embedding(5, 3), nn.LSTM(3, 4, batch_first=True))


def _equal(a: object, b: object) -> None:
    if isinstance(a, tracer.Tensor):
        assert isinstance(b, tracer.Tensor) and a.dtype == b.dtype
        np.testing.assert_array_equal(a.detach().numpy(), b.detach().numpy())
    elif isinstance(a, dict):
        assert isinstance(b, dict) and list(a) == list(b)
        for k in a:
            _equal(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert type(a) is type(b) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _equal(x, y)
    else:
        assert a == b


def _checkpoint() -> dict[str, object]:
    model = _model()
    opt = tracer.optim.Adam(model.parameters(), lr=0.1)
    out, _ = model[1](model[0](tracer.tensor([[1, 2, 3]])))
    out.sum().backward()
    opt.step()
    return {"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3, "best": 0.5}


def test_file_objects_round_trip_state_dicts_and_whole_checkpoints(tmp_path: Path) -> None:
    for obj in [_model().state_dict(), _checkpoint(), [tracer.ones(2), (1, "x")]]:
        buf = io.BytesIO()
        tracer.save(obj, buf)
        buf.seek(0)
        _equal(obj, tracer.load(buf))
        path = tmp_path / "ckpt.pt"
        with open(path, "wb") as f:
            tracer.save(obj, f)
        with open(path, "rb") as f:
            _equal(obj, tracer.load(f, map_location="cpu", weights_only=True))
        _equal(obj, tracer.load(path))  # a file written through a file object, by path
    model = _model()
    model.load_state_dict(tracer.load(io.BytesIO(_bytes(_model().state_dict()))))


def _bytes(obj: object) -> bytes:
    buf = io.BytesIO()
    tracer.save(obj, buf)
    return buf.getvalue()


def test_a_flat_state_dict_stream_is_plain_safetensors() -> None:
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    state = _model().state_dict()
    arrays = safetensors_numpy.load(_bytes(state))
    assert sorted(arrays) == sorted(state)


def test_torch_reads_what_tracer_saves_and_the_other_way() -> None:
    torch = pytest.importorskip("torch")
    safetensors_torch = pytest.importorskip("safetensors.torch")
    state = _model().state_dict()
    theirs = safetensors_torch.load(_bytes(state))
    for k, v in state.items():
        np.testing.assert_array_equal(theirs[k].numpy(), v.detach().numpy())
    ours = tracer.load(io.BytesIO(safetensors_torch.save({"w": torch.ones(2, 3)})))
    assert list(ours) == ["w"] and ours["w"].tolist() == [[1.0] * 3] * 2


def test_a_whole_module_is_refused_with_the_state_dict_way() -> None:
    model = _model()
    for obj in [model, {"model": model}, tracer.optim.SGD(model.parameters(), lr=0.1)]:
        with pytest.raises(TypeError, match=r"state_dict\(\)"):
            tracer.save(obj, io.BytesIO())


def test_pickles_are_refused_without_being_unpickled(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    class Boom:
        def __reduce__(self) -> tuple[object, ...]:
            return (print, ("unpickled!",))

    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps(Boom()))
    with pytest.raises(CheckpointError, match="never unpickles") as err:
        tracer.load(path)
    assert "model.state_dict()" in str(err.value)
    assert "unpickled!" not in capsys.readouterr().out
    with pytest.raises(CheckpointError, match="Python pickle"):
        tracer.load(io.BytesIO(pickle.dumps({"w": 1})))


def test_a_torch_zip_checkpoint_gets_the_conversion_recipe(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    try:
        import torch

        torch.save({"w": torch.ones(2)}, path)
    except ImportError:  # the same container PyTorch writes: a zip holding data.pkl
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("archive/data.pkl", pickle.dumps({"w": 1}))
    for source in [path, open(path, "rb")]:  # noqa: SIM115 - closed below
        with pytest.raises(CheckpointError, match=r"PyTorch checkpoint.*save_file"):
            tracer.load(source)
        if hasattr(source, "close"):
            source.close()


def test_load_rejects_a_text_mode_file(tmp_path: Path) -> None:
    path = tmp_path / "x.st"
    path.write_bytes(_bytes({"w": tracer.ones(1)}))
    with open(path, encoding="latin-1") as f, pytest.raises(TypeError, match="binary"):
        tracer.load(f)
