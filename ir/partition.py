"""``split``: cut a joint forward-and-backward graph into a forward and a backward graph.

``ir.grad(graph, wrt, seed=...)`` gives one graph that computes outputs and gradients from
the inputs and the output cotangents (the seeds). When the seeds are only known after the
forward ran (eager autograd calls ``backward`` later), the graph must be run in two parts:
the nodes that do not depend on a seed form the forward graph, the rest the backward graph,
and every forward value the backward part reads (an activation) becomes an extra output of
the forward graph and an input of the backward graph, under the same name.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ir.graph import Graph, Node, Value

__all__ = ["Split", "split"]


@dataclass(frozen=True)
class Split:
    """The two halves of a joint graph.

    Attributes:
        forward: inputs: the joint graph's non-seed inputs that the forward part reads;
            outputs: the requested forward outputs, then ``saved``.
        backward: inputs: the seeds, then ``saved``, then the joint graph's inputs the
            backward part reads directly; outputs: the requested backward outputs.
        saved: names of the forward values handed to the backward graph.
    """

    forward: Graph
    backward: Graph
    saved: tuple[str, ...]


def split(
    joint: Graph,
    seeds: Sequence[str],
    forward_outputs: Sequence[str],
    backward_outputs: Sequence[str],
) -> Split:
    """Cut ``joint`` where values start to depend on ``seeds``.

    Args:
        joint: a graph whose inputs include ``seeds``.
        seeds: input names known only after the forward graph ran.
        forward_outputs: outputs of ``joint`` the forward graph must return; they must not
            depend on a seed.
        backward_outputs: outputs of ``joint`` the backward graph returns.

    Raises:
        ValueError: an unknown name, or a forward output that depends on a seed.
    """
    by_name = {v.name: v for v in joint.values()}
    for name in (*seeds, *forward_outputs, *backward_outputs):
        if name not in by_name:
            raise ValueError(f"split: {name!r} is not a value of graph {joint.name!r}")
    late = {id(by_name[s]) for s in seeds}
    back_nodes: list[Node] = []
    front_nodes: list[Node] = []
    for node in joint.nodes:
        if any(x is not None and id(x) in late for x in node.inputs):
            late.update(id(v) for v in node.outputs)
            back_nodes.append(node)
        else:
            front_nodes.append(node)
    late_outputs = [n for n in forward_outputs if id(by_name[n]) in late]
    if late_outputs:
        raise ValueError(f"split: forward outputs {late_outputs} depend on the seeds {seeds}")
    early_outputs = [n for n in backward_outputs if id(by_name[n]) not in late]
    if early_outputs:
        raise ValueError(
            f"split: backward outputs {early_outputs} do not depend on the seeds {seeds} "
            "(gradients of values the differentiated outputs do not depend on?)"
        )
    # Forward values the backward half reads, in first-use order.
    needed: dict[int, Value] = {}
    for node in back_nodes:
        for x in node.inputs:
            if x is not None and id(x) not in late and x.const is None:
                needed.setdefault(id(x), x)
    graph_inputs = {id(v) for v in joint.inputs}
    saved = [v for v in needed.values() if id(v) not in graph_inputs]
    reread = [v for v in needed.values() if id(v) in graph_inputs]
    front_outs = [by_name[n] for n in forward_outputs]
    front_outs += [v for v in saved if v.name not in forward_outputs]
    forward = _extract(joint, f"{joint.name}_forward", front_nodes, front_outs)
    back_inputs = [by_name[s] for s in seeds] + saved + reread
    backward = _extract(
        joint,
        f"{joint.name}_backward",
        back_nodes,
        [by_name[n] for n in backward_outputs],
        back_inputs,
    )
    return Split(forward, backward, tuple(v.name for v in saved))


def _extract(
    joint: Graph,
    name: str,
    nodes: Iterable[Node],
    outputs: Sequence[Value],
    inputs: Sequence[Value] | None = None,
) -> Graph:
    """A new graph of ``nodes`` (copied).

    Values the nodes read that none of them makes come in as ``inputs`` (default:
    ``joint``'s inputs that are read) or as initializers.
    """
    out = Graph(name)
    new: dict[int, Value] = {}
    nodes = list(nodes)
    made = {id(v) for n in nodes for v in n.outputs}
    read = {id(x) for n in nodes for x in n.inputs if x is not None} | {id(v) for v in outputs}
    chosen = inputs if inputs is not None else [v for v in joint.inputs if id(v) in read]
    for v in chosen:
        new[id(v)] = out.add_input(v.name, v.dtype, v.type.shape)
        new[id(v)].sym = v.sym
    for v in joint.initializers.values():
        if id(v) in read and id(v) not in made:
            assert v.const is not None
            new[id(v)] = out.add_initializer(v.name, v.const)
    out.append_copies(nodes, new)
    for v in outputs:
        value = new[id(v)]
        via_identity = value.producer is None or value in out.outputs
        out.add_output(value, out.fresh_name(v.name) if via_identity else v.name)
    out.verify()
    return out
