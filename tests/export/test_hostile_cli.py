"""The command line and bundles on hostile input: status 2, one error line, nothing leaked."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import safetensors.numpy
from onnx import TensorProto, helper

from export.training import FORMAT, load_training_bundle
from ir.errors import ExportError
from tracer.serialization import CheckpointError
from tracer.serialization import load as load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
MLP = "tests.cli_models:make_mlp"


def graphcap(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "export.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=300,
    )


def _relu_model(path: Path, location: str | None = None) -> Path:
    inits = []
    node = helper.make_node("Relu", ["x"], ["y"])
    if location is not None:
        t = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4])
        t.data_location = TensorProto.EXTERNAL
        t.external_data.add(key="location", value=location)
        inits.append(t)
        node = helper.make_node("Add", ["x", "w"], ["y"])
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    onnx.save(model, path)
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["bogus"], "graphcap: error: argument COMMAND: invalid choice: 'bogus'"),
        ([], "graphcap: error: choose a COMMAND"),
        (["ops", "--no-such-flag"], "graphcap: error: unrecognized arguments: --no-such-flag"),
        (["export", MLP, "-o", "m.onnx", "--optimize", "9"], "graphcap export: error: argument"),
        (
            ["export", MLP, "-i", "x:float32[100000,100000]", "-o", "m.onnx"],
            "graphcap export: error: argument --input/-i: 'x:float32[100000,100000]' is "
            "40,000,000,000 bytes; an example input may hold at most 1,073,741,824 bytes",
        ),
    ],
)
def test_usage_errors_are_one_line_with_status_2(args: list[str], message: str) -> None:
    res = graphcap(*args)
    assert res.returncode == 2, res.stderr
    assert "usage:" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1, res.stderr
    assert res.stderr.startswith(message), res.stderr


def test_bad_model_files_exit_2(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(bytes(range(256)) * 4)
    empty = tmp_path / "empty.onnx"
    empty.write_bytes(b"")
    for command in ("run", "inspect"):
        for path, why in ((garbage, "protobuf could not parse it"), (empty, "an empty file")):
            res = graphcap(command, str(path))
            assert res.returncode == 2, (command, path, res.stdout, res.stderr)
            assert why in res.stderr and "Traceback" not in res.stderr
            assert res.stderr.startswith(f"graphcap {command}: error: ")


def test_inspect_never_looks_outside_the_model_folder(tmp_path: Path) -> None:
    """Whether ``../secret`` exists (and its size) must not show in ``inspect``."""
    outputs = []
    for exists in (True, False):
        folder = tmp_path / f"case{exists}" / "models"
        folder.mkdir(parents=True)
        if exists:
            (folder.parent / "secret").write_bytes(b"x" * 12345)
        path = _relu_model(folder / "m.onnx", location="../secret")
        res = graphcap("inspect", str(path), "--json")
        assert res.returncode == 0, res.stderr
        outputs.append(json.loads(res.stdout)["external_data"])
        text = graphcap("inspect", str(path)).stdout
        assert "external data: ../secret (refused: outside the model's folder" in text
    assert outputs[0] == outputs[1]
    assert outputs[0][0]["bytes"] == 0 and "12345" not in json.dumps(outputs[0])


@pytest.mark.skipif(
    "CUDAExecutionProvider" not in ort.get_available_providers(),
    reason="this onnxruntime has no CUDA provider to fall back from",
)
def test_cuda_fallback_prints_only_graphcap_s_warning(tmp_path: Path) -> None:
    model = _relu_model(tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", np.ones(4, np.float32))
    res = graphcap("run", str(model), "--input", f"x={tmp_path / 'x.npy'}", "--device", "cuda")
    assert res.returncode == 0, res.stderr
    if "providers CUDAExecutionProvider" in res.stdout:
        pytest.skip("CUDA works here: there is no fallback to report")
    assert "\x1b[" not in res.stderr and "onnxruntime:Default" not in res.stderr
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("graphcap: warning: device='cuda'"), lines


def _bundle(folder: Path, state_file: Path) -> Path:
    folder.mkdir()
    manifest = {
        "format": FORMAT,
        "version": 1,
        "files": {"train_step": "s.onnx", "inference": "i.onnx", "state": "state.safetensors"},
        "batch": [],
        "lr": {},
        "loss": "loss",
        "updates": {},
        "parameters": ["w"],
        "state": [{"name": "w", "dtype": "float32", "shape": [2]}],
        "optimizer": {},
    }
    (folder / "bundle.json").write_text(json.dumps(manifest))
    _relu_model(folder / "s.onnx")
    _relu_model(folder / "i.onnx")
    os.symlink(state_file, folder / "state.safetensors")
    return folder


def test_a_bundle_reads_nothing_outside_itself(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.safetensors"
    safetensors.numpy.save_file({"w": np.ones(2, np.float32)}, str(outside))
    bundle = _bundle(tmp_path / "bundle", outside)
    with pytest.raises(ExportError, match="resolves outside the bundle"):
        load_training_bundle(bundle)
    inside = tmp_path / "ok"
    _bundle(inside, Path("real.safetensors"))  # a relative link inside the bundle is fine
    safetensors.numpy.save_file({"w": np.ones(2, np.float32)}, str(inside / "real.safetensors"))
    np.testing.assert_array_equal(load_training_bundle(inside).state["w"], np.ones(2))


def test_deeply_nested_manifests_and_checkpoints_are_refused(tmp_path: Path) -> None:
    bundle = _bundle(tmp_path / "bundle", tmp_path / "none")
    deep = "[" * 100_000 + "]" * 100_000
    (bundle / "bundle.json").write_text(deep)
    with pytest.raises(ExportError, match="nests deeper"):
        load_training_bundle(bundle)
    path = tmp_path / "ckpt.safetensors"
    structure = '{"format": "graphcap-checkpoint", "version": 1, "object": ' + deep + "}"
    metadata = {"graphcap.structure": structure}
    safetensors.numpy.save_file({"w": np.ones(2, np.float32)}, str(path), metadata)
    with pytest.raises(CheckpointError, match="nests JSON deeper"):
        load_checkpoint(path)
    nested = '{"format": "graphcap-checkpoint", "version": 1, "object": ' + "[" * 900
    nested += "]" * 900 + "}"  # within json's limit, past the decoder's recursion
    metadata = {"graphcap.structure": nested}
    safetensors.numpy.save_file({"w": np.ones(2, np.float32)}, str(path), metadata)
    with pytest.raises(CheckpointError, match="nests its structure deeper"):
        load_checkpoint(path)


def test_float8_and_bfloat16_safetensors_are_refused_by_name(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import save_file

    path = tmp_path / "f8.safetensors"
    save_file({"w": torch.zeros(4, dtype=torch.float8_e4m3fn)}, str(path))
    with pytest.raises(CheckpointError, match="tensor 'w' is F8_E4M3, which NumPy cannot hold"):
        load_checkpoint(path)
    save_file({"b": torch.zeros(4, dtype=torch.bfloat16)}, str(path))
    with pytest.raises(CheckpointError, match="tensor 'b' is BF16"):
        load_checkpoint(path)


def test_run_writes_outputs_only_inside_outdir_one_file_each(tmp_path: Path) -> None:
    names = ["a/b", "a_b", "../../x", "A_B", "." * 3]
    nodes = [helper.make_node("Identity", ["x"], [n]) for n in names]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [4]) for n in names],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 20)])
    model.ir_version = 10
    onnx.save(model, tmp_path / "m.onnx")
    np.save(tmp_path / "x.npy", np.arange(4, dtype=np.float32))
    out = tmp_path / "deep" / "out"
    res = graphcap("run", str(tmp_path / "m.onnx"), "-i", f"x={tmp_path / 'x.npy'}", "-o", str(out))
    assert res.returncode == 0, res.stderr
    files = sorted(os.listdir(out))
    assert files == sorted(["a_b.npy", "a_b_1.npy", "_.._x.npy", "A_B_2.npy", "output.npy"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep", "m.onnx", "x.npy"]
    assert os.listdir(tmp_path / "deep") == ["out"]
