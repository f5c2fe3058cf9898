"""PyTorch's legacy constructors: ``Tensor(*sizes)``, ``LongTensor(data)``, ``x.type(...)``.

``torch.Tensor(2, 3)`` makes an uninitialised 2 x 3 float32 tensor (zeros here),
``torch.Tensor([1, 2])`` a float32 copy of the data, ``torch.Tensor()`` an empty one and
``torch.Tensor(t)`` an alias of ``t``. ``FloatTensor``, ``LongTensor``, ``BoolTensor`` and
the rest do the same in their dtype, and ``isinstance(t, tracer.LongTensor)`` checks the
dtype, as in PyTorch. A single number is neither a size list nor data, and is refused.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir import dtypes as D  # noqa: N812 - the project's short name
from tracer._device import check_device, device_error
from tracer._tensor_base import TensorBase, to_array, wrap

# The legacy type names, as ``Tensor.type()`` returns them (PyTorch's spelling).
TYPE_NAMES: dict[np.dtype, str] = {
    D.float32: "FloatTensor",
    D.float64: "DoubleTensor",
    D.float16: "HalfTensor",
    D.int64: "LongTensor",
    D.int32: "IntTensor",
    D.int16: "ShortTensor",
    D.int8: "CharTensor",
    D.uint8: "ByteTensor",
    D.bool_: "BoolTensor",
}
_BY_NAME = {name: dtype for dtype, name in TYPE_NAMES.items()}


def is_size_list(args: tuple[Any, ...]) -> bool:
    """Whether constructor arguments are sizes (ints, not bools), as ``Tensor(2, 3)``."""
    return bool(args) and all(
        isinstance(a, int | np.integer) and not isinstance(a, bool | np.bool_) for a in args
    )


def legacy_data(args: tuple[Any, ...], dtype: np.dtype, name: str) -> np.ndarray | TensorBase:
    """What ``<name>(*args)`` holds: a fresh array, or the tensor to alias.

    Raises:
        TypeError: a lone number, several non-size arguments, or (for a typed constructor)
            a tensor of another dtype.
        RuntimeError: a negative size.
    """
    if not args:
        return np.zeros((0,), dtype)
    if is_size_list(args):
        sizes = tuple(int(a) for a in args)
        if any(s < 0 for s in sizes):
            raise RuntimeError(f"{name}(): negative dimension in {list(sizes)}")
        return np.zeros(sizes, dtype)  # PyTorch leaves them uninitialised
    if len(args) > 1:
        raise TypeError(
            f"{name}() takes either sizes (ints: {name}(2, 3)) or one sequence of data "
            f"({name}([1, 2])); got {len(args)} arguments of types "
            f"{', '.join(type(a).__name__ for a in args)}"
        )
    (data,) = args
    if isinstance(data, TensorBase):
        if name != "Tensor" and data.dtype != dtype:
            raise TypeError(f"expected {TYPE_NAMES[dtype]} (got {TYPE_NAMES.get(data.dtype)})")
        return data
    if isinstance(data, float | int | bool | np.generic):
        raise TypeError(
            f"{name}(): data must be a sequence (got {type(data).__name__}); use "
            f"tracer.tensor({data!r}) for a 0-d tensor, or {name}([{data!r}]) for a 1-d one"
        )
    values = np.asarray(data)
    if values.dtype.kind not in "biuf":
        to_array(values)  # raises the DTypeError that names what is supported
    with np.errstate(invalid="ignore", over="ignore"):  # C-style wrap, as PyTorch's casts
        return values.astype(dtype)


def check_kwargs(name: str, kwargs: dict[str, Any]) -> None:
    """Accept ``device=`` (the CPU) only, as the legacy constructors do.

    Raises:
        TypeError: another keyword (``requires_grad``, ``dtype``: use ``tracer.tensor``).
        DeviceError: a device other than the CPU.
    """
    extra = sorted(set(kwargs) - {"device"})
    if extra:
        raise TypeError(
            f"{name}() got unexpected keyword argument(s) {', '.join(extra)}; the legacy "
            "constructors take sizes or data and device=. Use tracer.tensor(data, dtype=..., "
            "requires_grad=...) or tracer.zeros(*sizes, dtype=..., requires_grad=...)"
        )
    check_device(kwargs.get("device"), f"{name}()")


class _TensorType(type):
    """Metaclass of ``FloatTensor`` & co.: calling makes a tensor, ``isinstance`` checks dtype."""

    dtype: np.dtype

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        check_kwargs(cls.__name__, kwargs)
        data = legacy_data(args, cls.dtype, cls.__name__)
        return data if isinstance(data, TensorBase) else wrap(data)

    def __instancecheck__(cls, obj: Any) -> bool:
        return isinstance(obj, TensorBase) and obj.dtype == cls.dtype

    def __repr__(cls) -> str:
        return f"<class 'tracer.{cls.__name__}'>"


def _legacy_type(dtype: np.dtype) -> Any:
    name = TYPE_NAMES[dtype]
    doc = f"``{name}(*sizes)`` or ``{name}(data)``: a {dtype} tensor (PyTorch's legacy type)."
    return _TensorType(name, (), {"dtype": dtype, "__doc__": doc, "__module__": "tracer"})


FloatTensor = _legacy_type(D.float32)
DoubleTensor = _legacy_type(D.float64)
HalfTensor = _legacy_type(D.float16)
LongTensor = _legacy_type(D.int64)
IntTensor = _legacy_type(D.int32)
ShortTensor = _legacy_type(D.int16)
CharTensor = _legacy_type(D.int8)
ByteTensor = _legacy_type(D.uint8)
BoolTensor = _legacy_type(D.bool_)


def type_name(dtype: np.dtype) -> str:
    """``"torch.FloatTensor"`` and so on: what ``Tensor.type()`` returns (PyTorch's names)."""
    return "torch." + TYPE_NAMES[np.dtype(dtype)]


def dtype_of_type(target: Any) -> np.dtype:
    """The dtype ``Tensor.type(target)`` converts to: a dtype, a legacy type or its name.

    Raises:
        DeviceError: a CUDA type name (``"torch.cuda.FloatTensor"``).
        TypeError: something that names no tensor type.
    """
    if isinstance(target, _TensorType):
        return target.dtype
    if isinstance(target, str):
        parts = target.split(".")
        if len(parts) == 3 and parts[1] == "cuda":
            raise device_error("cuda", f"type({target!r})")
        if len(parts) == 2 and parts[0] in ("torch", "tracer") and parts[1] in _BY_NAME:
            return _BY_NAME[parts[1]]
        raise TypeError(
            f"invalid type: {target!r}; expected a dtype or one of "
            f"{', '.join('torch.' + n for n in _BY_NAME)}"
        )
    try:
        return np.dtype(target)
    except TypeError:
        raise TypeError(f"invalid type: {target!r}; expected a dtype or a tensor type") from None
