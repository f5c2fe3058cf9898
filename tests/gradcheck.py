"""Finite-difference checks of vjp rules through eager autograd, first and second order.

Both checks compare a directional derivative: ``<J u, v>`` by central differences in
float64 against ``<u, J^T v>`` from the vjp rules (and the same one level up for the
second order, where the function is the first-order gradient contracted with ``w``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import tracer
from ir.ops.registry import OpDef
from tests.op_specs.common import Sample

EPS = 1e-6


def _outputs(result: Any) -> list[Any]:
    return list(result) if isinstance(result, tuple) else [result]


def _float_outputs(
    op: OpDef, arrays: Sequence[np.ndarray | None], attrs: dict[str, Any]
) -> list[np.ndarray]:
    outs = op.kernel(*arrays, **attrs)
    outs = list(outs) if isinstance(outs, tuple) else [outs]
    return [np.asarray(o) for o in outs if np.asarray(o).dtype.kind == "f"]


def wrt_inputs(sample: Sample) -> list[int]:
    """The inputs to perturb: ``sample.wrt`` or every floating input."""
    if sample.wrt is not None:
        return list(sample.wrt)
    return [i for i, x in enumerate(sample.inputs) if x is not None and x.dtype.kind == "f"]


def _fd(
    fn: Callable[[list[np.ndarray | None]], float],
    inputs: Sequence[np.ndarray | None],
    u: dict[int, np.ndarray],
) -> float:
    def shifted(t: float) -> list[np.ndarray | None]:
        return [x + t * u[i] if i in u and x is not None else x for i, x in enumerate(inputs)]

    return (fn(shifted(EPS)) - fn(shifted(-EPS))) / (2 * EPS)


def _first_order(
    op: OpDef,
    sample: Sample,
    wrt: list[int],
    v: list[np.ndarray],
    inputs: Sequence[np.ndarray | None],
    create_graph: bool,
) -> tuple[list[Any], list[Any]]:
    tensors = [
        None if x is None else tracer.tensor(x, requires_grad=i in wrt)
        for i, x in enumerate(inputs)
    ]
    outs = [o for o in _outputs(op(*tensors, **sample.attrs)) if o.dtype.kind == "f"]
    targets = [tensors[i] for i in wrt]
    grads = tracer.autograd.grad(
        outs, targets, [tracer.tensor(g) for g in v], create_graph=create_graph, allow_unused=True
    )
    return targets, list(grads)


def check_first_order(op: OpDef, sample: Sample, rng: np.random.Generator) -> tuple[float, float]:
    """``(autograd, finite differences)`` of ``<J u, v>`` for random ``u``, ``v``."""
    wrt = wrt_inputs(sample)
    inputs = sample.inputs
    outs = _float_outputs(op, inputs, sample.attrs)
    v = [rng.standard_normal(o.shape) for o in outs]
    u = {i: rng.standard_normal(np.shape(inputs[i])) for i in wrt}

    def phi(arrays: list[np.ndarray | None]) -> float:
        return float(
            sum(
                np.sum(o * w)
                for o, w in zip(_float_outputs(op, arrays, sample.attrs), v, strict=True)
            )
        )

    _, grads = _first_order(op, sample, wrt, v, inputs, create_graph=False)
    ad = sum(
        float(np.sum(g.numpy() * u[i])) for i, g in zip(wrt, grads, strict=True) if g is not None
    )
    return ad, _fd(phi, inputs, u)


def check_second_order(op: OpDef, sample: Sample, rng: np.random.Generator) -> tuple[float, float]:
    """``(autograd, finite differences)`` of the derivative of ``<grad <v, f>, w>`` along ``u``."""
    wrt = wrt_inputs(sample)
    inputs = sample.inputs
    outs = _float_outputs(op, inputs, sample.attrs)
    v = [rng.standard_normal(o.shape) for o in outs]
    w = {i: rng.standard_normal(np.shape(inputs[i])) for i in wrt}
    u = {i: rng.standard_normal(np.shape(inputs[i])) for i in wrt}

    def h(arrays: list[np.ndarray | None]) -> float:
        _, grads = _first_order(op, sample, wrt, v, arrays, create_graph=False)
        return sum(
            float(np.sum(g.numpy() * w[i]))
            for i, g in zip(wrt, grads, strict=True)
            if g is not None
        )

    targets, grads = _first_order(op, sample, wrt, v, inputs, create_graph=True)
    roots = [
        (g, w[i]) for i, g in zip(wrt, grads, strict=True) if g is not None and g.requires_grad
    ]
    ad = 0.0
    if roots:
        second = tracer.autograd.grad(
            [g for g, _ in roots], targets, [tracer.tensor(x) for _, x in roots], allow_unused=True
        )
        ad = sum(
            float(np.sum(s.numpy() * u[i]))
            for i, s in zip(wrt, second, strict=True)
            if s is not None
        )
    return ad, _fd(h, inputs, u)
