"""Errors and warnings the runtime raises on top of the shared hierarchy in ``ir.errors``."""

from __future__ import annotations

from typing import Any

from ir.errors import GraphcapError


class FeedError(GraphcapError, ValueError):
    """Feeds (or requested outputs) that do not fit a graph's signature.

    The message lists every problem found in one call and the expected signature.
    """


class NodeExecutionError(GraphcapError, RuntimeError):
    """A node whose kernel failed at run time; the message names the node and source line.

    Attributes:
        node: the failing ``ir.graph.Node`` (interpreter) or None (onnxruntime).
        source: the ``file:line`` the node was traced from, or None.
    """

    node: Any = None
    source: str | None = None


class BackendUnavailableError(GraphcapError, RuntimeError):
    """A backend that cannot load or run a model (missing package, op, or file)."""


class DeviceFallbackWarning(RuntimeWarning):
    """A device was requested but the model runs elsewhere (e.g. CUDA asked, CPU ran)."""
