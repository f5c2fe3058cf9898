"""Process-wide eager state read on every op: kept tiny because it sits on the hot path.

Grad mode is process-wide rather than thread-local: reading a module attribute costs a
fraction of a ``threading.local`` lookup, and eager training loops run on one thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tracer.trace import Tracer

grad_enabled: bool = True
# The active trace (tracer.trace sets it): every op applied is also lowered into its graph.
tracer: Tracer | None = None
