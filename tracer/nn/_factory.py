"""The ``device=``/``dtype=`` arguments every layer constructor takes, checked in one place."""

from __future__ import annotations

from typing import Any

import numpy as np


def param_dtype(device: Any = None, dtype: Any = None) -> np.dtype:
    """The parameters' dtype (float32 by default), after checking ``device``.

    Raises:
        RuntimeError: a device other than the CPU, which is where eager tensors live.
    """
    if device is not None and str(device).split(":")[0] != "cpu":
        raise RuntimeError(
            f"device={str(device)!r}: graphcap's eager tensors and modules live on the CPU. "
            "CUDA runs compiled and exported graphs (tracer.compile, or "
            "runtime.Session(graph, device='cuda') on onnxruntime's CUDA provider)."
        )
    return np.dtype(np.float32 if dtype is None else dtype)
