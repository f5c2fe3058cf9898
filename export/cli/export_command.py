"""``graphcap export``: trace the prepared model, write an ONNX file, summarise, verify.

:func:`run_export` is the command: :mod:`export.cli.prepare` imports and traces the model,
:mod:`export.onnx` writes it (or :mod:`export.cli.training_command` writes a training bundle),
and ``--verify`` runs :func:`export.cli.verify.verify` on the result.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import ir
from export.cli.common import CommandError, UsageError, human_bytes
from export.cli.generate_command import run_generate_export
from export.cli.prepare import prepare
from export.cli.training_command import check_training_options, export_training
from export.cli.verify import verify
from export.onnx import writer
from ir.graph import Graph


def run_export(args: argparse.Namespace) -> int:
    """``graphcap export``: trace, optionally optimize, save, summarise, optionally verify.

    With ``--training``, the saved thing is a training bundle (see :func:`export_training`)
    and ``--verify`` checks its ``inference.onnx``.
    """
    out = Path(args.output)
    if not out.parent.is_dir():
        raise UsageError(f"-o {args.output}: folder {str(out.parent)!r} does not exist")
    if args.opset is not None and not writer.MIN_OPSET <= args.opset <= writer.DEFAULT_OPSET:
        raise UsageError(
            f"--opset {args.opset}: graphcap writes opsets {writer.MIN_OPSET}.."
            f"{writer.DEFAULT_OPSET}"
        )
    if getattr(args, "generate", False):
        return run_generate_export(args, out)
    check_training_options(args)
    prepared = prepare(args.model, args.input or (), args.dynamic or (), args.seed)
    if getattr(args, "training", False):
        out = export_training(args, prepared, out)
    else:
        graph = prepared.trace()
        if args.optimize:
            graph = ir.optimize(graph, args.optimize)
        try:
            writer.save(graph, out, opset=args.opset)
        except Exception as err:
            raise CommandError(f"writing {out} failed: {err}") from err
        print(summary(graph, out, args.opset or writer.DEFAULT_OPSET))
    if not args.verify:
        return 0
    report = verify(out, prepared, atol=args.atol, rtol=args.rtol, seed=args.seed)
    print()
    print(report.text())
    return 0 if report.ok else 1


def summary(graph: Graph, path: Path, opset: int) -> str:
    """A few lines on the exported model: signature, size, parameters, baked decisions."""
    params = sum(v.const.size for v in graph.initializers.values() if v.const is not None)
    nbytes = sum(v.const.nbytes for v in graph.initializers.values() if v.const is not None)
    files = [path, *writer.data_files(path)]
    size = sum(f.stat().st_size for f in files if f.exists())
    baked = graph.meta.get("baked", [])
    lines = [f"wrote {path} ({human_bytes(size)}, opset {opset})"]
    lines += [f"  input   {v.name}: {v.type}" for v in graph.inputs]
    lines += [f"  output  {v.name}: {v.type}" for v in graph.outputs]
    lines.append(f"  nodes   {len(graph.nodes)}")
    lines.append(
        f"  params  {params:,} in {len(graph.initializers)} initializers ({human_bytes(nbytes)})"
    )
    hint = " (graphcap inspect lists them)" if baked else ""
    lines.append(f"  baked   {len(baked)} Python decision(s){hint}")
    return "\n".join(lines)
