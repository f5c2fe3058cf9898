"""The training bundle: three steps on plain onnxruntime equal three eager graphcap steps.

The oracle for the bundle is graphcap eager training (``loss.backward(); optimizer.step()``),
itself checked against torch in ``test_optim.py``; the bundle is run in a subprocess that
imports only onnxruntime, numpy, json and safetensors, as a user without graphcap would.
"""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
import safetensors.numpy

import tracer as gc
from export import cli
from export.training import (
    MANIFEST,
    STATE,
    TrainingBundle,
    load_training_bundle,
    save_training_bundle,
)
from ir.errors import ExportError
from tracer import nn
from tracer.nn import functional as F  # noqa: N812 (PyTorch's spelling)
from tracer.train_step import build_train_step

RTOL, ATOL = 1e-5, 1e-6
AXES = {"ids": {0: "batch", 1: "seq"}, "y": {0: "batch"}}


# ---------------------------------------------------------------- models (also CLI factories)


class TextClassifier(nn.Module):
    """Embedding -> mean over the sequence -> Linear."""

    def __init__(
        self, vocab: int = 30, dim: int = 8, classes: int = 3, padding_idx: int | None = None
    ) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim, padding_idx=padding_idx)
        self.fc = nn.Linear(dim, classes)

    def forward(self, ids: gc.Tensor) -> gc.Tensor:
        return self.fc(self.emb(ids).mean(1))


class TransformerClassifier(nn.Module):
    """Embedding -> one post-norm encoder layer (no dropout, no biases) -> mean -> Linear.

    No biases in the layer: the key projection's bias has an exactly-zero gradient (softmax
    ignores a shift of a whole row), and Adam would turn its float noise into full-size steps.
    """

    def __init__(self, vocab: int = 30, dim: int = 16, classes: int = 3) -> None:
        super().__init__()
        self.emb = nn.Embedding(vocab, dim)
        self.encoder = nn.TransformerEncoderLayer(
            dim, 2, dim_feedforward=32, dropout=0.0, batch_first=True, bias=False
        )
        self.fc = nn.Linear(dim, classes)

    def forward(self, ids: gc.Tensor) -> gc.Tensor:
        return self.fc(self.encoder(self.emb(ids)).mean(1))


def make_text_classifier() -> TextClassifier:
    """For ``graphcap export --training``: vocab 100, as --input draws ids in [0, 100)."""
    return TextClassifier(vocab=100)


class Tagger(nn.Module):
    """Embedding -> Linear per token: logits ``[batch, seq, 4]``."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(100, 8)
        self.fc = nn.Linear(8, 4)

    def forward(self, ids: gc.Tensor) -> gc.Tensor:
        return self.fc(self.emb(ids))


def make_tagger() -> Tagger:
    """A token tagger for ``graphcap export --training``."""
    return Tagger()


# ---------------------------------------------------------------- cases


@dataclass
class Case:
    """One model and optimizer, its bundle, and the batches both trainers see."""

    name: str
    make_model: Callable[[], nn.Module]
    make_optimizer: Callable[[Any], Any]
    ignore_index: int

    def loss_fn(self, model: nn.Module) -> Callable[[gc.Tensor, gc.Tensor], gc.Tensor]:
        def loss_fn(ids: gc.Tensor, y: gc.Tensor) -> gc.Tensor:
            return F.cross_entropy(model(ids), y, ignore_index=self.ignore_index)

        return loss_fn

    def batches(self) -> list[dict[str, np.ndarray]]:
        """Three batches of different batch size and length, one target ignored in each."""
        rng = np.random.default_rng(7)
        out = []
        for batch, seq in [(4, 6), (3, 4), (5, 7)]:
            ids = rng.integers(0, 30, size=(batch, seq)).astype(np.int64)
            ids[0, -2:] = 0  # padding
            y = rng.integers(0, 3, size=batch).astype(np.int64)
            y[1] = self.ignore_index
            out.append({"ids": ids, "y": y})
        return out


CASES = [
    Case(
        "text-sgd",
        TextClassifier,
        lambda p: gc.optim.SGD(p, lr=0.5, momentum=0.9, weight_decay=1e-3),
        -1,
    ),
    Case("text-adamw", TextClassifier, lambda p: gc.optim.AdamW(p, lr=0.05), -1),
    Case(
        "transformer-sgd",
        TransformerClassifier,
        lambda p: gc.optim.SGD(p, lr=0.1, momentum=0.9, nesterov=True),
        -100,
    ),
    Case("transformer-adamw", TransformerClassifier, lambda p: gc.optim.AdamW(p, lr=0.01), -100),
]
EVAL_IDS = np.random.default_rng(11).integers(0, 30, size=(2, 5)).astype(np.int64)


def _build(case: Case, directory: Path) -> tuple[nn.Module, Any]:
    """A fresh seeded model and optimizer, and their bundle in ``directory``."""
    gc.manual_seed(0)
    model = case.make_model()
    optimizer = case.make_optimizer(model.parameters())
    first = {k: gc.tensor(v) for k, v in case.batches()[0].items()}
    names = {id(p): n for n, p in model.named_parameters()}
    step = build_train_step(
        case.loss_fn(model), first, optimizer, names=names, dynamic_axes=AXES, optimize=0
    )
    model.eval()
    inference = gc.trace(model, (gc.tensor(EVAL_IDS),), {"ids": {0: "batch", 1: "seq"}})
    save_training_bundle(directory, step, inference, optimizer)
    return model, optimizer


# The plain-onnxruntime trainer: what a user without graphcap writes from bundle.json.
PLAIN_TRAINER = r"""
import json, sys
import numpy as np
import onnxruntime as ort
from safetensors.numpy import load_file

def train(bundle, batches, out):
    manifest = json.load(open(f"{bundle}/bundle.json"))
    state = load_file(f"{bundle}/{manifest['files']['state']}")
    step = ort.InferenceSession(
        f"{bundle}/{manifest['files']['train_step']}", providers=["CPUExecutionProvider"]
    )
    names = [o.name for o in step.get_outputs()]
    lrs = {n: np.asarray(v, dtype=np.float64) for n, v in manifest["lr"].items()}
    data = np.load(batches)
    losses = []
    for i in range(3):
        feeds = {b["name"]: data[f"{i}/{b['name']}"] for b in manifest["batch"]}
        outs = dict(zip(names, step.run(None, {**feeds, **lrs, **state})))
        losses.append(outs[manifest["loss"]])
        for output, target in manifest["updates"].items():
            state[target] = outs[output]
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    held = []
    for param, init in manifest["inference"]["parameters"].items():
        held.append(ort.OrtValue.ortvalue_from_numpy(state[param]))
        options.add_initializer(init, held[-1])
    inference = ort.InferenceSession(
        f"{bundle}/{manifest['files']['inference']}", options, providers=["CPUExecutionProvider"]
    )
    (logits,) = inference.run(None, {"ids": data["eval/ids"]})
    np.savez(out, losses=np.array(losses), logits=logits,
             **{f"state/{k}": v for k, v in state.items()})

for bundle, batches, out in json.loads(sys.argv[1]):
    train(bundle, batches, out)
loaded = [m for m in sys.modules if m.split(".")[0] in ("tracer", "ir", "runtime", "export")]
print(json.dumps({"graphcap_modules": loaded}))
"""


@dataclass
class Trained:
    bundle: Path
    model: nn.Module
    optimizer: Any
    plain: dict[str, np.ndarray]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Trained]]:
    """Every case's bundle trained three steps by the plain trainer (one subprocess)."""
    root = tmp_path_factory.mktemp("bundles")
    built, jobs = {}, []
    for case in CASES:
        model, optimizer = _build(case, root / case.name)
        batches = root / f"{case.name}-batches.npz"
        arrays: dict[str, Any] = {
            f"{i}/{k}": v for i, b in enumerate(case.batches()) for k, v in b.items()
        }
        arrays["eval/ids"] = EVAL_IDS
        np.savez(batches, **arrays)
        jobs.append([str(root / case.name), str(batches), str(root / f"{case.name}-out.npz")])
        built[case.name] = (model, optimizer)
    res = subprocess.run(
        [sys.executable, "-I", "-c", PLAIN_TRAINER, json.dumps(jobs)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    report = json.loads(res.stdout.strip().splitlines()[-1])
    assert report["graphcap_modules"] == [], "the plain trainer must not import graphcap"
    out = {}
    for case, (_, _, result) in zip(CASES, jobs, strict=True):
        with np.load(result) as f:
            plain = {k: f[k] for k in f.files}
        model, optimizer = built[case.name]
        out[case.name] = Trained(root / case.name, model, optimizer, plain)
    yield out


def _train_eagerly(case: Case, model: nn.Module, optimizer: Any) -> list[float]:
    model.train()
    losses = []
    for batch in case.batches():
        optimizer.zero_grad()
        loss = case.loss_fn(model)(gc.tensor(batch["ids"]), gc.tensor(batch["y"]))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses


def _logits(model: nn.Module, ids: np.ndarray) -> np.ndarray:
    with gc.no_grad():
        return model(gc.tensor(ids)).numpy()


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_plain_onnxruntime_steps_equal_eager_steps(case: Case, trained: dict[str, Trained]) -> None:
    run = trained[case.name]
    bundle = load_training_bundle(run.bundle)
    initial = _logits(run.model, EVAL_IDS)
    # Before training: inference.onnx gives the eager model's outputs.
    session = ort.InferenceSession(str(bundle.inference_path), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(session.run(None, {"ids": EVAL_IDS})[0], initial, RTOL, ATOL)
    for name, p in run.model.named_parameters():
        np.testing.assert_array_equal(bundle.state[name], p.detach().numpy())

    losses = _train_eagerly(case, run.model, run.optimizer)
    np.testing.assert_allclose(run.plain["losses"], losses, RTOL, ATOL)
    for name, p in run.model.named_parameters():
        np.testing.assert_allclose(
            run.plain[f"state/{name}"], p.detach().numpy(), RTOL, ATOL, err_msg=name
        )
        for key, value in run.optimizer.functional_state(p).items():
            got = run.plain[f"state/{name}.{key}"]
            assert got.dtype == value.dtype and got.shape == value.shape, f"{name}.{key}"
            if key == "step" and isinstance(run.optimizer, gc.optim.SGD):
                # Eager SGD keeps no count (as torch): its step reads 1 once it has stepped.
                assert (int(got), int(value)) == (3, 1)
                continue
            np.testing.assert_allclose(got, value, RTOL, ATOL, err_msg=f"{name}.{key}")
    # After training: inference.onnx with the trained weights gives the trained model's outputs.
    trained_logits = _logits(run.model, EVAL_IDS)
    assert not np.allclose(trained_logits, initial, atol=1e-3), "training changed nothing"
    np.testing.assert_allclose(run.plain["logits"], trained_logits, RTOL, ATOL)


def test_manifest_describes_the_step(trained: dict[str, Trained]) -> None:
    run = trained["transformer-adamw"]
    manifest = json.loads((run.bundle / MANIFEST).read_text())
    assert manifest["format"] == "graphcap.training-bundle" and manifest["version"] == 1
    assert manifest["batch"] == [
        {"name": "ids", "dtype": "int64", "shape": ["batch", "seq"]},
        {"name": "y", "dtype": "int64", "shape": ["batch"]},
    ]
    assert manifest["lr"] == {"lr": 0.01} and manifest["loss"] == "loss"
    assert manifest["optimizer"]["name"] == "AdamW"
    (group,) = manifest["optimizer"]["param_groups"]
    assert group["betas"] == [0.9, 0.999] and group["weight_decay"] == 0.01
    params = sorted(n for n, _ in run.model.named_parameters())
    assert sorted(manifest["parameters"]) == params
    assert manifest["parameters"] == group["parameters"]
    assert manifest["inference"]["parameters"] == {n: n for n in manifest["parameters"]}
    assert manifest["inference"]["inputs"] == [
        {"name": "ids", "dtype": "int64", "shape": ["batch", "seq"]}
    ]
    # The oracle for names and types: onnxruntime's view of the train-step file.
    step = ort.InferenceSession(str(run.bundle / "train_step.onnx"))
    inputs = {i.name: i for i in step.get_inputs()}
    assert [o.name for o in step.get_outputs()] == ["loss", *manifest["updates"]]
    assert set(manifest["updates"].values()) | {"ids", "y", "lr"} == set(inputs)
    assert inputs["ids"].shape == ["batch", "seq"] and inputs["lr"].type == "tensor(double)"
    state = {e["name"]: e for e in manifest["state"]}
    assert set(state) == set(manifest["updates"].values())
    assert state["fc.weight.step"] == {"name": "fc.weight.step", "dtype": "int64", "shape": []}
    assert "updates" in manifest["how_to_step"]


def test_zero_d_state_round_trips(trained: dict[str, Trained]) -> None:
    bundle = trained["text-sgd"].bundle
    raw = safetensors.numpy.load_file(str(bundle / STATE))
    assert raw["fc.bias.step"].shape == () and raw["fc.bias.step"].dtype == np.int64
    loaded = load_training_bundle(bundle)
    assert list(loaded.state) == [e["name"] for e in loaded.manifest["state"]]
    assert loaded.state["emb.weight.step"].shape == ()


def test_bundle_helpers_step_like_the_plain_trainer(trained: dict[str, Trained]) -> None:
    run = trained["text-adamw"]
    bundle = load_training_bundle(run.bundle)
    session = ort.InferenceSession(str(bundle.train_step_path))
    names = [o.name for o in session.get_outputs()]
    for i, batch in enumerate(CASES[1].batches()):
        outs = dict(zip(names, session.run(None, bundle.feeds(batch)), strict=True))
        np.testing.assert_allclose(outs["loss"], run.plain["losses"][i], RTOL, ATOL)
        bundle.advance(outs)
    np.testing.assert_allclose(bundle.state["fc.weight"], run.plain["state/fc.weight"], 0, 0)


def test_padding_row_gets_no_update(tmp_path: Path) -> None:
    case = Case(
        "padded",
        lambda: TextClassifier(padding_idx=0),
        lambda p: gc.optim.SGD(p, lr=0.5),
        -1,
    )
    _build(case, tmp_path / "b")
    bundle = load_training_bundle(tmp_path / "b")
    session = ort.InferenceSession(str(bundle.train_step_path))
    names = [o.name for o in session.get_outputs()]
    before = bundle.state["emb.weight"][0].copy()
    outs = dict(zip(names, session.run(None, bundle.feeds(case.batches()[0])), strict=True))
    np.testing.assert_array_equal(outs["emb.weight.next"][0], before)  # as eager and torch


# ---------------------------------------------------------------- writing safely


def _small_bundle(directory: Path) -> Path:
    _build(CASES[0], directory)
    return directory


def test_replaces_a_bundle_but_refuses_other_folders(tmp_path: Path) -> None:
    bundle = _small_bundle(tmp_path / "b")
    _small_bundle(bundle)  # a bundle may be replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="holds no training bundle"):
        _small_bundle(other)
    assert [p.name for p in other.iterdir()] == ["keep.txt"]


def _failing_save(_: Any, path: str, **__: Any) -> None:
    Path(path).write_bytes(b"half a file")
    raise OSError("disk full")


def test_failure_midway_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    old = _small_bundle(tmp_path / "old")
    before = {p.name: p.read_bytes() for p in old.iterdir()}
    monkeypatch.setattr(safetensors.numpy, "save_file", _failing_save)
    with pytest.raises(OSError, match="disk full"):
        _small_bundle(tmp_path / "new")
    with pytest.raises(OSError, match="disk full"):
        _small_bundle(old)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old"]  # no new, no temporaries
    assert {p.name: p.read_bytes() for p in old.iterdir()} == before


def test_load_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such folder"):
        load_training_bundle(tmp_path / "missing")
    with pytest.raises(ExportError, match="not a training bundle"):
        load_training_bundle(tmp_path)
    bundle = _small_bundle(tmp_path / "b")
    manifest = (bundle / MANIFEST).read_text()
    (bundle / MANIFEST).write_text(manifest[:40])
    with pytest.raises(ExportError, match="not valid JSON"):
        load_training_bundle(bundle)
    (bundle / MANIFEST).write_text(manifest.replace('"version": 1', '"version": 99'))
    with pytest.raises(ExportError, match="version 99"):
        load_training_bundle(bundle)
    (bundle / MANIFEST).write_text(manifest.replace('"state.safetensors"', '"../s.bin"'))
    with pytest.raises(ExportError, match="plain file names inside the bundle"):
        load_training_bundle(bundle)
    (bundle / MANIFEST).write_text(manifest)
    state = safetensors.numpy.load_file(str(bundle / STATE))
    state["fc.bias"] = np.zeros(4, np.float32)
    safetensors.numpy.save_file(state, str(bundle / STATE))
    with pytest.raises(ExportError, match=r"state.safetensors\['fc.bias'\] is float32\[4\]"):
        load_training_bundle(bundle)
    (bundle / STATE).write_bytes(b"\x00" * 5)
    with pytest.raises(ExportError, match="unreadable"):
        load_training_bundle(bundle)
    (bundle / "train_step.onnx").unlink()
    with pytest.raises(ExportError, match=r"train_step\.onnx is missing"):
        load_training_bundle(bundle)


# ---------------------------------------------------------------- graphcap export --training

FACTORY = "tests.export.test_training_bundle:make_text_classifier"
SPEC = ["--input", "ids:int64[batch=4,seq=6]", "--target", "y:int64[batch=4]"]


def _main(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = cli.main(list(args))
        except SystemExit as exit_:  # argparse's own usage errors
            status = int(exit_.code or 0)
    return status, out.getvalue(), err.getvalue()


def test_cli_training_bundle_steps_like_eager(tmp_path: Path) -> None:
    target = tmp_path / "clf"
    status, out, err = _main(
        "export", FACTORY, *SPEC, "--training", "--optimizer", "sgd", "--momentum", "0.9",
        "--lr", "0.2", "--ignore-index", "-1", "--seed", "3", "-o", str(target), "--verify",
    )  # fmt: skip
    assert status == 0, out + err
    assert f"wrote training bundle {target}" in out
    assert "batch   ids: i64[batch, seq]" in out and "batch   y: i64[batch]" in out
    assert "loss    cross_entropy(output, y, ignore_index=-1) -> loss" in out
    assert "optim   SGD (lr=0.2)" in out and "verified at" in out
    bundle = load_training_bundle(target)
    assert bundle.manifest["optimizer"]["param_groups"][0]["momentum"] == 0.9
    # The oracle: the same factory and seed trained eagerly, one step on a new-sized batch.
    gc.manual_seed(3)
    model = make_text_classifier()
    optimizer = gc.optim.SGD(model.parameters(), lr=0.2, momentum=0.9)
    for name, p in model.named_parameters():
        np.testing.assert_array_equal(bundle.state[name], p.detach().numpy())
    rng = np.random.default_rng(2)
    batch = {"ids": rng.integers(0, 100, size=(6, 9)), "y": np.array([0, -1, 2, 1, 1, 0])}
    loss = F.cross_entropy(model(gc.tensor(batch["ids"])), gc.tensor(batch["y"]), ignore_index=-1)
    loss.backward()
    optimizer.step()
    session = ort.InferenceSession(str(bundle.train_step_path))
    names = [o.name for o in session.get_outputs()]
    outs = dict(zip(names, session.run(None, bundle.feeds(batch)), strict=True))
    np.testing.assert_allclose(outs["loss"], loss.item(), RTOL, ATOL)
    bundle.advance(outs)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(bundle.state[name], p.detach().numpy(), RTOL, ATOL)


def _tagger_loss(logits: gc.Tensor, y: gc.Tensor) -> gc.Tensor:
    return F.cross_entropy(logits.reshape(-1, 4), y.reshape(-1))


@pytest.mark.parametrize(
    ("factory", "target", "loss", "eager_loss", "y"),
    [
        ("make_tagger", "y:int64[batch=4,seq=6]", "cross_entropy", _tagger_loss,
         np.array([[0, 1, 2, 3, 0, 1, 2]] * 3)),
        ("make_text_classifier", "y:float32[batch=4,3]", "mse", F.mse_loss,
         np.linspace(-1, 1, 9, dtype=np.float32).reshape(3, 3)),
        ("make_text_classifier", "y:float32[batch=4,3]", "bce_with_logits",
         F.binary_cross_entropy_with_logits, np.eye(3, dtype=np.float32)),
    ],
)  # fmt: skip
def test_cli_losses_step_like_eager(
    tmp_path: Path, factory: str, target: str, loss: str, eager_loss: Any, y: np.ndarray
) -> None:
    status, out, err = _main(
        "export", f"tests.export.test_training_bundle:{factory}",
        "--input", "ids:int64[batch=4,seq=6]", "--target", target, "--training",
        "--loss", loss, "--optimizer", "adam", "--lr", "0.1", "-o", str(tmp_path / "b"),
    )  # fmt: skip
    assert status == 0, out + err
    bundle = load_training_bundle(tmp_path / "b")
    gc.manual_seed(0)
    model = globals()[factory]()
    optimizer = gc.optim.Adam(model.parameters(), lr=0.1)
    ids = np.random.default_rng(4).integers(0, 100, size=(3, 7))  # a new batch and length
    value = eager_loss(model(gc.tensor(ids)), gc.tensor(y))
    value.backward()
    optimizer.step()
    session = ort.InferenceSession(str(bundle.train_step_path))
    names = [o.name for o in session.get_outputs()]
    outs = dict(zip(names, session.run(None, bundle.feeds({"ids": ids, "y": y})), strict=True))
    np.testing.assert_allclose(outs["loss"], value.item(), RTOL, ATOL)
    for name, p in model.named_parameters():
        np.testing.assert_allclose(outs[f"{name}.next"], p.detach().numpy(), RTOL, ATOL)


def _bundle_of(tmp_path: Path, *extra: str) -> TrainingBundle:
    status, out, err = _main(
        "export", FACTORY, *SPEC, "--training", "-o", str(tmp_path / "b"), *extra
    )
    assert status == 0, out + err
    return load_training_bundle(tmp_path / "b")


def test_cli_defaults_adamw_cross_entropy(tmp_path: Path) -> None:
    bundle = _bundle_of(tmp_path, "--weight-decay", "0.1")
    group = bundle.manifest["optimizer"]["param_groups"][0]
    assert bundle.manifest["optimizer"]["name"] == "AdamW"
    assert (group["lr"], group["weight_decay"]) == (1e-3, 0.1)
    assert bundle.manifest["lr"] == {"lr": 1e-3}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--training", "-i", "ids:int64[batch=4,seq=6]"], "--training needs --target"),
        (["--target", "y:int64[4]", "-i", "ids:int64[4,6]"], "--target applies only with"),
        ([*SPEC, "--training", "--loss", "hinge"], "invalid choice: 'hinge'"),
        ([*SPEC, "--training", "--loss", "mse"], "--loss mse needs a float target"),
        (["-i", "ids:int64[4,6]", "--target", "y:int64[4,6]", "--training"], "of shape [4]"),
        ([*SPEC, "--training", "--loss", "mse", "--ignore-index", "0"], "--ignore-index applies"),
        ([*SPEC, "--training", "--momentum", "0.9"], "--momentum applies to --optimizer sgd"),
        ([*SPEC, "--training", "--lr", "-1"], "Invalid learning rate"),
    ],
)
def test_cli_training_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    status, _, err = _main("export", FACTORY, *args, "-o", str(tmp_path / "b"))
    assert status == 2, err
    assert message in err
    assert not (tmp_path / "b").exists()


def test_cli_refuses_to_overwrite_a_folder(tmp_path: Path) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "data.csv").write_text("x")
    status, _, err = _main("export", FACTORY, *SPEC, "--training", "-o", str(tmp_path / "b"))
    assert status == 2 and "refusing to replace" in err
