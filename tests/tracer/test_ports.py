"""The port corpus (tests/ports): PyTorch NLP scripts run on graphcap with only imports changed.

Each port runs on graphcap; where torch is installed it runs on torch first, from the same
file, and graphcap's run (with torch's weights and random draws) must match its first loss
and the parameters after one optimizer step within 1e-5 relative (float32), as well as
every other value the port records.
"""

from __future__ import annotations

import ast
import contextlib
import io
from pathlib import Path

import pytest

from tests.ports import harness

TOLERANCE = 1e-5
NAMES = sorted(harness.PORTS)


def _torch_installed() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.parametrize("name", NAMES)
def test_port_runs_on_graphcap_and_matches_torch(name: str) -> None:
    port = harness.PORTS[name]
    quiet = contextlib.redirect_stdout(io.StringIO())
    if not _torch_installed():
        with quiet:
            harness.run(name, "graphcap")
        return
    with quiet:
        errors, tape = harness.compare(name)
    assert errors, "the port recorded nothing to compare"
    if port.trains:
        assert any(k.startswith("first loss") for k in errors), sorted(errors)
        assert any("after one step: " in k for k in errors), sorted(errors)
    worst = {k: e for k, e in errors.items() if not e <= TOLERANCE}
    assert not worst, f"graphcap differs from torch (relative, tolerance {TOLERANCE}): {worst}"
    assert tape.replayed == len(tape.draws) or tape.diverged, "random draws left unreplayed"


def _switch_branches(path: Path) -> tuple[list[ast.stmt], list[ast.stmt]]:
    tree = ast.parse(path.read_text())
    for node in tree.body:
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Call)
            and getattr(node.test.left.func, "id", None) == "backend"
        ):
            return node.body, node.orelse
    raise AssertionError(f"{path.name} has no `if backend() == 'torch':` import switch")


def _torch_path(name: str | None, library: str) -> str | None:
    if name is None or library == "torch":
        return name
    return "torch" + name[len("tracer") :] if name.split(".")[0] == "tracer" else name


def _imports(stmts: list[ast.stmt], library: str) -> list[tuple[str | None, ...]]:
    """(module, name, bound name) of every import, with tracer's paths spelled as torch's."""
    out = []
    for s in stmts:
        assert isinstance(s, ast.Import | ast.ImportFrom), (
            f"line {s.lineno}: the switch may hold only imports"
        )
        for a in s.names:
            if isinstance(s, ast.Import):
                bound = a.asname or a.name.split(".")[0]
                entry = (_torch_path(a.name, library), None, _torch_path(bound, library))
            else:
                entry = (_torch_path(s.module, library), a.name, a.asname or a.name)
            out.append(entry)
    return sorted(out, key=repr)


PORT_FILES = sorted(
    p
    for p in Path(harness.PORTS_DIR).rglob("*.py")
    if not p.name.startswith("_") and p.name not in ("harness.py", "census.py")
)


@pytest.mark.parametrize("path", PORT_FILES, ids=lambda p: p.stem)
def test_port_differs_from_torch_only_in_its_import_lines(path: Path) -> None:
    """The switch's two branches import the same names, from torch and from tracer."""
    torch_side, graphcap_side = _switch_branches(path)
    assert _imports(torch_side, "torch") == _imports(graphcap_side, "tracer")
    text = path.read_text()
    assert text.count("backend()") == 1, "the backend must be chosen once, by the import switch"


def test_every_port_module_is_in_the_corpus() -> None:
    modules = {p.module for p in harness.CORPUS}
    files = {
        str(p.relative_to(harness.PORTS_DIR).with_suffix("")).replace("/", ".") for p in PORT_FILES
    }
    libraries = {"word_language_model.model", "word_language_model.data"}
    assert files - libraries == modules
