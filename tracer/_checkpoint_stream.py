"""``save`` / ``load`` on file objects, and the errors for files graphcap will not read.

A checkpoint written to a file object (``tracer.save(obj, f)``) is one safetensors stream:
the tensors, with the structure around them (the JSON a path checkpoint keeps in its
sidecar) in the safetensors metadata under ``graphcap.object``. Other safetensors readers
ignore that metadata, so a flat state dict saved this way loads by name anywhere.

Pickles (``torch.save`` of a module, ``pickle.dump``) and PyTorch's zip checkpoints are
recognised by their first bytes and refused with a message that says how to get a state
dict graphcap can read: nothing is ever unpickled.
"""

from __future__ import annotations

import json
from typing import Any, BinaryIO

import numpy as np
import safetensors
import safetensors.numpy

_OBJECT_KEY = "graphcap.object"
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80  # the PROTO opcode that starts every pickle of protocol 2 or later

_CONVERT = (
    "Convert it once where PyTorch is installed: `import torch; from safetensors.torch import "
    "save_file; save_file(torch.load('model.pt', weights_only=True), 'model.safetensors')` "
    "(a model's state dict; for a nested checkpoint, save each state dict), then "
    "tracer.load('model.safetensors')"
)


def refuse_foreign(head: bytes, source: str) -> None:
    """Raise a clear error when ``head`` (a file's first bytes) is a pickle or a torch zip.

    Raises:
        CheckpointError: the file is PyTorch's zip checkpoint or a Python pickle.
    """
    from tracer.serialization import CheckpointError

    if head.startswith(_ZIP_MAGIC):
        raise CheckpointError(
            f"{source} is a PyTorch checkpoint (torch.save's zip format), which holds a "
            f"pickle; graphcap never unpickles, because loading must not run code. {_CONVERT}"
        )
    if head[:1] == bytes([_PICKLE_PROTO]):
        raise CheckpointError(
            f"{source} is a Python pickle (torch.save of a module or object, or pickle.dump); "
            "graphcap never unpickles, because loading must not run code. Save the weights "
            "instead: tracer.save(model.state_dict(), path), later "
            f"model.load_state_dict(tracer.load(path)). For a file PyTorch wrote: {_CONVERT}"
        )


def save_stream(obj: Any, f: BinaryIO) -> None:
    """Write ``obj`` to the binary file object ``f`` as one safetensors stream."""
    from tracer.serialization import encode

    tensors, tree, flat = encode(obj)
    # The structure goes along even for a flat state dict: it keeps the keys' order.
    metadata = {"format": "pt", "graphcap.layout": "flat" if flat else "tree"}
    metadata[_OBJECT_KEY] = json.dumps(tree)
    f.write(safetensors.numpy.save(tensors, metadata))


def load_stream(f: BinaryIO, source: str) -> Any:
    """Read what :func:`save_stream` wrote (or any safetensors stream) from ``f``.

    Raises:
        CheckpointError: the bytes are a pickle, a torch zip checkpoint, or malformed.
    """
    from tracer.serialization import CheckpointError

    data = f.read()
    if not isinstance(data, bytes):
        raise TypeError(f"{source} must be opened in binary mode ('rb'), got {type(data).__name__}")
    refuse_foreign(data[:8], source)
    try:
        arrays = safetensors.numpy.load(data)
        metadata = _metadata(data)
    except (safetensors.SafetensorError, ValueError, TypeError) as err:
        raise CheckpointError(f"{source} is not a valid safetensors stream: {err}") from None
    return decode_with_metadata(metadata, arrays, source)


def decode_with_metadata(
    metadata: dict[str, str], arrays: dict[str, np.ndarray], source: str
) -> Any:
    """The object a single-file checkpoint holds: its tree from metadata, or a flat dict."""
    from tracer.serialization import CheckpointError, decode
    from tracer.tensor import tensor

    text = metadata.get(_OBJECT_KEY)
    if text is None:
        return {name: tensor(a) for name, a in arrays.items()}
    try:
        tree = json.loads(text)
    except json.JSONDecodeError as err:
        raise CheckpointError(f"{source} holds a malformed {_OBJECT_KEY}: {err}") from None
    return decode(tree, arrays, source)


def _metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors header (safetensors already checked its size)."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    meta = header.get("__metadata__") or {}
    return meta if isinstance(meta, dict) else {}
