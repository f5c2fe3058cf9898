"""``graphcap pipeline MODEL.onnx -o FOLDER ...``: bundle a model with its tokenizer and labels.

The command-line face of ``runtime.save_pipeline``: the tokenizer is a vocabulary file (one
token a line, as ``Vocab.save`` writes it) with a word splitter, BERT's ``vocab.txt``, or a
Hugging Face ``tokenizer.json``. The folder it writes is what ``runtime.Pipeline.load`` and
``graphcap serve`` read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from export.serve.cli import USAGE
from runtime import PipelineError, save_pipeline
from runtime.text import RegexTokenizer, Vocab, WordPieceTokenizer

_EPILOG = """\
examples:
  graphcap pipeline runs/demo.onnx -o runs/demo --vocab vocab.txt --split basic_english \\
      --labels rotten,fresh --max-length 128
  graphcap pipeline bert.onnx -o clf --tokenizer-json tokenizer.json --labels neg,pos \\
      --input input_ids=input_ids --input attention_mask=attention_mask
  graphcap pipeline tagger.onnx -o ner --wordpiece vocab.txt --task token-classification \\
      --labels O,B-PER,I-PER,B-LOC,I-LOC

--split is basic_english (TorchText's), whitespace, or regex:PATTERN (each match a token,
after lowercasing). The folder is written under a temporary name, loaded once as a check,
then moved into place; an existing pipeline folder there is replaced.
"""


def add_pipeline_parser(sub: Any) -> None:
    """Add ``pipeline`` to the ``graphcap`` command's subparsers."""
    p = sub.add_parser(
        "pipeline",
        help="bundle an .onnx model with its tokenizer, labels and post-processing",
        description="Write a pipeline folder (model, tokenizer, labels, post-processing) "
        "that runtime.Pipeline runs and graphcap serve serves.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("model", metavar="MODEL.onnx")
    p.add_argument("-o", "--output", required=True, metavar="FOLDER", help="folder to write")
    p.add_argument("--labels", required=True, help="label names in output order, comma-separated")
    p.add_argument(
        "--task",
        choices=("text-classification", "token-classification"),
        default="text-classification",
    )
    tok = p.add_mutually_exclusive_group(required=True)
    tok.add_argument("--vocab", metavar="FILE", help="a Vocab file, one token a line")
    tok.add_argument("--wordpiece", metavar="FILE", help="BERT's vocab.txt")
    tok.add_argument("--tokenizer-json", metavar="FILE", help="a Hugging Face tokenizer.json")
    p.add_argument("--split", default="basic_english", help="--vocab: the word splitter")
    p.add_argument("--ngrams", type=int, default=1, help="--vocab: 2 adds bigrams (1)")
    p.add_argument("--unk-index", type=int, help="--vocab: id of unknown tokens")
    p.add_argument("--pad-index", type=int, help="the padding id")
    p.add_argument("--cased", action="store_true", help="--wordpiece: keep case and accents")
    p.add_argument(
        "--input",
        action="append",
        default=[],
        metavar="NAME=FIELD",
        help="model input NAME takes FIELD: input_ids, attention_mask or token_type_ids",
    )
    p.add_argument("--output-name", help="the model output to read (default: the first)")
    p.add_argument("--max-length", type=int, help="most tokens per text")
    p.add_argument("--no-truncation", action="store_true", help="refuse longer texts")
    p.add_argument("--pad-to-multiple-of", type=int, default=1)
    p.add_argument("--function", choices=("softmax", "sigmoid", "none"), default="softmax")
    p.add_argument("--top-k", type=int, help="ranked labels per answer (default: all)")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.set_defaults(handler=run_pipeline)


def _fail(message: str, status: int) -> int:
    print(f"graphcap pipeline: error: {message}", file=sys.stderr)
    return status


def run_pipeline(args: argparse.Namespace) -> int:
    """Write the pipeline folder; returns the exit status."""
    if not Path(args.model).is_file():
        return _fail(f"no such file: {args.model!r}", USAGE)
    inputs = {}
    for spec in args.input:
        name, sep, field = spec.partition("=")
        if not sep or not name:
            return _fail(f"--input {spec!r}: expected NAME=FIELD", USAGE)
        inputs[name] = field
    try:
        tokenizer: Any
        split: Any = args.split
        if args.vocab:
            tokenizer = Vocab.load(args.vocab)
            if args.unk_index is not None:
                tokenizer.set_default_index(args.unk_index)
            if split.startswith("regex:"):
                split = RegexTokenizer(split.removeprefix("regex:"))
        elif args.wordpiece:
            tokenizer = WordPieceTokenizer(args.wordpiece, do_lower_case=not args.cased)
        else:
            tokenizer = Path(args.tokenizer_json)
        folder = save_pipeline(
            args.output,
            args.model,
            tokenizer=tokenizer,
            labels=[x.strip() for x in args.labels.split(",")],
            task=args.task,
            split=split,
            ngrams=args.ngrams,
            pad_index=args.pad_index,
            inputs=inputs or None,
            output=args.output_name,
            max_length=args.max_length,
            truncation=not args.no_truncation,
            pad_to_multiple_of=args.pad_to_multiple_of,
            function=args.function,
            top_k=args.top_k,
        )
    except (PipelineError, ValueError, OSError, IndexError) as err:
        if args.debug:
            raise
        return _fail(str(err), USAGE)
    print(f"wrote {folder}/: serve it with  graphcap serve {folder}")
    return 0
