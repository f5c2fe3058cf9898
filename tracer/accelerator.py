"""``tracer.accelerator``: ``torch.accelerator``'s questions, answered for eager tensors.

Eager tensors live on the CPU, so no accelerator is available; scripts that check
``torch.accelerator.is_available()`` take their CPU path.
"""

from __future__ import annotations


def is_available() -> bool:
    """False: eager tensors run on the CPU."""
    return False


def device_count() -> int:
    """0: no accelerator is visible to eager tensors."""
    return 0


def current_accelerator(check_available: bool = False) -> None:
    """None, as ``torch.accelerator`` answers when there is no accelerator."""
    return None
