"""Checkpoints read from file objects, and the errors for files graphcap will not read.

``tracer.save(obj, f)`` writes a file object the same bytes as a file (one safetensors
stream, the structure in its header); :func:`read_stream` reads them back. Streams written
by an earlier graphcap kept the structure under ``graphcap.object``
(:data:`STREAM_OBJECT_KEY`), which ``tracer.load`` still reads.

Pickles (``torch.save`` of a module, ``pickle.dump``) and PyTorch's zip checkpoints are
recognised by their first bytes and refused with a message that says how to get a state
dict graphcap can read: nothing is ever unpickled.
"""

from __future__ import annotations

import json
from typing import BinaryIO

import numpy as np
import safetensors
import safetensors.numpy

STREAM_OBJECT_KEY = "graphcap.object"
_ZIP_MAGIC = b"PK\x03\x04"
_PICKLE_PROTO = 0x80  # the PROTO opcode that starts every pickle of protocol 2 or later

_CONVERT = (
    "Convert it once where PyTorch is installed: load it there with weights_only=True and "
    "write the state dict with safetensors.torch.save_file to 'model.safetensors' (for a "
    "nested checkpoint, save each state dict), then tracer.load('model.safetensors')"
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


def read_stream(f: BinaryIO, source: str) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """The header metadata and arrays of the safetensors stream in ``f``.

    Raises:
        CheckpointError: the bytes are a pickle, a torch zip checkpoint, or malformed.
        TypeError: ``f`` is open in text mode.
    """
    from tracer.serialization import CheckpointError

    data = f.read()
    if not isinstance(data, bytes):
        raise TypeError(f"{source} must be opened in binary mode ('rb'), got {type(data).__name__}")
    refuse_foreign(data[:8], source)
    try:
        arrays = safetensors.numpy.load(data)
        metadata = _metadata(data)
    except Exception as err:  # the parser's errors on malformed bytes are not one type
        raise CheckpointError(f"{source} is not a valid safetensors stream: {err}") from None
    return metadata, arrays


def _metadata(data: bytes) -> dict[str, str]:
    """The ``__metadata__`` of a safetensors header (safetensors already checked its size)."""
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    meta = header.get("__metadata__") or {}
    return meta if isinstance(meta, dict) else {}
