"""Reading and writing a Hugging Face model folder's weights: safetensors only, never pickle.

A folder holds ``model.safetensors``, or shards listed by ``model.safetensors.index.json``;
bfloat16 tensors (which NumPy lacks) are widened to float32 on reading.
Pickled checkpoints (``pytorch_model.bin``) are refused with the command that converts them,
because unpickling can run arbitrary code. Files are written atomically.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import safetensors
import safetensors.numpy

from export.onnx.files import atomic_write
from ir.errors import GraphcapError

WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model.safetensors.index.json"
_PICKLED = (
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
    "tf_model.h5",
    "flax_model.msgpack",
)
CONVERT_HINT = (
    "convert it once with transformers (this unpickles, so only for a checkpoint you trust): "
    'python -c "from transformers import AutoModel; '
    "AutoModel.from_pretrained('FOLDER').save_pretrained('FOLDER')\""
)


class CheckpointFormatError(GraphcapError, ValueError):
    """A model folder's weights are missing, pickled, or malformed."""


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` through a temporary file and a rename."""
    atomic_write(path, lambda tmp: _write_text(tmp, text))


def _write_text(path: Path, text: str) -> None:
    path.write_text(text, encoding="utf-8")


def read_weights(folder: str | os.PathLike[str]) -> dict[str, np.ndarray]:
    """Every tensor of the folder's safetensors file(s), by name.

    Raises:
        FileNotFoundError: no safetensors weights, and no pickled ones either.
        CheckpointFormatError: only pickled weights (the message says how to convert), a
            malformed index or file, or a shard named outside the folder.
    """
    folder = Path(folder)
    if (folder / WEIGHTS_NAME).is_file():
        return _read_file(folder / WEIGHTS_NAME)
    if (folder / INDEX_NAME).is_file():
        return _read_sharded(folder)
    pickled = [name for name in _PICKLED if (folder / name).is_file()]
    if pickled:
        raise CheckpointFormatError(
            f"{os.fspath(folder)!r} has only {pickled[0]}, a pickled checkpoint, which graphcap "
            f"never loads (unpickling can run code); {CONVERT_HINT.replace('FOLDER', str(folder))}"
        )
    raise FileNotFoundError(
        f"{os.fspath(folder)!r} has no {WEIGHTS_NAME} (or {INDEX_NAME} with its shards)"
    )


def _read_file(path: Path) -> dict[str, np.ndarray]:
    try:
        bf16 = _bfloat16_names(path)
        with safetensors.safe_open(str(path), framework="np") as f:
            out = {name: f.get_tensor(name) for name in f.keys() if name not in bf16}  # noqa: SIM118
        out.update(_read_bfloat16(path, bf16))
    except (safetensors.SafetensorError, OSError, ValueError, TypeError, KeyError) as err:
        raise CheckpointFormatError(
            f"{os.fspath(path)!r} is not a readable safetensors file: {err}"
        ) from None
    return out


def _header(path: Path) -> tuple[int, dict[str, Any]]:
    """The safetensors JSON header and where the data starts (the format's first 8 bytes)."""
    with open(path, "rb") as f:
        size = int.from_bytes(f.read(8), "little")
        header = json.loads(f.read(size))
    if not isinstance(header, dict):
        raise ValueError("the header is not a JSON object")
    return 8 + size, header


def _bfloat16_names(path: Path) -> set[str]:
    _, header = _header(path)
    return {k for k, v in header.items() if k != "__metadata__" and v.get("dtype") == "BF16"}


def _read_bfloat16(path: Path, names: set[str]) -> dict[str, np.ndarray]:
    """bfloat16 tensors widened to float32 (exact: bfloat16 is float32's top 16 bits)."""
    if not names:
        return {}
    start, header = _header(path)
    raw = np.memmap(path, dtype=np.uint8, mode="r")
    out = {}
    for name in names:
        begin, end = header[name]["data_offsets"]
        halves = np.frombuffer(raw[start + begin : start + end].tobytes(), "<u2")
        wide = halves.astype(np.uint32) << 16
        out[name] = wide.view(np.float32).reshape(header[name]["shape"])
    return out


def _read_sharded(folder: Path) -> dict[str, np.ndarray]:
    index_path = folder / INDEX_NAME
    try:
        weight_map = json.loads(index_path.read_text(encoding="utf-8"))["weight_map"]
        shards = sorted(set(weight_map.values()))
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise CheckpointFormatError(
            f"{os.fspath(index_path)!r} has no valid weight_map: {err}"
        ) from None
    arrays: dict[str, np.ndarray] = {}
    for shard in shards:
        # A shard is a plain file name in this folder; the index does not choose other paths.
        if not isinstance(shard, str) or Path(shard).name != shard or shard in ("", ".", ".."):
            raise CheckpointFormatError(
                f"{os.fspath(index_path)!r} names shard {shard!r} outside the folder"
            )
        arrays.update(_read_file(folder / shard))
    return arrays


def write_weights(folder: str | os.PathLike[str], tensors: dict[str, np.ndarray]) -> None:
    """Write ``tensors`` to ``folder/model.safetensors`` (PyTorch's metadata), atomically."""
    contiguous = {k: np.ascontiguousarray(v) for k, v in tensors.items()}
    path = os.fspath(Path(folder) / WEIGHTS_NAME)
    atomic_write(
        path, lambda tmp: safetensors.numpy.save_file(contiguous, str(tmp), {"format": "pt"})
    )
