"""Hooks a port calls so the harness can run it twice with the same weights and compare.

Outside a comparison (a port run as a script, or on graphcap alone) every hook does nothing.
In a comparison the harness first runs the port on torch, which *records*: the weights of
each model when :func:`weights` is called, and the first value passed under each key to
:func:`loss`, :func:`value` and :func:`step`. Then it runs the port on graphcap, which
*checks*: :func:`weights` loads the recorded state dict into the model, and the harness
compares what the two runs recorded. Both runs switch dropout off when :func:`weights` is
called, since the two libraries' random masks cannot agree.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np


class Session:
    """What one comparison recorded: reference weights and the first value per key.

    Args:
        mode: ``"record"`` (the torch run) or ``"check"`` (the graphcap run).
        reference: the recording session a checking session loads weights from.
    """

    def __init__(self, mode: str, reference: Session | None = None) -> None:
        if mode not in ("record", "check") or (mode == "check") != (reference is not None):
            raise ValueError("a 'check' session needs the 'record' session it compares with")
        self.mode, self.reference = mode, reference
        self.weights: list[dict[str, np.ndarray]] = []
        self.values: dict[str, np.ndarray] = {}


_session: Session | None = None


@contextlib.contextmanager
def session(s: Session | None) -> Iterator[None]:
    """Within the block, the hooks record into (or check against) ``s``."""
    global _session
    saved, _session = _session, s
    try:
        yield
    finally:
        _session = saved


def as_numpy(x: Any) -> np.ndarray:
    """A tensor of either library, or a Python number, as a NumPy array (a copy)."""
    if hasattr(x, "detach"):
        x = x.detach()
    if hasattr(x, "cpu"):
        x = x.cpu()
    if hasattr(x, "numpy"):
        x = x.numpy()
    return np.array(x)


def _state(model: Any) -> dict[str, np.ndarray]:
    return {k: as_numpy(v) for k, v in model.state_dict().items()}


def _no_dropout(model: Any) -> None:
    for m in model.modules():
        if type(m).__name__ == "Dropout":
            m.p = 0.0
        if isinstance(getattr(m, "dropout", None), float):
            m.dropout = 0.0


def weights(model: Any) -> None:
    """Give ``model`` the reference run's weights (the n-th call gets the n-th model's)."""
    s = _session
    if s is None:
        return
    _no_dropout(model)
    if s.mode == "record":
        s.weights.append(_state(model))
        return
    assert s.reference is not None
    n = len(s.weights)
    if n >= len(s.reference.weights):
        raise AssertionError(f"the graphcap run built more models than the torch run ({n + 1})")
    import tracer  # the checking run is graphcap's

    state = s.reference.weights[n]
    model.load_state_dict({k: tracer.tensor(v) for k, v in state.items()})
    s.weights.append(_state(model))


def value(key: str, x: Any) -> None:
    """Record the first value passed under ``key`` (a tensor, number, or nest of them)."""
    s = _session
    if s is None or key in s.values:
        return
    if isinstance(x, tuple | list):
        for i, item in enumerate(x):
            value(f"{key}[{i}]", item)
        s.values[key] = np.zeros(0)  # marks the key as taken
        return
    s.values[key] = as_numpy(x)


def loss(x: Any, key: str = "first loss") -> None:
    """Record the first loss."""
    value(key, x)


def step(model: Any, key: str = "after one step") -> None:
    """Record ``model``'s parameters and buffers after its first optimizer step."""
    s = _session
    if s is None or key in s.values:
        return
    s.values[key] = np.zeros(0)
    for name, v in _state(model).items():
        s.values[f"{key}: {name}"] = v
