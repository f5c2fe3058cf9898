"""Control-flow ops, whose attributes are graphs: ``If``, ``Loop`` and ``Scan``.

Every subgraph may read values of the graph around it through its captures, which the node
passes as its last inputs (``ir.graph`` explains the convention; the ONNX writer turns them
back into outer-scope names). Kernels run a subgraph's nodes through their own registry
kernels (:class:`ir.ops.subgraph.Body`), so a body means what its ops mean.

``If`` (ONNX If-19) runs ``then_branch`` when its one-element bool ``cond`` is true, else
``else_branch``, and returns that branch's outputs. Branches take no inputs; their outputs
agree in count and dtype and may differ in shape (the node's types keep what they share).

``Loop`` (ONNX Loop-19) takes ``M`` (int64 trip count, optional), ``cond`` (bool, optional)
and ``N`` initial loop-carried values. The body takes ``(iteration, cond, *carried)`` and
returns ``(cond, *carried, *scan)``; it runs while ``iteration < M`` (when ``M`` is given)
and the condition holds (when ``cond`` is given: the body's condition output is ignored
without it). The op returns the final carried values, whose shapes may change from one
iteration to the next, and the ``K`` scan outputs stacked along a new first axis.

``Scan`` (ONNX Scan-19; 9 to 19 differ only in the element types they admit) runs ``body``
once per slice of its scan inputs, threading state variables through the iterations. Its
inputs are ``N`` initial states followed by ``M = num_scan_inputs`` scan inputs; the body
takes ``N + M`` inputs (the states, then one slice of each scan input, without the scan
axis) and returns ``N + K`` outputs (the next states, then ``K`` per-iteration values). The
op returns the final states and the ``K`` scan outputs, each the per-iteration values
stacked along its ``scan_output_axes`` entry. ``scan_input_directions[i] = 1`` reads scan
input ``i`` backwards (last slice first); ``scan_output_directions[k] = 1`` prepends instead
of appending, so a reverse scan that also prepends its outputs gives them in the input's
order. Axes may be negative.

vjp rules (``ir.ops.control_grad``): ``If`` differentiates through the branch taken, as an
``If`` of the branches' gradient graphs; ``Loop`` re-runs the forward recording each
iteration's carried values, then iterates backwards in a second ``Loop``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ir.errors import ShapeError
from ir.ops.control_grad import if_vjp, loop_vjp
from ir.ops.infer import normalize_axis
from ir.ops.recurrent_kernels import _serial_blas  # the time loops' BLAS policy, shared
from ir.ops.registry import InferContext, Legacy, OpDef, register
from ir.ops.subgraph import (
    Body,
    check_captures,
    merge,
    split_captures,
    zeros_for,
)
from ir.types import Dim, TensorType

if TYPE_CHECKING:
    from ir.graph import Graph


def _per_input(values: Sequence[int] | None, count: int, what: str) -> list[int]:
    """An INTS attribute with one entry per input or output (default all zeros)."""
    if values is None:
        return [0] * count
    if len(values) != count:
        raise ShapeError(f"Scan: {what} has {len(values)} entries, expected {count}")
    return [int(v) for v in values]


def _counts(body: Any, n_given: int, num_scan_inputs: Any) -> tuple[int, int, int]:
    """(states N, scan inputs M, scan outputs K), checked against the body's signature.

    ``n_given`` counts the node's inputs, captured outer values included.
    """
    if body is None or num_scan_inputs is None:
        raise ShapeError("Scan needs both attributes body and num_scan_inputs")
    n_inputs = n_given - len(body.captures)
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
    given = [first, *rest]
    n, m, k = _counts(body, len(given), num_scan_inputs)
    assert body is not None
    inputs, captured = split_captures("Scan", body, given, n + m)
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
    run = Body(body)
    states = list(inputs[:n])
    steps: list[list[np.ndarray]] = []
    with _serial_blas():  # bodies run many small matmuls, which BLAS threads only slow down
        for it in range(length):
            slices = [
                np.take(x, length - 1 - it if back else it, axis=a)
                for x, a, back in zip(scans, axes, backwards, strict=True)
            ]
            outs = run([*states, *slices, *captured])
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
    check_captures("Scan", [body], types[n + m :])
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


# ---------------------------------------------------------------- If


def _branches(then_branch: Any, else_branch: Any) -> tuple[Graph, Graph]:
    if then_branch is None or else_branch is None:
        raise ShapeError("If needs both attributes then_branch and else_branch")
    if then_branch.inputs or else_branch.inputs:
        raise ShapeError("If: branches take no inputs (they read outer values as captures)")
    if len(then_branch.outputs) != len(else_branch.outputs):
        raise ShapeError(
            f"If: then_branch returns {len(then_branch.outputs)} outputs, else_branch "
            f"{len(else_branch.outputs)}; both must return the same number"
        )
    return then_branch, else_branch


def _if(
    cond: np.ndarray,
    /,
    *captured: np.ndarray,
    then_branch: Graph | None = None,
    else_branch: Graph | None = None,
) -> tuple[np.ndarray, ...]:
    """ONNX If (19); see the module docstring."""
    then_g, else_g = _branches(then_branch, else_branch)
    flag = np.asarray(cond)
    if flag.size != 1:
        raise ShapeError(f"If: cond must hold one element, got shape {list(flag.shape)}")
    branch = then_g if bool(flag.reshape(-1)[0]) else else_g
    split_captures("If", branch, captured, 0)
    return tuple(Body(branch)(captured))


def _if_infer(
    ctx: InferContext,
    cond: TensorType | None,
    /,
    *captured: TensorType | None,
    then_branch: Graph | None = None,
    else_branch: Graph | None = None,
) -> tuple[TensorType, ...]:
    del ctx
    then_g, else_g = _branches(then_branch, else_branch)
    if cond is not None and cond.dtype != np.bool_:
        raise ShapeError(f"If: cond must be bool, got {cond}")
    check_captures("If", [then_g, else_g], captured)
    out = []
    for i, (a, b) in enumerate(zip(then_g.outputs, else_g.outputs, strict=True)):
        if a.dtype != b.dtype:
            raise ShapeError(
                f"If: output {i} is {a.type} in then_branch and {b.type} in else_branch; "
                "branches must agree on dtypes"
            )
        out.append(merge(a.type, b.type))
    return tuple(out)


register(
    OpDef(
        "If",
        19,
        _if,
        _if_infer,
        if_vjp,
        num_outputs=None,
        saves="none",
        optional_inputs=(0, 1),  # M and cond: positions held, values optional
    )
)


# ---------------------------------------------------------------- Loop


def _loop_counts(body: Any, n_given: int) -> tuple[int, int]:
    """(carried N, scan outputs K) from the body's signature and the node's input count."""
    if body is None:
        raise ShapeError("Loop needs the attribute body")
    n = len(body.inputs) - 2
    if n < 0:
        raise ShapeError(
            f"Loop: body {body.name!r} takes {len(body.inputs)} inputs; it needs the iteration "
            "number and the condition first"
        )
    k = len(body.outputs) - 1 - n
    if k < 0:
        raise ShapeError(
            f"Loop: body {body.name!r} returns {len(body.outputs)} outputs; it must return the "
            f"condition and its {n} carried value(s)"
        )
    if n_given != 2 + n + len(body.captures):
        raise ShapeError(
            f"Loop: {n_given} inputs given; body {body.name!r} needs M, cond, {n} carried "
            f"value(s) and its {len(body.captures)} captured outer value(s)"
        )
    return n, k


def _scalar(x: np.ndarray | None, what: str) -> Any:
    if x is None:
        return None
    a = np.asarray(x)
    if a.size != 1:
        raise ShapeError(f"Loop: {what} must hold one element, got shape {list(a.shape)}")
    return a.reshape(-1)[0]


def _loop(
    m: np.ndarray | None,
    cond: np.ndarray | None,
    /,
    *rest: np.ndarray,
    body: Graph | None = None,
) -> tuple[np.ndarray, ...]:
    """ONNX Loop (19); see the module docstring."""
    n, k = _loop_counts(body, 2 + len(rest))
    assert body is not None
    carried, captured = list(rest[:n]), list(rest[n:])
    trip = _scalar(m, "M")
    keep = True if cond is None else bool(_scalar(cond, "cond"))
    run = Body(body)
    steps: list[list[np.ndarray]] = []
    i = 0
    with _serial_blas():
        while keep and (trip is None or i < trip):
            outs = run([np.asarray(i, np.int64), np.asarray(keep), *carried, *captured])
            if cond is not None:
                keep = bool(_scalar(outs[0], "the body's condition"))
            carried = outs[1 : 1 + n]
            steps.append(outs[1 + n :])
            i += 1
    scans = []
    for j in range(k):
        if not steps:
            scans.append(zeros_for(body.outputs[1 + n + j].type, f"Loop scan output {j}"))
            continue
        values = [s[j] for s in steps]
        if len({v.shape for v in values}) != 1:
            raise ShapeError(
                f"Loop: scan output {j} changes shape between iterations "
                f"({sorted({v.shape for v in values})}); it cannot be stacked"
            )
        scans.append(np.stack(values))
    return (*carried, *scans)


def _loop_infer(
    ctx: InferContext,
    m: TensorType | None,
    cond: TensorType | None,
    /,
    *rest: TensorType | None,
    body: Graph | None = None,
) -> tuple[TensorType, ...]:
    n, k = _loop_counts(body, 2 + len(rest))
    assert body is not None
    if m is not None and m.dtype != np.int64:
        raise ShapeError(f"Loop: M must be int64, got {m}")
    if cond is not None and cond.dtype != np.bool_:
        raise ShapeError(f"Loop: cond must be bool, got {cond}")
    check_captures("Loop", [body], rest[n:])
    out = []
    for i in range(n):
        given, inner, result = rest[i], body.inputs[2 + i], body.outputs[1 + i]
        if inner.dtype != result.dtype or (given is not None and given.dtype != inner.dtype):
            raise ShapeError(
                f"Loop: carried value {i} is {given} initially, {inner.type} in body "
                f"{body.name!r} and {result.type} after it; its dtype must stay the same"
            )
        out.append(result.type if given is None else merge(given, result.type))
    trip = ctx.value(0)
    length = int(trip.reshape(-1)[0]) if trip is not None and cond is None else None
    for j in range(k):
        t = body.outputs[1 + n + j].type
        out.append(TensorType(t.dtype, None if t.shape is None else (length, *t.shape)))
    return tuple(out)


register(
    OpDef(
        "Loop",
        19,
        _loop,
        _loop_infer,
        loop_vjp,
        num_outputs=None,
        saves="none",
        optional_inputs=(0, 1),  # M and cond: positions held, values optional
    )
)
