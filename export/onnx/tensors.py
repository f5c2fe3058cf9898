"""ONNX tensors as NumPy arrays, and the files they are read from, checked before any read.

A file decides nothing here without a check first: a tensor's dims must be non-negative and
its data (inline bytes, a typed field, or a span of an external file) must hold exactly the
elements its dims and element type say, so a tensor declaring ``dims=[2**40]`` is refused
before anything is allocated. External data is read only from regular files inside the
model's folder, at a decimal offset and length that lie within the file. Models themselves
are read only from regular files, at most protobuf's 2 GiB, so a path that is a FIFO or a
link to ``/dev/zero`` is refused instead of read forever.
"""

from __future__ import annotations

import math
import os
import re
import stat
from pathlib import Path, PureWindowsPath

import numpy as np
import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto, numpy_helper

from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.errors import DTypeError, ExportError

MODEL_LIMIT = 2**31 - 1
"""The largest model file read: protobuf cannot parse a message of 2 GiB or more."""

STAND_IN_ABOVE = 1024
"""Tensors larger than this many elements are stand-ins in :func:`tensor_stand_in`."""

# The typed field each element type keeps its values in when it has no raw bytes.
_FIELDS: dict[int, str] = {
    TensorProto.FLOAT: "float_data",
    TensorProto.DOUBLE: "double_data",
    TensorProto.INT64: "int64_data",
    TensorProto.UINT32: "uint64_data",
    TensorProto.UINT64: "uint64_data",
}
_DECIMAL = re.compile(r"[0-9]{1,19}")


def read_model(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Parse the ONNX file at ``path`` (external data is not read).

    Raises:
        FileNotFoundError: no such file.
        ExportError: not a regular file (a folder, FIFO or device), larger than protobuf can
            parse, unreadable, not a protobuf, or a protobuf that holds no graph.
    """
    data = _read_regular(Path(path), MODEL_LIMIT, "ONNX model")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as err:
        raise ExportError(
            f"{path} is not an ONNX model (protobuf could not parse it: {err})"
        ) from None
    if not model.HasField("graph"):
        what = "an empty file" if not data else "a protobuf without a graph"
        raise ExportError(f"{path} is not an ONNX model: it is {what}")
    return model


def _read_regular(path: Path, limit: int, what: str) -> bytes:
    """The bytes of the regular file ``path``, refused past ``limit`` bytes."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; it is refused below.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise FileNotFoundError(f"no {what} at {str(path)!r}") from None
    except OSError as err:
        raise ExportError(f"cannot read {what} {str(path)!r}: {err.strerror}") from None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ExportError(
                f"{str(path)!r} is not a regular file (a folder, FIFO or device); "
                f"an {what} is read from a regular file"
            )
        if info.st_size > limit:
            raise ExportError(
                f"{str(path)!r} is {info.st_size} bytes; an {what} is at most {limit} bytes"
            )
        return f.read(info.st_size)


def tensor_array(t: TensorProto, base_dir: str | Path | None, where: str = "") -> np.ndarray:
    """A ``TensorProto`` as a NumPy array, reading external data only inside ``base_dir``.

    Raises:
        DTypeError: an element type graphcap does not support.
        ExportError: negative dims, data that does not hold exactly the elements the dims
            say, or external data that is absolute, outside ``base_dir``, missing, not a
            regular file, or whose offset or length is not a decimal within the file.
    """
    label = where or f"tensor {t.name!r}"
    dtype, dims = _type(t, label)
    count = math.prod(dims)
    if t.data_location == TensorProto.EXTERNAL:
        return _external(t, dtype, dims, count, base_dir, label)
    if t.HasField("segment"):
        raise ExportError(f"{label}: segmented tensors are not supported")
    if t.HasField("raw_data"):
        held, unit = len(t.raw_data), f"bytes of {dtype}"
        need = count * dtype.itemsize
    else:
        field = _FIELDS.get(t.data_type, "int32_data")
        held, unit, need = len(getattr(t, field)), f"values in {field}", count
    if held != need:
        raise ExportError(
            f"{label}: dims {dims} of {dtype} need {need} {unit}; the tensor holds {held}"
        )
    try:
        return np.asarray(numpy_helper.to_array(t), dtype=dtype)
    except (ValueError, TypeError, OverflowError) as err:
        raise ExportError(f"{label}: its data cannot be read: {err}") from None


def tensor_stand_in(t: TensorProto, base_dir: str | Path | None, where: str = "") -> np.ndarray:
    """The tensor as :func:`tensor_array` reads it when small, else zeros that take no memory.

    Shape rules read the values of small constants only (shapes, axes, sizes), so a graph
    read this way has the types of the real one at the cost of its small tensors: a tensor
    of more than ``STAND_IN_ABOVE`` elements becomes a read-only zero-strided array of its
    dtype and shape, and its data (inline or external) is not read.

    Raises:
        DTypeError, ExportError: as :func:`tensor_array`.
    """
    label = where or f"tensor {t.name!r}"
    dtype, dims = _type(t, label)
    if math.prod(dims) <= STAND_IN_ABOVE:
        return tensor_array(t, base_dir, where)
    return np.broadcast_to(np.zeros((), dtype), dims)


def _type(t: TensorProto, label: str) -> tuple[np.dtype, list[int]]:
    try:
        dtype = D.from_onnx(t.data_type)
    except DTypeError as err:
        raise DTypeError(f"{label}: {err}") from None
    dims = [int(d) for d in t.dims]
    if any(d < 0 for d in dims):
        raise ExportError(f"{label}: dims {dims} are negative; sizes are 0 or more")
    return dtype, dims


def _external(
    t: TensorProto,
    dtype: np.dtype,
    dims: list[int],
    count: int,
    base_dir: str | Path | None,
    label: str,
) -> np.ndarray:
    info = {e.key: e.value for e in t.external_data}
    location = info.get("location", "")
    if base_dir is None:
        raise ExportError(
            f"{label} is stored in external file {location!r}; pass base_dir, the model's "
            "folder (export.load does)"
        )
    file = external_file(Path(base_dir), location, label)
    offset = _decimal(info, "offset", label, 0)
    nbytes = count * dtype.itemsize
    length = _decimal(info, "length", label, nbytes)
    if length != nbytes:
        raise ExportError(
            f"{label}: external data length {length} does not match its shape {dims} of "
            f"{dtype} ({nbytes} bytes)"
        )
    with open(file, "rb") as f:
        info_ = os.fstat(f.fileno())
        if not stat.S_ISREG(info_.st_mode):
            raise ExportError(f"{label}: external data {location!r} is not a regular file")
        if offset + nbytes > info_.st_size:
            raise ExportError(
                f"{label}: external file {location!r} ends before the tensor's data "
                f"(bytes {offset}..{offset + nbytes} of a {info_.st_size}-byte file)"
            )
        f.seek(offset)
        arr = np.fromfile(f, dtype=dtype.newbyteorder("<"), count=count)
    return arr.astype(dtype, copy=False).reshape(dims)


def _decimal(info: dict[str, str], key: str, label: str, default: int) -> int:
    """External data's ``offset`` or ``length``: a non-negative decimal under 2**62."""
    if key not in info:
        return default
    text = info[key]
    if not _DECIMAL.fullmatch(text) or int(text) >= 2**62:
        raise ExportError(
            f"{label}: external data {key} {text!r} is not a non-negative decimal integer "
            "below 2**62"
        )
    return int(text)


def external_file(base_dir: Path, location: str, label: str) -> Path:
    """``location`` resolved under ``base_dir``; refuses absolute paths, escapes and non-files.

    Raises:
        ExportError: ``location`` is empty, absolute, resolves outside ``base_dir`` (through
            ``..`` or a symlink), or names no regular file there.
    """
    target = inside_folder(base_dir, location, label)
    if not target.is_file():
        raise ExportError(
            f"{label}: external data file {location!r} is missing in {base_dir} (or is not "
            "a regular file)"
        )
    return target


def inside_folder(base_dir: Path, location: str, label: str) -> Path:
    """``location`` resolved under ``base_dir``, without touching the file it names.

    Raises:
        ExportError: ``location`` is empty, absolute, or resolves outside ``base_dir``.
    """
    win = PureWindowsPath(location)
    if not location or "\0" in location or os.path.isabs(location) or win.is_absolute():
        raise ExportError(
            f"{label}: external data location {location!r} is absolute (or empty); ONNX "
            "external data must be a path relative to the model's folder"
        )
    if win.drive:
        raise ExportError(f"{label}: external data location {location!r} names a drive")
    base = os.path.realpath(base_dir)
    target = os.path.realpath(os.path.join(base, location))
    if os.path.commonpath([base, target]) != base:
        raise ExportError(
            f"{label}: external data location {location!r} resolves outside the model's "
            f"folder {base}; refusing to read it"
        )
    return Path(target)
