"""The models a server serves, found under one path, and their reloading while serving.

``PATH`` is an ``.onnx`` file, a pipeline folder (it holds ``pipeline.json``), or a folder
whose ``.onnx`` files and pipeline folders are each served, named after the file (without
``.onnx``) or folder.

Reloading: every ``interval`` seconds each model's files are looked at (names, sizes,
modification times, inodes). A change that stays the same for one more interval is loaded
in the background; only a model that loads completely replaces the served one (requests
already parsed finish on the version that parsed them). A version that fails to load, such
as a pipeline folder caught half-copied (its files do not match the SHA-256 in its
``pipeline.json``), is refused, and the previous version keeps serving. A model whose files
disappear keeps serving what was loaded.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from export.serve.batcher import Batcher
from export.serve.metrics import Metrics
from export.serve.models import OnnxModel, PipelineModel, model_name
from export.serve.tensors import RequestError
from runtime.pipeline import Pipeline
from runtime.session import Session

log = logging.getLogger("graphcap.serve")
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
Signature = tuple[Any, ...] | None


@dataclass(frozen=True)
class LoadOptions:
    """How models are opened: ``runtime.Session``'s device, threads and spinning."""

    device: str = "cpu"
    threads: int | None = None
    spinning: bool = False


@dataclass
class Entry:
    """One served name: its path, the loaded version, its batcher."""

    name: str
    path: Path
    model: Any
    signature: Signature
    batcher: Batcher | None = None
    pending: Signature = None
    notes: list[str] = field(default_factory=list)


class ModelLoadError(Exception):
    """A model that cannot be loaded; the message names the path and why."""


def find_models(path: Path) -> list[Path]:
    """The model files and pipeline folders ``path`` holds (or is).

    Raises:
        ModelLoadError: ``path`` does not exist, holds no model, or two models share a name.
    """
    if not path.exists():
        raise ModelLoadError(f"{path} does not exist")
    if path.is_file() or (path / "pipeline.json").is_file():
        return [path]
    found = sorted(
        p
        for p in path.iterdir()
        if (p.is_file() and p.suffix == ".onnx") or (p.is_dir() and (p / "pipeline.json").is_file())
    )
    if not found:
        raise ModelLoadError(
            f"{path} holds no model: expected .onnx files or pipeline folders (with pipeline.json)"
        )
    names: dict[str, Path] = {}
    for p in found:
        other = names.setdefault(model_name(p), p)
        if other != p:
            raise ModelLoadError(f"{other} and {p} would both be served as {model_name(p)!r}")
    return found


def load_model(path: Path, options: LoadOptions) -> tuple[Any, list[str]]:
    """Open one model; returns it and the warnings its loading gave (e.g. a CPU fallback).

    Raises:
        ModelLoadError: the file or folder cannot be served.
    """
    name = model_name(path)
    if not _NAME.fullmatch(name):
        raise ModelLoadError(f"{path}: {name!r} is not a usable model name (letters, digits, _.-)")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            if path.is_dir():
                pipe = Pipeline.load(path, **_session_options(options))
                model: Any = PipelineModel(name, pipe)
            else:
                if path.suffix != ".onnx":
                    raise ModelLoadError(f"{path}: expected an .onnx file or a pipeline folder")
                data = path.read_bytes()
                session = Session(path, **_session_options(options))
                model = OnnxModel(name, session, hashlib.sha256(data).hexdigest()[:12])
        except ModelLoadError:
            raise
        except Exception as err:
            raise ModelLoadError(f"{path}: {err}") from err
    notes = list(dict.fromkeys(str(w.message) for w in caught))
    return model, notes


def _session_options(options: LoadOptions) -> dict[str, Any]:
    return {
        "device": options.device,
        "intra_op_threads": options.threads,
        "spinning": options.spinning,
    }


def signature(path: Path) -> Signature:
    """What changes when a model's files change (None when they cannot be read)."""
    try:
        if path.is_file():
            st = path.stat()
            return (st.st_ino, st.st_size, st.st_mtime_ns)
        st = path.stat()
        files = sorted(
            (p.name, s.st_ino, s.st_size, s.st_mtime_ns) for p in path.iterdir() for s in [p.stat()]
        )
        return (st.st_ino, *files)
    except OSError:
        return None


class Repository:
    """The served models by name."""

    def __init__(self, entries: list[Entry], options: LoadOptions, metrics: Metrics) -> None:
        self.entries = {e.name: e for e in entries}
        self.options, self.metrics = options, metrics

    @classmethod
    def open(cls, path: Path, options: LoadOptions, metrics: Metrics) -> Repository:
        """Load every model under ``path`` (see the module docstring).

        Raises:
            ModelLoadError: a model that cannot be loaded (startup refuses to serve a part).
        """
        entries = []
        for p in find_models(path):
            sig = signature(p)
            model, notes = load_model(p, options)
            entries.append(Entry(model.name, p, model, sig, notes=notes))
        return cls(entries, options, metrics)

    def get(self, name: str) -> Entry:
        """The entry named ``name``.

        Raises:
            RequestError: 404, naming the models there are.
        """
        entry = self.entries.get(name)
        if entry is None:
            raise RequestError(f"no model named {name!r}; models: {sorted(self.entries)}", 404)
        return entry

    async def watch(self, interval: float) -> None:
        """Poll for changed models forever, loading or refusing each (see the module)."""
        while True:
            await asyncio.sleep(interval)
            for entry in list(self.entries.values()):
                await self._poll(entry)

    async def _poll(self, entry: Entry) -> None:
        sig = signature(entry.path)
        if sig == entry.signature or sig is None:
            entry.pending = None
            return
        if sig != entry.pending:
            entry.pending = sig  # changed: wait one more interval for it to settle
            return
        entry.pending = None
        try:
            model, notes = await asyncio.to_thread(load_model, entry.path, self.options)
        except ModelLoadError as err:
            entry.signature = sig  # not retried until the files change again
            self.metrics.reloads.add(self.metrics.lock, (entry.name, "refused"))
            log.warning(
                "model %s: a new version was refused, still serving %s: %s",
                entry.name,
                entry.model.version,
                err,
            )
            return
        if signature(entry.path) != sig:
            return  # changed while loading: the next polls see it again
        old = entry.model.version
        if model.version == old:  # touched, not changed: keep the loaded one
            entry.signature = sig
            return
        entry.model, entry.signature, entry.notes = model, sig, notes
        self.metrics.reloads.add(self.metrics.lock, (entry.name, "loaded"))
        log.info("model %s: reloaded, version %s -> %s", entry.name, old, model.version)
