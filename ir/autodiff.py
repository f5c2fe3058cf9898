"""``grad``: reverse-mode differentiation as a graph-to-graph transform.

The new graph computes the original outputs and the gradients of one output with respect
to named inputs or initializers. It is built by walking the nodes on a path from those
values to the output in reverse topological order, accumulating cotangents with ``Add`` and
calling each node's registry vjp rule on graph values, so the rule emits the backward nodes
(one rule serves eager autograd and this). Recurrent layers' vjp rules emit a single
``ai.graphcap`` node each; ``grad`` then lowers those into standard ONNX ops (``Scan``), so
the result contains only default-domain ops and runs on any ONNX runtime.

A node whose ``meta["stop_gradient"]`` is set (a ``detach()`` traced with grad mode on) passes
values through but no gradient, as in eager autograd.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ir.errors import GraphcapError, ShapeError, UnsupportedOpError
from ir.graph import Graph, Node, Value
from ir.ops.recurrent import DOMAIN as GRAPHCAP_DOMAIN
from ir.ops.registry import VjpContext, op
from ir.passes.dead_code_elimination import DeadCodeEliminationPass

__all__ = ["depends_on", "grad", "grad_name", "inline_vjp"]


def grad_name(name: str) -> str:
    """The name ``grad`` gives the gradient output of value ``name``: ``<name>_grad``."""
    return f"{name}_grad"


def grad(
    graph: Graph,
    wrt: Sequence[str],
    of: str | Sequence[str] | None = None,
    *,
    seed: str | Sequence[str] | None = None,
    standard_only: bool = True,
) -> Graph:
    """A graph computing ``graph``'s outputs and the gradients of ``of`` w.r.t. ``wrt``.

    Args:
        graph: the forward graph; it is not modified.
        wrt: names of graph inputs or initializers (floating point) to differentiate by.
        of: the output to differentiate (or several, whose vector-Jacobian products are
            summed); by default the graph's only output.
        seed: name of a new graph input holding the cotangent of ``of`` (its type is
            ``of``'s), one per output when ``of`` is a list. By default ``of`` must be a
            scalar and the seed is 1, as in ``loss.backward()``.
        standard_only: lower graphcap's recurrent backward ops into standard ONNX ops, so
            the result has no op of graphcap's own domain (onnxruntime's ``com.microsoft``
            ops of a graph read from its optimizer's files stay). False keeps them (faster on the
            NumPy interpreter; onnxruntime cannot run them).

    Returns:
        A new, verified graph whose inputs are ``graph``'s (plus ``seed``) and whose outputs
        are ``graph``'s outputs followed by one gradient per ``wrt`` entry, named
        ``<name>_grad`` and shaped as the value. A value the output does not depend on gets
        a zero gradient.

    Raises:
        ValueError: an unknown or non-floating name, a non-scalar ``of`` without a seed, or
            a graph traced for inference whose trace left gradient-only code out (its
            ``meta["baked"]`` holds a ``grad-mode`` decision).
        UnsupportedOpError: a node on the path has no vjp rule (the message names it).
    """
    _check_not_for_inference(graph)
    g = graph.copy()
    targets = [_output(g, name) for name in ([of] if isinstance(of, str | None) else of)]
    seeds: list[str | None] = [seed] if isinstance(seed, str | None) else list(seed)
    if seed is None and len(targets) > 1:
        seeds = [None] * len(targets)  # every output a scalar, seeded with 1
    if len(seeds) != len(targets):
        raise ValueError(
            f"grad: {len(seeds)} seed names for {len(targets)} outputs in of={of!r}; give "
            "one per output (or none, when every output is a scalar)"
        )
    sources = [_source(g, name) for name in wrt]
    if len(set(wrt)) != len(wrt):
        raise ValueError(f"grad: wrt names a value twice: {list(wrt)}")
    initial: dict[Value, Value] = {}
    for t, s in zip(targets, seeds, strict=True):  # an output named twice: seeds add up
        seed_value = _seed(g, t, s)
        initial[t] = op.Add(initial[t], seed_value) if t in initial else seed_value
    cotangents = _backward(g, initial, sources)
    for src in sources:
        g.add_output(cotangents.get(src) or _zeros_like(src), grad_name(src.name))
    DeadCodeEliminationPass().call(g)  # vjp rules may build nodes nothing reads
    if standard_only:
        _lower_to_standard(g)
    g.verify()
    return g


def _check_not_for_inference(graph: Graph) -> None:
    """Refuse a graph whose trace left gradient-only code out (``tracer.trace``'s default)."""
    baked = graph.meta.get("baked")
    for decision in baked if isinstance(baked, list) else ():
        if isinstance(decision, dict) and decision.get("kind") == "grad-mode":
            raise ValueError(
                f"grad: the graph was traced for inference, which left out the "
                f"{decision.get('what')} at {decision.get('source')}, so its gradients would "
                "differ from eager autograd's; trace it with tracer.trace(..., "
                "differentiable=True)"
            )


def depends_on(graph: Graph, of: Sequence[str], names: Sequence[str]) -> list[bool]:
    """Whether some output in ``of`` depends, through float values, on each of ``names``.

    A ``False`` entry is a value whose gradient is structurally zero (``grad`` gives zeros;
    eager autograd leaves ``.grad`` as None).
    """
    targets = [_output(graph, n) for n in of]
    result = []
    for name in names:
        source = _source(graph, name)
        path, _ = _on_path(graph, targets, [source])
        result.append(bool(path) or source in targets)
    return result


def inline_vjp(
    target: Graph,
    body: Graph,
    args: Sequence[Value],
    seeds: Sequence[Value | None],
    wrt: Sequence[int],
) -> list[Value | None]:
    """Emit ``body`` applied to ``args`` into ``target``, then its vector-Jacobian product.

    This is how control-flow vjp rules differentiate a subgraph: the body's nodes are copied
    into the graph being built (an ``If`` branch's gradient graph, a backward ``Loop`` body)
    and every node's vjp rule runs on the copies.

    Args:
        target: the graph to emit into.
        body: the subgraph; it is not modified.
        args: values of ``target`` standing for ``body``'s inputs, then its captures.
        seeds: the cotangent of each body output (None: zero).
        wrt: indices into ``args`` to differentiate by.

    Returns:
        The cotangent of each ``args[i]`` for ``i`` in ``wrt``; None where no seeded output
        depends on it. Forward nodes nothing reads are left for dead-code elimination.
    """
    values = {id(v): a for v, a in zip([*body.inputs, *body.captures], args, strict=True)}
    for v in body.initializers.values():
        assert v.const is not None
        values[id(v)] = target.constant(v.const, hint=v.name)
    for n in body.nodes:
        inputs = [None if x is None else values[id(x)] for x in n.inputs]
        outs = target.apply(n.op, inputs, n.attrs, meta=n.meta)
        values.update((id(old), new) for old, new in zip(n.outputs, outs, strict=True))
    initial: dict[Value, Value] = {}
    for o, s in zip(body.outputs, seeds, strict=True):
        t = values[id(o)]
        if s is not None and t.dtype.kind == "f":
            initial[t] = op.Add(initial[t], s) if t in initial else s
    sources = [args[i] for i in wrt]
    cot = _backward(target, initial, sources) if initial else {}
    return [cot.get(s) for s in sources]


def _output(g: Graph, of: str | None) -> Value:
    if of is None:
        if len(g.outputs) != 1:
            names = [v.name for v in g.outputs]
            raise ValueError(f"grad: the graph has outputs {names}; say which one with of=")
        return g.outputs[0]
    for v in g.outputs:
        if v.name == of:
            return v
    raise ValueError(f"grad: {of!r} is not an output; outputs are {[v.name for v in g.outputs]}")


def _seed(g: Graph, target: Value, seed: str | None) -> Value:
    if seed is not None:
        return g.add_input(seed, target.dtype, target.type.shape)
    if target.type.shape != ():
        raise ValueError(
            f"grad: output {target.name!r} has type {target.type}, not a scalar; pass "
            "seed=<name> to take its cotangent as a graph input"
        )
    if target.dtype.kind != "f":
        raise ValueError(f"grad: output {target.name!r} has type {target.type}; need floats")
    return g.constant(np.ones((), target.dtype), hint=f"{target.name}_seed")


def _source(g: Graph, name: str) -> Value:
    value = next((v for v in g.inputs if v.name == name), None) or g.initializers.get(name)
    if value is None:
        known = [v.name for v in g.inputs] + list(g.initializers)
        raise ValueError(f"grad: wrt {name!r} is not an input or initializer; known: {known}")
    if value.dtype.kind != "f":
        raise ValueError(f"grad: wrt {name!r} has type {value.type}; gradients need floats")
    return value


def _on_path(
    g: Graph, targets: Sequence[Value], sources: Sequence[Value]
) -> tuple[list[Node], set[int]]:
    """Nodes on a path from ``sources`` to ``targets`` (last first), and dependent values.

    The second result holds the ids of the values that depend on some source: the values
    that get cotangents.
    """
    depends = {id(v) for v in sources}
    for node in g.nodes:
        if node.meta.get("stop_gradient"):  # a traced detach(): gradients stop here
            continue
        if any(x is not None and id(x) in depends for x in node.inputs):
            depends.update(id(v) for v in node.outputs if v.dtype.kind == "f")
    needed = {id(t) for t in targets}
    path: list[Node] = []
    for node in reversed(g.nodes):
        if any(id(v) in needed for v in node.outputs):
            if any(x is not None and id(x) in depends for x in node.inputs):
                path.append(node)
            needed.update(id(x) for x in node.inputs if x is not None and id(x) in depends)
    return path, depends


def _backward(g: Graph, seeds: dict[Value, Value], sources: Sequence[Value]) -> dict[Value, Value]:
    """Run every vjp rule on the path, last node first; cotangents of all values reached."""
    path, depends = _on_path(g, list(seeds), sources)
    cot: dict[Value, Value] = dict(seeds)
    for node in path:  # already last-first
        grads_out = [cot.get(v) for v in node.outputs]
        if all(x is None for x in grads_out):
            continue
        needs = [x is not None and id(x) in depends for x in node.inputs]
        if node.op.vjp is None:
            raise UnsupportedOpError(
                f"cannot differentiate node {node.name} ({node.op.op_type}"
                f"{_where(node)}): {node.op.no_vjp}"
            )
        ctx = VjpContext(node.outputs, needs)
        grad_out = grads_out[0] if len(grads_out) == 1 else tuple(grads_out)
        try:
            in_grads = node.op.vjp(ctx, grad_out, *node.inputs, **node.full_attrs)
        except GraphcapError as e:
            raise type(e)(f"vjp of node {node.name} ({node.op.op_type}{_where(node)}): {e}") from e
        for x, gx, need in zip(node.inputs, in_grads, needs, strict=False):
            if gx is None or not need or x is None:
                continue
            gx = gx if isinstance(gx, Value) else g.constant(np.asarray(gx, x.dtype), "grad")
            _check_type(node, x, gx)
            cot[x] = gx if x not in cot else op.Add(cot[x], gx)
    return cot


def _where(node: Node) -> str:
    return f", traced from {node.meta['source']}" if "source" in node.meta else ""


def _check_type(node: Node, x: Value, gx: Value) -> None:
    same_rank = x.type.shape is not None and gx.type.shape is not None
    if same_rank and len(x.shape) != len(gx.shape):
        raise ShapeError(
            f"vjp of {node.op.op_type} ({node.name}) gave a gradient {gx.type} for input "
            f"%{x.name} {x.type}; this is a bug in the op's vjp rule"
        )
    if same_rank:
        for a, b in zip(x.shape, gx.shape, strict=True):
            if isinstance(a, int) and isinstance(b, int) and a != b:
                raise ShapeError(
                    f"vjp of {node.op.op_type} ({node.name}) gave a gradient {gx.type} for "
                    f"input %{x.name} {x.type}; this is a bug in the op's vjp rule"
                )


def _zeros_like(v: Value) -> Value:
    if v.type.is_static:
        shape = tuple(int(d) for d in v.shape if d is not None)
        return v.graph.constant(np.zeros(shape, v.dtype), hint="zeros")
    zero = v.graph.constant(np.zeros((), v.dtype), hint="zero")
    return op.Expand(zero, op.Shape(v))


def _lower_to_standard(g: Graph) -> None:
    # graphcap's own domain is what other runtimes lack; onnxruntime's com.microsoft ops
    # (in graphs read from its optimizer's files) stay, as they came in.
    if any(n.op.domain == GRAPHCAP_DOMAIN for n in g.nodes):
        from ir.lower_recurrent import lower_recurrent_grads

        lower_recurrent_grads(g)
    custom = sorted(
        {f"{n.op.domain}::{n.op.op_type}" for n in g.nodes if n.op.domain == GRAPHCAP_DOMAIN}
    )
    if custom:
        raise UnsupportedOpError(
            f"grad: the backward graph needs non-standard ops {custom}; pass "
            "standard_only=False to keep them (graphcap's interpreter runs them)"
        )
