"""``inference_mode``: PyTorch's faster ``no_grad`` for inference, as a context or decorator.

Eagerly it is ``no_grad``: nothing inside is recorded for autograd. PyTorch also marks the
tensors made inside as inference tensors that autograd later refuses; graphcap does not
track that, so such tensors stay usable (a difference only for code that relied on the
error).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any

from tracer import _state

_enabled: list[bool] = []


class inference_mode(contextlib.ContextDecorator):  # noqa: N801 - PyTorch's name
    """Disable autograd recording in a ``with`` block or a decorated function.

    Works as ``with inference_mode():``, ``@inference_mode()``, ``@inference_mode`` and
    ``inference_mode(False)`` (which changes nothing).
    """

    def __new__(cls, mode: Any = True) -> Any:
        if callable(mode) and not isinstance(mode, bool):  # bare @inference_mode
            return cls()(mode)
        return super().__new__(cls)

    def __init__(self, mode: bool = True) -> None:
        self.mode = bool(mode)
        self._saved: list[tuple[bool, int]] = []

    def __enter__(self) -> None:
        self._saved.append((_state.grad_enabled, len(_enabled)))
        if self.mode:
            _state.grad_enabled = False
            _enabled.append(True)

    def __exit__(self, *exc: object) -> None:
        grad, depth = self._saved.pop()
        _state.grad_enabled = grad
        del _enabled[depth:]

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:  # type: ignore[override]
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with inference_mode(self.mode):
                return func(*args, **kwargs)

        return wrapper


def is_inference_mode_enabled() -> bool:
    """Whether code runs inside an active ``inference_mode``."""
    return bool(_enabled)
