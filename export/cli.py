"""The ``graphcap`` command line.

Subcommands (argparse): ``graphcap ops`` lists the op registry. Exit codes: 0 success,
2 usage error (argparse's convention). ``export``/``run`` subcommands arrive with the
capture and export issues; until then the command says only what is true today.
"""

from __future__ import annotations

import argparse
import inspect
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

_EPILOG = """\
examples:
  graphcap ops                 the op registry as a text table
  graphcap ops --markdown      the same table in Markdown (README.md embeds it)
  graphcap ops --grep Reduce   only ops whose name contains "Reduce"
  graphcap --version

Every op is defined once in the registry (package ir.ops): its ONNX op type, the ONNX
schema version its NumPy kernel implements, its attributes with ONNX's defaults, and
its vjp (gradient) rule, or the reason it has none.
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``graphcap`` command.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when None.

    Returns:
        The exit status: 0 on success, 2 on a usage error.
    """
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        print("\ngraphcap: error: choose a COMMAND, e.g. `graphcap ops`", file=sys.stderr)
        return 2
    try:
        result: int = args.handler(args)
    except BrokenPipeError:  # `graphcap ops | head`: the reader left; not an error
        sys.stderr.close()
        return 0
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="graphcap",
        description="graphcap: eager PyTorch-style tensors on NumPy whose ops live in one "
        "registry that maps onto ONNX.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"graphcap {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    ops = sub.add_parser(
        "ops",
        help="list the op registry (ONNX op, since-version, attributes, gradient rule)",
        description="List every registered op: its ONNX op type, the ONNX schema version "
        "whose semantics its kernel implements, its attributes with defaults (a name "
        "without '=' is required), and whether it has a vjp rule (and if not, why).",
    )
    ops.add_argument("--markdown", action="store_true", help="print a Markdown table")
    ops.add_argument("--grep", metavar="TEXT", help="only ops whose name contains TEXT")
    ops.set_defaults(handler=_cmd_ops)
    return parser


def _cmd_ops(args: argparse.Namespace) -> int:
    import ir.ops  # registers every op family

    rows = [
        _op_row(d)
        for d in ir.ops.all_ops()
        if not args.grep or args.grep.lower() in d.op_type.lower()
    ]
    header = ("op", "since", "attributes", "vjp")
    if args.markdown:
        print(_markdown(header, rows))
    else:
        print(_text_table(header, rows))
        print(f"\n{len(rows)} ops")
    return 0


def _op_row(opdef: Any) -> tuple[str, str, str, str]:
    name = opdef.op_type if not opdef.domain else f"{opdef.domain}::{opdef.op_type}"
    attrs = ", ".join(_attr(k, v) for k, v in opdef.attrs.items()) or "-"
    vjp = "yes" if opdef.vjp is not None else f"no: {opdef.no_vjp}"
    return name, str(opdef.since), attrs, vjp


def _attr(name: str, default: Any) -> str:
    # A kernel's keyword-only parameter without a default is a required ONNX attribute.
    if default is inspect.Parameter.empty:
        return name
    if isinstance(default, float):
        # ONNX float attributes are float32: print 1e-05, not 9.999999747378752e-06.
        text = f"{default:.7g}"
        return f"{name}={text if any(c in text for c in '.en') else text + '.0'}"
    return f"{name}={default!r}"


def _text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def _markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    def cells(row: Sequence[str]) -> str:
        return "| " + " | ".join(c.replace("|", "\\|") for c in row) + " |"

    body = [cells([f"`{r[0]}`", r[1], f"`{r[2]}`" if r[2] != "-" else "-", r[3]]) for r in rows]
    return "\n".join([cells(header), cells(["---"] * len(header)), *body])


def _version() -> str:
    try:
        return metadata.version("graphcap")
    except metadata.PackageNotFoundError:
        pass
    # Running from a source checkout that was not pip-installed: read pyproject.toml.
    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        import tomllib

        return str(tomllib.loads(pyproject.read_text())["project"]["version"]) + " (source)"
    except (OSError, KeyError, ValueError):
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
