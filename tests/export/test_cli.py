"""The ``graphcap`` command: run as a real process, the way users call it."""

from __future__ import annotations

import collections
import contextlib
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import numpy_helper

import export
import ir.ops
import tracer as gc
from export import cli
from export.cli import prepare as cli_prepare
from export.cli import verify as cli_verify
from export.onnx import writer
from runtime import Session
from tests import cli_models

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
TABLE = re.compile(r"(<!-- ops-table:start -->\n)(.*?)(<!-- ops-table:end -->)", re.S)


def graphcap(*args: str) -> subprocess.CompletedProcess[str]:
    """``python -m export.cli ARGS`` from the repository root, as a subprocess."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "export.cli", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _qualified(opdef: ir.ops.OpDef) -> str:
    """How `graphcap ops` names an op: bare in the default domain, else domain::op."""
    return f"{opdef.domain}::{opdef.op_type}" if opdef.domain else opdef.op_type


def test_ops_lists_every_registry_op() -> None:
    res = graphcap("ops")
    assert res.returncode == 0, res.stderr
    listed = {line.split()[0] for line in res.stdout.splitlines()[2:] if line.strip()}
    for opdef in ir.ops.all_ops():
        name = _qualified(opdef)
        assert name in listed, f"`graphcap ops` does not list {name}"
    assert f"{len(ir.ops.all_ops())} ops" in res.stdout


def test_ops_rows_say_since_attributes_and_vjp() -> None:
    out = graphcap("ops", "--markdown").stdout
    rows = {line.split("|")[1].strip(" `"): line for line in out.splitlines()[2:]}
    assert set(rows) == {_qualified(d) for d in ir.ops.all_ops()}
    for opdef in ir.ops.all_ops():
        cells = [c.strip() for c in rows[_qualified(opdef)].split("|")[1:-1]]
        assert cells[1] == str(opdef.since)
        for attr in opdef.attrs:
            assert attr in cells[2], f"{opdef.op_type}: attribute {attr} missing"
        if opdef.vjp is None:
            assert cells[3] == f"no: {opdef.no_vjp}".replace("|", "\\|")
        else:
            assert cells[3] == "yes"


def test_ops_grep_filters() -> None:
    res = graphcap("ops", "--grep", "mat")
    names = {line.split()[0] for line in res.stdout.splitlines()[2:-2] if line.strip()}
    assert res.returncode == 0
    named = {d: f"{d.domain}::{d.op_type}" if d.domain else d.op_type for d in ir.ops.all_ops()}
    assert names == {name for d, name in named.items() if "mat" in d.op_type.lower()}


def test_help_teaches_the_subcommands() -> None:
    res = graphcap("--help")
    assert res.returncode == 0
    assert "graphcap ops" in res.stdout
    assert "ops" in res.stdout.split("options:")[0]
    sub = graphcap("ops", "--help")
    assert sub.returncode == 0 and "--markdown" in sub.stdout


def test_version() -> None:
    res = graphcap("--version")
    assert res.returncode == 0
    assert res.stdout.startswith("graphcap 0.")


@pytest.mark.parametrize("args", [["bogus"], [], ["ops", "--no-such-flag"]])
def test_usage_errors_exit_2(args: list[str]) -> None:
    res = graphcap(*args)
    assert res.returncode == 2
    assert res.stderr.startswith("graphcap") and "usage:" not in res.stderr  # one error line


def test_main_returns_status_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["ops", "--grep", "Add"]) == 0
    assert "Add" in capsys.readouterr().out


def test_console_script_when_installed() -> None:
    # `pip install -e .` puts the entry point beside the interpreter; a bare checkout has none.
    script = Path(sys.executable).parent / "graphcap"
    if not script.exists():
        pytest.skip("graphcap is not pip-installed in this environment (no console script)")
    res = subprocess.run([str(script), "ops"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "MatMul" in res.stdout


def test_readme_ops_table_is_current() -> None:
    match = TABLE.search(README.read_text())
    assert match, "README.md lost its <!-- ops-table:start/end --> markers"
    want = graphcap("ops", "--markdown").stdout
    assert match.group(2) == want, (
        "README.md's op table is out of date; regenerate it: "
        "python -m tests.export.test_cli --update-readme"
    )


# ---------------------------------------------------------------- graphcap export / --verify

MLP = "tests.cli_models:make_mlp"


def _rows(stdout: str) -> list[list[str]]:
    """The verify table's data rows, split on runs of 2+ spaces."""
    lines = stdout.split("verify: ", 1)[1].splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("---")) + 1
    rows = []
    for line in lines[start:]:
        if not line.strip() or not line.rstrip().endswith(("ok", "MISMATCH")):
            break
        rows.append(re.split(r"\s{2,}", line.strip()))
    return rows


def _eager(target: str, specs: list[str], feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    prepared = cli_prepare.prepare(target, [cli_prepare.parse_input_spec(s) for s in specs])
    return prepared.call(feeds)


def test_export_mlp_verifies_at_three_sizes(tmp_path: Path) -> None:
    out = tmp_path / "mlp.onnx"
    res = graphcap("export", MLP, "--input", "x:float32[batch=4,8]", "-o", str(out), "--verify")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "input   x: f32[batch, 8]" in res.stdout
    assert "output  output: f32[batch, 4]" in res.stdout
    rows = _rows(res.stdout)
    assert [r[0] for r in rows] == ["batch=4 (example)", "batch=8", "batch=1"]
    assert all(r[-1] == "ok" for r in rows)
    assert "verified at 3 size(s)" in res.stdout
    # Oracles: the ONNX checker, and onnxruntime on the file against eager at a new size.
    onnx.checker.check_model(str(out), full_check=True)
    model = onnx.load(str(out))
    assert model.ir_version == 10
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    x = np.random.default_rng(5).standard_normal((7, 8)).astype(np.float32)
    (got,) = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    (want,) = _eager(MLP, ["x:float32[4,8]"], {"x": x})
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_export_reshape_by_shape_with_dynamic_batch(tmp_path: Path) -> None:
    out = tmp_path / "reshaper.onnx"
    res = graphcap(
        "export", "tests.cli_models:make_reshaper", "--input", "x:float32[2,3,8]",
        "--dynamic", "x:0=batch", "-o", str(out), "--verify", "--seed", "3",
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "input   x: f32[batch, 3, 8]" in res.stdout
    rows = _rows(res.stdout)
    assert [r[0] for r in rows] == ["batch=2 (example)", "batch=4", "batch=1"]
    assert all(r[-1] == "ok" for r in rows)
    graph = onnx.load(str(out)).graph
    consts = {t.name for t in graph.initializer}
    produced = {o: n for n in graph.node for o in n.output}
    merge = next(n for n in graph.node if n.op_type == "Reshape" and n.input[0] == "x")
    split = produced[produced["output"].input[0]]
    # Reshaped by x.shape: both target shapes are computed, neither is a constant like [6, 8].
    assert split.op_type == "Reshape"
    assert merge.input[1] not in consts and split.input[1] not in consts


def test_export_uses_the_factorys_own_inputs(tmp_path: Path) -> None:
    out = tmp_path / "tagger.onnx"
    res = graphcap(
        "export", "tests.cli_models:make_tagger", "-o", str(out), "--verify",
        "--input", "ids:int64[batch=2,seq=5]", "-d", "mask:0=batch", "-d", "mask:-1=seq",
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "input   ids: i64[batch, seq]" in res.stdout
    assert "input   mask: f32[batch, seq]" in res.stdout
    rows = _rows(res.stdout)
    assert {r[0] for r in rows} == {"batch=2 seq=5 (example)", "batch=4 seq=10", "batch=1 seq=1"}
    assert {r[1] for r in rows} == {"output_0", "output_1"} and len(rows) == 6


def test_export_lstm_language_model_with_nested_state_verifies(tmp_path: Path) -> None:
    """State (h, c) in and (logits, (h, c)) out: inputs and outputs named by their paths."""
    out = tmp_path / "lm.onnx"
    res = graphcap(
        "export", "tests.cli_models:make_lstm_lm", "-o", str(out), "--verify", "--optimize",
        "-d", "ids:0=batch", "-d", "ids:1=seq", "-d", "state.0:1=batch", "-d", "state.1:1=batch",
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    for line in (
        "input   ids: i64[batch, seq]",
        "input   state.0: f32[1, batch, 5]",
        "input   state.1: f32[1, batch, 5]",
        "output  output_0: f32[batch, seq, 13]",
        "output  output_1.0: f32[1, batch, 5]",
        "output  output_1.1: f32[1, batch, 5]",
    ):
        assert line in res.stdout, res.stdout
    rows = _rows(res.stdout)
    assert len(rows) == 9 and all(r[-1] == "ok" for r in rows)
    # Oracle: the file on onnxruntime, fed two chunks and its own state in between, against
    # the eager model on the whole sequence at once.
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    ids = np.array([[3, 1, 4, 1, 5, 9]], dtype=np.int64)
    h = c = np.zeros((1, 1, 5), np.float32)
    for chunk in (ids[:, :4], ids[:, 4:]):
        logits, h, c = session.run(None, {"ids": chunk, "state.0": h, "state.1": c})
    gc.manual_seed(0)  # graphcap export's --seed
    model, _ = cli_models.make_lstm_lm()
    with gc.no_grad():
        want, (want_h, _) = model(gc.tensor(ids), (gc.zeros(1, 1, 5), gc.zeros(1, 1, 5)))
    np.testing.assert_allclose(logits, want.numpy()[:, 4:], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(h, want_h.numpy(), rtol=1e-5, atol=1e-5)


def test_export_in_a_folder_with_a_users_runtime_and_export_modules(tmp_path: Path) -> None:
    """The packages stay graphcap's, whatever runtime.py or export.py sits beside them."""
    for name in ("runtime", "export"):
        (tmp_path / f"{name}.py").write_text("SHADOW = True\n")
    (tmp_path / "lm.py").write_text(
        "import tracer\n\n\ndef make():\n    return tracer.nn.Linear(4, 2), (tracer.randn(3, 4),)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    script = (
        "import tracer\n"  # python -c: the folder comes first on sys.path
        "from export import save\n"
        "g = tracer.trace(tracer.nn.Linear(4, 2), (tracer.randn(3, 4),))\n"
        "save(g, 'direct.onnx')\n"
    )
    res = subprocess.run(
        [sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "direct.onnx").exists()
    (tmp_path / "export.py").unlink()  # `python -m export.cli` itself needs graphcap's export
    res = subprocess.run(
        [sys.executable, "-m", "export.cli", "export", "lm:make", "-o", "lm.onnx", "--verify"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert res.returncode == 0, res.stdout + res.stderr
    assert "verified at 1 size(s)" in res.stdout


def test_a_users_module_imported_first_under_a_graphcap_name_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from ir._packages import import_own

    theirs = type(sys)("runtime")
    theirs.__file__ = str(tmp_path / "runtime.py")
    monkeypatch.setitem(sys.modules, "runtime", theirs)
    with pytest.raises(ImportError, match=r"runtime.py is not graphcap's package 'runtime'"):
        import_own("runtime")


def test_optimize_runs_ir_optimize(tmp_path: Path) -> None:
    plain, optimized = tmp_path / "m.onnx", tmp_path / "o.onnx"
    res = graphcap("export", MLP, "-i", "x:float32[2,8]", "-o", str(plain))
    assert res.returncode == 0, res.stderr
    res = graphcap("export", MLP, "-i", "x:float32[2,8]", "-o", str(optimized), "--optimize")
    assert res.returncode == 0, res.stderr
    before, after = (len(onnx.load(str(p)).graph.node) for p in (plain, optimized))
    assert after < before  # the weight Transposes fold, MatMul + Add become Gemm
    x = np.random.default_rng(0).standard_normal((2, 8)).astype(np.float32)
    outs = [Session(str(p), backend="onnxruntime").run({"x": x}) for p in (plain, optimized)]
    np.testing.assert_allclose(*(next(iter(o.values())) for o in outs), rtol=1e-6, atol=1e-6)


def test_verify_finds_a_baked_branch(tmp_path: Path) -> None:
    res = graphcap(
        "export", "tests.cli_models:make_branchy", "--input", "x:float32[batch=2,8]",
        "-o", str(tmp_path / "b.onnx"), "--verify",
    )  # fmt: skip
    assert res.returncode == 1, res.stdout + res.stderr
    rows = _rows(res.stdout)
    assert [r[-1] for r in rows] == ["ok", "MISMATCH", "MISMATCH"]
    report = res.stdout.split("first divergence, at batch=4:", 1)[1]
    line = _line_of("tests/cli_models.py", "(x * scale)")
    assert f"node 'mul' (Mul) at tests/cli_models.py:{line}:" in report
    assert "is 2.0 in the file, but 3.0 when eager runs here" in report
    branch = _line_of("tests/cli_models.py", "x.shape[0] == 2")
    assert f"shape-branch: batch == 2 -> True at tests/cli_models.py:{branch}" in report
    assert "they agree at every node" in report  # interpreter and onnxruntime agree


def _line_of(path: str, text: str) -> int:
    lines = (ROOT / path).read_text().splitlines()
    return next(i for i, line in enumerate(lines, 1) if text in line)


def _export_in_process(tmp_path: Path, target: str, spec: str) -> Path:
    out = tmp_path / "model.onnx"
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli.main(["export", target, "--input", spec, "-o", str(out)]) == 0
    return out


def test_verify_names_the_node_of_a_corrupted_weight(tmp_path: Path) -> None:
    path = _export_in_process(tmp_path, MLP, "x:float32[batch=4,8]")
    model = onnx.load(str(path))
    # Corrupt the second MatMul's weight; the oracle for "first divergent node" is the file.
    matmuls = [n for n in model.graph.node if n.op_type == "MatMul"]
    weight = matmuls[1].input[1]
    tensor = next(t for t in model.graph.initializer if t.name == weight)
    array = numpy_helper.to_array(tensor).copy()
    array[3, 2] += 0.5
    tensor.CopyFrom(numpy_helper.from_array(array, weight))
    onnx.save(model, str(path))

    prepared = cli_prepare.prepare(MLP, [cli_prepare.parse_input_spec("x:float32[batch=4,8]")])
    report = cli_verify.verify(path, prepared)
    assert not report.ok
    example = report.rows[0]  # a relu may hide the corrupted unit at other sizes, not here
    assert not example.interpreter.ok and not example.onnxruntime.ok
    text = "\n".join(report.localisation)
    assert f"node {matmuls[1].name!r} (MatMul)" in text
    assert f"its constant input %{weight} (float32[16, 4]) differs" in text
    assert f"at [3, 2] the file holds {array[3, 2]:.6g}, eager {array[3, 2] - 0.5:.6g}" in text
    assert "they agree at every node" in text


def test_verify_bisects_interpreter_against_onnxruntime(tmp_path: Path) -> None:
    spec = "x:float32[batch=2,3,8]"
    path = _export_in_process(tmp_path, "tests.cli_models:make_reshaper", spec)
    tanh = ir.ops.get("Tanh")
    kernel = tanh.kernel
    # A wrong Tanh kernel: eager and the interpreter share it, onnxruntime does not.
    object.__setattr__(tanh, "kernel", lambda x: kernel(x) + np.float32(1e-3))
    try:
        prepared = cli_prepare.prepare(
            "tests.cli_models:make_reshaper", [cli_prepare.parse_input_spec(spec)]
        )
        report = cli_verify.verify(path, prepared)
    finally:
        object.__setattr__(tanh, "kernel", kernel)
    assert not report.ok
    assert all(r.interpreter.ok and not r.onnxruntime.ok for r in report.rows)
    text = "\n".join(report.localisation)
    backends = text.split("interpreter vs onnxruntime", 1)[1].split("exported graph vs eager")[0]
    node = next(n for n in onnx.load(str(path)).graph.node if n.op_type == "Tanh")
    assert f"node {node.name!r} (Tanh)" in backends
    assert "max abs err 0.001" in backends
    assert "every node matches the re-trace" in text


def test_compare_and_size_configs() -> None:
    a = np.array([1.0, np.nan, np.inf, 4.0], dtype=np.float32)
    assert cli_verify.compare(a, a.copy(), 1e-5, 1e-5).ok
    d = cli_verify.compare(a + np.float32(0.5), a, 1e-5, 1e-5)
    assert not d.ok and d.max_abs == 0.5 and d.max_rel == 0.125
    assert not cli_verify.compare(a[:2], a, 1e-5, 1e-5).ok
    assert cli_verify.size_configs({"b": 4, "t": 1}) == [
        {"b": 4, "t": 1}, {"b": 8, "t": 2}, {"b": 1, "t": 1}
    ]  # fmt: skip
    assert cli_verify.size_configs({"b": 1}) == [{"b": 1}, {"b": 2}, {"b": 4}]
    assert cli_verify.size_configs({}) == [{}]


def test_input_spec_syntax() -> None:
    spec = cli_prepare.parse_input_spec("ids:int64[batch=2, seq=16]")
    assert (spec.name, spec.dtype, spec.shape) == ("ids", np.dtype(np.int64), (2, 16))
    assert dict(spec.dynamic) == {0: "batch", 1: "seq"}
    assert cli_prepare.parse_input_spec("s:f32[]").shape == ()
    assert cli_prepare.parse_dynamic_spec("ids:1=seq") == ("ids", 1, "seq")
    assert cli_prepare.parse_dynamic_spec("x:0") == ("x", 0, None)


# ---------------------------------------------------------------- graphcap inspect


def test_inspect_text_and_json(tmp_path: Path) -> None:
    out = tmp_path / "b.onnx"
    spec = ["--input", "x:float32[batch=2,8]", "-o", str(out)]
    assert graphcap("export", "tests.cli_models:make_branchy", *spec).returncode == 0
    res = graphcap("inspect", str(out), "--json")
    assert res.returncode == 0, res.stderr
    info = json.loads(res.stdout)
    model = onnx.load(str(out))
    assert info["ir_version"] == model.ir_version == 10
    assert info["opsets"] == {"ai.onnx": 20}
    assert info["inputs"] == [{"name": "x", "dtype": "float32", "shape": ["batch", 8]}]
    assert info["outputs"] == [{"name": "output", "dtype": "float32", "shape": ["batch"]}]
    assert info["ops"] == dict(collections.Counter(n.op_type for n in model.graph.node))
    arrays = [numpy_helper.to_array(t) for t in model.graph.initializer]
    assert info["parameters"] == sum(a.size for a in arrays)
    assert info["parameter_bytes"] == sum(a.nbytes for a in arrays)
    branch = _line_of("tests/cli_models.py", "x.shape[0] == 2")
    assert info["baked"] == [
        {"kind": "shape-branch", "what": "batch == 2", "result": True,
         "source": f"tests/cli_models.py:{branch}"}
    ]  # fmt: skip
    text = graphcap("inspect", str(out)).stdout
    assert "ONNX IR version 10, opset ai.onnx 20" in text
    assert "input   x: float32[batch, 8]" in text
    assert re.search(r"1\s+Mul", text) and re.search(r"1\s+ReduceSum", text)
    assert f"shape-branch  batch == 2  True    tests/cli_models.py:{branch}" in text


def test_inspect_lists_external_data(tmp_path: Path) -> None:
    w = gc.randn(32, 32)
    graph = gc.trace(lambda x: x @ w, (gc.randn(2, 32),))
    path = tmp_path / "big.onnx"
    export.save(graph, path, external_data=True)
    info = json.loads(graphcap("inspect", str(path), "--json").stdout)
    (data,) = writer.data_files(path)
    assert info["external_data"] == [
        {"location": data.name, "bytes": data.stat().st_size, "exists": True}
    ]
    assert info["parameters"] == 32 * 32
    assert f"external data: {data.name}" in graphcap("inspect", str(path)).stdout


# ---------------------------------------------------------------- graphcap run


def test_run_npy_inputs_matches_eager(tmp_path: Path) -> None:
    model = _export_in_process(tmp_path, MLP, "x:float32[batch=4,8]")
    x = np.random.default_rng(1).standard_normal((5, 8)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    (want,) = _eager(MLP, ["x:float32[4,8]"], {"x": x})
    for backend in ("onnxruntime", "interpreter"):
        outdir = tmp_path / backend
        res = graphcap(
            "run", str(model), "--input", f"x={tmp_path / 'x.npy'}", "--backend", backend,
            "-o", str(outdir),
        )  # fmt: skip
        assert res.returncode == 0, res.stderr
        providers = "CPUExecutionProvider" if backend == "onnxruntime" else "numpy"
        assert f"with {backend} on cpu, providers {providers}" in res.stdout
        assert "output: float32[5, 4]" in res.stdout
        got = np.load(outdir / "output.npy", allow_pickle=False)
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
        assert sorted(p.name for p in outdir.iterdir()) == ["output.npy"]  # no temp files left


def test_run_cuda_says_what_really_ran(tmp_path: Path) -> None:
    model = _export_in_process(tmp_path, MLP, "x:float32[batch=4,8]")
    np.save(tmp_path / "x.npy", np.ones((2, 8), np.float32))
    res = graphcap("run", str(model), "--input", f"x={tmp_path / 'x.npy'}", "--device", "cuda")
    assert res.returncode == 0, res.stderr
    if "on cuda" in res.stdout:
        assert "CUDAExecutionProvider" in res.stdout
    else:  # no usable GPU: a warning, and the truth about the providers
        assert "graphcap: warning: device='cuda' was requested" in res.stderr
        assert "with onnxruntime on cpu, providers CPUExecutionProvider" in res.stdout


def test_run_never_unpickles(tmp_path: Path) -> None:
    model = _export_in_process(tmp_path, MLP, "x:float32[batch=4,8]")
    np.save(tmp_path / "evil.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    res = graphcap("run", str(model), "--input", f"x={tmp_path / 'evil.npy'}")
    assert res.returncode == 2
    assert "--input x=" in res.stderr and "not a plain .npy array" in res.stderr


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["export", MLP, "-i", "x:float32[4,a]", "-o", "m.onnx"], "argument --input/-i: 'x:f"),
        (["export", MLP, "-i", "x:complex[4]", "-o", "m.onnx"], "unknown dtype 'complex'"),
        (["export", MLP, "-i", "x:float32(4)", "-o", "m.onnx"], "is not NAME:DTYPE[dims]"),
        (["export", MLP, "-i", "x:float32[4,8]", "-d", "x=0", "-o", "m.onnx"], "--dynamic"),
        (
            ["export", "tests.cli_models:nope", "-i", "x:f32[2]", "-o", "m.onnx"],
            "no factory 'nope'",
        ),
        (["export", "no_such_module:f", "-i", "x:f32[2]", "-o", "m.onnx"], "'no_such_module'"),
        (["export", "tests.cli_models", "-o", "m.onnx"], "is not MODULE:FACTORY"),
        (["export", "tests.cli_models:make_not_a_model", "-o", "m.onnx"], "returned a int"),
        (["export", MLP, "-o", "m.onnx"], "declare them with --input"),
        (
            ["export", "tests.cli_models:make_tagger", "-i", "ids:i64[3,5]", "-o", "m.onnx"],
            "--input ids:int64[3,5]: tests.cli_models:make_tagger()'s example 'ids' is int64[2, 5]",
        ),
        (["export", MLP, "-i", "x:f32[4,8]", "-d", "y:0", "-o", "m.onnx"], "no input named 'y'"),
        (["export", MLP, "-i", "x:f32[4,8]", "-o", "m.onnx", "--opset", "7"], "--opset 7"),
        (["export", MLP, "-i", "x:f32[4,8]", "-o", "no/such/dir/m.onnx"], "does not exist"),
        (["inspect", "missing.onnx"], "no such file: 'missing.onnx'"),
        (["inspect", "README.md"], "is not an ONNX model"),
        (["run", "missing.onnx"], "no such file: 'missing.onnx'"),
        (["run", "m.onnx", "--input", "x"], "is not NAME=FILE.npy"),
        (["run", "m.onnx", "--input", "x=missing.npy"], "--input x=missing.npy: no such file"),
    ],
)
def test_usage_errors_name_the_bad_argument(args: list[str], message: str) -> None:
    res = graphcap(*args)
    assert res.returncode == 2, res.stdout + res.stderr
    assert message in res.stderr
    assert "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith(f"graphcap {args[0]}: error: ")


def test_failures_exit_1_and_debug_shows_the_traceback(tmp_path: Path) -> None:
    args = ["export", "tests.cli_models:make_broken", "-o", str(tmp_path / "m.onnx")]
    res = graphcap(*args)
    assert res.returncode == 1
    assert res.stderr.strip() == (
        "graphcap export: error: tests.cli_models:make_broken() raised RuntimeError: "
        "weights file missing (--debug shows the traceback)"
    )
    debug = graphcap(*args, "--debug")
    assert debug.returncode == 1
    assert "Traceback" in debug.stderr and "weights file missing" in debug.stderr


def test_run_feed_errors_exit_2(tmp_path: Path) -> None:
    model = _export_in_process(tmp_path, MLP, "x:float32[batch=4,8]")
    np.save(tmp_path / "x.npy", np.ones((2, 8), np.float64))
    res = graphcap("run", str(model), "--input", f"y={tmp_path / 'x.npy'}")
    assert res.returncode == 2
    assert "missing input 'x'" in res.stderr and "'y'" in res.stderr


def test_subcommand_help_teaches_with_examples() -> None:
    top = graphcap("--help").stdout
    for command in ("export", "inspect", "run"):
        assert command in top.split("options:")[0]
        res = graphcap(command, "--help")
        assert res.returncode == 0
        assert "examples:" in res.stdout and f"graphcap {command} " in res.stdout
    assert "--verify" in graphcap("export", "--help").stdout


if __name__ == "__main__" and "--update-readme" in sys.argv:
    table = graphcap("ops", "--markdown").stdout
    README.write_text(TABLE.sub(lambda m: m.group(1) + table + m.group(3), README.read_text()))
    print(f"rewrote the op table in {README}")
