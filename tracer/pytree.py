"""Pytrees: nested tuples, lists, dicts, named tuples and dataclasses, flattened one way.

``trace``, ``compile`` and ``graphcap export`` take arguments and give results that may be
nested containers of tensors, such as an LSTM's ``(output, (h, c))``. They flatten them
with :func:`tree_flatten` into leaves (tensors become graph inputs and outputs) and a
:class:`TreeSpec` that :func:`tree_unflatten` uses to rebuild the structure, as JAX's
``tree_util`` does. ``None`` is an empty container (no leaf); anything that is not a
container is a leaf.

Each leaf has a path of keys (tuple and list positions, dict keys, field names);
:func:`leaf_names` joins a name and the path with dots, so argument ``hidden = (h, c)``
gives graph inputs ``hidden.0`` and ``hidden.1`` and a result ``{"logits": ...}`` the
output ``logits``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["TreeSpec", "leaf_names", "tree_flatten", "tree_leaves", "tree_unflatten"]


@dataclass(frozen=True)
class TreeSpec:
    """The structure of a pytree without its leaves (hashable, comparable).

    Attributes:
        kind: ``"leaf"``, ``"none"``, ``"tuple"``, ``"list"``, ``"dict"``, ``"namedtuple"``
            or ``"dataclass"``.
        keys: the child keys: positions, dict keys or field names.
        children: one spec per child.
        type: the named tuple or dataclass type (None for the others).
    """

    kind: str
    keys: tuple[Any, ...] = ()
    children: tuple[TreeSpec, ...] = ()
    type: Any = None

    @property
    def num_leaves(self) -> int:
        """How many leaves the structure holds."""
        if self.kind == "leaf":
            return 1
        return sum(c.num_leaves for c in self.children)

    def paths(self) -> list[tuple[Any, ...]]:
        """The key path of every leaf, in flattening order."""
        if self.kind == "leaf":
            return [()]
        return [(k, *p) for k, c in zip(self.keys, self.children, strict=True) for p in c.paths()]


LEAF = TreeSpec("leaf")


def tree_flatten(tree: Any) -> tuple[list[Any], TreeSpec]:
    """The leaves of ``tree`` (depth first, in container order) and its structure.

    Dicts keep their insertion order, so results come out in the order the code built them.
    """
    leaves: list[Any] = []
    return leaves, _flatten(tree, leaves)


def _flatten(tree: Any, leaves: list[Any]) -> TreeSpec:
    if tree is None:
        return TreeSpec("none")
    if isinstance(tree, tuple) and hasattr(tree, "_fields"):
        return _node("namedtuple", tuple(tree._fields), tuple(tree), leaves, type(tree))
    if isinstance(tree, tuple | list):
        kind = "tuple" if isinstance(tree, tuple) else "list"
        return _node(kind, tuple(range(len(tree))), tuple(tree), leaves)
    if isinstance(tree, dict):
        return _node("dict", tuple(tree), tuple(tree.values()), leaves)
    if dataclasses.is_dataclass(tree) and not isinstance(tree, type):
        names = tuple(f.name for f in dataclasses.fields(tree))
        return _node("dataclass", names, tuple(getattr(tree, n) for n in names), leaves, type(tree))
    leaves.append(tree)
    return LEAF


def _node(
    kind: str, keys: tuple[Any, ...], values: tuple[Any, ...], leaves: list[Any], cls: Any = None
) -> TreeSpec:
    children = tuple(_flatten(v, leaves) for v in values)
    return TreeSpec(kind, keys, children, cls)


def tree_leaves(tree: Any) -> list[Any]:
    """The leaves of ``tree``, as :func:`tree_flatten` orders them."""
    return tree_flatten(tree)[0]


def tree_unflatten(spec: TreeSpec, leaves: Sequence[Any]) -> Any:
    """The tree of structure ``spec`` holding ``leaves``.

    Raises:
        ValueError: the number of leaves differs from the structure's.
    """
    if len(leaves) != spec.num_leaves:
        raise ValueError(f"{len(leaves)} leaves for a structure that holds {spec.num_leaves}")
    it = iter(leaves)
    return _build(spec, it)


def _build(spec: TreeSpec, it: Any) -> Any:
    if spec.kind == "leaf":
        return next(it)
    if spec.kind == "none":
        return None
    values = [_build(c, it) for c in spec.children]
    if spec.kind == "tuple":
        return tuple(values)
    if spec.kind == "list":
        return values
    if spec.kind == "dict":
        return dict(zip(spec.keys, values, strict=True))
    if spec.kind == "namedtuple":
        return spec.type(*values)
    fields = dict(zip(spec.keys, values, strict=True))
    init = {f.name for f in dataclasses.fields(spec.type) if f.init}
    obj = spec.type(**{k: v for k, v in fields.items() if k in init})
    for k, v in fields.items():
        if k not in init:  # fields the constructor does not take (init=False)
            object.__setattr__(obj, k, v)
    return obj


def leaf_names(name: str, spec: TreeSpec) -> list[str]:
    """The name of each leaf: ``name`` and the leaf's path, joined with dots.

    A leaf at the root is ``name`` itself; ``hidden = (h, c)`` gives ``hidden.0`` and
    ``hidden.1``; ``out = {"logits": x}`` gives ``out.logits``.
    """
    return [".".join([name, *(str(k) for k in path)]) for path in spec.paths()]
