"""tracer.serialization: one safetensors file per checkpoint, atomic writes, no unpickling."""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import safetensors.numpy

import tracer
from tracer import optim
from tracer.serialization import CheckpointError, load, save


def _state_dict() -> dict[str, tracer.Tensor]:
    rng = np.random.default_rng(0)
    return {
        "encoder.weight": tracer.tensor(rng.standard_normal((4, 3)).astype(np.float32)),
        "encoder.bias": tracer.tensor(rng.standard_normal(4).astype(np.float64)),
        "embed.weight": tracer.tensor(rng.standard_normal((5, 2)).astype(np.float16)),
        "position_ids": tracer.arange(6),
        "mask": tracer.tensor([[True, False]]),
        "scale": tracer.tensor(np.float32(0.5)),
        "empty": tracer.zeros(0, 3),
    }


def _assert_same(a, b):
    assert type(a) is type(b), (a, b)
    if isinstance(a, tracer.Tensor):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    elif isinstance(a, dict):
        assert list(a) == list(b)
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    elif isinstance(a, float) and np.isnan(a):
        assert np.isnan(b)
    else:
        assert a == b


def test_state_dict_round_trip(tmp_path):
    sd = _state_dict()
    path = tmp_path / "model.safetensors"
    save(sd, path)
    out = load(path)
    _assert_same(sd, out)
    out["encoder.weight"].add_(1.0)  # loaded tensors are writable and own their memory
    # a plain state dict is an ordinary safetensors file, readable by name without graphcap
    raw = safetensors.numpy.load_file(path)
    assert set(raw) == set(sd)
    np.testing.assert_array_equal(raw["encoder.weight"], sd["encoder.weight"].numpy())
    assert os.listdir(tmp_path) == ["model.safetensors"]  # one file, no sidecar
    # the same arrays without graphcap's header (PyTorch's file) load by name, sorted
    safetensors.numpy.save_file({k: v.numpy() for k, v in sd.items()}, str(path))
    _assert_same(dict(sorted(sd.items())), load(str(path)))


def test_nested_structure_round_trip(tmp_path):
    obj = {
        "model": _state_dict(),
        "optimizer": {
            "state": {0: {"step": 3, "exp_avg": tracer.ones(2)}},
            "param_groups": [{"lr": 0.1, "betas": (0.9, 0.999), "params": [0, 1]}],
        },
        "epoch": 7,
        "best": float("nan"),
        "inf": float("inf"),
        "note": "héllo",
        "flags": [True, None, 2.5, (1, "a")],
        "__tensor__": "a user key that looks like a tag",
        1.5: {"__dict__": []},
        None: False,
    }
    save(obj, tmp_path / "ckpt")
    _assert_same(obj, load(tmp_path / "ckpt"))
    # tensors are stored under their dotted path, the rest as JSON in the header
    raw = safetensors.numpy.load_file(tmp_path / "ckpt")
    assert {"model.encoder.weight", "optimizer.state.0.exp_avg"} <= set(raw)
    with safetensors.safe_open(tmp_path / "ckpt", framework="np") as f:
        structure = json.loads(f.metadata()["graphcap.structure"])
    assert structure["format"] == "graphcap-checkpoint" and structure["version"] == 1
    assert os.listdir(tmp_path) == ["ckpt"]


def test_non_tensor_objects_and_overwrite(tmp_path):
    path = tmp_path / "x.safetensors"
    save([1, 2.0], path)
    assert load(path) == [1, 2.0]
    save(tracer.ones(2), path)  # overwriting an existing checkpoint
    _assert_same(load(path), tracer.ones(2))
    assert sorted(os.listdir(tmp_path)) == ["x.safetensors"]


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ({"a": object()}, "can't store a object at 'a'"),
        ({"a": [np.zeros(2)]}, "ndarray at 'a.0'"),
        ({(1, 2): 1}, "dict key"),
        ({1, 2}, "set at the top level"),
    ],
)
def test_save_refuses_other_types(tmp_path, obj, match):
    with pytest.raises(TypeError, match=match):
        save(obj, tmp_path / "bad")
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_optimizer_resume_from_checkpoint(tmp_path, name):
    rng = np.random.default_rng(1)
    w0 = rng.standard_normal((3, 2)).astype(np.float32)
    grads = [rng.standard_normal((3, 2)).astype(np.float32) for _ in range(6)]
    kw = {"lr": 0.1, "momentum": 0.9} if name == "SGD" else {"lr": 0.01, "amsgrad": True}

    def run(w, opt, gs):
        for g in gs:
            w.grad = tracer.tensor(g)
            opt.step()

    w = tracer.tensor(w0, requires_grad=True)
    opt = getattr(optim, name)([w], **kw)
    sched = optim.lr_scheduler.StepLR(opt, 2)
    run(w, opt, grads[:3])
    sched.step()
    save(
        {"model": {"w": w}, "optim": opt.state_dict(), "sched": sched.state_dict(), "step": 3},
        tmp_path / "ckpt.safetensors",
    )
    run(w, opt, grads[3:])

    ckpt = load(tmp_path / "ckpt.safetensors")
    w2 = tracer.tensor(ckpt["model"]["w"].numpy(), requires_grad=True)
    opt2 = getattr(optim, name)([w2], lr=5.0)
    sched2 = optim.lr_scheduler.StepLR(opt2, 2)
    opt2.load_state_dict(ckpt["optim"])
    sched2.load_state_dict(ckpt["sched"])
    assert ckpt["step"] == 3 and opt2.param_groups[0]["lr"] == sched.get_last_lr()[0]
    run(w2, opt2, grads[3:])
    np.testing.assert_array_equal(w2.detach().numpy(), w.detach().numpy())


def test_loads_torch_safetensors_by_name(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Embedding(10, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 3)
    )
    path = tmp_path / "model.safetensors"
    save_file(model.state_dict(), path)
    out = load(path)
    assert list(out) == sorted(model.state_dict())
    for name, value in model.state_dict().items():
        assert out[name].dtype == np.float32
        np.testing.assert_array_equal(out[name].numpy(), value.numpy())


def test_graphcap_state_dict_loads_in_torch(tmp_path):
    pytest.importorskip("torch")
    from safetensors.torch import load_file

    sd = {k: v for k, v in _state_dict().items() if v.dtype != np.float16}
    save(sd, tmp_path / "m.safetensors")
    out = load_file(tmp_path / "m.safetensors")
    for name, value in sd.items():
        np.testing.assert_array_equal(out[name].numpy(), value.numpy())


def test_loads_into_module_by_name(tmp_path):
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    theirs = torch.nn.Linear(4, 3)
    save_file(theirs.state_dict(), tmp_path / "l.safetensors")
    ours = tracer.nn.Linear(4, 3)
    ours.load_state_dict(load(tmp_path / "l.safetensors"))
    x = np.random.default_rng(0).standard_normal((2, 4)).astype(np.float32)
    expected = theirs(torch.tensor(x)).detach().numpy()
    np.testing.assert_allclose(ours(tracer.tensor(x)).detach().numpy(), expected, rtol=1e-6)


# ---------------------------------------------------------------- atomicity


def _checkpoint(tmp_path):
    path = tmp_path / "ckpt.safetensors"
    old = {"w": tracer.ones(3), "meta": {"epoch": 1}}
    save(old, path)
    return path, old


def test_crash_while_writing_keeps_old_checkpoint(tmp_path, monkeypatch):
    path, old = _checkpoint(tmp_path)

    def crash(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"\x10\x00\x00\x00half a header")
        raise KeyboardInterrupt("power cut")

    monkeypatch.setattr(safetensors.numpy, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        save({"w": tracer.zeros(3), "meta": {"epoch": 2}}, path)
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]
    _assert_same(load(path), old)


def test_writes_are_fsynced_and_renamed_once(tmp_path, monkeypatch):
    synced, renamed = [], []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: synced.append(fd) or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda s, d: renamed.append((s, d)) or real_replace(s, d))
    save({"w": tracer.ones(1), "n": 1}, tmp_path / "c")
    assert len(synced) >= 1
    assert [os.path.basename(d) for _, d in renamed] == ["c"]
    assert all(os.path.dirname(s) == str(tmp_path) for s, _ in renamed)


def _legacy(tmp_path, sidecar=None):
    """A checkpoint as graphcap wrote them before: tensors plus a JSON sidecar, same id."""
    path = tmp_path / "ckpt.safetensors"
    metadata = {"format": "pt", "graphcap.checkpoint_id": "abc", "graphcap.layout": "tree"}
    safetensors.numpy.save_file({"w": np.ones(3, np.float32)}, str(path), metadata)
    if sidecar is None:
        sidecar = json.dumps(
            {"format": "graphcap-checkpoint", "version": 1, "checkpoint_id": "abc",
             "tensors_file": path.name, "object": {"w": {"__tensor__": "w"}, "epoch": 1}}
        )  # fmt: skip
    (tmp_path / "ckpt.safetensors.json").write_text(sidecar)
    return path


def test_reads_checkpoints_with_a_sidecar_and_replaces_them(tmp_path):
    path = _legacy(tmp_path)
    _assert_same(load(path), {"w": tracer.ones(3), "epoch": 1})
    save({"w": tracer.zeros(2)}, path)  # the sidecar described the old file: it goes
    assert os.listdir(tmp_path) == ["ckpt.safetensors"]
    _assert_same(load(path), {"w": tracer.zeros(2)})


# ---------------------------------------------------------------- malformed files


def test_refuses_malformed_files(tmp_path):
    path, _ = _checkpoint(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load(path)
    path.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="not a valid safetensors file"):
        load(path)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load(tmp_path / "missing")


@pytest.mark.parametrize(
    ("sidecar", "match"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a graphcap checkpoint"),
        ('{"format": "other", "object": 1, "checkpoint_id": "x"}', "not a graphcap"),
    ],
)
def test_refuses_malformed_sidecar(tmp_path, sidecar, match):
    path = _legacy(tmp_path, sidecar)
    with pytest.raises(CheckpointError, match=match):
        load(path)


def test_refuses_inconsistent_sidecar(tmp_path):
    path = _legacy(tmp_path)
    sidecar_path = tmp_path / "ckpt.safetensors.json"
    sidecar = json.loads(sidecar_path.read_text())
    sidecar["object"]["w"] = {"__tensor__": "nope"}
    sidecar_path.write_text(json.dumps(sidecar))
    with pytest.raises(CheckpointError, match="tensor 'nope' that is missing"):
        load(path)
    sidecar["version"] = 99
    sidecar_path.write_text(json.dumps(sidecar))
    with pytest.raises(CheckpointError, match="version 99"):
        load(path)
    sidecar["version"] = 1
    sidecar["checkpoint_id"] = "another save"
    sidecar_path.write_text(json.dumps(sidecar))
    with pytest.raises(CheckpointError, match="different saves"):
        load(path)
    os.remove(sidecar_path)
    with pytest.raises(CheckpointError, match=r"sidecar .* is missing"):
        load(path)


def test_never_unpickles(tmp_path):
    """A pickle that would run code when unpickled is refused, and the code never runs."""
    marker = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"w": Exploit()}))
    with pytest.raises(CheckpointError):
        load(path)
    assert not marker.exists()
