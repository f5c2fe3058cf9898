"""The packages import downward only: ``ir <- export.onnx <- runtime <- tracer <- export.cli``.

(``export.cli`` is the top group: the command line and serving, ``export.serve``.)

Every module of ``ir/``, ``export/``, ``runtime/`` and ``tracer/`` is parsed (not imported)
and every import statement in it is checked, wherever it stands (module level, inside a
function, under ``if TYPE_CHECKING:``), ``import x`` and ``from x import y`` alike, relative
ones resolved. The run fails, naming the file, line and import, on

- an import from a lower layer into a higher one;
- a cycle between the layer groups;
- ``ir`` importing anything but NumPy, the standard library and itself (an optional
  accelerator imported inside ``try: ... except ImportError:`` is allowed, as ``ir`` then
  runs without it);
- the codec importing anything but ``ir``, ``onnx`` (with its protobuf), NumPy and the
  standard library;
- a module of these packages that is in no layer (a new module must be placed on purpose).
"""

from __future__ import annotations

import ast
import itertools
import sys
import textwrap
from collections import defaultdict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("ir", "export", "runtime", "tracer")

LAYERS = {"ir": 0, "export.onnx": 1, "runtime": 2, "tracer": 3, "export.cli": 4}
"""Each layer group's height: a module may import its own group and those below it."""
GROUP_OF_PREFIX = {
    "ir": "ir",
    "export.onnx": "export.onnx",
    "runtime": "runtime",
    "tracer": "tracer",
    "export.cli": "export.cli",
    "export.training": "export.cli",  # the training bundle takes tracer's train step
    "export.serve": "export.cli",  # serving sits on top with the command line
}
"""Module-name prefix -> layer group; the longest matching prefix wins."""
GROUP_OF_MODULE = {"export": "export.onnx"}
"""Exact module names -> group: ``export/__init__.py`` only re-exports the codec."""

STDLIB = frozenset(sys.stdlib_module_names)
IR_MAY_IMPORT = frozenset({"ir", "numpy"})
CODEC_MAY_IMPORT = frozenset({"ir", "export.onnx", "numpy", "onnx", "google.protobuf"})


@dataclass(frozen=True)
class Import:
    """One imported module, as written at one place."""

    path: str  # relative to the scanned root
    line: int
    text: str  # the statement, unparsed
    target: str  # the module it loads (``from a import b`` -> ``a.b`` when that is a module)
    optional: bool  # inside ``try:`` whose handler catches ImportError

    def where(self) -> str:
        return f"{self.path}:{self.line}: `{self.text}`"


@dataclass
class Scan:
    """What :func:`scan` found: group edges with their imports, and every violation."""

    edges: dict[tuple[str, str], list[Import]] = field(default_factory=lambda: defaultdict(list))
    violations: list[str] = field(default_factory=list)


def group_of(module: str) -> str | None:
    """The layer group of ``module`` (a dotted name), or None outside every group."""
    if module in GROUP_OF_MODULE:
        return GROUP_OF_MODULE[module]
    best = ""
    for prefix in GROUP_OF_PREFIX:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    return GROUP_OF_PREFIX.get(best)


def modules(root: Path) -> dict[str, Path]:
    """Every module of the packages under ``root``, by dotted name."""
    found = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


def imports_of(path: Path, module: str, known: set[str], root: Path) -> list[Import]:
    """Every import in the file at ``path`` (module ``module``), at any depth."""
    tree = ast.parse(path.read_text(), filename=str(path))
    is_package = path.name == "__init__.py"
    rel = path.relative_to(root).as_posix()
    found: list[Import] = []

    def visit(node: ast.AST, optional: bool) -> None:
        if isinstance(node, ast.Try):
            catches = any(_catches_import_error(h) for h in node.handlers)
            for child in node.body:
                visit(child, optional or catches)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, optional)
            return
        if isinstance(node, ast.Import):
            text = ast.unparse(node)
            found.extend(Import(rel, node.lineno, text, a.name, optional) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                target = sub if sub in known else base
                found.append(Import(rel, node.lineno, ast.unparse(node), target, optional))
        for child in ast.iter_child_nodes(node):
            visit(child, optional)

    visit(tree, False)
    return found


def _catches_import_error(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(
        isinstance(k, ast.Name) and k.id in ("ImportError", "ModuleNotFoundError") for k in kinds
    )


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """The module a ``from ... import`` names, relative levels resolved."""
    if not node.level:
        return node.module or ""
    package = module.split(".") if is_package else module.split(".")[:-1]
    base = package[: len(package) - (node.level - 1)]
    return ".".join([*base, *([node.module] if node.module else [])])


def _allowed(target: str, allowed: frozenset[str]) -> bool:
    root = target.split(".")[0]
    return root in STDLIB or any(target == a or target.startswith(a + ".") for a in allowed)


def scan(root: Path) -> Scan:
    """Check every module of the packages under ``root``; see the module docstring."""
    result = Scan()
    found = modules(root)
    for module, path in found.items():
        src = group_of(module)
        if src is None:
            rel = path.relative_to(root).as_posix()
            result.violations.append(
                f"{rel}: module {module} is in no layer; place it in GROUP_OF_PREFIX of "
                "tests/test_layers.py"
            )
            continue
        for imp in imports_of(path, module, set(found), root):
            dst = group_of(imp.target)
            if src == "ir" and not imp.optional and not _allowed(imp.target, IR_MAY_IMPORT):
                result.violations.append(
                    f"{imp.where()}: ir imports only NumPy, the standard library and ir"
                )
            elif src == "export.onnx" and not _allowed(imp.target, CODEC_MAY_IMPORT):
                result.violations.append(
                    f"{imp.where()}: the codec imports only ir, onnx, NumPy and the "
                    "standard library"
                )
            if dst is None or dst == src:
                continue
            result.edges[src, dst].append(imp)
            if LAYERS[dst] > LAYERS[src]:
                result.violations.append(
                    f"{imp.where()}: {src} (layer {LAYERS[src]}) imports {imp.target} of "
                    f"{dst} (layer {LAYERS[dst]}), a higher layer"
                )
    result.violations += [_describe_cycle(c, result.edges) for c in cycles(result.edges)]
    return result


def cycles(edges: Mapping[tuple[str, str], list[Import]]) -> list[list[str]]:
    """Shortest cycles ``[a, b, ..., a]``, one from each group not already on a found one."""
    succ: dict[str, list[str]] = defaultdict(list)
    for a, b in sorted(edges):
        succ[a].append(b)
    found: list[list[str]] = []
    for start in sorted(succ):
        if any(start in c for c in found):
            continue
        cycle = _shortest_cycle(start, succ)
        if cycle:
            found.append(cycle)
    return found


def _shortest_cycle(start: str, succ: Mapping[str, list[str]]) -> list[str]:
    """The shortest path ``start -> ... -> start`` (breadth first), or []."""
    prev: dict[str, str] = {}
    queue = deque([start])
    while queue:
        here = queue.popleft()
        for nxt in succ.get(here, []):
            if nxt == start:
                path = [here]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return [*reversed(path), start]
            if nxt not in prev:
                prev[nxt] = here
                queue.append(nxt)
    return []


def _describe_cycle(cycle: list[str], edges: Mapping[tuple[str, str], list[Import]]) -> str:
    steps = [f"{a} -> {b} ({edges[a, b][0].where()})" for a, b in itertools.pairwise(cycle)]
    return "import cycle between layer groups: " + "; ".join(steps)


# ---------------------------------------------------------------- the tests


def test_layers_import_downward_only() -> None:
    result = scan(ROOT)
    assert not result.violations, "\n".join(result.violations)


def test_scan_sees_the_real_downward_edges() -> None:
    """The scan reads the real imports (an empty scan would pass the test above)."""
    edges = scan(ROOT).edges
    for edge in [
        ("export.onnx", "ir"),
        ("runtime", "export.onnx"),
        ("tracer", "runtime"),
        ("export.cli", "tracer"),
        ("export.cli", "runtime"),
    ]:
        assert edges.get(edge), f"no import {edge[0]} -> {edge[1]} found"


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))


def test_scan_catches_upward_imports_cycles_and_foreign_imports(tmp_path: Path) -> None:
    _write(
        tmp_path,
        {
            "ir/__init__.py": "import numpy as np\nimport math\n",
            "ir/accel.py": """\
                try:
                    import threadpoolctl  # optional: allowed
                except ImportError:
                    threadpoolctl = None
                import scipy
                """,
            "ir/typed.py": """\
                from typing import TYPE_CHECKING
                if TYPE_CHECKING:
                    from runtime import Session
                """,
            "export/__init__.py": "from export.onnx import save\n",
            "export/onnx/__init__.py": "from . import writer\n",
            "export/onnx/writer.py": "import onnx\nfrom ..cli import app\n",
            "export/cli/__init__.py": "",
            "export/cli/app.py": "import tracer\nfrom export import save\n",
            "export/stray.py": "",
            "runtime/__init__.py": "from export.onnx import writer\n",
            "runtime/session.py": """\
                def run():
                    from tracer import nn
                    return nn
                """,
            "tracer/__init__.py": "from runtime import session\n",
        },
    )
    result = scan(tmp_path)
    assert sorted(result.violations) == sorted(
        [
            "ir/accel.py:5: `import scipy`: ir imports only NumPy, the standard library and ir",
            "ir/typed.py:3: `from runtime import Session`: ir imports only NumPy, the "
            "standard library and ir",
            "ir/typed.py:3: `from runtime import Session`: ir (layer 0) imports runtime of "
            "runtime (layer 2), a higher layer",
            "export/onnx/writer.py:2: `from ..cli import app`: the codec imports only ir, "
            "onnx, NumPy and the standard library",
            "export/onnx/writer.py:2: `from ..cli import app`: export.onnx (layer 1) imports "
            "export.cli.app of export.cli (layer 4), a higher layer",
            "export/stray.py: module export.stray is in no layer; place it in "
            "GROUP_OF_PREFIX of tests/test_layers.py",
            "runtime/session.py:2: `from tracer import nn`: runtime (layer 2) imports tracer "
            "of tracer (layer 3), a higher layer",
            "import cycle between layer groups: export.cli -> export.onnx "
            "(export/cli/app.py:2: `from export import save`); export.onnx -> export.cli "
            "(export/onnx/writer.py:2: `from ..cli import app`)",
            "import cycle between layer groups: runtime -> tracer (runtime/session.py:2: "
            "`from tracer import nn`); tracer -> runtime (tracer/__init__.py:1: "
            "`from runtime import session`)",
        ]
    ), "\n".join(result.violations)


def test_cycles_are_found_whatever_the_layers() -> None:
    imp = Import("a.py", 1, "import b", "b", False)
    edges = {("a", "b"): [imp], ("b", "c"): [imp], ("c", "a"): [imp], ("c", "d"): [imp]}
    assert cycles(edges) == [["a", "b", "c", "a"]]
    edges[("b", "a")] = [imp]
    assert cycles(edges) == [["a", "b", "a"], ["c", "a", "b", "c"]]  # shortest ones
    assert cycles({("a", "b"): [imp], ("b", "c"): [imp]}) == []
