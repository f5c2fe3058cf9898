"""Which library the ports import: ``"torch"`` or ``"graphcap"``.

A port reads :func:`backend` once, at import, and takes its PyTorch names from that library.
The default comes from the ``PORT_BACKEND`` environment variable (graphcap when unset), so a
port also runs as a plain script: ``PORT_BACKEND=torch python -m tests.ports.<name>``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

BACKENDS = ("graphcap", "torch")
_current = os.environ.get("PORT_BACKEND", "graphcap")


def backend() -> str:
    """The library the port being imported should use.

    Raises:
        ValueError: ``PORT_BACKEND`` names neither library.
    """
    if _current not in BACKENDS:
        raise ValueError(f"PORT_BACKEND must be one of {BACKENDS}, got {_current!r}")
    return _current


@contextlib.contextmanager
def selected(name: str) -> Iterator[None]:
    """Within the block, ports import ``name``'s library."""
    global _current
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {name!r}")
    saved, _current = _current, name
    try:
        yield
    finally:
        _current = saved
