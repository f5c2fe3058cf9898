"""The ``device=``/``dtype=`` arguments every layer constructor takes, checked in one place."""

from __future__ import annotations

from typing import Any

import numpy as np

from tracer._device import check_device


def param_dtype(device: Any = None, dtype: Any = None) -> np.dtype:
    """The parameters' dtype (float32 by default), after checking ``device``.

    Raises:
        DeviceError: a device other than the CPU, which is where eager tensors live.
    """
    check_device(device, "layer parameters")
    return np.dtype(np.float32 if dtype is None else dtype)
