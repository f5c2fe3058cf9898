"""``graphcap export --generate``: a text-generation loop, KV cache included, as one file.

The factory returns a model that follows the step protocol of ``docs/generation.md`` (a
``tracer.models.GPT2LMHeadModel`` or ``T5ForConditionalGeneration``, or any module with
``empty_past`` and ``step``, and ``encode`` for an encoder-decoder model).
:func:`tracer.generation.export.export_generate` traces greedy search (or sampling) into
one ``Loop`` and writes it; ``--verify`` then runs the file on onnxruntime and on
graphcap's interpreter for left-padded prompt batches of two shapes and compares the tokens
with eager decoding.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

import tracer
from export.cli.common import CommandError, UsageError
from export.cli.prepare import call_factory
from runtime import Session
from tracer.generation.export import DecodeSettings, decode, export_generate

_NOT_WITH = ("input", "dynamic", "training", "optimize")


def add_generate_arguments(p: argparse.ArgumentParser) -> None:
    """The ``--generate`` option group of ``graphcap export``."""
    g = p.add_argument_group("text generation (--generate)")
    g.add_argument(
        "--generate",
        action="store_true",
        help="write greedy search or sampling with FACTORY()'s step-protocol model as one file",
    )
    g.add_argument("--do-sample", action="store_true", help="sample instead of greedy search")
    g.add_argument("--temperature", type=float, default=1.0, help="sampling temperature (1)")
    g.add_argument("--top-k", type=int, help="sample among the K most likely tokens")
    g.add_argument("--top-p", type=float, help="sample from the nucleus of probability P")
    g.add_argument(
        "--eos-token-id",
        type=int,
        action="append",
        metavar="ID",
        help="a token that ends a row (repeat for several; default: the model's config)",
    )
    g.add_argument("--pad-token-id", type=int, metavar="ID", help="fills ended rows")
    g.add_argument(
        "--decoder-start-token-id", type=int, metavar="ID", help="encoder-decoder: first token"
    )


def run_generate_export(args: argparse.Namespace, out: Path) -> int:
    """Export the generation loop of the model ``args.model`` makes; ``--verify`` it."""
    given = [f"--{name}" for name in _NOT_WITH if getattr(args, name, None)]
    if given:
        raise UsageError(f"--generate builds its own inputs; drop {', '.join(given)}")
    model = call_factory(args.model, args.seed)
    protocol = [callable(getattr(model, name, None)) for name in ("step", "empty_past")]
    if not all(protocol):
        raise UsageError(
            f"{args.model}() returned a {type(model).__name__} without step() and empty_past(); "
            "--generate needs a model of the step protocol (docs/generation.md)"
        )
    if callable(getattr(model, "eval", None)):
        model.eval()
    try:
        graph = export_generate(
            model,
            out,
            do_sample=args.do_sample,
            temperature=args.temperature,
            top_k=args.top_k,
            top_p=args.top_p,
            eos_token_id=args.eos_token_id,
            pad_token_id=args.pad_token_id,
            decoder_start_token_id=args.decoder_start_token_id,
            opset=args.opset,
        )
    except ValueError as err:
        raise UsageError(str(err)) from err
    from export.cli.export_command import summary  # that module dispatches here

    print(summary(graph, out, args.opset or 20))
    if not args.verify:
        return 0
    return _verify(model, out, graph.meta["generation"], args.seed)


def _verify(model: Any, path: Path, meta: dict[str, Any], seed: int) -> int:
    """Tokens of the file (onnxruntime, interpreter) against eager decoding; 0 when equal."""
    settings = DecodeSettings(
        eos=tuple(meta["eos_token_id"]),
        pad=meta["pad_token_id"],
        do_sample=meta["do_sample"],
        temperature=meta["temperature"],
        top_k=meta["top_k"],
        top_p=meta["top_p"],
        decoder_start_token_id=meta["decoder_start_token_id"],
    )
    vocab = model.config.vocab_size
    rng = np.random.default_rng(seed)
    sessions = {name: Session(str(path), backend=name) for name in ("onnxruntime", "interpreter")}
    print("\nverify: greedy/sampled tokens against eager decoding")
    ok = True
    for batch, length in [(2, 5), (3, 9)]:
        ids = rng.integers(0, vocab, size=(batch, length))
        mask = np.ones_like(ids)
        mask[0, : length // 2] = 0  # a left-padded row
        feeds = {"input_ids": ids, "attention_mask": mask, "max_new_tokens": np.asarray(8)}
        if settings.do_sample:
            feeds["seed"] = np.asarray(seed)
        with tracer.no_grad():
            want = decode(
                model, tracer.tensor(ids), tracer.tensor(mask), tracer.tensor(8),
                tracer.tensor(seed) if settings.do_sample else None, settings,
            ).numpy()  # fmt: skip
        for name, session in sessions.items():
            try:
                got = session.run(feeds)["sequences"]
            except Exception as err:
                raise CommandError(f"running {path} on {name} failed: {err}") from err
            same = got.shape == want.shape and bool((got == want).all())
            ok &= same
            print(f"  {name:<12} batch {batch}, prompt {length}: {'ok' if same else 'MISMATCH'}")
    return 0 if ok else 1
