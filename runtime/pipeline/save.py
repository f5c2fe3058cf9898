"""``save_pipeline``: write a model with its tokenizer, labels and post-processing as a folder.

The folder is built beside its destination under a temporary name, checked by loading it
back with ``Pipeline.load``, and only then moved into place (an existing pipeline folder is
swapped out and removed). ``pipeline.json`` lists the SHA-256 of every other file, so a
reader never takes a half-copied folder for a pipeline. Only fixed names are written
(``pipeline.json``, ``model.onnx`` with ``model.onnx.data`` for weights past 2 GB,
``vocab.txt`` or ``tokenizer.json``).
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import onnx

from export.onnx import files, save
from ir.graph import Graph
from runtime.pipeline.spec import (
    FIELDS,
    WORDPIECE_DEFAULTS,
    PipelineError,
    PipelineSpec,
    PostprocessSpec,
    TokenizerSpec,
    file_sha256,
)
from runtime.text.basic import RegexTokenizer
from runtime.text.vocab import Vocab
from runtime.text.wordpiece import WordPieceTokenizer

MODEL_FILE = "model.onnx"


def save_pipeline(
    folder: str | os.PathLike[str],
    model: Graph | onnx.ModelProto | str | os.PathLike[str],
    *,
    tokenizer: Vocab | WordPieceTokenizer | Any,
    labels: Sequence[str],
    task: str = "text-classification",
    split: str | RegexTokenizer = "basic_english",
    ngrams: int = 1,
    pad_index: int | None = None,
    inputs: Mapping[str, str] | None = None,
    output: str | None = None,
    max_length: int | None = None,
    truncation: bool = True,
    pad_to_multiple_of: int = 1,
    function: str = "softmax",
    top_k: int | None = None,
    aggregation: str = "bio",
    ignore_labels: Sequence[str] = ("O",),
) -> Path:
    """Write a pipeline folder that ``runtime.Pipeline.load`` runs.

    Args:
        folder: the folder to write (its parents are created); an existing pipeline folder
            (or empty folder) there is replaced as a whole, anything else there is an error.
        model: an ``ir.Graph``, an ``onnx.ModelProto``, or the path of an ``.onnx`` file
            (without external data).
        tokenizer: a ``Vocab`` (with ``split``, ``ngrams`` and ``pad_index``; unknown tokens
            map to its default index), a ``WordPieceTokenizer``, a ``tokenizers.Tokenizer``
            or the path of a Hugging Face ``tokenizer.json``.
        labels: the label names, in the model's output order.
        task: ``"text-classification"`` or ``"token-classification"``.
        split: for a ``Vocab``: ``"basic_english"``, ``"whitespace"`` or a ``RegexTokenizer``.
        ngrams: for a ``Vocab``: 2 appends the bigrams (joined by a space) to the words.
        pad_index: the padding id (default: the tokenizer's, or 0 for a ``Vocab``).
        inputs: model input -> ``"input_ids"``, ``"attention_mask"`` or ``"token_type_ids"``;
            by default a lone input takes the ids and, with several, names containing
            ``mask`` / ``type`` take the mask / type ids.
        output: the model output to read (default: its first).
        max_length: the most tokens a text keeps (special tokens included); None: no limit.
        truncation: cut longer texts (True) or refuse them (False).
        pad_to_multiple_of: pad each batch to a multiple of this width.
        function: ``"softmax"``, ``"sigmoid"`` or ``"none"`` over the label scores.
        top_k: how many ranked labels an answer lists (default: all).
        aggregation: token classification: ``"bio"`` groups B-/I- tags into entity spans.
        ignore_labels: token classification: tags that are no entity.

    Returns:
        The folder.

    Raises:
        PipelineError: arguments that do not make a working pipeline (checked by loading
            it before anything is replaced), or a destination that is not a pipeline folder.
    """
    dest = Path(folder)
    _check_destination(dest)
    tmp = dest.with_name(f".{dest.name}.tmp-{secrets.token_hex(4)}")
    tmp.mkdir(parents=False)
    try:
        _write_model(model, tmp / MODEL_FILE)
        tok_spec = _write_tokenizer(tokenizer, tmp, split, ngrams, pad_index)
        names = [i.name for i in _model_inputs(tmp / MODEL_FILE)]
        post = PostprocessSpec(function, top_k, aggregation, tuple(ignore_labels))
        spec = PipelineSpec(
            task=task,
            model=MODEL_FILE,
            tokenizer=tok_spec,
            inputs=dict(inputs) if inputs is not None else _guess_inputs(names),
            labels=tuple(labels),
            output=output,
            max_length=max_length,
            truncation=truncation,
            pad_to_multiple_of=pad_to_multiple_of,
            postprocess=post,
            files={p.name: file_sha256(p) for p in sorted(tmp.iterdir())},
        )
        text = json.dumps(spec.to_json(), indent=2, ensure_ascii=False) + "\n"
        spec = PipelineSpec.from_json(json.loads(text))  # the arguments' checks, by name
        (tmp / "pipeline.json").write_text(text, encoding="utf-8")
        for path in tmp.iterdir():  # flushed before the folder moves into place
            files.sync(path)
        from runtime.pipeline.core import Pipeline

        Pipeline.load(tmp)  # a pipeline that does not load is never moved into place
        files.commit_folder(tmp, dest)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _check_destination(dest: Path) -> None:
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise PipelineError(f"cannot write {dest}: {err}") from None
    if dest.exists() and not (dest.is_dir() and _replaceable(dest)):
        raise PipelineError(
            f"{dest} exists and is not a pipeline folder (no pipeline.json); "
            "choose a new folder or remove it"
        )


def _replaceable(folder: Path) -> bool:
    return (folder / "pipeline.json").is_file() or not any(folder.iterdir())


def _write_model(model: Any, path: Path) -> None:
    if isinstance(model, Graph):
        save(model, path)
        return
    if isinstance(model, onnx.ModelProto):
        path.write_bytes(model.SerializeToString())
        return
    if not isinstance(model, str | os.PathLike):
        raise PipelineError(
            f"model: expected an ir.Graph, an onnx.ModelProto or an .onnx path, "
            f"not {type(model).__name__}"
        )
    source = Path(model)
    try:
        proto = onnx.load(str(source), load_external_data=False)
    except Exception as err:
        raise PipelineError(f"model: cannot read {source} as ONNX: {err}") from None
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in proto.graph.initializer):
        raise PipelineError(
            f"model: {source} keeps weights in external data; pass the ir.Graph "
            "(export.load(path)) so that the pipeline writes its own"
        )
    shutil.copyfile(source, path)


def _model_inputs(path: Path) -> list[Any]:
    proto = onnx.load(str(path), load_external_data=False)
    inits = {t.name for t in proto.graph.initializer}
    return [i for i in proto.graph.input if i.name not in inits]


def _guess_inputs(names: Sequence[str]) -> dict[str, str]:
    if len(names) == 1:
        return {names[0]: "input_ids"}
    guessed = {}
    for name in names:
        low = name.lower()
        guessed[name] = (
            "attention_mask"
            if "mask" in low
            else "token_type_ids"
            if "type" in low
            else "input_ids"
        )
    if sorted(guessed.values()).count("input_ids") != 1:
        raise PipelineError(
            f"inputs: cannot tell which of the model's inputs {list(names)} takes what; pass "
            f"inputs={{name: one of {list(FIELDS)}}}"
        )
    return guessed


def _write_tokenizer(
    tokenizer: Any, folder: Path, split: str | RegexTokenizer, ngrams: int, pad: int | None
) -> TokenizerSpec:
    if isinstance(tokenizer, Vocab):
        _write_lines(folder / "vocab.txt", tokenizer.get_itos())
        return TokenizerSpec(
            "vocab",
            "vocab.txt",
            split=_split_spec(split),
            ngrams=ngrams,
            unk_index=tokenizer.get_default_index(),
            pad_index=0 if pad is None else pad,
        )
    if isinstance(tokenizer, WordPieceTokenizer):
        by_id = sorted(tokenizer.vocab.items(), key=lambda kv: kv[1])
        if [i for _, i in by_id] != list(range(len(by_id))):
            raise PipelineError("tokenizer: the WordPiece vocabulary's ids are not 0..n-1")
        _write_lines(folder / "vocab.txt", [t for t, _ in by_id])
        options = {k: getattr(tokenizer, k, d) for k, d in WORDPIECE_DEFAULTS.items()}
        return TokenizerSpec("wordpiece", "vocab.txt", options=options)
    if isinstance(tokenizer, str | os.PathLike):
        text = Path(tokenizer).read_text(encoding="utf-8")
    elif hasattr(tokenizer, "to_str"):
        text = tokenizer.to_str()
    else:
        raise PipelineError(
            "tokenizer: expected a Vocab, a WordPieceTokenizer, a tokenizers.Tokenizer or the "
            f"path of a tokenizer.json, not {type(tokenizer).__name__}"
        )
    (folder / "tokenizer.json").write_text(text, encoding="utf-8")
    return TokenizerSpec("tokenizers", "tokenizer.json", pad_index=pad)


def _split_spec(split: str | RegexTokenizer) -> dict[str, Any]:
    if isinstance(split, RegexTokenizer):
        return {"type": "regex", **split.config()}
    if split in ("basic_english", "whitespace"):
        return {"type": split}
    raise PipelineError(
        f"split: expected 'basic_english', 'whitespace' or a RegexTokenizer, got {split!r}"
    )


def _write_lines(path: Path, tokens: Sequence[str]) -> None:
    bad = [t for t in tokens if "\n" in t or "\r" in t]
    if bad:
        raise PipelineError(f"tokenizer: token {bad[0]!r} contains a line break")
    path.write_text("".join(t + "\n" for t in tokens), encoding="utf-8")
