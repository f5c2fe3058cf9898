"""Which axes a compiled callable captures as dynamic: declared, or marked when sizes change.

As ``torch.compile(dynamic=None)`` does, ``compile`` and ``compile_step`` first capture every
size as it is; when a call brings a second size at some axis of a tensor argument, that axis
is marked dynamic and captured once more with a symbolic size, which then serves every size
there. ``dynamic=True`` marks every axis from the first call; ``dynamic=False`` never marks
any (one capture per shape, as before). Axes named in ``dynamic_axes`` are always dynamic.

Code that cannot run with a symbolic size (a reshape to the example's constant size, say)
fails to trace; the marked axes of that call are then given up and stay static, so the call
is captured per size as with ``dynamic=False``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tracer._signature import DynamicAxes
from tracer._tensor_base import TensorBase


class DynamicShapes:
    """The dynamic axes of one compiled callable, per argument name.

    Attributes:
        mode: ``None`` (mark an axis when a second size is seen), ``True`` (every axis) or
            ``False`` (only the declared axes).
        axes: argument name -> ``{axis: symbol}``, declared and marked.
    """

    def __init__(self, dynamic: bool | None, declared: DynamicAxes | None) -> None:
        if dynamic not in (None, True, False):
            raise ValueError(f"dynamic={dynamic!r}: expected None, True or False")
        self.mode = dynamic
        self.axes: dict[str, dict[int, str]] = {
            name: dict(axes_of(spec, name)) for name, spec in (declared or {}).items()
        }
        self._first: dict[str, tuple[int, ...]] = {}  # the shape each argument first had
        self._marked: dict[str, set[int]] = {}  # axes marked here, not declared
        self._static: set[tuple[str, int]] = set()  # marked axes given up after a failure

    def observe(self, names: Sequence[str], values: Sequence[Any]) -> None:
        """Mark the axes where a tensor argument's size differs from the first call's."""
        if self.mode is False:
            return
        for name, v in zip(names, values, strict=True):
            if not isinstance(v, TensorBase):
                continue
            shape = v._data.shape
            first = self._first.setdefault(name, shape)
            if len(first) != len(shape):
                continue  # another rank: another signature, as before
            for axis, (a, b) in enumerate(zip(first, shape, strict=True)):
                if (a != b or self.mode) and axis not in self.axes.get(name, {}):
                    self._mark(name, axis)

    def _mark(self, name: str, axis: int) -> None:
        if (name, axis) in self._static:
            return
        self.axes.setdefault(name, {})[axis] = f"{name}_{axis}"
        self._marked.setdefault(name, set()).add(axis)

    def give_up(self, names: Sequence[str]) -> bool:
        """Make the marked axes of ``names`` static for good; whether there were any."""
        changed = False
        for name in names:
            for axis in self._marked.pop(name, set()):
                del self.axes[name][axis]
                if not self.axes[name]:
                    del self.axes[name]
                self._static.add((name, axis))
                changed = True
        return changed

    def key(self, name: str, shape: Sequence[int]) -> tuple[Any, ...]:
        """``shape`` with the dynamic axes of argument ``name`` replaced by their symbols."""
        axes = self.axes.get(name)
        if not axes:
            return tuple(shape)
        return tuple(axes.get(i, n) for i, n in enumerate(shape))

    def for_capture(self, names: Sequence[str]) -> dict[str, dict[int, str]]:
        """The ``dynamic_axes`` to trace the arguments ``names`` with."""
        return {n: dict(self.axes[n]) for n in names if self.axes.get(n)}


def axes_of(spec: Mapping[int, str] | Sequence[int], name: str) -> Mapping[int, str]:
    """``{axis: symbol}``; a bare list of axes names them ``<name>_<axis>``, as ``trace``."""
    if isinstance(spec, Mapping):
        return {int(a): str(s) for a, s in spec.items()}
    return {int(a): f"{name}_{int(a)}" for a in spec}
