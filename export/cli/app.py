"""The ``graphcap`` command line.

Subcommands (argparse): ``graphcap ops`` lists the op registry, ``graphcap export`` traces a
model factory into an ``.onnx`` file (``--verify`` checks it against eager execution at
several sizes; ``--training`` writes a training bundle, see ``export.training``),
``graphcap inspect`` describes an ``.onnx`` file, ``graphcap run`` runs one
on ``.npy`` inputs. Exit status: 0 success, 1 a verification mismatch or a failure while
running, 2 a usage or input error (bad arguments, a file that is not a model graphcap or
onnxruntime can load, feeds that do not fit). Errors are one ``graphcap <command>: error:
...`` line on stderr, usage errors included; ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import functools
import inspect
import re
import sys
import tomllib
import traceback
import warnings
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

import ir.ops
from export.cli.common import FAILED, USAGE, CommandError, UsageError, text_table
from export.cli.export_command import run_export
from export.cli.generate_command import add_generate_arguments
from export.cli.inspect_command import run_inspect
from export.cli.prepare import parse_dynamic_spec, parse_input_spec
from export.cli.training_command import LOSSES, OPTIMIZERS
from export.onnx.files import atomic_write
from ir.errors import GraphcapError
from runtime import Session
from runtime.errors import FeedError

_EPILOG = """\
examples:
  graphcap ops --grep Reduce                     the op registry (ops named like "Reduce")
  graphcap export models:make_mlp --input x:float32[batch=4,8] -o mlp.onnx --verify
  graphcap inspect mlp.onnx                      signature, ops, parameters, baked decisions
  graphcap run mlp.onnx --input x=x.npy -o out/  run it on .npy inputs
  graphcap COMMAND --help                        each command's options, with examples

exit status: 0 success, 1 verification mismatch or failure while running, 2 usage error.
"""

_EXPORT_EPILOG = """\
examples:
  graphcap export models:make_mlp --input x:float32[4,8] --dynamic x:0=batch -o mlp.onnx
  graphcap export models:make_tagger --input ids:int64[batch=2,seq=16] -o tagger.onnx --verify
  graphcap export models:make_tagger -o tagger.onnx --dynamic ids:0=batch --dynamic ids:1=seq
  graphcap export models:make_classifier --input ids:int64[batch=8,seq=32] --training \\
      --target y:int64[batch=8] --loss cross_entropy --optimizer adamw --lr 3e-4 -o clf_bundle
  graphcap export models:make_gpt2 --generate --eos-token-id 50256 -o gpt2_generate.onnx --verify

MODULE is imported from the current folder (or PYTHONPATH). FACTORY() returns the model (a
function, or an object with forward/__call__), or (model, example_inputs) to supply its own
inputs (a tensor, an array, a tuple of them, or a dict by name). Otherwise --input declares
them: random values, floats standard normal, integers in [0, 100), seeded by --seed.
A dim written symbol=size (batch=4) is dynamic: the example has that size and the graph keeps
the symbol. --verify runs the file on graphcap's interpreter and on onnxruntime at the
example sizes and at two other sizes of every dynamic dim, compares each output with the
eager model, and on a mismatch names the first node where the results part (exit status 1).

--training writes a training bundle to the folder -o names: inference.onnx, train_step.onnx
(forward, loss, backward and the optimizer's update in standard ONNX ops), state.safetensors
(parameters and optimizer state) and bundle.json (how to run a step with onnxruntime alone).
The loss is LOSS(model(inputs)[0], target): cross_entropy takes logits with classes on the
last axis and class ids shaped like the logits without it (or probabilities shaped like them);
mse and bce_with_logits take a float target shaped like the output. The model must have
named_parameters() (a tracer.nn.Module); its dropout is active in the train step.
--generate writes greedy search (--do-sample: sampling) with FACTORY()'s model of the step
protocol (docs/generation.md) as one file whose Loop carries the KV cache:
inputs input_ids and attention_mask (int64 [batch, prompt], left-padded), max_new_tokens
and, when sampling, seed; output sequences. --verify compares its tokens with eager decoding.
"""

_INSPECT_EPILOG = """\
examples:
  graphcap inspect model.onnx           signature, opset, op histogram, parameters, baked decisions
  graphcap inspect model.onnx --json    the same as JSON
"""

_RUN_EPILOG = """\
examples:
  graphcap run model.onnx --input x=x.npy
  graphcap run model.onnx --input ids=ids.npy --input mask=mask.npy -o outputs/
  graphcap run model.onnx --input x=x.npy --device cuda --backend onnxruntime

Inputs are .npy files, read with numpy.load(allow_pickle=False): nothing is unpickled. With
-o, each output is saved as OUTDIR/<output name>.npy (written to a temporary file, then moved).
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``graphcap`` command.

    Args:
        argv: the arguments after the program name; ``sys.argv[1:]`` when None.

    Returns:
        The exit status: 0 success, 1 a mismatch or failure, 2 a usage or input error.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, --version, or a usage error (printed already)
        return done.code if isinstance(done.code, int) else USAGE
    if args.command is None:
        print(
            "graphcap: error: choose a COMMAND, e.g. `graphcap ops` (graphcap --help lists them)",
            file=sys.stderr,
        )
        return USAGE
    debug = getattr(args, "debug", False)
    prog = f"graphcap {args.command}"
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _show_warning
            result: int = args.handler(args)
    except BrokenPipeError:  # `graphcap ops | head`: the reader left; not an error
        sys.stderr.close()
        return 0
    except UsageError as err:
        return _error(prog, str(err), err, debug, USAGE)
    except CommandError as err:
        return _error(prog, str(err), err, debug, FAILED)
    except KeyboardInterrupt:
        return 130
    except Exception as err:
        return _error(prog, f"{type(err).__name__}: {err}", err, debug, FAILED)
    return result


def _error(prog: str, message: str, err: BaseException, debug: bool, status: int) -> int:
    sys.stdout.flush()
    if debug:
        traceback.print_exception(err)
    first, *rest = message.strip().splitlines() or [""]
    hint = "" if debug or status == USAGE else " (--debug shows the traceback)"
    print(f"{prog}: error: {first}{hint}", file=sys.stderr)
    for line in rest:
        print(f"  {line}", file=sys.stderr)
    return status


def _show_warning(message: Any, category: Any, *_: Any, **__: Any) -> None:
    print(f"graphcap: warning: {message}", file=sys.stderr)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one ``graphcap <command>: error: ...`` line, status 2."""

    def error(self, message: str) -> NoReturn:
        """Print one error line, pointing at ``--help``, and exit with status 2."""
        self.exit(USAGE, f"{self.prog}: error: {message} (`{self.prog} --help` shows usage)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="graphcap",
        description="graphcap: eager PyTorch-style tensors on NumPy whose ops live in one "
        "registry that maps onto ONNX; capture models into .onnx files and run them.",
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
    _export_parser(sub)
    _inspect_parser(sub)
    _run_parser(sub)
    from export.serve.cli import add_serve_parser  # the serving layer, on top
    from export.serve.pipeline_cli import add_pipeline_parser

    add_pipeline_parser(sub)
    add_serve_parser(sub)
    return parser


def _command(sub: Any, name: str, help_text: str, epilog: str) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help_text,
        description=help_text[0].upper() + help_text[1:] + ".",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return p


def _export_parser(sub: Any) -> None:
    p = _command(
        sub, "export", "trace a model factory and write it as an ONNX file", _EXPORT_EPILOG
    )
    p.add_argument("model", metavar="MODULE:FACTORY", help="e.g. models:make_mlp")
    p.add_argument(
        "--input",
        "-i",
        action="append",
        type=parse_input_spec,
        metavar="NAME:DTYPE[dims]",
        help="an example input, e.g. x:float32[4,8] or ids:int64[batch=2,seq=16] "
        "(repeat per input, in the model's argument order)",
    )
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE.onnx",
        help="file to write (with --training, the bundle's folder)",
    )
    p.add_argument("--opset", type=int, help="default-domain opset to write (default 20)")
    p.add_argument(
        "--dynamic",
        "-d",
        action="append",
        type=parse_dynamic_spec,
        metavar="NAME:AXIS=SYMBOL",
        help="make an axis dynamic, e.g. ids:1=seq",
    )
    p.add_argument(
        "--optimize",
        nargs="?",
        type=int,
        const=3,
        default=0,
        choices=range(4),
        metavar="LEVEL",
        help="ir.optimize the graph at LEVEL 0-3 (3 when given without a level: "
        "simplification and fusions)",
    )
    p.add_argument(
        "--verify",
        action="store_true",
        help="compare the file with eager execution at several sizes",
    )
    p.add_argument("--atol", type=float, default=1e-5, help="verify: absolute tolerance (1e-5)")
    p.add_argument("--rtol", type=float, default=1e-5, help="verify: relative tolerance (1e-5)")
    p.add_argument("--seed", type=int, default=0, help="seeds weights and random inputs (0)")
    _training_arguments(p)
    p.set_defaults(handler=run_export)


def _training_arguments(p: argparse.ArgumentParser) -> None:
    add_generate_arguments(p)
    t = p.add_argument_group("training bundle (--training)")
    t.add_argument(
        "--training",
        action="store_true",
        help="write a training bundle folder (train step, state, manifest, inference model)",
    )
    t.add_argument(
        "--target",
        type=parse_input_spec,
        metavar="NAME:DTYPE[dims]",
        help="the loss's target, e.g. y:int64[batch=4] (needed with --training)",
    )
    t.add_argument("--loss", choices=LOSSES, help="loss (default cross_entropy)")
    t.add_argument("--optimizer", choices=OPTIMIZERS, help="optimizer (default adamw)")
    t.add_argument("--lr", type=float, help="learning rate (default 1e-3)")
    t.add_argument("--momentum", type=float, help="sgd: momentum (default 0)")
    t.add_argument("--weight-decay", type=float, help="weight decay (optimizer's default)")
    t.add_argument(
        "--ignore-index", type=int, help="cross_entropy: target value to skip (default -100)"
    )


def _inspect_parser(sub: Any) -> None:
    p = _command(
        sub,
        "inspect",
        "describe an ONNX file: signature, ops, parameters, baked decisions",
        _INSPECT_EPILOG,
    )
    p.add_argument("model", metavar="FILE.onnx")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=run_inspect)


def _run_parser(sub: Any) -> None:
    p = _command(sub, "run", "run an ONNX file on .npy inputs", _RUN_EPILOG)
    p.add_argument("model", metavar="FILE.onnx")
    p.add_argument(
        "--input",
        "-i",
        action="append",
        type=_feed_spec,
        metavar="NAME=FILE.npy",
        default=[],
        help="an input array (repeat per input)",
    )
    p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    p.add_argument(
        "--backend",
        default="auto",
        choices=("auto", "interpreter", "onnxruntime"),
        help="auto (default): onnxruntime when it loads the model, else the interpreter",
    )
    p.add_argument("-o", "--outdir", metavar="OUTDIR", help="save outputs as OUTDIR/<name>.npy")
    p.set_defaults(handler=_cmd_run)


def _feed_spec(text: str) -> tuple[str, str]:
    name, sep, file = text.partition("=")
    if not sep or not name or not file:
        raise argparse.ArgumentTypeError(f"{text!r} is not NAME=FILE.npy, e.g. x=x.npy")
    return name, file


def _cmd_run(args: argparse.Namespace) -> int:
    feeds = {name: _load_npy(name, file) for name, file in args.input}
    outdir = Path(args.outdir) if args.outdir else None
    if outdir is not None and outdir.exists() and not outdir.is_dir():
        raise UsageError(f"-o {args.outdir}: exists and is not a folder")
    if not Path(args.model).is_file():
        raise UsageError(f"no such file: {args.model!r}")
    try:
        session = Session(args.model, device=args.device, backend=args.backend)
    except (ValueError, GraphcapError) as err:  # the options, or the file: the input's fault
        raise UsageError(f"cannot load {args.model}: {err}") from err
    except Exception as err:
        raise CommandError(f"cannot load {args.model}: {err}") from err
    try:
        outputs = session.run(feeds)
    except FeedError as err:
        raise UsageError(str(err)) from err
    where = f"{session.backend} on {session.device}, providers {', '.join(session.providers)}"
    print(f"ran {args.model} with {where}" + (f" ({session.reason})" if session.reason else ""))
    if outdir is not None:
        outdir.mkdir(parents=True, exist_ok=True)
    files = _file_names(list(outputs))
    for name, array in outputs.items():
        print(f"  {name}: {array.dtype}{list(array.shape)} {_preview(array)}")
        if outdir is not None:
            target = outdir / files[name]
            atomic_write(target, functools.partial(_save_npy, array=array))
            print(f"    saved {target}")
    return 0


def _load_npy(name: str, file: str) -> np.ndarray:
    try:
        return np.load(file, allow_pickle=False)
    except FileNotFoundError:
        raise UsageError(f"--input {name}={file}: no such file") from None
    except ValueError as err:  # object arrays (pickles) and files that are not .npy
        raise UsageError(f"--input {name}={file}: not a plain .npy array ({err})") from None
    except OSError as err:
        raise UsageError(f"--input {name}={file}: cannot read it ({err})") from None


def _save_npy(path: Path, *, array: np.ndarray) -> None:
    with open(path, "wb") as f:  # a file object: np.save(path) would append ".npy"
        np.save(f, array, allow_pickle=False)


def _file_names(names: list[str]) -> dict[str, str]:
    """``<name>.npy`` per output, made safe (names come from the file) and distinct.

    Characters other than letters, digits, ``.``, ``-`` and ``_`` become ``_``, leading dots
    go, names are cut to 100 characters, and names that collide (case-insensitively, as on
    macOS and Windows) get ``_1``, ``_2``, ...
    """
    taken: set[str] = set()
    out = {}
    for name in names:
        base = re.sub(r"[^\w.-]", "_", name, flags=re.ASCII).lstrip(".")[:100] or "output"
        stem, i = base, 0
        while stem.lower() in taken:
            i += 1
            stem = f"{base}_{i}"
        taken.add(stem.lower())
        out[name] = stem + ".npy"
    return out


def _preview(array: np.ndarray, count: int = 6) -> str:
    flat = array.reshape(-1)
    head = np.array2string(flat[:count], precision=4, separator=", ", threshold=count)
    more = f" ... ({flat.size} values)" if flat.size > count else ""
    stats = ""
    if array.dtype.kind == "f" and flat.size:
        stats = f"  min {flat.min():.4g} max {flat.max():.4g} mean {flat.mean():.4g}"
    return f"{head[:-1]}{more}]{stats}" if more else f"{head}{stats}"


def _cmd_ops(args: argparse.Namespace) -> int:
    rows = [
        _op_row(d)
        for d in ir.ops.all_ops()
        if not args.grep or args.grep.lower() in d.op_type.lower()
    ]
    header = ("op", "since", "attributes", "vjp")
    if args.markdown:
        print(_markdown(header, rows))
    else:
        print(text_table(header, rows))
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
    pyproject = Path(__file__).resolve().parents[2] / "pyproject.toml"
    try:
        return str(tomllib.loads(pyproject.read_text())["project"]["version"]) + " (source)"
    except (OSError, KeyError, ValueError):
        return "unknown"
