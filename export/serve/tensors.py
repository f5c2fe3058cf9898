"""The KServe / Triton v2 inference protocol's tensors, over JSON and binary data.

A request is a JSON object ``{"id"?, "parameters"?, "inputs": [{"name", "shape",
"datatype", "data" | "parameters": {"binary_data_size": n}}], "outputs"?: [{"name",
"parameters"?: {"binary_data": bool}}]}``. With Triton's binary tensor extension (what
``tritonclient`` sends by default) the JSON is followed by the raw tensors, and the
``Inference-Header-Content-Length`` header gives the JSON's length; ``BYTES`` elements are
each a 4-byte little-endian length and the bytes. Responses use the same forms, JSON by
default and binary for the outputs asked that way (or all, with ``binary_data_output``).

Every check raises :class:`RequestError` (an HTTP 4xx) that names the tensor and what was
expected.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

DATATYPES: dict[str, np.dtype] = {
    "BOOL": np.dtype(np.bool_),
    "UINT8": np.dtype(np.uint8),
    "UINT16": np.dtype(np.uint16),
    "UINT32": np.dtype(np.uint32),
    "UINT64": np.dtype(np.uint64),
    "INT8": np.dtype(np.int8),
    "INT16": np.dtype(np.int16),
    "INT32": np.dtype(np.int32),
    "INT64": np.dtype(np.int64),
    "FP16": np.dtype(np.float16),
    "FP32": np.dtype(np.float32),
    "FP64": np.dtype(np.float64),
    "BYTES": np.dtype(object),
}
HEADER_LENGTH = "inference-header-content-length"


class RequestError(Exception):
    """A request the server refuses: an HTTP status (4xx or 5xx) and a message for the client."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def datatype_of(dtype: np.dtype) -> str:
    """The v2 datatype name of a NumPy dtype (``BYTES`` for strings and objects)."""
    for name, dt in DATATYPES.items():
        if dt == dtype:
            return name
    if dtype.kind in "OSU":
        return "BYTES"
    raise RequestError(f"dtype {dtype} has no v2 datatype", 500)


@dataclass
class InferRequest:
    """A parsed v2 infer request.

    Attributes:
        id: the request's ``id`` (echoed in the response), or "".
        inputs: input name -> array (``BYTES``: an object array of ``bytes``).
        outputs: the outputs asked for, with whether each goes back as binary data; empty
            for all outputs.
        binary_output: the request-level ``binary_data_output`` parameter.
        timeout_s: the request's ``timeout`` parameter (microseconds in the protocol), if any.
    """

    id: str
    inputs: dict[str, np.ndarray]
    outputs: list[tuple[str, bool]] = field(default_factory=list)
    binary_output: bool = False
    timeout_s: float | None = None


def parse_infer(body: bytes, header_length: str | None) -> InferRequest:
    """Parse a v2 infer request body (JSON, or JSON then binary tensors).

    Raises:
        RequestError: malformed JSON, a missing field, a shape or datatype that does not fit
            the data, binary sizes that do not add up.
    """
    head, rest = body, b""
    if header_length is not None:
        try:
            n = int(header_length)
        except ValueError:
            raise RequestError(
                f"Inference-Header-Content-Length: {header_length!r} is no integer"
            ) from None
        if not 0 < n <= len(body):
            raise RequestError(
                f"Inference-Header-Content-Length is {n}, but the body has {len(body)} bytes"
            )
        head, rest = body[:n], body[n:]
    obj = load_json(head)
    if not isinstance(obj, dict):
        raise RequestError("the request must be a JSON object with an 'inputs' list")
    raw_inputs = obj.get("inputs")
    if not isinstance(raw_inputs, list) or not raw_inputs:
        raise RequestError("'inputs' must be a non-empty list of tensors")
    params = _params(obj.get("parameters"), "the request")
    inputs: dict[str, np.ndarray] = {}
    offset = 0
    for i, spec in enumerate(raw_inputs):
        name, array, offset = _input(spec, i, rest, offset)
        if name in inputs:
            raise RequestError(f"input {name!r} is given twice")
        inputs[name] = array
    if offset != len(rest):
        raise RequestError(
            f"the binary data holds {len(rest)} bytes but the inputs' binary_data_size add "
            f"up to {offset}"
        )
    timeout = params.get("timeout")
    return InferRequest(
        id=str(obj.get("id", "")),
        inputs=inputs,
        outputs=_outputs(obj.get("outputs")),
        binary_output=bool(params.get("binary_data_output", False)),
        timeout_s=float(timeout) / 1e6
        if isinstance(timeout, int | float) and timeout > 0
        else None,
    )


def load_json(body: bytes) -> Any:
    """``json.loads`` of a UTF-8 body, with 400 errors that say what is wrong."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as err:
        raise RequestError(f"the request body is not valid UTF-8 (byte {err.start})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise RequestError(f"the request body is not valid JSON: {err}") from None


def _params(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RequestError(f"'parameters' of {where} must be a JSON object")
    return value


def _input(spec: Any, i: int, rest: bytes, offset: int) -> tuple[str, np.ndarray, int]:
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise RequestError(f"inputs[{i}] must be an object with a 'name' string")
    name = spec["name"]
    datatype = spec.get("datatype")
    if datatype not in DATATYPES:
        raise RequestError(
            f"input {name!r}: datatype {datatype!r} is not one of {', '.join(DATATYPES)}"
        )
    shape = spec.get("shape")
    if not isinstance(shape, list) or not all(
        isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape
    ):
        raise RequestError(f"input {name!r}: 'shape' must be a list of sizes >= 0, got {shape!r}")
    count = int(np.prod(shape, dtype=np.int64))
    size = _params(spec.get("parameters"), f"input {name!r}").get("binary_data_size")
    if size is not None:
        if not isinstance(size, int) or size < 0 or offset + size > len(rest):
            raise RequestError(
                f"input {name!r}: binary_data_size {size!r} does not fit the {len(rest)} bytes "
                "of binary data"
            )
        array = _from_binary(name, datatype, rest[offset : offset + size], count)
        return name, array.reshape(shape), offset + size
    if "data" not in spec:
        raise RequestError(f"input {name!r} has neither 'data' nor binary_data_size")
    return name, _from_json(name, datatype, spec["data"], shape, count), offset


def _from_binary(name: str, datatype: str, blob: bytes, count: int) -> np.ndarray:
    if datatype == "BYTES":
        items: list[bytes] = []
        at = 0
        while at < len(blob):
            if at + 4 > len(blob):
                raise RequestError(f"input {name!r}: BYTES data ends inside a length prefix")
            (n,) = struct.unpack_from("<I", blob, at)
            if at + 4 + n > len(blob):
                raise RequestError(f"input {name!r}: BYTES element {len(items)} overruns the data")
            items.append(blob[at + 4 : at + 4 + n])
            at += 4 + n
        if len(items) != count:
            raise RequestError(
                f"input {name!r}: {len(items)} BYTES elements for a shape of {count}"
            )
        out = np.empty(count, dtype=object)
        out[:] = items
        return out
    dtype = DATATYPES[datatype]
    if len(blob) != count * dtype.itemsize:
        raise RequestError(
            f"input {name!r}: {len(blob)} bytes of {datatype} data for a shape of {count} "
            f"elements ({count * dtype.itemsize} bytes expected)"
        )
    return np.frombuffer(blob, dtype=dtype.newbyteorder("<")).astype(dtype)


def _from_json(name: str, datatype: str, data: Any, shape: list[int], count: int) -> np.ndarray:
    flat = _flatten(data)
    if len(flat) != count:
        raise RequestError(
            f"input {name!r}: {len(flat)} values for shape {shape} ({count} expected)"
        )
    if datatype == "BYTES":
        if not all(isinstance(x, str) for x in flat):
            raise RequestError(f"input {name!r}: BYTES data must be strings")
        out = np.empty(count, dtype=object)
        out[:] = [x.encode("utf-8") for x in flat]
        return out.reshape(shape)
    return _typed(name, datatype, flat).reshape(shape)


def _flatten(data: Any) -> list[Any]:
    if not isinstance(data, list):
        return [data]
    if not any(isinstance(x, list) for x in data):
        return data
    out: list[Any] = []
    for x in data:
        out.extend(_flatten(x))
    return out


def _typed(name: str, datatype: str, flat: list[Any]) -> np.ndarray:
    dtype = DATATYPES[datatype]
    if datatype == "BOOL":
        if not all(isinstance(x, bool) for x in flat):
            raise RequestError(f"input {name!r}: BOOL data must be true or false")
        return np.array(flat, dtype=np.bool_)
    if any(isinstance(x, bool) or not isinstance(x, int | float) for x in flat):
        raise RequestError(f"input {name!r}: {datatype} data must be numbers")
    if dtype.kind in "iu":
        if not all(isinstance(x, int) for x in flat):
            raise RequestError(f"input {name!r}: {datatype} data must be integers")
        info = np.iinfo(dtype)
        if flat and (min(flat) < info.min or max(flat) > info.max):
            raise RequestError(f"input {name!r}: a value is outside {datatype}'s range")
    return np.array(flat, dtype=dtype)


def _outputs(value: Any) -> list[tuple[str, bool]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RequestError("'outputs' must be a list of {'name': ...} objects")
    out = []
    for i, spec in enumerate(value):
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
            raise RequestError(f"outputs[{i}] must be an object with a 'name' string")
        params = _params(spec.get("parameters"), f"output {spec['name']!r}")
        out.append((spec["name"], bool(params.get("binary_data", False))))
    return out


def texts_of(name: str, array: np.ndarray) -> list[str]:
    """The UTF-8 texts of a ``BYTES`` input shaped ``[n]`` or ``[n, 1]``.

    Raises:
        RequestError: another datatype or shape, or bytes that are not UTF-8.
    """
    if array.dtype != object:
        raise RequestError(f"input {name!r} must be BYTES (texts), not {datatype_of(array.dtype)}")
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise RequestError(f"input {name!r} must have shape [n] or [n, 1], got {list(array.shape)}")
    texts = []
    for i, raw in enumerate(array):
        try:
            texts.append(raw.decode("utf-8"))
        except UnicodeDecodeError as err:
            raise RequestError(f"input {name!r}: element {i} is not valid UTF-8 ({err})") from None
    return texts


def encode_infer(
    model: str,
    version: str,
    request: InferRequest,
    outputs: Mapping[str, np.ndarray],
) -> tuple[bytes, dict[str, str]]:
    """The v2 response body and headers for ``outputs`` (in the order given)."""
    asked = request.outputs or [(n, request.binary_output) for n in outputs]
    tensors, blobs = [], []
    for name, binary in asked:
        array = np.asarray(outputs[name])
        tensor: dict[str, Any] = {
            "name": name,
            "datatype": datatype_of(array.dtype),
            "shape": list(array.shape),
        }
        if binary:
            blob = _to_binary(array)
            tensor["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
        else:
            tensor["data"] = _to_json(array)
        tensors.append(tensor)
    head: dict[str, Any] = {"model_name": model, "model_version": version, "outputs": tensors}
    if request.id:
        head["id"] = request.id
    text = json.dumps(head, separators=(",", ":")).encode()
    if not blobs:
        return text, {"content-type": "application/json"}
    headers = {"content-type": "application/octet-stream", HEADER_LENGTH: str(len(text))}
    return b"".join([text, *blobs]), headers


def _to_binary(array: np.ndarray) -> bytes:
    if array.dtype == object or array.dtype.kind in "SU":
        parts = []
        for x in array.reshape(-1):
            raw = x if isinstance(x, bytes) else str(x).encode("utf-8")
            parts.append(struct.pack("<I", len(raw)) + raw)
        return b"".join(parts)
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()


def _to_json(array: np.ndarray) -> list[Any]:
    flat = array.reshape(-1)
    if array.dtype == object or array.dtype.kind in "SU":
        return [x.decode("utf-8") if isinstance(x, bytes) else str(x) for x in flat]
    return flat.tolist()


def bytes_array(items: Sequence[str]) -> np.ndarray:
    """An object array of UTF-8 ``bytes``: a ``BYTES`` tensor."""
    out = np.empty(len(items), dtype=object)
    out[:] = [s.encode("utf-8") for s in items]
    return out
