"""The IR: ``Value``, ``Node`` and ``Graph``, ONNX-style and in SSA form.

A ``Value`` is a graph input, a capture, an initializer (a named constant array), or exactly
one output of one ``Node``; it knows its producer and its uses. Nodes are kept in
topological order, in a linked ``NodeList`` (insertion and removal anywhere are O(1)).
Change a graph only through its methods (``apply``, ``append``, ``insert_before``/
``insert_after``, ``remove``, ``replace_all_uses_with``, ``set_outputs``) so use lists
stay right in both directions.
``Graph.verify`` checks every invariant and re-runs the registry's shape rules.

``Value`` implements the registry's ``__graphcap_bind__`` hook, so applying an op to values
(``op.Mul(v, w)``) emits a node: that is how vjp rules build backward graphs and how passes
write rewrites. New nodes go at the end, or where ``with graph.inserting_before(node):`` (or
``inserting_after``) says. Fresh value and node names come from counters (as torch.fx's), so
naming n nodes costs O(n), not O(n²).

Subgraphs (``If`` branches, ``Loop`` and ``Scan`` bodies) are graphs held in a node's
attributes. ONNX lets a subgraph read values of the graphs around it by name; here such a
read is explicit: the subgraph declares a *capture* (``add_capture``, a placeholder value
like an input) and the node that holds it passes the outer value as one of its last inputs,
one per capture, in order (every subgraph of a node has the same captures). So a graph never
reads another graph's values, and use lists, dead-code elimination, liveness and autodiff
see the dependency like any other input. The ONNX writer drops those inputs and names the
outer values inside the subgraph; the reader does the reverse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any

import numpy as np

from ir.errors import GraphInvariantError
from ir.node_list import NodeList
from ir.ops.registry import OpDef
from ir.symbolic import infer_node
from ir.types import Dim, TensorType


class Value:
    """An SSA value: a graph input or capture, an initializer or a node output.

    Attributes:
        graph: the graph the value belongs to.
        name: unique within the graph.
        type: dtype and (possibly symbolic) shape.
        producer: the node whose output this is, or None for inputs, captures and
            initializers.
        index: which output of ``producer``.
        uses: ``(node, input_index)`` pairs, in insertion order.
        const: the array of an initializer, None otherwise.
        sym: for small int64 values computed from shapes, the value with symbolic dims.
    """

    __slots__ = ("const", "graph", "index", "name", "producer", "sym", "type", "uses")

    def __init__(
        self,
        graph: Graph,
        name: str,
        type: TensorType,
        producer: Node | None = None,
        index: int = 0,
        const: np.ndarray | None = None,
    ) -> None:
        self.graph = graph
        self.name = name
        self.type = type
        self.producer = producer
        self.index = index
        self.uses: list[tuple[Node, int]] = []
        self.const = const
        self.sym: tuple[Dim, ...] | None = None

    @property
    def dtype(self) -> np.dtype:
        """Element dtype."""
        return self.type.dtype

    @property
    def shape(self) -> tuple[Dim, ...]:
        """Shape; raises when the rank is unknown (vjp rules need ranks)."""
        if self.type.shape is None:
            raise GraphInvariantError(f"value %{self.name} has unknown rank")
        return self.type.shape

    @property
    def ndim(self) -> int:
        """Rank."""
        return len(self.shape)

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        """The value, when it is known while the graph is built.

        Initializers and small int64 values computed from static shapes have one, so vjp
        rules can read axes and shapes off them.

        Raises:
            TypeError: the value is only known when the graph runs.
        """
        if self.const is not None:
            array = self.const
        elif self.sym is not None and all(isinstance(d, int) for d in self.sym):
            array = np.asarray(self.sym, np.int64).reshape(self.shape)  # type: ignore[arg-type]
        else:
            raise TypeError(f"%{self.name} is only known when the graph runs")
        return array if dtype is None else array.astype(dtype, copy=False)

    @classmethod
    def __graphcap_bind__(cls, op: OpDef, inputs: Sequence[Any], attrs: Mapping[str, Any]) -> Any:
        """The registry's hook: emit ``op`` as a node of the inputs' graph."""
        graph = next(x.graph for x in inputs if isinstance(x, Value))
        outs = graph.apply(op, inputs, attrs)
        return outs[0] if op.num_outputs == 1 else outs

    def __repr__(self) -> str:
        return f"%{self.name}: {self.type}"


class Node:
    """One application of a registry op.

    Attributes:
        op: the registry entry.
        inputs: input values; None for an absent optional input.
        outputs: values the node defines (created with the node, never reassigned).
        attrs: attributes as given (defaults are the registry's; see ``full_attrs``).
        meta: free-form data: ``"source"`` (file:line it was traced from), pass data.
    """

    __slots__ = ("attrs", "graph", "inputs", "meta", "name", "op", "outputs")

    def __init__(
        self,
        graph: Graph,
        op: OpDef,
        inputs: Sequence[Value | None],
        attrs: Mapping[str, Any],
        name: str,
        meta: Mapping[str, Any] | None = None,
    ) -> None:
        self.graph = graph
        self.op = op
        self.inputs: tuple[Value | None, ...] = tuple(inputs)
        self.outputs: tuple[Value, ...] = ()
        self.attrs = dict(attrs)
        self.name = name
        self.meta: dict[str, Any] = dict(meta or {})

    @property
    def full_attrs(self) -> dict[str, Any]:
        """Attributes with the registry's defaults filled in."""
        return self.op.full_attrs(self.attrs)

    @property
    def subgraphs(self) -> list[Graph]:
        """The graphs held in the node's attributes, in attribute-name order."""
        return [self.attrs[k] for k in sorted(self.attrs) if isinstance(self.attrs[k], Graph)]

    @property
    def num_captured(self) -> int:
        """How many of the node's last inputs feed its subgraphs' captures (0 without any)."""
        return max((len(g.captures) for g in self.subgraphs), default=0)

    def format(self) -> str:
        """One line of text: ``%3 = Add(%1, %2) : f32[batch, 8]  # model.py:41``."""
        outs = ", ".join(f"%{v.name}" for v in self.outputs)
        args = ", ".join("_" if v is None else f"%{v.name}" for v in self.inputs)
        attrs = "".join(f", {k}={_fmt_attr(v)}" for k, v in sorted(self.attrs.items()))
        types = ", ".join(str(v.type) for v in self.outputs)
        src = f"  # {self.meta['source']}" if "source" in self.meta else ""
        cut = " stop_gradient" if self.meta.get("stop_gradient") else ""
        return f"{outs} = {self.op.op_type}({args}{attrs}) : {types}{cut}{src}"

    def __repr__(self) -> str:
        return f"<Node {self.format()}>"


def _fmt_attr(value: Any) -> str:
    if isinstance(value, Graph):
        return f"graph({value.name})"
    if isinstance(value, np.ndarray):
        return f"tensor({value.dtype}{list(value.shape)})"
    if isinstance(value, float):
        return f"{value:g}"
    return repr(value)


class Graph:
    """An ONNX-style graph: typed inputs, initializers, ordered nodes and outputs.

    Attributes:
        name: graph name (the ONNX graph's name on export).
        inputs: graph input values, in signature order.
        captures: placeholders for values of the graph around this one that this subgraph
            reads; the node holding the subgraph passes those values as its last inputs.
        initializers: named constant values (weights, folded constants).
        nodes: nodes in topological order (a ``NodeList``: iterate it, ``len``, ``in``;
            change it only through the graph's methods).
        outputs: graph output values.
        meta: graph-level data, e.g. ``"baked"``: Python decisions a trace fixed.
    """

    def __init__(self, name: str = "main") -> None:
        self.name = name
        self.inputs: list[Value] = []
        self.captures: list[Value] = []
        self.initializers: dict[str, Value] = {}
        self.nodes: NodeList[Node] = NodeList()
        self.outputs: list[Value] = []
        self.meta: dict[str, Any] = {}
        self._names: set[str] = set()  # value names
        self._node_names: set[str] = set()  # a namespace of their own, as in ONNX
        self._counter = 0  # value names
        self._node_counters: dict[str, int] = {}  # per hint: the last suffix handed out
        self._point: InsertionPoint | None = None

    # ------------------------------------------------------------ building

    def fresh_name(self, hint: str = "") -> str:
        """A value name not used yet in this graph: ``hint``, else ``hint_<n>`` (or ``<n>``).

        ``n`` comes from one counter that only grows, so names are never searched twice.
        """
        if hint and hint not in self._names:
            return hint
        while True:
            self._counter += 1
            name = f"{hint}_{self._counter}" if hint else str(self._counter)
            if name not in self._names:
                return name

    def fresh_node_name(self, hint: str) -> str:
        """A node name not used yet in this graph: ``hint``, else ``hint_1``, ``hint_2``...

        A counter per hint remembers the last suffix handed out, so naming n nodes after
        one hint costs O(n) (a search from 1 each time cost O(n²)).
        """
        if hint not in self._node_names:
            return hint
        i = self._node_counters.get(hint, 0)
        while True:
            i += 1
            name = f"{hint}_{i}"
            if name not in self._node_names:
                self._node_counters[hint] = i
                return name

    def _claim(self, name: str) -> str:
        if name in self._names:
            raise GraphInvariantError(f"name {name!r} is already used in graph {self.name!r}")
        self._names.add(name)
        return name

    def add_input(self, name: str, dtype: Any, shape: Sequence[Dim] | None) -> Value:
        """Append a graph input of the given type."""
        value = Value(self, self._claim(name), TensorType(np.dtype(dtype), _shape(shape)))
        self.inputs.append(value)
        return value

    def add_capture(self, name: str, dtype: Any, shape: Sequence[Dim] | None) -> Value:
        """Append a capture: a value of the enclosing graph that this subgraph reads.

        The node holding this graph must pass the outer value as the matching one of its
        last inputs (see the module docstring).
        """
        value = Value(self, self._claim(name), TensorType(np.dtype(dtype), _shape(shape)))
        self.captures.append(value)
        return value

    def add_initializer(self, name: str, array: np.ndarray) -> Value:
        """Add a named constant (weights, buffers, folded constants)."""
        array = np.asarray(array)
        value = Value(self, self._claim(name), TensorType(array.dtype, array.shape), const=array)
        if array.dtype == np.int64 and array.ndim <= 1 and array.size <= 16:
            value.sym = tuple(int(v) for v in array.reshape(-1))
        self.initializers[name] = value
        return value

    def constant(self, array: np.ndarray, hint: str = "const") -> Value:
        """An initializer holding ``array``, named after ``hint``."""
        return self.add_initializer(self.fresh_name(hint), np.asarray(array))

    def apply(
        self,
        op: OpDef,
        inputs: Sequence[Any],
        attrs: Mapping[str, Any],
        meta: Mapping[str, Any] | None = None,
        out_names: Sequence[str] | None = None,
        name: str | None = None,
    ) -> tuple[Value, ...]:
        """Add a node applying ``op`` to ``inputs`` and return its outputs.

        The node goes at the end of the graph, or at the active insertion point (see
        ``inserting_before``). Inputs that are not values (arrays, tuples of ints) become
        initializers. Output types come from the op's shape rule. ``name`` names the node
        (unique among nodes; by default made from the op type); ``out_names`` names its
        outputs.
        """
        values = [
            x if x is None or isinstance(x, Value) else self.constant(np.asarray(x)) for x in inputs
        ]
        node_name = self.fresh_node_name(name or op.op_type.lower())
        node = Node(self, op, values, attrs, node_name, meta)
        types, syms = infer_node(node)
        names = out_names or [self.fresh_name() for _ in types]
        if len(names) != len(types):
            raise GraphInvariantError(
                f"node {node_name} ({op.op_type}): its shape rule gives {len(types)} output(s) "
                f"but {len(names)} output name(s) were given"
            )
        node.outputs = tuple(
            Value(self, self._claim(n), t, producer=node, index=i)
            for i, (n, t) in enumerate(zip(names, types, strict=True))
        )
        for v, sym in zip(node.outputs, syms, strict=True):
            v.sym = sym
        if self._point is None:
            self.append(node)
        else:
            self._point.insert(node)
        return node.outputs

    def inserting_before(self, node: Node) -> InsertionPoint:
        """``with graph.inserting_before(node):`` new nodes go just before ``node``.

        ``apply`` (and so ``op.X(...)`` on this graph's values) places nodes there, in the
        order they are made; the point's ``nodes`` lists them. Points nest; leaving the
        ``with`` block restores the one before.
        """
        return InsertionPoint(self, before=node)

    def inserting_after(self, node: Node) -> InsertionPoint:
        """``with graph.inserting_after(node):`` new nodes follow ``node``, in order made."""
        return InsertionPoint(self, after=node)

    def append(self, node: Node) -> None:
        """Add ``node`` at the end and register its uses."""
        self._register(node)
        self.nodes.append(node)

    def insert_before(self, anchor: Node, node: Node) -> None:
        """Add ``node`` just before ``anchor`` (O(1)) and register its uses."""
        self._check_member(anchor)
        self._register(node)
        self.nodes.insert_before(anchor, node)

    def insert_after(self, anchor: Node, node: Node) -> None:
        """Add ``node`` just after ``anchor`` (O(1)) and register its uses."""
        self._check_member(anchor)
        self._register(node)
        self.nodes.insert_after(anchor, node)

    def _check_member(self, anchor: Node) -> None:
        if anchor not in self.nodes:
            raise GraphInvariantError(
                f"cannot insert next to node {anchor.name}: it is not in graph {self.name!r}"
            )

    def _register(self, node: Node) -> None:
        """Claim ``node``'s name and record its uses of its inputs."""
        if node.name in self._node_names:
            raise GraphInvariantError(f"node name {node.name!r} is already used")
        self._node_names.add(node.name)
        for i, x in enumerate(node.inputs):
            if x is not None:
                x.uses.append((node, i))

    def set_input(self, node: Node, index: int, value: Value | None) -> None:
        """Point input ``index`` of ``node`` at ``value``, keeping use lists right."""
        old = node.inputs[index]
        if old is not None:
            old.uses.remove((node, index))
        if value is not None:
            value.uses.append((node, index))
        node.inputs = (*node.inputs[:index], value, *node.inputs[index + 1 :])

    def replace_all_uses_with(self, old: Value, new: Value) -> None:
        """Make every use of ``old`` (graph outputs included) use ``new`` instead."""
        for node, index in list(old.uses):
            self.set_input(node, index, new)
        self.outputs = [new if v is old else v for v in self.outputs]

    def remove(self, node: Node, safe: bool = True) -> None:
        """Remove ``node``; with ``safe``, refuse when its outputs are still used.

        Raises:
            GraphInvariantError: ``safe`` and an output still has uses or is a graph output.
        """
        if safe:
            for v in node.outputs:
                if v.uses or v in self.outputs:
                    raise GraphInvariantError(
                        f"cannot remove {node.format()}: output %{v.name} is still used"
                    )
        if node not in self.nodes:
            raise GraphInvariantError(f"cannot remove node {node.name}: it is not in the graph")
        for i, x in enumerate(node.inputs):
            if x is not None:
                x.uses.remove((node, i))
        self.nodes.remove(node)
        self._node_names.discard(node.name)

    def remove_initializer(self, name: str) -> None:
        """Remove the initializer ``name``.

        Raises:
            GraphInvariantError: it is still used, or is a graph output.
        """
        value = self.initializers[name]
        if value.uses or value in self.outputs:
            raise GraphInvariantError(f"cannot remove initializer %{name}: it is still used")
        del self.initializers[name]
        self._names.discard(name)

    def rename(self, value: Value, name: str) -> None:
        """Give ``value`` a new unique name.

        Raises:
            GraphInvariantError: ``name`` is taken.
        """
        if name == value.name:
            return
        self._claim(name)
        self._names.discard(value.name)
        if value.const is not None:
            self.initializers = {
                (name if k == value.name else k): v for k, v in self.initializers.items()
            }
        value.name = name

    def add_output(self, value: Value, name: str) -> Value:
        """Append ``value`` to the graph outputs under ``name``; return the output value.

        A node output that is not an output yet is renamed. Anything else (an input, an
        initializer, an output already) goes through a new ``Identity`` node, because ONNX
        names an output by its value and inputs, initializers and outputs keep their names.

        Raises:
            GraphInvariantError: another value already has the name ``name``.
        """
        if value.producer is not None and value not in self.outputs:
            self.rename(value, name)
        else:
            from ir.ops.registry import get  # the registry's Identity, looked up when needed

            (value,) = self.apply(get("Identity"), [value], {}, out_names=[name])
        self.outputs.append(value)
        return value

    def set_outputs(self, values: Iterable[Value]) -> None:
        """Declare the graph's outputs."""
        self.outputs = list(values)

    def copy(self) -> Graph:
        """An independent graph with the same names, types, nodes and metadata.

        Initializer arrays and attribute values are shared (the IR never mutates them);
        everything with use lists is new, so passes on the copy leave ``self`` alone.
        """
        out = Graph(self.name)
        out.meta = {k: (list(v) if isinstance(v, list) else v) for k, v in self.meta.items()}
        out._counter = self._counter
        out._node_counters = dict(self._node_counters)
        new: dict[int, Value] = {}
        for v in self.inputs:
            new[id(v)] = out.add_input(v.name, v.dtype, v.type.shape)
            new[id(v)].sym = v.sym
        for v in self.captures:
            new[id(v)] = out.add_capture(v.name, v.dtype, v.type.shape)
            new[id(v)].sym = v.sym
        for v in self.initializers.values():
            assert v.const is not None
            new[id(v)] = out.add_initializer(v.name, v.const)
            new[id(v)].sym = v.sym
        out.append_copies(self.nodes, new)
        out.outputs = [new[id(v)] for v in self.outputs]
        return out

    def append_copies(self, nodes: Iterable[Node], values: dict[int, Value]) -> None:
        """Append copies of ``nodes`` (of another graph), keeping names, types and metadata.

        ``values`` maps ``id`` of each value the nodes read to this graph's value standing
        for it; it is extended with the copies' outputs, in order, so later nodes can read
        earlier ones.
        """
        for n in nodes:
            inputs = [None if x is None else values[id(x)] for x in n.inputs]
            node = Node(self, n.op, inputs, n.attrs, n.name, n.meta)
            node.outputs = tuple(
                Value(self, self._claim(v.name), v.type, producer=node, index=v.index)
                for v in n.outputs
            )
            for old, v in zip(n.outputs, node.outputs, strict=True):
                v.sym = old.sym
                values[id(old)] = v
            self.append(node)

    # ------------------------------------------------------------ reading

    def values(self) -> list[Value]:
        """Every value: inputs, captures, initializers, then node outputs in order."""
        return [
            *self.inputs,
            *self.captures,
            *self.initializers.values(),
            *(v for n in self.nodes for v in n.outputs),
        ]

    def verify(self) -> None:
        """Check every IR invariant; see ``ir.verify``."""
        from ir.verify import verify

        verify(self)

    def __str__(self) -> str:
        sig = ", ".join(repr(v) for v in self.inputs)
        captured = ", ".join(repr(v) for v in self.captures)
        outer = f" captures({captured})" if self.captures else ""
        lines = [f"graph {self.name}({sig}){outer} {{"]
        lines += [f"  %{v.name} = initializer {v.type}" for v in self.initializers.values()]
        for n in self.nodes:
            lines.append(f"  {n.format()}")
            # Subgraphs (If branches, Loop and Scan bodies) follow their node, indented.
            for body in n.subgraphs:
                lines += [f"    {line}" for line in str(body).splitlines()]
        lines.append("  return " + ", ".join(f"%{v.name}" for v in self.outputs))
        lines.append("}")
        return "\n".join(lines)

    def to_dot(self) -> str:
        """The graph in Graphviz's dot language: one box per node, edges labelled by type."""
        lines = [f'digraph "{self.name}" {{', "  rankdir=TB;", "  node [fontname=monospace];"]
        lines += [
            f'  "v:{v.name}" [shape=ellipse, label="{v.name}\\n{v.type}"];' for v in self.inputs
        ]
        for n in self.nodes:
            lines.append(f'  "n:{n.name}" [shape=box, label="{n.op.op_type}"];')
            for x in n.inputs:
                if x is None or x.const is not None:
                    continue
                src = f"n:{x.producer.name}" if x.producer else f"v:{x.name}"
                lines.append(f'  "{src}" -> "n:{n.name}" [label="{x.type}"];')
        for i, v in enumerate(self.outputs):
            lines.append(f'  "out:{i}" [shape=ellipse, label="output {i}\\n{v.type}"];')
            src = f"n:{v.producer.name}" if v.producer else f"v:{v.name}"
            lines.append(f'  "{src}" -> "out:{i}";')
        lines.append("}")
        return "\n".join(lines)


class InsertionPoint:
    """Where ``Graph.apply`` puts new nodes while a ``with`` block is open.

    Made by ``Graph.inserting_before(node)`` (each new node goes just before ``node``) or
    ``Graph.inserting_after(node)`` (the first just after ``node``, each next one after the
    one before it); either way the new nodes keep the order they were made in.

    Attributes:
        graph: the graph it places nodes in.
        nodes: the nodes placed through it so far, in order.
    """

    def __init__(self, graph: Graph, before: Node | None = None, after: Node | None = None):
        self.graph = graph
        self.nodes: list[Node] = []
        self._before = before
        self._after = after
        self._outer: InsertionPoint | None = None

    def insert(self, node: Node) -> None:
        """Place ``node`` here and register it with the graph."""
        if self._before is not None:
            self.graph.insert_before(self._before, node)
        else:
            assert self._after is not None
            self.graph.insert_after(self._after, node)
            self._after = node
        self.nodes.append(node)

    def __enter__(self) -> InsertionPoint:
        self._outer, self.graph._point = self.graph._point, self
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.graph._point = self._outer


def _shape(shape: Sequence[Dim] | None) -> tuple[Dim, ...] | None:
    return None if shape is None else tuple(shape)
