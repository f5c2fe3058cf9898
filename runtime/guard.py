"""Check one call's feeds with the registry's shape rules before onnxruntime runs them.

onnxruntime trusts some preconditions of its kernels instead of checking them: a valid
STFT model fed ``frame_length=0`` divides by zero (SIGFPE), and an Attention model whose
``past_value`` declares no shape, fed a 1-D array, aborts. Either kills the whole process,
not one request. :class:`ShapeGuard` runs the registry's shape rules (the rules the reader
and the interpreter use) over the graph with the call's concrete shapes and the values of
its scalar integer feeds, and refuses feeds they reject with a :class:`FeedError` naming the
node, before onnxruntime sees them.

A check rebuilds the graph's types node by node (no kernel runs), so it costs about as much
as reading the graph; results are remembered per signature of shapes and scalar values, so a
server pays once for each distinct signature it sees.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from ir.errors import DTypeError, GraphInvariantError, ShapeError
from ir.graph import Graph, Value
from runtime.errors import FeedError

if TYPE_CHECKING:
    from ir.types import Dim

# Errors that mean "these feeds break an op's rule"; UnsupportedOpError (a rule that cannot
# decide) lets onnxruntime try.
_REFUSED = (ShapeError, DTypeError, GraphInvariantError)
_Key = tuple[tuple[str, str, tuple[int, ...], bytes], ...]


class ShapeGuard:
    """Refuses feeds that the registry's shape rules reject for ``graph``.

    Args:
        graph: the model as an ``ir.Graph`` (its large weights may be stand-ins:
            ``export.onnx.reader.from_model(..., weights=False)``); it is not modified.
        remember: how many signatures (accepted or refused) to remember.
    """

    def __init__(self, graph: Graph, remember: int = 256) -> None:
        self.graph = graph
        self.remember = remember
        self._seen: OrderedDict[_Key, str | None] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, feeds: Mapping[str, np.ndarray]) -> None:
        """Raise FeedError when the feeds (already validated against the signature) break a rule.

        Raises:
            FeedError: a node's shape rule rejects the concrete shapes or scalar values; the
                message names the node and the rule's reason.
        """
        key = _key(self.graph, feeds)
        with self._lock:
            known = key in self._seen
            problem = self._seen.get(key)
            if known:
                self._seen.move_to_end(key)
        if not known:
            problem = _problem(self.graph, feeds)
            with self._lock:
                self._seen[key] = problem
                while len(self._seen) > self.remember:
                    self._seen.popitem(last=False)
        if problem is not None:
            raise FeedError(problem)


def _scalar_int(array: np.ndarray) -> bool:
    """Whether a feed's value matters to shape rules: a 0-d integer (a length, a step)."""
    return array.ndim == 0 and array.dtype.kind in "iu"


def _key(graph: Graph, feeds: Mapping[str, np.ndarray]) -> _Key:
    items = []
    for v in graph.inputs:
        a = feeds[v.name]
        items.append((v.name, a.dtype.str, a.shape, a.tobytes() if _scalar_int(a) else b""))
    return tuple(items)


def _problem(graph: Graph, feeds: Mapping[str, np.ndarray]) -> str | None:
    """Why the registry's rules reject ``feeds``, or None when they accept them."""
    g = Graph(graph.name)
    new: dict[int, Value] = {}
    for v in graph.inputs:
        a = np.asarray(feeds[v.name])
        shape: tuple[Dim, ...] = tuple(a.shape)
        new[id(v)] = (
            g.add_initializer(v.name, a) if _scalar_int(a) else g.add_input(v.name, a.dtype, shape)
        )
    for v in graph.initializers.values():
        assert v.const is not None  # an initializer holds its array
        new[id(v)] = g.add_initializer(v.name, v.const)
    for node in graph.nodes:
        inputs = [None if x is None else new[id(x)] for x in node.inputs]
        try:
            outs = g.apply(
                node.op,
                inputs,
                node.attrs,
                meta=node.meta,
                out_names=[v.name for v in node.outputs],
                name=node.name,
            )
        except _REFUSED as err:
            return (
                f"the feeds do not fit node {node.name!r} ({node.op.op_type}): {err}\n"
                f"(feeds: {_describe(feeds)}); onnxruntime was not asked to run them"
            )
        for old, v in zip(node.outputs, outs, strict=True):
            new[id(old)] = v
    return None


def _describe(feeds: Mapping[str, np.ndarray]) -> str:
    parts = []
    for name, a in feeds.items():
        a = np.asarray(a)
        value = f" = {a.item()}" if _scalar_int(a) else ""
        parts.append(f"{name}: {a.dtype}{list(a.shape)}{value}")
    return ", ".join(parts)
