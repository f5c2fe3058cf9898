"""Post-accumulate-grad hooks: code to run when a leaf's ``.grad`` is final in a backward.

``Tensor.register_post_accumulate_grad_hook(hook)`` (PyTorch's name) calls ``hook(tensor)``
once per ``backward()``, right after the engine has added the tensor's gradient of that
backward to ``.grad`` for the last time. Data-parallel training hangs its gradient
all-reduce on it, so communication starts while the rest of the backward still runs.

The hooks live in a table keyed weakly by tensor, not on the tensor: an eager tensor then
carries no extra field, and the engine takes its usual path while the table is empty.

A hook may also :func:`queue_callback` a function to run when the whole ``backward()`` has
finished (PyTorch's ``Variable._execution_engine.queue_callback``): the all-reduce waits
there for the buckets still in flight.
"""

from __future__ import annotations

import contextlib
import itertools
import weakref
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracer.tensor import Tensor

Hook = Callable[[Any], None]

POST_ACCUMULATE: dict[int, tuple[weakref.ref[Any], dict[int, Hook]]] = {}
"""``id(leaf)`` -> (a weak reference to the leaf, its hooks by handle id, oldest first).

Keyed by id, not by tensor: a ``WeakKeyDictionary`` compares keys with ``==``, which is
elementwise on tensors. An entry leaves the table when its tensor dies or loses its hooks.
"""

_ids = itertools.count()


def _forget(key: int) -> Callable[[Any], None]:
    def drop(ref: weakref.ref[Any]) -> None:
        entry = POST_ACCUMULATE.get(key)
        if entry is not None and entry[0] is ref:
            del POST_ACCUMULATE[key]

    return drop


class RemovableHandle:
    """What registering a hook returns; ``remove()`` unregisters it (PyTorch's name).

    Also a context manager that removes the hook on exit.
    """

    def __init__(self, tensor: Any, hook_id: int) -> None:
        self._tensor = weakref.ref(tensor)
        self.id = hook_id

    def remove(self) -> None:
        """Unregister the hook; removing it twice is harmless."""
        tensor = self._tensor()
        entry = POST_ACCUMULATE.get(id(tensor)) if tensor is not None else None
        if entry is None or entry[0]() is not tensor:
            return
        entry[1].pop(self.id, None)
        if not entry[1]:  # an empty table keeps the engine on its usual path
            del POST_ACCUMULATE[id(tensor)]

    def __enter__(self) -> RemovableHandle:
        return self

    def __exit__(self, *exc: object) -> None:
        self.remove()


def register_post_accumulate_grad_hook(tensor: Tensor, hook: Hook) -> RemovableHandle:
    """Call ``hook(tensor)`` after each backward has accumulated ``tensor.grad`` fully.

    Args:
        tensor: a leaf that requires grad (a parameter).
        hook: called with the tensor; its return value is ignored. ``tensor.grad`` then
            holds everything this backward added to it (plus what it held before).

    Returns:
        A handle whose ``remove()`` unregisters the hook.

    Raises:
        RuntimeError: the tensor does not require grad, or is not a leaf.
        TypeError: ``hook`` is not callable.
    """
    if not tensor.requires_grad:
        raise RuntimeError("cannot register a hook on a tensor that doesn't require gradient")
    if tensor.grad_fn is not None:
        raise RuntimeError(
            "post accumulate grad hooks cannot be registered on non-leaf tensors; its "
            "gradient never accumulates into .grad"
        )
    if not callable(hook):
        raise TypeError(f"hook must be callable, got {type(hook).__name__}")
    hook_id = next(_ids)
    entry = POST_ACCUMULATE.get(id(tensor))
    if entry is None:
        entry = POST_ACCUMULATE[id(tensor)] = (weakref.ref(tensor, _forget(id(tensor))), {})
    entry[1][hook_id] = hook
    return RemovableHandle(tensor, hook_id)


def hooked_leaves() -> list[Any]:
    """The live tensors that have hooks."""
    found = (ref() for ref, _ in list(POST_ACCUMULATE.values()))
    return [t for t in found if t is not None]


def run_post_accumulate_hooks(tensor: Any) -> None:
    """Call ``tensor``'s hooks, oldest first (a hook may remove itself or another)."""
    entry = POST_ACCUMULATE.get(id(tensor))
    if entry is not None:
        for hook in list(entry[1].values()):
            hook(tensor)


_FINAL: list[list[Callable[[], None]]] = []
"""One queue of final callbacks per ``backward()`` running (a hook may run another)."""


def queue_callback(callback: Callable[[], None]) -> None:
    """Run ``callback()`` when the ``backward()`` now running has written every ``.grad``.

    Callbacks run in the order queued, once; one may queue another.

    Raises:
        RuntimeError: no backward is running (call it from a hook).
    """
    if not _FINAL:
        raise RuntimeError("Final callbacks can only be installed during backward pass.")
    _FINAL[-1].append(callback)


@contextlib.contextmanager
def final_callbacks() -> Iterator[None]:
    """Scope one ``backward()``: callbacks queued inside run as it ends without an error."""
    queue: list[Callable[[], None]] = []
    _FINAL.append(queue)
    try:
        yield
        i = 0
        while i < len(queue):  # a callback may queue more
            queue[i]()
            i += 1
    finally:
        _FINAL.pop()
