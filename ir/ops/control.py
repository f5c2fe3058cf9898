"""Control-flow ops: ``Scan``, whose ``body`` attribute is a graph.

``Scan`` (ONNX Scan-19; 9 to 19 differ only in the element types they admit) runs ``body``
once per slice of its scan inputs, threading state variables through the iterations. Its
inputs are ``N`` initial states followed by ``M = num_scan_inputs`` scan inputs; the body
takes ``N + M`` inputs (the states, then one slice of each scan input, without the scan
axis) and returns ``N + K`` outputs (the next states, then ``K`` per-iteration values). The
op returns the final states and the ``K`` scan outputs, each the per-iteration values
stacked along its ``scan_output_axes`` entry.

``scan_input_directions[i] = 1`` reads scan input ``i`` backwards (last slice first);
``scan_output_directions[k] = 1`` prepends instead of appending, so a reverse scan that
also prepends its outputs gives them in the input's order. Axes may be negative.

The body is an ``ir.Graph`` that must be self-contained: it may not read values of the
graph around it (pass them as states, scan inputs or body initializers). The kernel runs the
body's nodes through their own registry kernels, so a body means what its ops mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ir.errors import ShapeError
from ir.ops.infer import normalize_axis
from ir.ops.recurrent_kernels import _serial_blas  # the time loops' BLAS policy, shared
from ir.ops.registry import InferContext, Legacy, OpDef, register
from ir.types import Dim, TensorType

if TYPE_CHECKING:
    from ir.graph import Graph, Value

# ---------------------------------------------------------------- running a body


class _Body:
    """A body graph flattened for repeated runs: kernels, attributes and value slots."""

    def __init__(self, body: Graph) -> None:
        slots: dict[int, int] = {}

        def slot(v: Value) -> int:
            return slots.setdefault(id(v), len(slots))

        self.inputs = [slot(v) for v in body.inputs]
        self.consts = [(slot(v), v.const) for v in body.initializers.values()]
        self.steps = [
            (
                n.op.kernel,
                [None if x is None else slot(x) for x in n.inputs],
                n.attrs,
                [slot(v) for v in n.outputs],
            )
            for n in body.nodes
        ]
        self.outputs = [slot(v) for v in body.outputs]
        self.size = len(slots)

    def __call__(self, args: Sequence[np.ndarray]) -> list[np.ndarray]:
        env: list[Any] = [None] * self.size
        for i, a in zip(self.inputs, args, strict=True):
            env[i] = a
        for i, c in self.consts:
            env[i] = c
        for kernel, ins, attrs, outs in self.steps:
            result = kernel(*(None if i is None else env[i] for i in ins), **attrs)
            results = result if isinstance(result, tuple | list) else (result,)
            for i, r in zip(outs, results, strict=False):
                env[i] = np.asarray(r)
        return [env[i] for i in self.outputs]


def _per_input(values: Sequence[int] | None, count: int, what: str) -> list[int]:
    """An INTS attribute with one entry per input or output (default all zeros)."""
    if values is None:
        return [0] * count
    if len(values) != count:
        raise ShapeError(f"Scan: {what} has {len(values)} entries, expected {count}")
    return [int(v) for v in values]


def _counts(body: Any, n_inputs: int, num_scan_inputs: Any) -> tuple[int, int, int]:
    """(states N, scan inputs M, scan outputs K), checked against the body's signature."""
    if body is None or num_scan_inputs is None:
        raise ShapeError("Scan needs both attributes body and num_scan_inputs")
    m = int(num_scan_inputs)
    if not 1 <= m <= n_inputs:
        raise ShapeError(f"Scan: num_scan_inputs={m}, but the node has {n_inputs} inputs")
    n = n_inputs - m
    if len(body.inputs) != n_inputs:
        raise ShapeError(
            f"Scan: body {body.name!r} takes {len(body.inputs)} inputs; the node passes "
            f"{n} state(s) and {m} scan input(s)"
        )
    k = len(body.outputs) - n
    if k < 0:
        raise ShapeError(
            f"Scan: body {body.name!r} returns {len(body.outputs)} outputs, fewer than its "
            f"{n} state(s)"
        )
    return n, m, k


def _scan(
    first: np.ndarray,
    /,
    *rest: np.ndarray,
    body: Graph | None = None,
    num_scan_inputs: int | None = None,
    scan_input_axes: list[int] | None = None,
    scan_input_directions: list[int] | None = None,
    scan_output_axes: list[int] | None = None,
    scan_output_directions: list[int] | None = None,
) -> tuple[np.ndarray, ...]:
    """ONNX Scan (19); see the module docstring."""
    inputs = [first, *rest]
    n, m, k = _counts(body, len(inputs), num_scan_inputs)
    assert body is not None
    scans = inputs[n:]
    axes = [
        normalize_axis(a, x.ndim, "Scan scan_input_axes")
        for a, x in zip(_per_input(scan_input_axes, m, "scan_input_axes"), scans, strict=True)
    ]
    backwards = _per_input(scan_input_directions, m, "scan_input_directions")
    lengths = {x.shape[a] for x, a in zip(scans, axes, strict=True)}
    if len(lengths) != 1:
        raise ShapeError(f"Scan: scan inputs have different lengths {sorted(lengths)}")
    length = lengths.pop()
    run = _Body(body)
    states = list(inputs[:n])
    steps: list[list[np.ndarray]] = []
    with _serial_blas():  # bodies run many small matmuls, which BLAS threads only slow down
        for it in range(length):
            slices = [
                np.take(x, length - 1 - it if back else it, axis=a)
                for x, a, back in zip(scans, axes, backwards, strict=True)
            ]
            outs = run([*states, *slices])
            states = outs[:n]
            steps.append(outs[n:])
    return (*states, *_stack(body, steps, n, k, scan_output_axes, scan_output_directions))


def _stack(
    body: Graph,
    steps: list[list[np.ndarray]],
    n: int,
    k: int,
    out_axes: list[int] | None,
    out_directions: list[int] | None,
) -> list[np.ndarray]:
    """The K scan outputs: per-iteration values stacked (prepended where asked)."""
    axes = _per_input(out_axes, k, "scan_output_axes")
    prepend = _per_input(out_directions, k, "scan_output_directions")
    outs = []
    for j in range(k):
        values = [s[j] for s in steps]
        if prepend[j]:
            values.reverse()
        if not values:  # zero iterations: the body's declared type gives the slice shape
            t = body.outputs[n + j].type
            if not t.is_static:
                raise ShapeError(f"Scan: zero iterations and body output {j} has type {t}")
            shape = tuple(int(d) for d in t.shape or ())  # type: ignore[arg-type]
            a = normalize_axis(axes[j], len(shape) + 1, "Scan scan_output_axes")
            outs.append(np.zeros((*shape[:a], 0, *shape[a:]), t.dtype))
            continue
        a = normalize_axis(axes[j], values[0].ndim + 1, "Scan scan_output_axes")
        outs.append(np.stack(values, axis=a))
    return outs


def _scan_infer(
    ctx: InferContext,
    *types: TensorType | None,
    body: Graph | None = None,
    num_scan_inputs: int | None = None,
    scan_input_axes: list[int] | None = None,
    scan_input_directions: list[int] | None = None,
    scan_output_axes: list[int] | None = None,
    scan_output_directions: list[int] | None = None,
) -> tuple[TensorType, ...]:
    del ctx, scan_input_directions, scan_output_directions
    n, m, k = _counts(body, len(types), num_scan_inputs)
    assert body is not None
    length: Dim = None
    first = types[n]
    if first is not None and first.shape is not None:
        axis = _per_input(scan_input_axes, m, "scan_input_axes")[0]
        length = first.shape[normalize_axis(axis, len(first.shape), "Scan scan_input_axes")]
    out: list[TensorType] = []
    for i, v in enumerate(body.outputs[:n]):
        given = types[i]
        if given is not None and given.dtype != v.dtype:
            raise ShapeError(
                f"Scan: state {i} is {given.dtype} but body {body.name!r} returns {v.dtype}"
            )
        out.append(v.type)
    for j, a in enumerate(_per_input(scan_output_axes, k, "scan_output_axes")):
        t = body.outputs[n + j].type
        if t.shape is None:
            out.append(TensorType(t.dtype, None))
            continue
        a = normalize_axis(a, len(t.shape) + 1, "Scan scan_output_axes")
        out.append(TensorType(t.dtype, (*t.shape[:a], length, *t.shape[a:])))
    return tuple(out)


register(
    OpDef(
        "Scan",
        19,
        _scan,
        _scan_infer,
        None,
        no_vjp="gradients through a Scan body are not implemented (graphcap emits Scan only "
        "in backward graphs, from lowered recurrences)",
        num_outputs=None,
        saves="none",
        legacy=Legacy(oldest=9),  # Scan-8 was batched, with a sequence_lens input
    )
)
