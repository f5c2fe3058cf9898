"""``pipeline.json``: what turns texts into a model's feeds and its outputs into answers.

A pipeline folder holds ``pipeline.json``, the model (``model.onnx``) and the tokenizer's
file (``vocab.txt`` or ``tokenizer.json``). The JSON object has these fields (``?``: may be
left out, with the default shown):

- ``format``: ``"graphcap.pipeline"``; ``version``: ``1``;
- ``task``: ``"text-classification"`` or ``"token-classification"``;
- ``model``: the model's file name in the folder;
- ``tokenizer``: an object with ``type`` and ``file``:

  - ``"vocab"``: a ``Vocab`` saved one token a line; ``split`` (``{"type":
    "basic_english"}``, ``{"type": "whitespace"}`` or ``{"type": "regex", "pattern": ...,
    "lowercase"?: true, "replace"?: {}}``), ``ngrams``? (1; 2 adds bigrams), ``unk_index``?
    (null: unknown tokens are an error), ``pad_index``? (0). A text without tokens is one
    ``unk_index`` (or ``pad_index``).
  - ``"wordpiece"``: BERT's ``vocab.txt``; ``do_lower_case``? (true), ``strip_accents``?
    (null), ``tokenize_chinese_chars``? (true), ``unk_token``, ``cls_token``,
    ``sep_token``, ``pad_token``? (``[UNK]`` ``[CLS]`` ``[SEP]`` ``[PAD]``).
  - ``"tokenizers"``: a Hugging Face ``tokenizer.json`` (run by the ``tokenizers`` package,
    or by graphcap's WordPiece when it describes BERT's); ``pad_index``? (its padding id,
    else 0).

- ``inputs``: model input name -> ``"input_ids"``, ``"attention_mask"`` or
  ``"token_type_ids"``, one entry per model input;
- ``output``? (null: the model's first output): the output the answer is read from:
  ``(batch, labels)`` logits for text classification, ``(batch, seq, labels)`` for tokens;
- ``labels``: the label names, in output order;
- ``max_length``? (null: no limit), ``truncation``? (true: longer texts are cut; false: they
  are refused), ``pad_to_multiple_of``? (1);
- ``postprocess``?: ``function`` (``"softmax"``, ``"sigmoid"`` or ``"none"``), ``top_k``?
  (null: every label), and for tokens ``aggregation`` (``"bio"``: B-/I- tags grouped into
  entity spans; ``"none"``) and ``ignore_labels``? (``["O"]``);
- ``files``?: file name -> SHA-256 (hex) of each file the pipeline reads; loading checks
  them, so a folder caught half-replaced is refused, never half-loaded.

Every field is checked when the file is read; a wrong one raises :class:`PipelineError`
naming it (``pipeline.json: tokenizer.ngrams: expected an integer >= 1, got "2"``).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ir.errors import GraphcapError

FORMAT = "graphcap.pipeline"
VERSION = 1
TASKS = ("text-classification", "token-classification")
FIELDS = ("input_ids", "attention_mask", "token_type_ids")
FUNCTIONS = ("softmax", "sigmoid", "none")
SPLITS = ("basic_english", "whitespace", "regex")
TOKENIZERS = ("vocab", "wordpiece", "tokenizers")
WORDPIECE_DEFAULTS: dict[str, Any] = {
    "do_lower_case": True,
    "strip_accents": None,
    "tokenize_chinese_chars": True,
    "unk_token": "[UNK]",
    "cls_token": "[CLS]",
    "sep_token": "[SEP]",
    "pad_token": "[PAD]",
}
_FILE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")


class PipelineError(GraphcapError, ValueError):
    """A pipeline folder that cannot be read or written: the message names the field or file."""


class PipelineInputError(GraphcapError, ValueError):
    """A text the pipeline cannot take (too long with truncation off, not a string)."""


@dataclass(frozen=True)
class TokenizerSpec:
    """The tokenizer of a pipeline (see the module docstring for the fields)."""

    type: str
    file: str
    split: Mapping[str, Any] | None = None
    ngrams: int = 1
    unk_index: int | None = None
    pad_index: int | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this spec."""
        out: dict[str, Any] = {"type": self.type, "file": self.file}
        if self.type == "vocab":
            out |= {"split": dict(self.split or {}), "ngrams": self.ngrams}
            out |= {"unk_index": self.unk_index, "pad_index": self.pad_index or 0}
        elif self.type == "wordpiece":
            out |= dict(self.options)
        elif self.pad_index is not None:
            out["pad_index"] = self.pad_index
        return out


@dataclass(frozen=True)
class PostprocessSpec:
    """How outputs become answers: score function, top-k, entity aggregation."""

    function: str = "softmax"
    top_k: int | None = None
    aggregation: str = "bio"
    ignore_labels: tuple[str, ...] = ("O",)


@dataclass(frozen=True)
class PipelineSpec:
    """A parsed ``pipeline.json`` (see the module docstring for the fields)."""

    task: str
    model: str
    tokenizer: TokenizerSpec
    inputs: Mapping[str, str]
    labels: tuple[str, ...]
    output: str | None = None
    max_length: int | None = None
    truncation: bool = True
    pad_to_multiple_of: int = 1
    postprocess: PostprocessSpec = PostprocessSpec()
    files: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any, where: str = "pipeline.json") -> PipelineSpec:
        """Parse and check the JSON object of a ``pipeline.json``.

        Raises:
            PipelineError: a missing, unknown or ill-typed field; the message names it.
        """
        r = _Fields(data, where, "")
        fmt = r.text("format")
        if fmt != FORMAT:
            raise r.error("format", f"expected {FORMAT!r}", fmt)
        version = r.integer("version", minimum=1)
        if version != VERSION:
            raise r.error("version", f"{VERSION} (the version this graphcap reads)", version)
        task = r.choice("task", TASKS)
        spec = cls(
            task=task,
            model=r.file_name("model"),
            tokenizer=_tokenizer(r.sub("tokenizer")),
            inputs=_inputs(r),
            labels=_labels(r),
            output=r.text("output", None),
            max_length=r.integer("max_length", None, minimum=1),
            truncation=r.flag("truncation", True),
            pad_to_multiple_of=r.integer("pad_to_multiple_of", 1, minimum=1),
            postprocess=_postprocess(r.sub("postprocess", {}), task),
            files=_files(r),
        )
        r.done()
        return spec

    def to_json(self) -> dict[str, Any]:
        """The JSON object of this spec (what ``from_json`` reads back)."""
        post: dict[str, Any] = {"function": self.postprocess.function}
        if self.task == "text-classification":
            post["top_k"] = self.postprocess.top_k
        else:
            post["aggregation"] = self.postprocess.aggregation
            post["ignore_labels"] = list(self.postprocess.ignore_labels)
        return {
            "format": FORMAT,
            "version": VERSION,
            "task": self.task,
            "model": self.model,
            "tokenizer": self.tokenizer.to_json(),
            "inputs": dict(self.inputs),
            "output": self.output,
            "labels": list(self.labels),
            "max_length": self.max_length,
            "truncation": self.truncation,
            "pad_to_multiple_of": self.pad_to_multiple_of,
            "postprocess": post,
            "files": dict(self.files),
        }


def _tokenizer(r: _Fields) -> TokenizerSpec:
    kind = r.choice("type", TOKENIZERS)
    file = r.file_name("file")
    if kind == "vocab":
        split = _split(r.sub("split"))
        spec = TokenizerSpec(
            kind,
            file,
            split=split,
            ngrams=r.integer("ngrams", 1, minimum=1),
            unk_index=r.integer("unk_index", None, minimum=0),
            pad_index=r.integer("pad_index", 0, minimum=0),
        )
    elif kind == "wordpiece":
        options = {
            k: (r.flag(k, d) if isinstance(d, bool) else r.text(k, d))
            for k, d in WORDPIECE_DEFAULTS.items()
            if k != "strip_accents"
        }
        options["strip_accents"] = r.flag("strip_accents", None)
        spec = TokenizerSpec(kind, file, options=options)
    else:
        spec = TokenizerSpec(kind, file, pad_index=r.integer("pad_index", None, minimum=0))
    r.done()
    return spec


def _split(r: _Fields) -> dict[str, Any]:
    kind = r.choice("type", SPLITS)
    out: dict[str, Any] = {"type": kind}
    if kind == "regex":
        pattern = r.text("pattern")
        try:
            re.compile(pattern)
        except re.error as err:
            raise r.error("pattern", f"a valid regular expression ({err})", pattern) from None
        replace = r.mapping("replace", {})
        for key, value in replace.items():
            if len(key) != 1 or not isinstance(value, str):
                raise r.error(f"replace.{key}", "a one-character key with a string value", value)
        out |= {"pattern": pattern, "lowercase": r.flag("lowercase", True), "replace": replace}
    r.done()
    return out


def _inputs(r: _Fields) -> dict[str, str]:
    inputs = r.mapping("inputs")
    if not inputs:
        raise r.error("inputs", "at least one model input", inputs)
    for name, kind in inputs.items():
        if kind not in FIELDS:
            raise r.error(f"inputs.{name}", f"one of {list(FIELDS)}", kind)
    return inputs


def _labels(r: _Fields) -> tuple[str, ...]:
    labels = r.value("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) for x in labels):
        raise r.error("labels", "a non-empty list of strings", labels)
    if len(set(labels)) != len(labels):
        raise r.error("labels", "distinct names", labels)
    return tuple(labels)


def _postprocess(r: _Fields, task: str) -> PostprocessSpec:
    function = r.choice("function", FUNCTIONS, "softmax")
    if task == "text-classification":
        spec = PostprocessSpec(function, top_k=r.integer("top_k", None, minimum=1))
    else:
        ignore = r.value("ignore_labels", ["O"])
        if not isinstance(ignore, list) or not all(isinstance(x, str) for x in ignore):
            raise r.error("ignore_labels", "a list of label names", ignore)
        spec = PostprocessSpec(
            function,
            aggregation=r.choice("aggregation", ("bio", "none"), "bio"),
            ignore_labels=tuple(ignore),
        )
    r.done()
    return spec


def _files(r: _Fields) -> dict[str, str]:
    files = r.mapping("files", {})
    for name, digest in files.items():
        if not _FILE_NAME.fullmatch(name):
            raise r.error(f"files.{name}", "a plain file name in the pipeline folder", name)
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise r.error(f"files.{name}", "a SHA-256 digest (64 lowercase hex digits)", digest)
    return files


_MISSING = object()


class _Fields:
    """Typed reads of one JSON object's fields, with errors naming the field's path."""

    def __init__(self, data: Any, where: str, prefix: str) -> None:
        self.where, self.prefix = where, prefix
        if not isinstance(data, dict):
            label = prefix.rstrip(".") or "the top level"
            raise PipelineError(f"{where}: {label}: expected a JSON object, got {_show(data)}")
        self.data: dict[str, Any] = data
        self.seen: set[str] = set()

    def error(self, key: str, expected: str, got: Any) -> PipelineError:
        return PipelineError(
            f"{self.where}: {self.prefix}{key}: expected {expected}, got {_show(got)}"
        )

    def value(self, key: str, default: Any = _MISSING) -> Any:
        self.seen.add(key)
        if key in self.data:
            return self.data[key]
        if default is _MISSING:
            raise PipelineError(f"{self.where}: {self.prefix}{key}: missing (a required field)")
        return default

    def text(self, key: str, default: Any = _MISSING) -> Any:
        value = self.value(key, default)
        if not isinstance(value, str) and not (value is None and default is None):
            raise self.error(key, "a string", value)
        return value

    def flag(self, key: str, default: Any = _MISSING) -> Any:
        value = self.value(key, default)
        if not isinstance(value, bool) and not (value is None and default is None):
            raise self.error(key, "true or false", value)
        return value

    def integer(self, key: str, default: Any = _MISSING, minimum: int = 0) -> Any:
        value = self.value(key, default)
        if value is None and default is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise self.error(key, f"an integer >= {minimum}", value)
        return value

    def choice(self, key: str, choices: tuple[str, ...], default: Any = _MISSING) -> Any:
        value = self.value(key, default)
        if value not in choices:
            raise self.error(key, f"one of {list(choices)}", value)
        return value

    def file_name(self, key: str) -> Any:
        value = self.text(key)
        if not _FILE_NAME.fullmatch(value):
            raise self.error(key, "a plain file name in the pipeline folder (no folders)", value)
        return value

    def mapping(self, key: str, default: Any = _MISSING) -> dict[str, Any]:
        value = self.value(key, default)
        if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
            raise self.error(key, "an object of strings", value)
        return dict(value)

    def sub(self, key: str, default: Any = _MISSING) -> _Fields:
        return _Fields(self.value(key, default), self.where, f"{self.prefix}{key}.")

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.seen)
        if unknown:
            fields = ", ".join(self.prefix + k for k in unknown)
            raise PipelineError(f"{self.where}: unknown field {fields} (misspelt?)")


def _show(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= 60 else text[:57] + "..."


def file_sha256(path: Path) -> str:
    """The SHA-256 of a file, read in 1 MiB blocks (what ``files`` lists for each file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
