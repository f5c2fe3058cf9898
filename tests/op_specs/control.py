"""Specs of ``ir/ops/control.py``: If, Loop and Scan, with small ``ir.Graph`` bodies.

The forward oracles build their one-node models with ``onnx.helper.make_node``, which cannot
write an ``ir.Graph`` attribute, so they are skipped here; ``tests/ir/test_lower_recurrent.py``
runs Scan models written by ``export.onnx.writer`` on onnx.reference and onnxruntime, and
``tests/ir/test_control_flow.py`` does the same for If and Loop models.
"""

from __future__ import annotations

import numpy as np

import ir
from ir.ops import op, scalar
from tests.op_specs.common import FLOATS, OpSpec, Sample, rand


def _cumsum_body(dtype: np.dtype, shape: tuple[int, ...]) -> ir.Graph:
    """state, x -> state + x, 2 * (state + x)."""
    body = ir.Graph("cumsum")
    s = body.add_input("s", dtype, shape)
    x = body.add_input("x", dtype, shape)
    total = op.Add(s, x)
    body.set_outputs([total, op.Mul(total, scalar(2.0, total))])
    return body


def _two_state_body(dtype: np.dtype) -> ir.Graph:
    """sum, prod, x [3], y [2] -> sum + x, prod * x, sum @ outer(x, y), tanh(y)."""
    body = ir.Graph("two_states")
    s = body.add_input("s", dtype, (3,))
    p = body.add_input("p", dtype, (3,))
    x = body.add_input("x", dtype, (3,))
    y = body.add_input("y", dtype, (2,))
    outer = op.Mul(op.Unsqueeze(x, np.asarray([1])), op.Unsqueeze(y, np.asarray([0])))
    body.set_outputs([op.Add(s, x), op.Mul(p, x), op.MatMul(s, outer), op.Tanh(y)])
    return body


def _samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample(
            (rand(rng, (2, 3), dtype), rand(rng, (4, 2, 3), dtype)),
            {"body": _cumsum_body(dtype, (2, 3)), "num_scan_inputs": 1},
        ),
        Sample(  # a reverse scan whose outputs are prepended: they come in the input's order
            (rand(rng, (2, 3), dtype), rand(rng, (4, 2, 3), dtype)),
            {
                "body": _cumsum_body(dtype, (2, 3)),
                "num_scan_inputs": 1,
                "scan_input_directions": [1],
                "scan_output_directions": [1],
            },
        ),
        Sample(  # scanning along axis 1 and -1, stacking along the last axis
            (
                rand(rng, (3,), dtype),
                rand(rng, (3,), dtype, 0.5, 1.5),
                rand(rng, (3, 5), dtype),
                rand(rng, (2, 5), dtype),
            ),
            {
                "body": _two_state_body(dtype),
                "num_scan_inputs": 2,
                "scan_input_axes": [1, -1],
                "scan_input_directions": [0, 1],
                "scan_output_axes": [-1, 0],
                "scan_output_directions": [1, 0],
            },
        ),
        Sample(  # one iteration, 0-d state
            (rand(rng, (), dtype), rand(rng, (1,), dtype)),
            {"body": _cumsum_body(dtype, ()), "num_scan_inputs": 1},
        ),
    ]


_ORACLE_SKIP = {
    "reference": "tests/oracles.py builds nodes with onnx.helper.make_node, which cannot write "
    "an ir.Graph body; test_lower_recurrent.py runs writer-made Scan models on onnx.reference",
    "onnxruntime": "tests/oracles.py cannot write an ir.Graph body; test_lower_recurrent.py "
    "runs writer-made Scan models (and lowered recurrences) on onnxruntime",
}


def _branches(dtype: np.dtype, shape: tuple[int, ...]) -> dict[str, ir.Graph]:
    """then: sin(x) * w, x; else: x * x, w - x (both capture x and w)."""
    then, other = ir.Graph("then"), ir.Graph("else")
    x, w = (then.add_capture(n, dtype, shape) for n in "xw")
    then.set_outputs([op.Mul(op.Sin(x), w), op.Identity(x)])
    x, w = (other.add_capture(n, dtype, shape) for n in "xw")
    other.set_outputs([op.Mul(x, x), op.Sub(w, x)])
    return {"then_branch": then, "else_branch": other}


def _if_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    return [
        Sample((np.asarray(flag), rand(rng, s, dtype), rand(rng, s, dtype)), _branches(dtype, s))
        for flag, s in [(True, (2, 3)), (False, (2, 3)), (np.asarray([True]), ())]
    ]


def _loop_body(dtype: np.dtype, shape: tuple[int, ...], stop: bool) -> ir.Graph:
    """(i, c, s) captures w: s' = tanh(s) * w + i, scan s' * s'; with ``stop``, c' = sum(s') < 4."""
    body = ir.Graph("body")
    i = body.add_input("i", np.int64, ())
    c = body.add_input("c", np.bool_, ())
    s = body.add_input("s", dtype, shape)
    w = body.add_capture("w", dtype, shape)
    nxt = op.Add(op.Mul(op.Tanh(s), w), op.Cast(i, to=int(ir.dtypes.to_onnx(dtype))))
    keep = op.Less(op.ReduceSum(nxt, keepdims=0), scalar(4.0, nxt)) if stop else op.Identity(c)
    body.set_outputs([keep, nxt] if stop else [keep, nxt, op.Mul(nxt, nxt)])
    return body


def _loop_samples(rng: np.random.Generator, dtype: np.dtype) -> list[Sample]:
    trips = np.asarray(3, np.int64)
    return [
        Sample(
            (trips, None, rand(rng, (2, 3), dtype), rand(rng, (2, 3), dtype)),
            {"body": _loop_body(dtype, (2, 3), False)},
        ),
        Sample(
            (None, np.asarray(True), rand(rng, (3,), dtype, 0.1, 0.3), rand(rng, (3,), dtype)),
            {"body": _loop_body(dtype, (3,), True)},
        ),
        Sample(
            (np.asarray(0, np.int64), None, rand(rng, (), dtype), rand(rng, (), dtype)),
            {"body": _loop_body(dtype, (), False)},
        ),
    ]


_ORACLE_SKIP_IF_LOOP = {
    "reference": "tests/oracles.py cannot write an ir.Graph attribute; test_control_flow.py "
    "runs writer-made If and Loop models on onnx.reference",
    "onnxruntime": "tests/oracles.py cannot write an ir.Graph attribute; test_control_flow.py "
    "runs writer-made If and Loop models on onnxruntime",
}

SPECS: list[OpSpec] = [  # Scan first: test_lower_recurrent.py reads its samples
    OpSpec("Scan", _samples, FLOATS, grad_order=0, oracle_skip=_ORACLE_SKIP),
    OpSpec("If", _if_samples, FLOATS, oracle_skip=_ORACLE_SKIP_IF_LOOP),
    OpSpec("Loop", _loop_samples, FLOATS, oracle_skip=_ORACLE_SKIP_IF_LOOP),
]
