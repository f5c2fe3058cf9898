"""``tracer.device`` and the one check every ``device=`` argument goes through.

Eager tensors and modules live in host memory, so ``"cpu"`` is the only eager device. Asking
for CUDA (or any accelerator) raises :class:`DeviceError` with one message that says where
CUDA does run in graphcap: compiled and exported graphs, on onnxruntime's CUDA provider.
"""

from __future__ import annotations

from typing import Any

_KNOWN = ("cpu", "cuda", "mps", "xpu", "meta", "hpu", "xla", "mtia", "privateuseone")


class DeviceError(RuntimeError):
    """A device other than the CPU was asked of eager tensors or modules."""


def device_error(requested: Any, what: str = "") -> DeviceError:
    """The error for eager work asked to run on ``requested`` (a device other than the CPU)."""
    where = f"{what}: " if what else ""
    return DeviceError(
        f"{where}device {str(requested)!r} is not available to eager tensors: graphcap's "
        "tensors and modules live on the CPU. CUDA runs compiled and exported graphs, on "
        "onnxruntime's CUDA provider: tracer.compile(model, device='cuda'), or "
        "runtime.Session(graph_or_onnx_path, device='cuda')."
    )


class device:  # noqa: N801 - PyTorch's name
    """A device description, as ``torch.device``: ``device("cpu")``, ``device("cuda", 0)``.

    Describing any device is allowed (scripts build ``device("cuda" if ... else "cpu")``);
    placing eager tensors or modules anywhere but the CPU raises :class:`DeviceError`.

    Raises:
        RuntimeError: an unknown device type or a malformed string.
    """

    __slots__ = ("index", "type")
    type: str
    index: int | None

    def __init__(self, type: Any, index: int | None = None) -> None:
        spec: Any = type  # PyTorch's parameter name; the attribute of the same name is a str
        if isinstance(spec, device):
            if index is not None:
                raise RuntimeError("device(device, index): the index is already in the device")
            spec, index = spec.type, spec.index
        if isinstance(spec, int) and not isinstance(spec, bool):
            spec, index = "cuda", spec
        if not isinstance(spec, str):
            raise TypeError(f"device() expects a string or an int, got {spec.__class__.__name__}")
        kind, _, rest = spec.partition(":")
        if rest:
            if index is not None or not rest.isdigit():
                raise RuntimeError(f"Invalid device string: {spec!r}")
            index = int(rest)
        if kind not in _KNOWN:
            raise RuntimeError(
                f"Expected one of {', '.join(_KNOWN)} device type at start of device string: {type}"
            )
        if index is not None and (not isinstance(index, int) or index < 0):
            raise RuntimeError(f"Device index must be a non-negative integer, got {index!r}")
        self.type, self.index = kind, index

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"

    def __repr__(self) -> str:
        extra = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{extra})"

    def __eq__(self, other: object) -> bool:
        # As torch.device: equal to devices only (device("cpu") == "cpu" is False there too).
        if not isinstance(other, device):
            return NotImplemented
        return (self.type, self.index) == (other.type, other.index)

    def __hash__(self) -> int:
        return hash((self.type, self.index))

    def __reduce__(self) -> tuple[Any, ...]:
        return (device, (self.type, self.index))


CPU = device("cpu")


def device_types() -> tuple[str, ...]:
    """The device type names ``device()`` knows (``"cpu"``, ``"cuda"``, ...)."""
    return _KNOWN


def check_device(requested: Any, what: str = "") -> None:
    """Accept ``None``, ``"cpu"`` or a CPU ``device`` (``"cpu:0"`` too); raise for the rest.

    Raises:
        DeviceError: another device (the message says where CUDA runs in graphcap).
        RuntimeError: a malformed device string.
        TypeError: something that is not a device.
    """
    if requested is None:
        return
    parsed = requested if isinstance(requested, device) else device(requested)
    if parsed.type != "cpu" or parsed.index not in (None, 0):
        raise device_error(requested, what)
