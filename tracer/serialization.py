"""``save`` / ``load``: checkpoints as safetensors plus a JSON sidecar; nothing is unpickled.

``save(obj, path)`` writes the tensors of ``obj`` (a state dict, an optimizer state dict, or
any nest of dicts, lists and tuples of tensors and JSON values) to ``path`` in the
safetensors format, and the rest of the structure to ``<path>.json``. Tensors are stored
under their dotted key path (``"encoder.weight"``, ``"state.0.exp_avg"``), so a plain state
dict is an ordinary safetensors file that PyTorch and Hugging Face load by name, and
``load`` reads safetensors files they wrote.

Both files are written atomically (a temporary file in the same folder, fsync, then
``os.replace``), and both carry the same random checkpoint id: a save interrupted between
the two replacements leaves files whose ids differ, which ``load`` refuses instead of
mixing two checkpoints.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import uuid
from collections.abc import Callable, Mapping
from typing import Any, BinaryIO

import numpy as np
import safetensors
import safetensors.numpy

from ir.errors import GraphcapError
from tracer._checkpoint_stream import (
    decode_with_metadata,
    load_stream,
    refuse_foreign,
    save_stream,
)
from tracer._device import check_device, device
from tracer.tensor import Tensor, tensor

_FORMAT = "graphcap-checkpoint"
_VERSION = 1
_ID_KEY = "graphcap.checkpoint_id"
_LAYOUT_KEY = "graphcap.layout"  # "flat": a name -> tensor dict, complete without the sidecar
_TAGS = ("__tensor__", "__tuple__", "__dict__")


class CheckpointError(GraphcapError, ValueError):
    """A checkpoint file is missing, malformed, or does not belong with its sidecar."""


def save(obj: Any, path: str | os.PathLike[str] | BinaryIO) -> None:
    """Write ``obj`` to ``path`` (tensors, safetensors) and ``<path>.json`` (the rest).

    Args:
        obj: tensors, None, bools, ints, floats and strings, nested in dicts (keys: str,
            int, float, bool or None), lists and tuples: a state dict, an optimizer's, or
            a dict of several. Not a module: save ``model.state_dict()``.
        path: the tensors file; the sidecar goes next to it with ``.json`` appended. Or a
            binary file object, which gets one safetensors stream holding both.

    Raises:
        TypeError: ``obj`` holds a value of another type (the message names where).
    """
    if hasattr(path, "write"):  # a binary file object: one stream (tracer._checkpoint_stream)
        return save_stream(obj, path)  # type: ignore[arg-type]
    path = os.fspath(path)
    tensors, tree, flat = encode(obj)
    checkpoint_id = uuid.uuid4().hex
    metadata = {"format": "pt", _ID_KEY: checkpoint_id, _LAYOUT_KEY: "flat" if flat else "tree"}
    sidecar = {
        "format": _FORMAT,
        "version": _VERSION,
        "checkpoint_id": checkpoint_id,
        "tensors_file": os.path.basename(path),
        "object": tree,
    }
    text = json.dumps(sidecar, indent=1)
    # Tensors first, sidecar last: until the sidecar is replaced, the ids disagree.
    _atomic_write(path, lambda tmp: safetensors.numpy.save_file(tensors, tmp, metadata))
    _atomic_write(path + ".json", lambda tmp: _write_text(tmp, text))


def load(path: str | os.PathLike[str] | BinaryIO, map_location: Any = None, **kwargs: Any) -> Any:
    """Read a checkpoint written by :func:`save`, or any safetensors file.

    Args:
        path: the tensors file. Its sidecar ``<path>.json`` gives the structure; without
            one (a safetensors file from PyTorch or Hugging Face, or a flat state dict
            saved by :func:`save`) the result is a dict of name -> tensor.
            Or a binary file object holding a checkpoint saved to one.
        map_location: accepted for PyTorch compatibility; tensors always load on the CPU,
            and a CUDA location raises ``DeviceError``.
        **kwargs: PyTorch's ``weights_only`` and the like, accepted: nothing is unpickled.

    Returns:
        The saved structure with every tensor a ``tracer.Tensor``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: a file is malformed, the sidecar is missing where the structure
            needs it, the two files come from different saves, or the file is a pickle or
            a PyTorch zip checkpoint (the message says how to convert it).
    """
    if isinstance(map_location, str | device):
        check_device(map_location, "load(map_location=...)")
    if hasattr(path, "read"):  # a binary file object (tracer._checkpoint_stream)
        return load_stream(path, repr(getattr(path, "name", "the file object")))  # type: ignore[arg-type]
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r}")
    metadata, arrays = _read_tensors(path)
    sidecar_path = path + ".json"
    if not os.path.exists(sidecar_path) and "graphcap.object" in metadata:
        return decode_with_metadata(metadata, arrays, repr(path))  # saved to a file object
    if not os.path.exists(sidecar_path):
        if metadata.get(_LAYOUT_KEY, "flat") != "flat":
            raise CheckpointError(
                f"{path!r} was saved with a structure that lives in its sidecar "
                f"{sidecar_path!r}, which is missing; copy both files together"
            )
        return {name: tensor(a) for name, a in arrays.items()}
    sidecar = _read_sidecar(sidecar_path)
    if sidecar["checkpoint_id"] != metadata.get(_ID_KEY):
        raise CheckpointError(
            f"{path!r} and {sidecar_path!r} come from different saves (an interrupted save, "
            "or files copied from two checkpoints); re-save the checkpoint"
        )
    return _decode(sidecar["object"], arrays, sidecar_path)


# ---------------------------------------------------------------- writing


def _atomic_write(path: str, write: Callable[[str], None]) -> None:
    """Write ``path`` through ``write(temp_path)``: temp file, fsync, rename, fsync dir."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    with contextlib.suppress(OSError):  # not every platform can open a directory
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _encode(obj: Any, where: list[str], tensors: dict[str, np.ndarray]) -> Any:
    """``obj`` as JSON, its tensors moved into ``tensors`` under their dotted key path."""
    if isinstance(obj, Tensor):
        key = ".".join(where) or "tensor"
        base, n = key, 1
        while key in tensors:
            key, n = f"{base}@{n}", n + 1
        data = obj.detach().numpy()
        tensors[key] = data if data.flags.c_contiguous else data.copy(order="C")
        return {"__tensor__": key}
    if obj is None or isinstance(obj, bool | int | float | str):
        return obj
    if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
        return obj.item()
    if isinstance(obj, list):
        return [_encode(v, [*where, str(i)], tensors) for i, v in enumerate(obj)]
    if isinstance(obj, tuple):
        return {"__tuple__": [_encode(v, [*where, str(i)], tensors) for i, v in enumerate(obj)]}
    if isinstance(obj, Mapping):
        for k in obj:
            if not (k is None or isinstance(k, bool | int | float | str)):
                raise TypeError(
                    f"save: dict key {k!r} at {_where(where)} is a {type(k).__name__}; keys "
                    "must be str, int, float, bool or None"
                )
        items = {k: _encode(v, [*where, str(k)], tensors) for k, v in obj.items()}
        if all(isinstance(k, str) and k not in _TAGS for k in items):
            return items
        return {"__dict__": [[k, v] for k, v in items.items()]}
    if callable(getattr(obj, "state_dict", None)):
        raise TypeError(
            f"save: got a whole {type(obj).__name__} at {_where(where)}; graphcap never pickles "
            "objects (loading them would run code). Save its state dict instead: "
            "tracer.save(obj.state_dict(), path), and later build the object and call "
            "obj.load_state_dict(tracer.load(path))"
        )
    raise TypeError(
        f"save: can't store a {type(obj).__name__} at {_where(where)}; checkpoints hold "
        "tensors and JSON values (None, bool, int, float, str) in dicts, lists and tuples"
    )


def encode(obj: Any) -> tuple[dict[str, np.ndarray], Any, bool]:
    """``obj``'s tensors by dotted key, its JSON structure, and whether it is a flat state dict.

    Raises:
        TypeError: ``obj`` holds a value a checkpoint cannot store (a module: the message
            says to save its state dict).
    """
    tensors: dict[str, np.ndarray] = {}
    tree = _encode(obj, [], tensors)
    flat = isinstance(obj, Mapping) and all(
        isinstance(k, str) and isinstance(v, Tensor) for k, v in obj.items()
    )
    return tensors, tree, flat


def _where(where: list[str]) -> str:
    return "the top level" if not where else repr(".".join(where))


# ---------------------------------------------------------------- reading


def _read_tensors(path: str) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    try:
        with safetensors.safe_open(path, framework="np") as f:
            metadata = f.metadata() or {}
            arrays = {name: f.get_tensor(name) for name in f.keys()}  # noqa: SIM118
    except (safetensors.SafetensorError, OSError, ValueError, TypeError) as err:
        with contextlib.suppress(OSError), open(path, "rb") as head:
            refuse_foreign(head.read(8), repr(path))  # a pickle or torch zip: say so
        raise CheckpointError(f"{path!r} is not a valid safetensors file: {err}") from None
    return metadata, arrays


def _read_sidecar(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            sidecar = json.load(f)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"checkpoint sidecar {path!r} is not valid JSON: {err}") from None
    if (
        not isinstance(sidecar, dict)
        or sidecar.get("format") != _FORMAT
        or "object" not in sidecar
        or "checkpoint_id" not in sidecar
    ):
        raise CheckpointError(f"{path!r} is not a graphcap checkpoint sidecar")
    if sidecar.get("version") != _VERSION:
        raise CheckpointError(
            f"{path!r} has checkpoint format version {sidecar.get('version')!r}; this "
            f"graphcap reads version {_VERSION}"
        )
    return sidecar


def _decode(node: Any, arrays: Mapping[str, np.ndarray], source: str) -> Any:
    """The structure a sidecar's ``object`` describes, tensors taken from ``arrays``."""
    if isinstance(node, list):
        return [_decode(v, arrays, source) for v in node]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        (tag, body), *_ = node.items()
        if tag == "__tensor__":
            if not isinstance(body, str) or body not in arrays:
                raise CheckpointError(f"{source!r} refers to a tensor {body!r} that is missing")
            return tensor(arrays[body])
        if tag == "__tuple__" and isinstance(body, list):
            return tuple(_decode(v, arrays, source) for v in body)
        if tag == "__dict__" and isinstance(body, list):
            if not all(isinstance(kv, list) and len(kv) == 2 for kv in body):
                raise CheckpointError(f"{source!r} holds a malformed dict entry")
            return {_key(k, source): _decode(v, arrays, source) for k, v in body}
        if tag in _TAGS:
            raise CheckpointError(f"{source!r} holds a malformed {tag} entry")
    return {k: _decode(v, arrays, source) for k, v in node.items()}


decode = _decode  # the stream format (tracer._checkpoint_stream) decodes the same trees


def _key(k: Any, source: str) -> Any:
    if k is None or isinstance(k, bool | int | float | str):
        return k
    raise CheckpointError(f"{source!r} holds a dict key of type {type(k).__name__}")
