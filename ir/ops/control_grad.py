"""vjp rules of ``If`` and ``Loop``, written with registry ops and gradient subgraphs.

``If`` differentiates through the branch taken: its vjp is an ``If`` on the same condition
whose branches are the branches' gradient graphs (each captures the forward captures and
the output cotangents and returns one gradient per captured value that needs one).

``Loop`` differentiates by reverse iteration. A recording ``Loop`` re-runs the forward
with the body's carried inputs and iteration number as extra scan outputs; a backward
``Loop`` then runs as many iterations, the last first: each gathers its iteration's
carried values, runs the body and its vjp, passes the carried values' cotangents on and
adds the captured values' gradients up. So any trip count works, a data-dependent one
included, as long as the carried values keep their shapes from one iteration to the next
(a growing KV cache cannot be stacked: the recording loop raises at run time). The cost is
a second forward run and memory for every iteration's carried values.

Gradients flow into float captured values and float initial carried values; ``M``,
``cond`` and integer values get none.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ir.ops.grad_util import shape_of
from ir.ops.registry import VjpContext, ints, op, scalar
from ir.types import TensorType

if TYPE_CHECKING:
    from ir.graph import Graph, Value


def _type(x: Any) -> TensorType:
    """The type of a rule operand: a graph value's own, or an eager tensor's static one."""
    t = getattr(x, "type", None)
    if isinstance(t, TensorType):
        return t
    return TensorType(np.dtype(x.dtype), tuple(int(d) for d in x.shape))


def _zeros_like(x: Any) -> Any:
    # Shape(x), not a constant shape: the result must belong to x's graph (or be a tensor).
    return op.Expand(scalar(0.0, x), op.Shape(x))


def _is_float(x: Any) -> bool:
    return x is not None and np.dtype(x.dtype).kind == "f"


def _graph_module() -> Any:
    from ir import graph  # ir.graph imports the registry: looked up when a rule runs

    return graph


def _finish(g: Graph, outputs: Sequence[Value]) -> Graph:
    """Give ``g`` its outputs (each its own value, as ONNX names them) and prune it."""
    from ir.passes.dead_code_elimination import DeadCodeEliminationPass

    for i, v in enumerate(outputs):
        g.add_output(v, g.fresh_name(f"{g.name}_out{i}"))
    DeadCodeEliminationPass().call(g)
    return g


# ---------------------------------------------------------------- If


def _branch_grad(
    branch: Graph,
    captured: Sequence[Any],
    cots: Sequence[Any],
    seeded: list[int],
    wanted: list[int],
) -> Graph:
    """``branch``'s gradient graph: captures (forward captures, seeded cotangents)."""
    from ir.autodiff import inline_vjp

    g = _graph_module().Graph(f"{branch.name}_grad")
    caps = [g.add_capture(g.fresh_name(v.name), v.dtype, v.type.shape) for v in branch.captures]
    seeds: list[Value | None] = [None] * len(branch.outputs)
    for k in seeded:
        t = _type(cots[k])
        seeds[k] = g.add_capture(g.fresh_name(f"grad_out{k}"), t.dtype, t.shape)
    grads = inline_vjp(g, branch, caps, seeds, wanted)
    return _finish(g, [gx or _zeros_like(caps[j]) for gx, j in zip(grads, wanted, strict=True)])


def if_vjp(
    ctx: VjpContext,
    grad_out: Any,
    cond: Any,
    *captured: Any,
    then_branch: Graph | None = None,
    else_branch: Graph | None = None,
) -> list[Any]:
    """Gradients of the captured values, through the branch ``cond`` picks."""
    assert then_branch is not None and else_branch is not None
    cots = grad_out if isinstance(grad_out, tuple) else (grad_out,)
    needs = ctx.needs_input_grad[1:]
    wanted = [j for j, x in enumerate(captured) if needs[j] and _is_float(x)]
    seeded = [k for k, c in enumerate(cots) if c is not None]
    result: list[Any] = [None] * (1 + len(captured))
    if not wanted or not seeded:
        return result
    then_g = _branch_grad(then_branch, captured, cots, seeded, wanted)
    else_g = _branch_grad(else_branch, captured, cots, seeded, wanted)
    outs = op.If(
        cond, *captured, *(cots[k] for k in seeded), then_branch=then_g, else_branch=else_g
    )
    for j, gx in zip(wanted, outs, strict=True):
        result[1 + j] = gx
    return result


# ---------------------------------------------------------------- Loop


def _recording_body(body: Graph) -> Graph:
    """``body`` that also returns its carried inputs and iteration number as scan outputs."""
    rec = body.copy()
    rec.name = f"{body.name}_record"
    for v in [*rec.inputs[2:], rec.inputs[0]]:
        rec.add_output(v, rec.fresh_name(f"{v.name}_seen"))
    return rec


def _backward_body(
    body: Graph,
    carried: Sequence[Any],
    captured: Sequence[Any],
    flowing: list[int],
    wanted: list[int],
    seeded: list[int],
) -> Graph:
    """One reverse iteration: ``(j, cond, *carried cotangents, *sums) -> (cond, ...)``.

    Captures: the forward captures, each carried value's stack, the iteration numbers, the
    last iteration's index, then the seeded scan outputs' cotangents.
    """
    from ir.autodiff import inline_vjp

    g = _graph_module().Graph(f"{body.name}_grad")
    n = len(carried)
    j = g.add_input("j", np.int64, ())
    g.add_input("cond", np.bool_, ())
    cot = [g.add_input(f"cot{i}", *_dtype_shape(carried[i])) for i in flowing]
    sums = [g.add_input(f"sum{c}", *_dtype_shape(captured[c])) for c in wanted]
    caps = [g.add_capture(g.fresh_name(v.name), v.dtype, v.type.shape) for v in body.captures]
    stacks = []
    for i in range(n):
        t = _type(carried[i])
        shape = None if t.shape is None else (None, *t.shape)
        stacks.append(g.add_capture(g.fresh_name(f"seen{i}"), t.dtype, shape))
    iters = g.add_capture(g.fresh_name("iters"), np.int64, (None,))
    last = g.add_capture(g.fresh_name("last"), np.int64, ())
    scans = []
    for k in seeded:  # typed from the body: an eager zero-trip stack is sized [0, 0...]
        out = body.outputs[1 + n + k].type
        shape = None if out.shape is None else (None, *out.shape)
        scans.append(g.add_capture(g.fresh_name(f"scan_cot{k}"), out.dtype, shape))
    t = op.Sub(last, j)
    seeds: list[Value | None] = [None] * len(body.outputs)
    for slot, i in enumerate(flowing):
        seeds[1 + i] = cot[slot]
    for slot, k in enumerate(seeded):
        seeds[1 + n + k] = op.Gather(scans[slot], t)
    args = [op.Gather(iters, t), g.constant(np.asarray(True)), *(op.Gather(s, t) for s in stacks)]
    wrt = [2 + i for i in flowing] + [2 + n + c for c in wanted]
    grads = inline_vjp(g, body, [*args, *caps], seeds, wrt)
    flows = [gx or _zeros_like(x) for gx, x in zip(grads[: len(flowing)], cot, strict=True)]
    added = [
        s if gx is None else op.Add(s, gx)
        for gx, s in zip(grads[len(flowing) :], sums, strict=True)
    ]
    return _finish(g, [g.constant(np.asarray(True)), *flows, *added])


def _dtype_shape(x: Any) -> tuple[np.dtype, Any]:
    t = _type(x)
    return t.dtype, t.shape


def loop_vjp(
    ctx: VjpContext,
    grad_out: Any,
    m: Any,
    cond: Any,
    *rest: Any,
    body: Graph | None = None,
) -> list[Any]:
    """Gradients of the initial carried values and the captured values, by reverse iteration."""
    assert body is not None
    n = len(body.inputs) - 2
    k = len(body.outputs) - 1 - n
    carried, captured = rest[:n], rest[n:]
    cots = grad_out if isinstance(grad_out, tuple) else (grad_out,)
    needs = ctx.needs_input_grad
    flowing = [i for i in range(n) if _is_float(carried[i])]
    wanted = [c for c, x in enumerate(captured) if needs[2 + n + c] and _is_float(x)]
    seeded = [s for s in range(k) if cots[n + s] is not None and _is_float(cots[n + s])]
    result: list[Any] = [None] * (2 + len(rest))
    if not wanted and not any(needs[2 + i] for i in flowing):
        return result
    recorded = op.Loop(m, cond, *carried, *captured, body=_recording_body(body))
    stacks, iters = recorded[n + k : 2 * n + k], recorded[2 * n + k]
    trips = op.Squeeze(shape_of(iters), ints([0]))
    last = op.Sub(trips, scalar(1, trips))
    scan_cots = [cots[n + s] for s in seeded]
    back = _backward_body(body, carried, captured, flowing, wanted, seeded)
    start = [cots[i] if cots[i] is not None else _zeros_like(carried[i]) for i in flowing]
    start += [_zeros_like(captured[c]) for c in wanted]
    outs = op.Loop(trips, None, *start, *captured, *stacks, iters, last, *scan_cots, body=back)
    for slot, i in enumerate(flowing):
        if needs[2 + i]:
            result[2 + i] = outs[slot]
    for slot, c in enumerate(wanted):
        result[2 + n + c] = outs[len(flowing) + slot]
    return result
