"""Helpers for the torch-parity tests of ``tracer.nn`` layers and losses.

``compare`` runs one graphcap module and one torch module with the same weights (copied by
``state_dict`` name, after checking that keys and shapes agree) on the same inputs, then
compares outputs, input gradients, parameter gradients and buffers. ``export_check``
traces a module, asserts the expected op types are in the graph, and runs the ONNX file on
onnxruntime against eager.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import tracer
from runtime import Session
from tracer.nn.module import Module

TOL = {
    np.dtype(np.float32): {"rtol": 1e-4, "atol": 1e-5},
    np.dtype(np.float64): {"rtol": 1e-9, "atol": 1e-10},
}


def tol(dtype: Any) -> dict[str, float]:
    """The comparison tolerance for ``dtype``."""
    return TOL[np.dtype(dtype)]


def copy_from_torch(ours: Module, theirs: Any) -> None:
    """Load ``theirs``' state into ``ours`` after checking keys, order and shapes agree."""
    mine = [(k, tuple(v.shape)) for k, v in ours.state_dict().items()]
    torch_ = [(k, tuple(v.shape)) for k, v in theirs.state_dict().items()]
    assert mine == torch_
    ours.load_state_dict(
        {k: tracer.tensor(v.detach().numpy()) for k, v in theirs.state_dict().items()}
    )


def _numpy(x: Any) -> np.ndarray:
    return x.detach().numpy()


def _flat(out: Any) -> list[Any]:
    if isinstance(out, tuple | list):
        return [t for o in out for t in _flat(o)]
    return [out]


def compare(
    torch: Any,
    ours: Module,
    theirs: Any,
    arrays: Sequence[np.ndarray],
    dtype: Any = np.float32,
    grad: Sequence[bool] | None = None,
    loss: Callable[[Any], Any] | None = None,
) -> None:
    """Same weights and inputs through both modules: outputs, gradients and buffers agree.

    Args:
        torch: the torch module (so this file does not import it).
        ours: the graphcap module.
        theirs: the torch module, with the same constructor arguments.
        arrays: the inputs; floating ones are cast to ``dtype`` and require grad.
        dtype: float32 or float64 (the modules are converted too).
        grad: which inputs require grad (default: the floating ones).
        loss: turns the (flattened) outputs into one scalar; default ``sum(o * (o + 0.3))``
            (not just squares: a normalised output's squares give the bias no gradient).
    """
    theirs = theirs.to(getattr(torch, np.dtype(dtype).name))
    ours.to(dtype)
    copy_from_torch(ours, theirs)
    arrays = [a.astype(dtype) if a.dtype.kind == "f" else a for a in arrays]
    grad = [a.dtype.kind == "f" for a in arrays] if grad is None else grad
    a = [tracer.tensor(x, requires_grad=g) for x, g in zip(arrays, grad, strict=True)]
    b = [torch.tensor(x, requires_grad=g) for x, g in zip(arrays, grad, strict=True)]
    outs_a, outs_b = _flat(ours(*a)), _flat(theirs(*b))
    t = tol(dtype)
    assert len(outs_a) == len(outs_b)
    for x, y in zip(outs_a, outs_b, strict=True):
        assert tuple(x.shape) == tuple(y.shape)
        np.testing.assert_allclose(_numpy(x), _numpy(y), **t)
    floats = [(x, y) for x, y in zip(outs_a, outs_b, strict=True) if y.is_floating_point()]
    if not any(y.requires_grad for _, y in floats):
        return
    reduce = loss or (lambda outs: sum((o * (o + 0.3)).sum() for o in outs))
    reduce([x for x, _ in floats]).backward()
    reduce([y for _, y in floats]).backward()
    for i, (x, y) in enumerate(zip(a, b, strict=True)):
        if y.requires_grad:
            np.testing.assert_allclose(_numpy(x.grad), _numpy(y.grad), err_msg=f"input {i}", **t)
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        np.testing.assert_allclose(
            _numpy(p.grad), _numpy(theirs_params[name].grad), err_msg=name, **t
        )
    theirs_state = theirs.state_dict()
    for name, v in ours.state_dict().items():
        np.testing.assert_allclose(_numpy(v), _numpy(theirs_state[name]), err_msg=name, **t)


def export_check(
    module: Module,
    arrays: Sequence[np.ndarray],
    op_types: Sequence[str] = (),
    dynamic_axes: dict[str, Any] | None = None,
    feeds: Sequence[np.ndarray] | None = None,
) -> list[str]:
    """Trace ``module``, run it on onnxruntime and compare with eager.

    The trace sees ``arrays``; onnxruntime and eager run ``feeds`` (default the same
    arrays). Every name in ``op_types`` must be a node of the graph.

    Returns:
        The graph's op types, in order.
    """
    module.eval()
    graph = tracer.trace(module, tuple(tracer.tensor(a) for a in arrays), dynamic_axes=dynamic_axes)
    ops = [n.op.op_type for n in graph.nodes]
    for op_type in op_types:
        assert op_type in ops, (op_type, ops)
    feeds = arrays if feeds is None else feeds
    session = Session(graph, backend="onnxruntime")
    got = list(session.run({v.name: a for v, a in zip(graph.inputs, feeds, strict=True)}).values())
    with tracer.no_grad():
        want = _flat(module(*(tracer.tensor(a) for a in feeds)))
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(g, w.numpy(), rtol=1e-4, atol=1e-5)
    return ops
