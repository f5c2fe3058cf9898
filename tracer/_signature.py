"""How ``trace`` names a call's inputs and outputs: argument names, pytree paths, axes.

Arguments take ``fn``'s parameter names (or ``input_names``); each tensor in a nested
argument is named after its path (``hidden.0``: ``tracer.pytree.leaf_names``). Results are
named ``output``, ``output_<i>`` for a tuple or list, or their keys and field names, and
nested tensors after their paths (``output_1.0``).
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from tracer.pytree import TreeSpec, leaf_names

DynamicAxes = Mapping[str, Mapping[int, str] | Sequence[int]]
_SYMBOL = re.compile(r"^[A-Za-z_][\w.]*$")


def split_inputs(example_inputs: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    if isinstance(example_inputs, Mapping):
        return (), dict(example_inputs)
    if isinstance(example_inputs, tuple | list):
        return tuple(example_inputs), {}
    return (example_inputs,), {}


def input_names_of(
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    given: Sequence[str] | None,
) -> list[str]:
    if given is not None:
        if len(given) != len(args) + len(kwargs):
            raise ValueError(f"{len(given)} input_names for {len(args) + len(kwargs)} inputs")
        return list(given)
    target = getattr(fn, "forward", fn)
    try:
        params = [
            p.name
            for p in inspect.signature(target).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):
        params = []
    positional = params[: len(args)] if len(params) >= len(args) else []
    positional += [f"input_{i}" for i in range(len(positional), len(args))]
    return [*positional, *kwargs]


def parameter_names(fn: Any) -> dict[int, str]:
    names: dict[int, str] = {}
    for method in ("named_parameters", "named_buffers"):
        if callable(getattr(fn, method, None)):
            for name, t in getattr(fn, method)():
                names.setdefault(id(t), name)
    return names


def normalise_axes(dynamic_axes: DynamicAxes) -> dict[str, dict[int, str]]:
    out: dict[str, dict[int, str]] = {}
    for name, spec in dynamic_axes.items():
        if isinstance(spec, Mapping):
            out[name] = {int(a): str(s) for a, s in spec.items()}
        else:
            out[name] = {int(a): f"{name}_{int(a)}" for a in spec}
        for symbol in out[name].values():
            if not _SYMBOL.match(symbol):
                raise ValueError(
                    f"dynamic_axes[{name!r}]: symbol {symbol!r} is not a name (letters, digits, "
                    "'_' and '.'), as dimension expressions such as 'past+seq' need"
                )
    return out


def _top_items(spec: TreeSpec) -> list[tuple[str, TreeSpec]]:
    """The default name and structure of each top-level result."""
    if spec.kind in ("tuple", "list"):
        return [(f"output_{k}", c) for k, c in zip(spec.keys, spec.children, strict=True)]
    if spec.kind in ("dict", "namedtuple", "dataclass"):
        return [(str(k), c) for k, c in zip(spec.keys, spec.children, strict=True)]
    return [("output", spec)]


def output_names_of(spec: TreeSpec, given: Sequence[str] | None) -> list[str]:
    """The name of each tensor of a result of structure ``spec``.

    ``given`` names each top-level result (a nested one's tensors add their paths), or
    each tensor.

    Raises:
        ValueError: ``given`` names neither every result nor every tensor.
    """
    top = _top_items(spec)
    names = [n for name, sub in top for n in leaf_names(name, sub)]
    if given is None or len(given) == len(names):
        return names if given is None else list(given)
    if len(given) != len(top):
        raise ValueError(f"{len(given)} output_names for {len(top)} results ({len(names)} tensors)")
    return [n for name, (_, sub) in zip(given, top, strict=True) for n in leaf_names(name, sub)]
