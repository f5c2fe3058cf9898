"""``save`` / ``load``: checkpoints as one safetensors file; nothing is unpickled.

``save(obj, path)`` writes the tensors of ``obj`` (a state dict, an optimizer state dict, or
any nest of dicts, lists and tuples of tensors and JSON values) to ``path`` in the
safetensors format, with the rest of the structure as JSON in the file's header metadata
(key ``graphcap.structure``). Tensors are stored under their dotted key path
(``"encoder.weight"``, ``"state.0.exp_avg"``), so a plain state dict is an ordinary
safetensors file that PyTorch and Hugging Face load by name, and ``load`` reads safetensors
files they wrote.

One file is one atomic write: a temporary file in the same folder, fsync, then one
``os.replace``, so a process killed at any point leaves the previous checkpoint or the new
one; the temporary file a killed save leaves is removed by the next save to that path.
Checkpoints of earlier graphcap versions keep their structure in a JSON sidecar
``<path>.json`` whose checkpoint id matches the tensors file's; ``load`` still reads them,
and ``save`` removes such a sidecar once the new file is in place.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import safetensors
import safetensors.numpy

from export.onnx import files
from ir.errors import GraphcapError
from tracer._checkpoint_stream import STREAM_OBJECT_KEY, read_stream, refuse_foreign
from tracer._device import check_device, device
from tracer.tensor import Tensor, tensor

_FORMAT = "graphcap-checkpoint"
_VERSION = 1
_STRUCTURE_KEY = "graphcap.structure"  # {"format", "version", "object"} as JSON
_ID_KEY = "graphcap.checkpoint_id"
_LAYOUT_KEY = "graphcap.layout"  # "flat": a name -> tensor dict, complete without the sidecar
_TAGS = ("__tensor__", "__tuple__", "__dict__")
# safetensors element types NumPy reads (bfloat16 and float8 have no NumPy dtype).
_DTYPES = ("F64", "F32", "F16", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL")


class CheckpointError(GraphcapError, ValueError):
    """A checkpoint file is missing, malformed, or does not belong with its sidecar."""


def save(obj: Any, path: str | os.PathLike[str] | BinaryIO) -> None:
    """Write ``obj`` to the safetensors file ``path``, atomically (or to a file object).

    Args:
        obj: tensors, None, bools, ints, floats and strings, nested in dicts (keys: str,
            int, float, bool or None), lists and tuples: a state dict, an optimizer's, or
            a dict of several. Not a module: save ``model.state_dict()``.
        path: the file to create or replace, or a binary file object to write the same
            bytes to.

    Raises:
        TypeError: ``obj`` holds a value of another type (the message names where).
    """
    tensors, tree, flat = encode(obj)
    structure = {"format": _FORMAT, "version": _VERSION, "object": tree}
    metadata = {
        "format": "pt",
        _ID_KEY: uuid.uuid4().hex,
        _LAYOUT_KEY: "flat" if flat else "tree",
        _STRUCTURE_KEY: json.dumps(structure),
    }
    if not isinstance(path, str | os.PathLike):  # a binary file object: the same bytes
        path.write(safetensors.numpy.save(tensors, metadata))
        return
    target = Path(path)
    files.atomic_write(target, lambda tmp: safetensors.numpy.save_file(tensors, str(tmp), metadata))
    _drop_sidecar(target)


def load(path: str | os.PathLike[str] | BinaryIO, map_location: Any = None, **kwargs: Any) -> Any:
    """Read a checkpoint written by :func:`save`, or any safetensors file.

    Args:
        path: the safetensors file, or a binary file object holding one. Without a
            graphcap structure in its header (a file from PyTorch or Hugging Face) the result
            is a dict of name -> tensor.
        map_location: accepted for PyTorch compatibility; tensors always load on the CPU,
            and a CUDA location raises ``DeviceError``.
        **kwargs: PyTorch's ``weights_only`` and the like, accepted: nothing is unpickled.

    Returns:
        The saved structure with every tensor a ``tracer.Tensor``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        CheckpointError: the file is malformed (tensors of a dtype NumPy lacks, such as
            bfloat16 or float8, included), or its structure is, or an older checkpoint's
            sidecar is missing or comes from another save, or the file is a pickle or a
            PyTorch zip checkpoint (the message says how to convert it).
    """
    if isinstance(map_location, str | device):
        check_device(map_location, "load(map_location=...)")
    stream = not isinstance(path, str | os.PathLike)
    if isinstance(path, str | os.PathLike):
        source = os.fspath(path)
        if not os.path.exists(source):
            raise FileNotFoundError(f"no checkpoint at {source!r}")
        metadata, arrays = read_tensors(source)
    else:  # a binary file object
        source = repr(getattr(path, "name", "the file object"))
        metadata, arrays = read_stream(path, source)
    if _STRUCTURE_KEY in metadata:
        structure = _parse(metadata[_STRUCTURE_KEY], f"{source!r}'s {_STRUCTURE_KEY}")
        return _decode_all(structure["object"], arrays, source)
    if STREAM_OBJECT_KEY in metadata:  # written to a file object by an earlier graphcap
        return _decode_all(_json_value(metadata[STREAM_OBJECT_KEY], source), arrays, source)
    if stream:  # without graphcap's structure: a flat state dict, by name
        return {name: tensor(a) for name, a in arrays.items()}
    return _load_with_sidecar(source, metadata, arrays)


def _load_with_sidecar(
    path: str, metadata: Mapping[str, str], arrays: Mapping[str, np.ndarray]
) -> Any:
    """A checkpoint of an earlier graphcap: the structure in ``<path>.json``."""
    sidecar_path = path + ".json"
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
    return _decode_all(sidecar["object"], arrays, sidecar_path)


def _drop_sidecar(path: Path) -> None:
    """Remove an earlier save's sidecar ``<path>.json``: the new file describes itself."""
    sidecar = path.with_name(path.name + ".json")
    with contextlib.suppress(OSError, CheckpointError):
        _read_sidecar(str(sidecar))  # only a graphcap sidecar is removed
        sidecar.unlink()


# ---------------------------------------------------------------- writing


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


def read_tensors(path: str | os.PathLike[str]) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """A safetensors file's header metadata and arrays, checked before they are read.

    Raises:
        CheckpointError: not a safetensors file, or a tensor of an element type NumPy lacks
            (bfloat16, float8), named with its dtype.
    """
    try:
        with safetensors.safe_open(os.fspath(path), framework="np") as f:
            metadata = f.metadata() or {}
            names = list(f.keys())
            for name in names:
                dtype = f.get_slice(name).get_dtype()
                if dtype not in _DTYPES:
                    raise CheckpointError(
                        f"{os.fspath(path)!r}: tensor {name!r} is {dtype}, which NumPy cannot "
                        f"hold; graphcap reads {', '.join(_DTYPES)}"
                    )
            arrays = {name: f.get_tensor(name) for name in names}
    except CheckpointError:
        raise
    except Exception as err:  # the parser's errors on a malformed file are not one type
        with contextlib.suppress(OSError), open(path, "rb") as head:
            refuse_foreign(head.read(8), repr(os.fspath(path)))  # a pickle or torch zip: say so
        raise CheckpointError(
            f"{os.fspath(path)!r} is not a valid safetensors file: {type(err).__name__}: {err}"
        ) from None
    return metadata, arrays


def _parse(text: str, what: str) -> dict[str, Any]:
    """A structure's JSON: an object with this format, version and an ``object``."""
    try:
        value = json.loads(text)
    except RecursionError:
        raise CheckpointError(f"{what} nests JSON deeper than Python can read") from None
    except ValueError as err:
        raise CheckpointError(f"{what} is not valid JSON: {err}") from None
    if not isinstance(value, dict) or value.get("format") != _FORMAT or "object" not in value:
        raise CheckpointError(f"{what} is not a graphcap checkpoint structure")
    if value.get("version") != _VERSION:
        raise CheckpointError(
            f"{what} has checkpoint format version {value.get('version')!r}; this graphcap "
            f"reads version {_VERSION}"
        )
    return value


def _json_value(text: str, source: str) -> Any:
    try:
        return json.loads(text)
    except (RecursionError, ValueError) as err:
        raise CheckpointError(f"{source!r} holds malformed JSON in its header: {err}") from None


def _read_sidecar(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as err:
        raise CheckpointError(f"checkpoint sidecar {path!r} is not valid JSON: {err}") from None
    sidecar = _parse(text, f"checkpoint sidecar {path!r}")
    if "checkpoint_id" not in sidecar:
        raise CheckpointError(f"{path!r} is not a graphcap checkpoint sidecar")
    return sidecar


def _decode_all(node: Any, arrays: Mapping[str, np.ndarray], source: str) -> Any:
    try:
        return _decode(node, arrays, source)
    except RecursionError:
        raise CheckpointError(
            f"{source!r} nests its structure deeper than Python can read"
        ) from None


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
