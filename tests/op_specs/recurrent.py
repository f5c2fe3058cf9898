"""Specs of ``ir/ops/recurrent.py``: LSTM, GRU, RNN and their ``ai.graphcap`` gradient ops.

onnxruntime's CPU kernels refuse ``layout=1`` and have no float64 kernels, so ``layout=1``
samples are float64 only (``tests/tracer/test_recurrent.py`` checks them against onnx.reference and
torch). onnx.reference ignores ``sequence_lens``, ``clip``, ``activations`` and
``input_forget``, so it is not run on the specs; ``tests/tracer/test_recurrent.py`` runs it on the
samples it supports.
"""

from __future__ import annotations

from typing import Any

import numpy as np

import export.onnx.schemas  # noqa: F401  (registers the ai.graphcap schemas with onnx)
from ir.ops import get
from ir.ops.recurrent import DOMAIN
from tests.op_specs.common import F64, FLOATS, OpSpec, Sample

SEQ, BATCH, INPUT, HIDDEN = 4, 3, 2, 3
GATES = {"LSTM": 4, "GRU": 3, "RNN": 1}


def layer_inputs(
    rng: np.random.Generator,
    dtype: np.dtype,
    op_type: str,
    *,
    nd: int = 1,
    bias: bool = False,
    lens: list[int] | None = None,
    init: bool = False,
    peepholes: bool = False,
    layout: int = 0,
) -> list[np.ndarray | None]:
    """Inputs of one layer; weights are small enough that gates rarely saturate."""
    g = GATES[op_type]

    def u(*shape: int, scale: float = 1.0) -> np.ndarray:
        return (rng.uniform(-scale, scale, size=shape)).astype(dtype)

    x = u(BATCH, SEQ, INPUT, scale=2) if layout else u(SEQ, BATCH, INPUT, scale=2)
    state = (BATCH, nd, HIDDEN) if layout else (nd, BATCH, HIDDEN)
    inputs = [x, u(nd, g * HIDDEN, INPUT), u(nd, g * HIDDEN, HIDDEN)]
    inputs.append(u(nd, 2 * g * HIDDEN) if bias else None)
    inputs.append(None if lens is None else np.asarray(lens, np.int32))
    inputs.append(u(*state) if init else None)
    if op_type == "LSTM":
        inputs.append(u(*state) if init else None)
        inputs.append(u(nd, 3 * HIDDEN) if peepholes else None)
    while inputs[-1] is None:
        inputs.pop()
    return inputs


def _samples(op_type: str, rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    h = {"hidden_size": HIDDEN}
    lstm = op_type == "LSTM"
    every = {"bias": True, "init": True, "peepholes": lstm}
    samples = [
        Sample(tuple(layer_inputs(rng, dtype, op_type)), h),
        Sample(tuple(layer_inputs(rng, dtype, op_type, **every)), {**h, "direction": "reverse"}),
        Sample(
            tuple(layer_inputs(rng, dtype, op_type, nd=2, lens=[4, 1, 3], **every)),
            {**h, "direction": "bidirectional"},
        ),
        Sample(
            tuple(layer_inputs(rng, dtype, op_type, bias=True, lens=[2, 0, 4], init=True)),
            {**h, "direction": "reverse", "clip": 1.5},
        ),
        Sample(
            tuple(layer_inputs(rng, dtype, op_type, nd=2, bias=True, lens=[3, 4, 2])),
            {**h, "direction": "bidirectional", **_other_activations(op_type)},
        ),
    ]
    if op_type == "LSTM":
        samples.append(
            Sample(
                tuple(layer_inputs(rng, dtype, op_type, lens=[1, 4, 3], **every)),
                {**h, "input_forget": 1},
            )
        )
    if op_type == "GRU":
        samples.append(
            Sample(
                tuple(layer_inputs(rng, dtype, op_type, nd=2, lens=[1, 4, 3], **every)),
                {**h, "direction": "bidirectional", "linear_before_reset": 1},
            )
        )
    if dtype == F64:  # onnxruntime refuses layout=1 and has no float64 kernels
        samples += [
            Sample(tuple(layer_inputs(rng, dtype, op_type, layout=1, **every)), {"layout": 1}),
            Sample(
                tuple(layer_inputs(rng, dtype, op_type, nd=2, lens=[2, 4, 3], layout=1, **every)),
                {**h, "layout": 1, "direction": "bidirectional"},
            ),
        ]
    return samples


def _other_activations(op_type: str) -> dict[str, Any]:
    """Non-default activations, with alphas and betas, for both directions."""
    if op_type == "LSTM":
        names = ["HardSigmoid", "Softsign", "ScaledTanh", "Sigmoid", "LeakyRelu", "Softplus"]
        return {
            "activations": names,
            "activation_alpha": [0.3, 1.5, 0.2],
            "activation_beta": [0.6, 0.7],
        }
    if op_type == "GRU":
        return {"activations": ["Sigmoid", "Elu", "HardSigmoid", "Tanh"], "activation_alpha": [0.8]}
    return {"activations": ["Relu", "Affine"], "activation_alpha": [0.9], "activation_beta": [0.1]}


def _grad_samples(op_type: str, rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    """The forward samples with gradients of some of the outputs appended."""
    samples = []
    for k, s in enumerate(_samples(op_type, rng, dtype)):
        outs = get(op_type).kernel(*s.inputs, **s.attrs)
        n_in = 8 if op_type == "LSTM" else 6
        grads = [rng.standard_normal(o.shape).astype(dtype) for o in outs]
        if k % 3 == 1:
            grads[0] = None  # only the final states' gradients
        elif k % 3 == 2:
            grads[1:] = [None] * (len(grads) - 1)  # only Y's
        inputs = (*s.inputs, *[None] * (n_in - len(s.inputs)), *grads)
        samples.append(Sample(inputs, s.attrs))
    return samples


_GRAD_SKIP = {
    "reference": "ai.graphcap op: onnx.reference has no implementation of it; it is checked "
    "as the vjp of its forward op (finite differences) and against torch in test_recurrent",
    "onnxruntime": "ai.graphcap op: onnxruntime does not know the domain",
}
_SKIP = {
    "reference": "onnx.reference's LSTM/GRU/RNN ignore sequence_lens, clip, activations and "
    "input_forget (op_lstm.py, op_gru.py, op_rnn.py); test_recurrent.py runs it on the rest",
    "onnxruntime/float64": "onnxruntime's CPU LSTM/GRU/RNN have no double kernels "
    "('does not support double yet')",
}
_SECOND = "the vjp is one *Grad op with no vjp: second order through recurrences is unsupported"


def _specs(op_type: str) -> list[OpSpec]:
    return [
        OpSpec(
            op_type,
            lambda rng, dtype: _samples(op_type, rng, dtype),
            FLOATS,
            grad_order=1,
            rtol=1e-4,
            atol=1e-5,
            oracle_skip=_SKIP,
            no_second_order=_SECOND,
        ),
        OpSpec(
            f"{op_type}Grad",
            lambda rng, dtype: _grad_samples(op_type, rng, dtype),
            FLOATS,
            grad_order=0,
            oracle_skip=_GRAD_SKIP,
            domain=DOMAIN,
        ),
    ]


SPECS: list[OpSpec] = [spec for op_type in GATES for spec in _specs(op_type)]
