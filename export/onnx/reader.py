"""Read an ONNX model into an ``ir.Graph``: ``load(path)`` and ``from_model(model)``.

The graph is built through ``Graph.add_input``, ``Graph.add_initializer`` and
``Graph.apply``, so every type comes from the registry's shape rules; the file's declared
types (``value_info``, graph outputs) then fill in what the rules leave unknown (placeholder
symbols and ``dim_value: -1`` read as unknown: ``declared``); a declared shape that
contradicts a rule is ignored with a warning, a declared dtype that does is an error. Values
keep the file's names.

What loading normalises:

- ``Constant`` nodes (every ``value*`` form but strings and sparse tensors) become
  initializers named after their output; ``ConstantOfShape``'s one-element ``value`` becomes
  a 0-d array.
- Older opsets' forms become the registry's opset-20 form, chosen by the model's
  default-domain opset, as each op's ``OpDef.legacy`` declares them: attributes that later
  became inputs (Reduce* ``axes`` before 18, ReduceSum's before 13, Squeeze/Unsqueeze
  ``axes`` and Split ``split`` before 13, TopK ``k`` and Slice ``starts/ends/axes`` before
  10, Pad ``pads/value`` and Clip ``min/max`` before 11, Dropout ``ratio`` before 12, Reshape
  ``shape`` before 5, DFT ``axis`` before 20); Softmax/LogSoftmax/Hardmax before 13 (which
  flatten to 2-D around ``axis``) become Flatten, the op and Reshape unless ``axis`` is the
  last axis; the legacy ``is_test`` and ``broadcast`` (without ``axis``) attributes are
  dropped, and Concat gets its old default ``axis=1``. Besides, every op's
  ``consumed_inputs`` (before 6) is dropped, Split without sizes before 18 gets
  ``num_outputs`` and a string ``Cast.to`` becomes its code.
- Graph-valued attributes (If branches, Loop and Scan bodies) become ``ir.Graph`` values,
  read the same way. A name a subgraph reads from the graphs around it becomes a capture of
  the subgraph (and of every subgraph between), and the node gets that outer value as one
  of its last inputs (``ir.graph`` explains the convention; ``export.onnx.subgraphs`` does
  the bookkeeping). Scan-8 (batched, with a ``sequence_lens`` input) is refused: the
  registry has Scan-9 on.
- Node ``metadata_props["source"]`` goes to ``node.meta["source"]``, model
  ``metadata_props["graphcap.<key>"]`` (JSON) to ``graph.meta[key]``.

Ops the registry lacks are all counted before anything is built and reported in one
:class:`UnsupportedOpError`. Files come from anyone: every node is checked against its ONNX
schema and the registry's form before it is built (``export.onnx.checks``), and every tensor
against its data before it is read (``export.onnx.tensors``); external data is read only
from regular files inside the model's folder.
"""

from __future__ import annotations

import os
import warnings
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto

import ir.ops  # noqa: F401  (registers every op family)
from export.onnx import checks
from export.onnx.compat import compatible
from export.onnx.declared import declared_type, input_symbols
from export.onnx.subgraphs import align_captures, body_types
from export.onnx.tensors import read_model, tensor_array, tensor_stand_in
from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.errors import ExportError, GraphcapError, UnsupportedOpError
from ir.graph import Graph, Value
from ir.ops import registry
from ir.ops.registry import OpDef
from ir.types import Dim, TensorType


def load(path: str | os.PathLike[str]) -> Graph:
    """Read the ONNX file at ``path`` (and its external data) as an ``ir.Graph``.

    Raises:
        FileNotFoundError: no such file.
        ExportError: the file is not a regular file, not an ONNX model, or a model that
            cannot be represented (see :func:`from_model`).
        UnsupportedOpError: the model uses ops the registry does not have (all listed).
    """
    path = Path(path)
    return from_model(read_model(path), base_dir=path.parent)


def from_model(
    model: onnx.ModelProto, base_dir: str | Path | None = None, *, weights: bool = True
) -> Graph:
    """Build an ``ir.Graph`` from an ONNX model.

    Args:
        model: the model; tensors with external data are read from ``base_dir``.
        base_dir: the folder the model was loaded from; needed only for external data.
        weights: False to read only small tensors and stand large ones in with zeros that
            take no memory (``export.onnx.tensors.tensor_stand_in``): a graph with the
            model's types, for checking shapes, not for running.

    Returns:
        A graph that verifies, in the registry's opset-20 form.

    Raises:
        UnsupportedOpError: one error listing every op the registry lacks, with counts.
        ExportError: an older form that cannot be normalised, unreadable or unsafe external
            data, a declared dtype that contradicts the registry's shape rules.
        DTypeError: a tensor of an element type graphcap does not support.
    """
    checks.check_text(model)
    declared = checks.declared_opset(model)
    _refuse_unsupported(model.graph, declared or 0)
    if declared is None:
        raise ExportError("the model imports no default-domain ('' or 'ai.onnx') opset")
    return _Reader(model, declared, base_dir, weights=weights).read()


def _domain(domain: str) -> str:
    return "" if domain == "ai.onnx" else domain


def _nodes(graph: onnx.GraphProto) -> list[onnx.NodeProto]:
    """The nodes of ``graph`` and of every subgraph inside it."""
    nodes = []
    for n in graph.node:
        nodes.append(n)
        for a in n.attribute:
            for sub in [a.g] if a.type == AttributeProto.GRAPH else a.graphs:
                nodes += _nodes(sub)
    return nodes


def _refuse_unsupported(graph: onnx.GraphProto, opset: int) -> None:
    """One error listing every op the registry lacks, or has only in another meaning."""
    counts: Counter[str] = Counter()
    for n in _nodes(graph):
        domain = _domain(n.domain)
        if domain == "" and n.op_type == "Constant":
            continue
        try:
            op = registry.get(n.op_type, domain)
        except UnsupportedOpError:
            counts[f"{n.op_type} ({domain})" if domain else n.op_type] += 1
            continue
        if not domain and opset < op.legacy.oldest:  # ONNX changed the op's meaning
            counts[f"{op.op_type} before opset {op.legacy.oldest}"] += 1
        # Older forms are normalised; a newer version must mean what the registry implements.
        used = [a.name for a in n.attribute]
        if not domain and opset > op.since and not compatible(op, opset, used):
            version = onnx.defs.get_schema(op.op_type, opset).since_version
            counts[f"{op.op_type}-{version} (the registry implements {op.op_type}-{op.since})"] += 1
    if counts:
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        listing = ", ".join(f"{c} \N{MULTIPLICATION SIGN} {op}" for op, c in ranked)
        raise UnsupportedOpError(
            f"the model uses {sum(counts.values())} node(s) whose ops graphcap's registry does "
            f"not have: {listing}"
        )


# ---------------------------------------------------------------- tensors and types


def _attr_value(a: AttributeProto, base_dir: str | Path | None, where: str) -> Any:
    kind = AttributeProto.AttributeType
    if a.type == kind.FLOAT:
        return float(a.f)
    if a.type == kind.INT:
        return int(a.i)
    if a.type == kind.STRING:
        return checks.text(a.s, where, a.name)
    if a.type == kind.TENSOR:
        return tensor_array(a.t, base_dir, f"{where}: attribute {a.name}")
    if a.type == kind.FLOATS:
        return [float(x) for x in a.floats]
    if a.type == kind.INTS:
        return [int(x) for x in a.ints]
    if a.type == kind.STRINGS:
        return [checks.text(s, where, a.name) for s in a.strings]
    raise ExportError(f"{where}: attribute {a.name} of type {kind.Name(a.type)} is not supported")


# ---------------------------------------------------------------- older forms


def _attr_constant(kind: str, value: Any, x: Value | None) -> np.ndarray:
    if kind == "ints":
        return np.asarray(value, dtype=np.int64).reshape(-1)
    if kind == "int":  # a 0-d input (DFT's axis)
        return np.asarray(value, dtype=np.int64).reshape(())
    if x is not None and (kind == "like_x" or D.is_floating(x.dtype)):
        return np.asarray(value, dtype=x.dtype)
    return np.asarray(value, dtype=np.float32)


class _Reader:
    """Builds one graph; holds the name bookkeeping the build needs."""

    def __init__(
        self,
        model: onnx.ModelProto,
        opset: int,
        base_dir: str | Path | None,
        subgraph: onnx.GraphProto | None = None,
        hints: list[TensorType | None] | None = None,
        parent: _Reader | None = None,
        unsized: bool = False,
        bound: set[str] | None = None,
        *,
        weights: bool = True,
    ) -> None:
        self.model = model
        self.opset = opset
        self.base_dir = base_dir
        self.weights = weights
        self.tensor = tensor_array if weights else tensor_stand_in
        self.is_body = subgraph is not None
        self.parent = parent  # the reader of the enclosing graph (subgraphs only)
        self.unsized = unsized  # captures get the outer values' dtypes and ranks only
        # Outer values this subgraph reads, by name, in the order first read.
        self.captured: dict[str, Value] = {}
        self._bodies: dict[int, dict[str, Value]] = {}  # id(subgraph) -> its captured
        self.hints = hints or []  # body input types implied by the node (ONNX may omit them)
        g = self.proto = model.graph if subgraph is None else subgraph
        self.graph = Graph(g.name or ("body" if self.is_body else "main"))
        self.values: dict[str, Value] = {}
        # Names the file uses: generated names (constants made from attributes, outputs the
        # file leaves unnamed) must never take one of them.
        self.taken = {
            *(t.name for t in g.initializer),
            *(vi.name for vi in g.input),
            *(name for n in g.node for name in n.output),
        }
        # The main graph's input symbols: other declared symbols are placeholders (unknown).
        inits = [t.name for t in g.initializer]
        self.bound = input_symbols(g.input, skip=inits) if bound is None else bound
        self.declared = {
            vi.name: declared_type(vi, self.bound) for vi in (*g.value_info, *g.output)
        }

    def read(self) -> Graph:
        g = self.proto
        if len(g.sparse_initializer):
            raise ExportError("sparse initializers are not supported")
        for t in g.initializer:
            self.values[t.name] = self.graph.add_initializer(t.name, self.tensor(t, self.base_dir))
        for i, vi in enumerate(g.input):
            if vi.name in self.values:
                continue  # an initializer also listed as an input (required before IR 4)
            # The main graph's inputs define the symbols; a body's declare placeholders too.
            dtype, shape = declared_type(vi, self.bound if self.is_body else None)
            hint = self.hints[i] if i < len(self.hints) else None
            if hint is not None:
                dtype = dtype or hint.dtype
                shape = _fill(shape, hint.shape)
            if dtype is None:
                raise ExportError(f"graph input {vi.name!r} is not a tensor of known dtype")
            self.values[vi.name] = self.graph.add_input(vi.name, dtype, shape)
        for i, n in enumerate(g.node):
            where = f"node {n.name or '#' + str(i)!r} ({n.op_type})"
            try:
                self._node(n, where)
            except GraphcapError as err:
                if str(err).startswith(where):
                    raise
                raise type(err)(f"{where}: {err}") from err
        missing = [o.name for o in g.output if o.name not in self.values]
        if missing:
            raise ExportError(f"graph outputs {missing} are not defined by the graph")
        self.graph.set_outputs(self.values[o.name] for o in g.output)
        if self.is_body:
            return self.graph
        for entry in self.model.metadata_props:
            if entry.key.startswith("graphcap."):
                self.graph.meta[entry.key.removeprefix("graphcap.")] = checks.metadata_json(entry)
        return self.graph

    # ------------------------------------------------------------ one node

    def _node(self, n: onnx.NodeProto, where: str) -> None:
        domain = _domain(n.domain)
        if domain == "" and n.op_type == "Constant":
            self._constant(n, where)
            return
        op = registry.get(n.op_type, domain)
        schema = checks.schema_of(op, self.opset)
        if schema is not None:
            checks.check_form(n, schema, where)
        inputs = [self._input(name, where) for name in n.input]
        # By name: subgraphs capture outer values in the order read, which must not depend
        # on the file's attribute order (the writer sorts them).
        attributes = sorted(n.attribute, key=lambda a: a.name)
        attrs = {a.name: self._attr(a, where, n, inputs) for a in attributes}
        meta: dict[str, Any] = {e.key: e.value for e in n.metadata_props if e.key == "source"}
        if any(e.key == "stop_gradient" and e.value == "1" for e in n.metadata_props):
            meta["stop_gradient"] = True
        inputs, attrs = self._normalise(n, op, inputs, attrs, where)
        while inputs and inputs[-1] is None:
            inputs.pop()  # absent trailing inputs: one canonical form
        bodies = [attrs[k] for k in sorted(attrs) if isinstance(attrs[k], Graph)]
        if bodies:  # in attribute-name order, as the writer writes them
            # Captures follow the node's own inputs, whose positions are fixed (Loop's
            # optional M and cond hold theirs even when absent).
            inputs += [None] * (op.num_inputs[0] - len(inputs))
            inputs += align_captures(bodies, [self._bodies.pop(id(g)) for g in bodies])
        if self.opset < op.legacy.flat_2d:
            self._coerced_2d(n, op, inputs[0], attrs, meta, where)
            return
        unknown = sorted(set(attrs) - set(op.attrs))
        if unknown:
            raise ExportError(
                f"{where}: attribute(s) {unknown} of ONNX {op.op_type} at opset {self.opset} "
                f"have no counterpart in graphcap's {op.op_type} (attributes "
                f"{sorted(op.attrs)}, ONNX opset-{op.since} form)"
            )
        checks.check_arity(op, inputs, attrs, where)
        if op.num_outputs is None and attrs.get("num_outputs", len(n.output)) != len(n.output):
            raise ExportError(
                f"{where} has {len(n.output)} outputs but num_outputs={attrs['num_outputs']}"
            )
        self._apply(op, inputs, attrs, meta, list(n.output), n.name, where)

    def _attr(
        self, a: AttributeProto, where: str, n: onnx.NodeProto, inputs: list[Value | None]
    ) -> Any:
        if a.type != AttributeProto.GRAPH:
            return _attr_value(a, self.base_dir, where)
        # The branch an If does not take need not type-check on the outer values' sizes
        # (affine grids branch on the rank), so branches see captured dtypes and ranks only.
        unsized = n.op_type == "If"
        hints = body_types(n, inputs)
        reader = _Reader(
            self.model,
            self.opset,
            self.base_dir,
            a.g,
            hints,
            self,
            unsized,
            self.bound,
            weights=self.weights,
        )
        body = reader.read()
        self._bodies[id(body)] = reader.captured
        return body

    def _input(self, name: str, where: str) -> Value | None:
        if not name:
            return None
        if name not in self.values and self.is_body:
            outer = self._outer(name, where)
            shape = outer.type.shape
            if self.unsized and shape is not None:
                shape = (None,) * len(shape)
            self.values[name] = self.graph.add_capture(name, outer.dtype, shape)
            self.captured[name] = outer
        return self._defined(name, where)

    def _outer(self, name: str, where: str) -> Value:
        """The value ``name`` of the enclosing graph (captured there too when it is a body)."""
        assert self.parent is not None
        parent = self.parent
        if name in parent.values:
            return parent.values[name]
        if not parent.is_body:
            raise ExportError(
                f"{where} in subgraph {self.graph.name!r} reads {name!r}, which no enclosing "
                "graph defines before the node holding the subgraph"
            )
        value = parent._input(name, where)
        assert value is not None
        return value

    def _defined(self, name: str, where: str) -> Value:
        if name not in self.values:
            raise ExportError(
                f"{where} uses {name!r} before it is defined; ONNX nodes must be in "
                "topological order"
            )
        return self.values[name]

    def _constant(self, n: onnx.NodeProto, where: str) -> None:
        if len(n.attribute) != 1 or len(n.output) != 1 or not n.output[0] or n.input:
            raise ExportError(
                f"{where}: a Constant has no inputs, one named output and one value "
                f"attribute; this one has {len(n.input)}, {list(n.output)} and "
                f"{[a.name for a in n.attribute]}"
            )
        a = n.attribute[0]
        kinds = {"value": "TENSOR", "value_float": "FLOAT", "value_floats": "FLOATS"}
        kinds |= {"value_int": "INT", "value_ints": "INTS"}
        given = AttributeProto.AttributeType.Name(a.type)
        if kinds.get(a.name, given) != given:
            raise ExportError(f"{where}: Constant {a.name} is {given}; expected {kinds[a.name]}")
        forms = {
            "value": lambda: self.tensor(a.t, self.base_dir, where),
            "value_float": lambda: np.asarray(a.f, dtype=np.float32),
            "value_floats": lambda: np.asarray(a.floats, dtype=np.float32),
            "value_int": lambda: np.asarray(a.i, dtype=np.int64),
            "value_ints": lambda: np.asarray(a.ints, dtype=np.int64),
        }
        if a.name not in forms:
            raise ExportError(f"{where}: Constant {a.name} is not supported (no string or sparse)")
        name = n.output[0]
        self.values[name] = self.graph.add_initializer(name, forms[a.name]())

    def _normalise(
        self,
        n: onnx.NodeProto,
        op: OpDef,
        inputs: list[Value | None],
        attrs: dict[str, Any],
        where: str,
    ) -> tuple[list[Value | None], dict[str, Any]]:
        """The registry's (opset-20) inputs and attributes for a node of ``self.opset``."""
        v, op_type, legacy = self.opset, op.op_type, op.legacy
        x = inputs[0] if inputs else None
        for moved in legacy.inputs:
            value = attrs.pop(moved.name, moved.default) if v < moved.until else None
            if value is not None:
                inputs += [None] * (moved.position + 1 - len(inputs))
                arr = _attr_constant(moved.kind, value, x)
                hint = f"{n.name or op_type.lower()}_{moved.name}"
                inputs[moved.position] = self.graph.add_initializer(self._fresh(hint), arr)
        if v < 6:
            attrs.pop("consumed_inputs", None)
        for name, until in legacy.dropped:
            if v < until:
                attrs.pop(name, None)
        if legacy.broadcast and v < 7 and "axis" not in attrs:
            attrs.pop("broadcast", None)
        for name, until, default in legacy.defaults:
            if v < until:
                attrs.setdefault(name, default)
        if op_type == "Split" and v < 18 and (len(inputs) < 2 or inputs[1] is None):
            attrs.setdefault("num_outputs", len(n.output))
        if op_type == "Cast" and isinstance(attrs.get("to"), str):
            attrs["to"] = checks.type_code(attrs["to"], where)
        value = attrs.get("value")
        if op_type == "ConstantOfShape" and isinstance(value, np.ndarray) and value.size == 1:
            attrs["value"] = value.reshape(())
        return inputs, attrs

    def _coerced_2d(
        self,
        n: onnx.NodeProto,
        op: OpDef,
        x: Value | None,
        attrs: dict[str, Any],
        meta: dict[str, Any],
        where: str,
    ) -> None:
        """An op before its ``legacy.flat_2d``: the op over ``x`` flattened to 2-D at ``axis``."""
        assert x is not None
        axis = int(attrs.pop("axis", 1))
        if attrs:
            raise ExportError(f"{where}: unexpected attributes {sorted(attrs)}")
        rank = x.type.rank
        if rank is not None and axis % max(rank, 1) == rank - 1:
            self._apply(op, [x], {"axis": axis}, meta, list(n.output), n.name, where)
            return
        flat = self._apply(registry.get("Flatten"), [x], {"axis": axis}, meta, [], "", where)
        (y,) = self._apply(op, [*flat], {"axis": 1}, meta, [], "", where)
        shape = self._apply(registry.get("Shape"), [x], {}, meta, [], "", where)
        reshape = registry.get("Reshape")
        self._apply(reshape, [y, *shape], {}, meta, list(n.output), n.name, where)

    # ------------------------------------------------------------ building

    def _apply(
        self,
        op: OpDef,
        inputs: list[Value | None],
        attrs: dict[str, Any],
        meta: dict[str, Any],
        out_names: list[str],
        node_name: str,
        where: str,
    ) -> tuple[Value, ...]:
        count = op.num_outputs or len(out_names)
        if len(out_names) > count:
            raise ExportError(
                f"{where} has {len(out_names)} outputs; graphcap's {op.op_type} has {count}"
            )
        hint = node_name or op.op_type.lower()
        names = [*out_names, *[""] * (count - len(out_names))]
        names = [name or self._fresh(f"{hint}_out{i}") for i, name in enumerate(names)]
        # Files may repeat or omit node names; the graph makes them unique among nodes.
        outs = self.graph.apply(
            op, inputs, attrs, meta=meta, out_names=names, name=node_name or None
        )
        for v in outs:
            self.values[v.name] = v
            self._refine(v, where)
        return outs

    def _fresh(self, hint: str) -> str:
        i = 0
        while True:
            name = hint if i == 0 else f"{hint}_{i}"
            if name not in self.taken and self.graph.fresh_name(name) == name:
                self.taken.add(name)
                return name
            i += 1

    def _refine(self, v: Value, where: str) -> None:
        """Fill dims the shape rules leave unknown from the file's declared type.

        A declared shape that contradicts the rule (a stale ``value_info``: another rank or
        another size) is dropped with a warning, as onnxruntime does; a declared dtype that
        contradicts it is an error (onnxruntime refuses the model too).
        """
        dtype, shape = self.declared.get(v.name, (None, None))
        if dtype is not None and dtype != v.dtype:
            raise ExportError(
                f"{where}: the file declares %{v.name} as {dtype}; the registry's rule gives "
                f"{v.type}"
            )
        if shape is None:
            return
        ours = v.type.shape
        if ours is None:
            v.type = TensorType(v.dtype, shape)
            return
        if len(ours) != len(shape) or any(
            isinstance(a, int) and isinstance(b, int) and a != b
            for a, b in zip(ours, shape, strict=False)
        ):
            warnings.warn(
                f"{where}: the file declares %{v.name} as {TensorType(v.dtype, shape)} but the "
                f"op's shape rule gives {v.type}; the declaration (a stale value_info or "
                "output type?) is ignored",
                stacklevel=2,
            )
            return
        dims = tuple(b if a is None else a for a, b in zip(ours, shape, strict=True))
        v.type = TensorType(v.dtype, dims)


def _fill(shape: tuple[Dim, ...] | None, known: tuple[Dim, ...] | None) -> tuple[Dim, ...] | None:
    """``shape`` with its unknown dims taken from ``known`` (when the ranks agree)."""
    if shape is None or known is None:
        return known if shape is None else shape
    if len(shape) != len(known):
        return shape
    return tuple(k if d is None else d for d, k in zip(shape, known, strict=True))
