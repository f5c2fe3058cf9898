"""``tracer.cuda``: what ``torch.cuda`` answers on a machine where eager CUDA is absent.

graphcap's eager tensors live on the CPU, so ``is_available()`` is False and
``device_count()`` is 0, and scripts that branch on them take their CPU path. Seeding the
CUDA generators is accepted and does nothing (there is none to seed, as in a CPU-only
PyTorch). Anything else (``current_device()``, ``synchronize()``, ``amp``, ...) raises the
error that says where CUDA does run: compiled and exported graphs on onnxruntime's CUDA
provider.
"""

from __future__ import annotations

from typing import Any

from tracer._device import device_error


def is_available() -> bool:
    """False: eager tensors never run on CUDA (compiled graphs may: see ``tracer.compile``)."""
    return False


def device_count() -> int:
    """0: no CUDA device is visible to eager tensors."""
    return 0


def is_initialized() -> bool:
    """False, as in a PyTorch without CUDA."""
    return False


def manual_seed(seed: int) -> None:
    """Accepted and ignored: there is no CUDA generator to seed (``tracer.manual_seed`` is)."""


def manual_seed_all(seed: int) -> None:
    """Accepted and ignored, as :func:`manual_seed`."""


def __getattr__(name: str) -> Any:
    if name.startswith("__"):
        raise AttributeError(name)
    raise AttributeError(str(device_error("cuda", f"torch.cuda.{name}")))
