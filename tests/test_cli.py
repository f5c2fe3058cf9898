"""The ``graphcap`` command: run as a real process, the way users call it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ir.ops
from export import cli

ROOT = Path(__file__).resolve().parent.parent
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


def test_ops_lists_every_registry_op() -> None:
    res = graphcap("ops")
    assert res.returncode == 0, res.stderr
    listed = {line.split()[0] for line in res.stdout.splitlines()[2:] if line.strip()}
    for opdef in ir.ops.all_ops():
        assert opdef.op_type in listed, f"`graphcap ops` does not list {opdef.op_type}"
    assert f"{len(ir.ops.all_ops())} ops" in res.stdout


def test_ops_rows_say_since_attributes_and_vjp() -> None:
    out = graphcap("ops", "--markdown").stdout
    rows = {line.split("|")[1].strip(" `"): line for line in out.splitlines()[2:]}
    assert set(rows) == {d.op_type for d in ir.ops.all_ops()}
    for opdef in ir.ops.all_ops():
        cells = [c.strip() for c in rows[opdef.op_type].split("|")[1:-1]]
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
    assert names == {d.op_type for d in ir.ops.all_ops() if "mat" in d.op_type.lower()}


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
    assert "usage: graphcap" in res.stderr


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
        "python -m tests.test_cli --update-readme"
    )


if __name__ == "__main__" and "--update-readme" in sys.argv:
    table = graphcap("ops", "--markdown").stdout
    README.write_text(TABLE.sub(lambda m: m.group(1) + table + m.group(3), README.read_text()))
    print(f"rewrote the op table in {README}")
