"""Input signatures and feed validation, shared by every backend a ``Session`` drives.

A :class:`Signature` is the ordered list of a model's inputs with their types (symbolic dims
included). :meth:`Signature.validate` checks a whole feed dict at once and raises one
:class:`~runtime.errors.FeedError` that lists every problem and prints the expected
signature, e.g. ``x: f32[batch, 8], ids: i64[batch, seq]``.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from export.onnx.declared import declared_dims
from ir.dtypes import from_onnx
from ir.errors import DTypeError
from ir.types import Dim, TensorType
from runtime.errors import FeedError

if TYPE_CHECKING:
    import onnx

    from ir.graph import Value


_SHOWN = 20  # problems (and inputs) an error lists
_HINTS = 5  # unexpected names that get a "did you mean" hint
_HINT_NAMES = 2000  # hints only when there are at most this many names to compare with


@dataclass(frozen=True, slots=True)
class Signature:
    """Named, typed tensors in order: a model's inputs (or outputs).

    Attributes:
        specs: ``(name, type)`` pairs; a dim is an int, a symbol name, or None (any size).
    """

    specs: tuple[tuple[str, TensorType], ...]
    _index: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Name lookups are O(1), so checking n feeds is O(n), not O(n^2).
        object.__setattr__(self, "_index", {name: i for i, (name, _) in enumerate(self.specs)})

    @classmethod
    def from_values(cls, values: list[Value]) -> Signature:
        """The signature of graph values (``graph.inputs`` or ``graph.outputs``)."""
        return cls(tuple((v.name, v.type) for v in values))

    @classmethod
    def from_onnx(cls, infos: Any, skip: frozenset[str] = frozenset()) -> Signature:
        """The signature of ONNX ``ValueInfoProto``s, leaving out the names in ``skip``."""
        return cls(tuple((i.name, _onnx_type(i)) for i in infos if i.name not in skip))

    @property
    def names(self) -> tuple[str, ...]:
        """The names, in order."""
        return tuple(name for name, _ in self.specs)

    def __getitem__(self, name: str) -> TensorType:
        return self.specs[self._index[name]][1]

    def __iter__(self) -> Iterator[tuple[str, TensorType]]:
        return iter(self.specs)

    def __len__(self) -> int:
        return len(self.specs)

    def __str__(self) -> str:
        return ", ".join(f"{name}: {t}" for name, t in self.specs)

    def validate(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Check ``feeds`` against the signature and return them as arrays.

        Checks names (missing and unexpected), dtypes, ranks, static dims, and that each
        symbolic dim has one size across all feeds of the call. The work is linear in the
        number of inputs and feeds.

        Raises:
            FeedError: one error listing the problems (the first ``_SHOWN``, then a count),
                followed by the expected signature (elided past ``_SHOWN`` inputs).
        """
        arrays = {k: v if isinstance(v, np.ndarray) else np.asarray(v) for k, v in feeds.items()}
        problems = [f"missing input {n!r} ({t})" for n, t in self.specs if n not in arrays]
        unexpected = [k for k in arrays if k not in self._index]
        problems += [self._unexpected(k, hint=i < _HINTS) for i, k in enumerate(unexpected)]
        bound: dict[str, tuple[int, str, int]] = {}
        for name, t in self.specs:
            if name in arrays:
                problems += _check_one(name, t, arrays[name], bound)
        if problems:
            head = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
            lines = "\n".join(f"  - {p}" for p in problems[:_SHOWN])
            if len(problems) > _SHOWN:
                lines += f"\n  - ... and {len(problems) - _SHOWN} more"
            raise FeedError(f"{head} with the feeds:\n{lines}\nexpected inputs: {self._brief()}")
        return arrays

    def _brief(self) -> str:
        if len(self.specs) <= _SHOWN:
            return str(self)
        shown = ", ".join(f"{name}: {t}" for name, t in self.specs[:_SHOWN])
        return f"{shown}, ... ({len(self.specs)} inputs)"

    def _unexpected(self, name: str, hint: bool) -> str:
        close = []
        if hint and len(self.specs) <= _HINT_NAMES:
            close = difflib.get_close_matches(name, self.names, n=1)
        did = f"; did you mean {close[0]!r}?" if close else ""
        return f"unexpected input {name!r}: the model has no such input{did}"


def _check_one(
    name: str, t: TensorType, arr: np.ndarray, bound: dict[str, tuple[int, str, int]]
) -> list[str]:
    """Problems of one feed; records the sizes its symbolic dims bind in ``bound``."""
    problems = []
    if arr.dtype != t.dtype:
        problems.append(
            f"input {name!r} has dtype {arr.dtype}, expected {t.dtype} ({t}); "
            f"convert it with .astype(np.{t.dtype.name})"
        )
    if t.shape is None:
        return problems
    if arr.ndim != len(t.shape):
        problems.append(
            f"input {name!r} has rank {arr.ndim} (shape {list(arr.shape)}), "
            f"expected rank {len(t.shape)} ({t})"
        )
        return problems
    for axis, (dim, size) in enumerate(zip(t.shape, arr.shape, strict=True)):
        problems += _check_dim(name, t, axis, dim, size, bound)
    return problems


def _check_dim(
    name: str, t: TensorType, axis: int, dim: Dim, size: int, bound: dict[str, tuple[int, str, int]]
) -> list[str]:
    if isinstance(dim, int):
        if dim != size:
            return [f"input {name!r} has size {size} in dim {axis}, expected {dim} ({t})"]
        return []
    if not isinstance(dim, str) or not dim.isidentifier():
        return []  # unknown (None) or an expression such as "batch*8": any size
    first = bound.setdefault(dim, (size, name, axis))
    if first[0] != size:
        return [
            f"symbol {dim!r} is {first[0]} in input {first[1]!r} (dim {first[2]}) but "
            f"{size} in input {name!r} (dim {axis}); every use of a symbol has one size per run"
        ]
    return []


def _onnx_type(info: onnx.ValueInfoProto) -> TensorType:
    tensor = info.type.tensor_type
    try:
        dtype = from_onnx(tensor.elem_type)
    except DTypeError as err:
        raise DTypeError(f"input {info.name!r}: {err}") from None
    if not tensor.HasField("shape"):
        return TensorType(dtype, None)
    return TensorType(dtype, declared_dims(tensor.shape))
