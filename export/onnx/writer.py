"""Write an ``ir.Graph`` as a standard ONNX model: ``to_model`` in memory, ``save`` to a file.

The registry's ops are ONNX ops with opset-20 semantics, so writing is serialisation: each
node becomes a ``NodeProto`` whose attributes are coerced to the types the ONNX schema
declares (a float attribute given as a Python int is written as FLOAT). The model always
gets ``ir_version = IR_VERSION`` (onnx 1.23 would write 14, which onnxruntime 1.31 rejects)
and one default-domain opset import.

An opset below 20 can be asked for (down to ``MIN_OPSET``): ops whose ONNX form did not
change are written as they are; Reduce* ``axes`` inputs (opset 18) become attributes when
they are constants and Split's ``num_outputs`` (18) becomes a ``split`` input; anything else
that needs a newer opset raises :class:`ExportError` naming the node and the opset it needs.

A graph-valued attribute (an If branch, a Loop or Scan body) is written as a ``GraphProto``
without opset imports (subgraphs use the model's); body values whose names are taken
elsewhere in the model get fresh names there, because ONNX wants one static assignment
across all scopes. A subgraph's captures are not written as inputs: the node's captured
inputs are dropped and the subgraph reads the outer values by name, as ONNX does.

Metadata: a node's ``meta["source"]`` goes to the node's ``metadata_props["source"]``, and
each ``graph.meta[key]`` to the model's ``metadata_props["graphcap.<key>"]`` as JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import IO, Any

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, defs, helper, numpy_helper

from export.onnx import files
from export.onnx.microsoft import contrib_schema
from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.errors import DTypeError, ExportError
from ir.graph import Graph, Node, Value
from ir.ops.registry import OpDef

DEFAULT_OPSET = 20
"""The opset a model is written at unless an op in it first appears later."""
MAX_OPSET = 23
"""The newest opset written: ops new since 20 (RMSNormalization, Attention) need up to 23."""
MIN_OPSET = 13
"""The lowest opset ``to_model`` writes (Squeeze/Unsqueeze/Softmax changed form at 13)."""
IR_VERSION = 10
"""ONNX IR version written (10 adds node ``metadata_props``; onnxruntime 1.31 reads <= 13)."""
PRODUCER = "graphcap"
PROTO_LIMIT = 2**31 - 1
"""Protobuf refuses to serialise messages of 2 GiB or more: weights then go to external data."""
EXTERNAL_MIN_BYTES = 1024
"""Tensors smaller than this stay inside the model when weights go to external data."""
_ALIGN = 4096  # external tensors of 1 MiB or more start on a page boundary (lets runtimes mmap)

TensorWriter = Callable[[str, np.ndarray], TensorProto]


def to_model(graph: Graph, opset: int | None = None) -> onnx.ModelProto:
    """Serialise ``graph`` as an ONNX model with every weight inside it.

    Args:
        graph: the graph to write; it is not modified.
        opset: default-domain opset to declare, ``MIN_OPSET..DEFAULT_OPSET``; None for
            ``DEFAULT_OPSET``.

    Returns:
        A model that passes ``onnx.checker.check_model(model, full_check=True)``.

    Raises:
        ExportError: the opset is out of range, a node needs a newer opset, an input has a
            dtype the ONNX op does not accept, an attribute has no ONNX counterpart, or a
            ``graph.meta`` entry is not JSON-serialisable.
    """
    return _build(graph, _check_opset(opset, graph), _inline_tensor)


def save(
    graph: Graph,
    path: str | os.PathLike[str],
    opset: int | None = None,
    external_data: bool | None = None,
    *,
    size_limit: int = PROTO_LIMIT,
) -> None:
    """Write ``graph`` to ``path`` as an ONNX file, atomically.

    The model is written to a temporary file in the same folder and moved over ``path`` with
    one ``os.replace``, so ``path`` holds the old model or the new one, never a half-written
    one. With external data, tensors of ``EXTERNAL_MIN_BYTES`` or more go to one file
    beside the model named after the model and a digest of its content,
    ``<path name>.<16 hex>.data`` (its ``location`` is that bare file name). It is written
    and moved into place first, under its new name, so the old model keeps its own data
    until the model's rename switches both at once; then data files of earlier saves of
    ``path`` (that name pattern) are removed. A process killed at any point leaves the old
    model with its data, or the new one with its data; the temporary files (and data) it
    leaves are removed by the next save to ``path``. Saves into one folder hold a lock on
    it (``export.onnx.files``).

    Args:
        graph: the graph to write.
        path: the ``.onnx`` file to create or replace.
        opset: as in :func:`to_model`.
        external_data: True to always store weights externally, False never, None (the
            default) when the model would reach ``size_limit`` bytes.
        size_limit: the size at which None switches to external data (protobuf's 2 GiB
            limit; lower it in tests).

    Raises:
        ExportError: as :func:`to_model`; also when ``external_data=False`` and the model
            would reach ``size_limit``.
    """
    path = Path(path)
    opset = _check_opset(opset, graph)
    estimate = _estimated_size(graph)
    if external_data is None:
        external_data = estimate >= size_limit
    elif not external_data and estimate >= size_limit:
        raise ExportError(
            f"graph {graph.name!r} needs about {estimate} bytes, over protobuf's limit of "
            f"{size_limit}; save with external_data=True (or None) to store weights beside it"
        )
    with files.folder_lock(path.parent):
        files.sweep(path, extra=r"\.data")
        temps: list[Path] = []  # removed at the end unless committed
        location = None
        try:
            if external_data:
                tmp = files.temp_beside(path.with_name(path.name + ".data"))
                temps.append(tmp)
                with open(tmp, "wb") as f:
                    ext = _ExternalWriter(f)
                    model = _build(graph, opset, ext)
                    _sync(f)
                location = f"{path.name}.{ext.digest.hexdigest()}.data"
                _locate(model, location)
                final = path.with_name(location)
                if final.exists():  # the same bytes, from an earlier save
                    tmp.unlink()
                else:
                    files.commit(tmp, final)
                    temps.append(final)  # removed if the model that reads it fails
                data = _serialize(model)
            else:
                data = _serialize(_build(graph, opset, _inline_tensor))
            tmp = files.temp_beside(path)
            temps.append(tmp)
            with open(tmp, "wb") as f:
                _write_all(f, data)
                _sync(f)
            files.commit(tmp, path)
            temps.clear()
        finally:
            for tmp in temps:
                if tmp.exists():
                    tmp.unlink()
        _drop_stale_data(path, keep=location)


def data_files(path: Path) -> list[Path]:
    """External data files a save of ``path`` wrote (``<name>.<16 hex>.data``), by name."""
    pattern = re.compile(rf"{re.escape(path.name)}\.[0-9a-f]{{16}}\.data")
    return sorted(p for p in path.parent.iterdir() if pattern.fullmatch(p.name))


def _drop_stale_data(path: Path, keep: str | None) -> None:
    """Remove data files of earlier saves of ``path``: the model now in place reads ``keep``."""
    for p in data_files(path):
        if p.name != keep:
            with contextlib.suppress(OSError):
                p.unlink()


def _locate(model: onnx.ModelProto, location: str) -> None:
    """Point every external tensor of ``model`` at ``location``."""
    for t in model.graph.initializer:
        for entry in t.external_data:
            if entry.key == "location":
                entry.value = location


# ---------------------------------------------------------------- files


def _serialize(model: onnx.ModelProto) -> bytes:
    return model.SerializeToString()


def _write_all(f: IO[bytes], data: bytes | memoryview) -> None:
    f.write(data)


def _sync(f: IO[bytes]) -> None:
    f.flush()
    os.fsync(f.fileno())


class _ExternalWriter:
    """Writes tensors to one data file and returns protos that point at them.

    The protos' ``location`` is a placeholder until the data is complete: the file is named
    after ``digest``, the hash of everything written (see :func:`save`).
    """

    def __init__(self, f: IO[bytes]) -> None:
        self.f = f
        self.location = "pending"
        self.offset = 0
        self.digest = hashlib.blake2b(digest_size=8)

    def _write(self, data: bytes | memoryview) -> None:
        _write_all(self.f, data)
        self.digest.update(data)

    def __call__(self, name: str, array: np.ndarray) -> TensorProto:
        if array.nbytes < EXTERNAL_MIN_BYTES:
            return _inline_tensor(name, array)
        D.to_onnx(array.dtype)
        if array.nbytes >= 1 << 20 and self.offset % _ALIGN:
            pad = _ALIGN - self.offset % _ALIGN
            self._write(b"\0" * pad)
            self.offset += pad
        flat = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).reshape(-1)
        self._write(flat.view(np.uint8).data)
        t = TensorProto(name=name, data_type=D.to_onnx(array.dtype), dims=array.shape)
        t.data_location = TensorProto.EXTERNAL
        for key, value in (
            ("location", self.location),
            ("offset", str(self.offset)),
            ("length", str(array.nbytes)),
        ):
            t.external_data.add(key=key, value=value)
        self.offset += array.nbytes
        return t


def _inline_tensor(name: str, array: np.ndarray) -> TensorProto:
    D.to_onnx(array.dtype)  # raises DTypeError naming the supported dtypes
    return numpy_helper.from_array(np.asarray(array), name=name)


def _estimated_size(graph: Graph) -> int:
    """Serialised size, over-estimated: tensor bytes plus a generous per-node allowance."""
    weights = sum(v.const.nbytes for v in graph.initializers.values() if v.const is not None)
    attrs = sum(
        a.nbytes for n in graph.nodes for a in n.attrs.values() if isinstance(a, np.ndarray)
    )
    return weights + attrs + 1024 * (len(graph.nodes) + len(graph.initializers)) + 4096


# ---------------------------------------------------------------- model


def _check_opset(opset: int | None, graph: Graph) -> int:
    """The opset to write: as asked, or the lowest from DEFAULT_OPSET that has every op."""
    if opset is None:
        newest = [n.op.since for n in _all_nodes(graph) if not n.op.domain]
        return max([DEFAULT_OPSET, *newest])
    if not isinstance(opset, int) or not MIN_OPSET <= opset <= MAX_OPSET:
        raise ExportError(
            f"opset {opset!r} is not supported: graphcap writes default-domain opsets "
            f"{MIN_OPSET}..{MAX_OPSET} (its registry implements opset {DEFAULT_OPSET}, plus "
            "ops that first appear up to that)"
        )
    return opset


def _build(graph: Graph, opset: int, tensor: TensorWriter) -> onnx.ModelProto:
    names = _Names(v.name for v in graph.values())
    extra: list[TensorProto] = []
    nodes = [_node_proto(n, opset, names, extra, {}) for n in graph.nodes]
    outputs = {id(v) for v in graph.outputs}
    written = {name for n in nodes for name in n.output}
    inner = [
        v for n in graph.nodes for v in n.outputs if id(v) not in outputs and v.name in written
    ]
    proto = helper.make_graph(
        nodes,
        graph.name,
        inputs=[_value_info(v, "graph input") for v in graph.inputs],
        outputs=[_value_info(v, "graph output") for v in graph.outputs],
        initializer=[*(_initializer(v, tensor) for v in _kept(graph, nodes)), *extra],
        value_info=[_value_info(v) for v in inner],
    )
    model = helper.make_model(
        proto,
        opset_imports=[helper.make_opsetid(d, v) for d, v in _opset_imports(graph, opset)],
        producer_name=PRODUCER,
        producer_version=_version(),
    )
    model.ir_version = IR_VERSION
    for key, value in graph.meta.items():
        try:
            text = json.dumps(value)
        except (TypeError, ValueError) as err:
            raise ExportError(
                f"graph.meta[{key!r}] cannot be written as JSON metadata ({err}); keep graph "
                "meta to dicts, lists, strings, numbers and None"
            ) from None
        model.metadata_props.add(key=f"graphcap.{key}", value=text)
    return model


def _kept(graph: Graph, nodes: list[onnx.NodeProto]) -> list[Value]:
    """Initializers minus those whose every use an older form turned into an attribute."""
    used = {name for n in nodes for name in n.input} | {v.name for v in graph.outputs}
    used |= {x.name for n in graph.nodes for x in _captured(n) if x is not None}
    return [v for v in graph.initializers.values() if not v.uses or v.name in used]


def _opset_imports(graph: Graph, opset: int) -> list[tuple[str, int]]:
    """The default domain at ``opset``; other domains at the newest version their ops need."""
    versions = {"": opset}
    for n in _all_nodes(graph):
        if n.op.domain:
            versions[n.op.domain] = max(versions.get(n.op.domain, 1), n.op.since)
    return sorted(versions.items())


def _all_nodes(graph: Graph) -> Iterable[Node]:
    """The nodes of ``graph`` and of every subgraph (Scan bodies) inside it."""
    for n in graph.nodes:
        yield n
        for value in n.attrs.values():
            if isinstance(value, Graph):
                yield from _all_nodes(value)


def _captured(node: Node) -> tuple[Value | None, ...]:
    """The node's last inputs that feed its subgraphs' captures."""
    count = node.num_captured
    return node.inputs[len(node.inputs) - count :] if count else ()


def _subgraph(body: Graph, opset: int, names: _Names, outer: list[str]) -> onnx.GraphProto:
    """A graph attribute (If branch, Loop or Scan body) as a ``GraphProto``, no opset imports.

    ONNX wants one static assignment across a graph and its subgraphs, so a body value whose
    name is taken elsewhere in the model is written under a fresh name. Captures are written
    as reads of the outer values, whose names in the file are ``outer``.
    """
    rename = {v.name: name for v, name in zip(body.captures, outer, strict=True)}
    captures = {id(v) for v in body.captures}
    for v in body.values():
        if id(v) in captures:
            continue
        if v.name in names.used:
            rename[v.name] = names.fresh(v.name)
        else:
            names.used.add(v.name)
    extra: list[TensorProto] = []
    nodes = [_node_proto(n, opset, names, extra, rename) for n in body.nodes]
    outputs = {id(v) for v in body.outputs}
    inner = [v for n in body.nodes for v in n.outputs if id(v) not in outputs]
    proto = helper.make_graph(
        nodes,
        body.name,
        inputs=[_value_info(v) for v in body.inputs],
        outputs=[_value_info(v) for v in body.outputs],
        initializer=[*(_initializer(v, _inline_tensor) for v in _kept(body, nodes)), *extra],
        value_info=[_value_info(v) for v in inner],
    )
    for n in proto.node:
        n.input[:] = [rename.get(x, x) for x in n.input]
        n.output[:] = [rename.get(x, x) for x in n.output]
    for item in (*proto.input, *proto.output, *proto.value_info, *proto.initializer):
        item.name = rename.get(item.name, item.name)
    return proto


def _version() -> str:
    try:
        return metadata.version("graphcap")
    except metadata.PackageNotFoundError:
        return "0+unknown"


def _initializer(v: Value, tensor: TensorWriter) -> TensorProto:
    assert v.const is not None, f"initializer %{v.name} has no array"
    try:
        return tensor(v.name, np.asarray(v.const))
    except DTypeError as err:
        raise ExportError(f"initializer %{v.name}: {err}") from None


def _value_info(v: Value, role: str = "") -> onnx.ValueInfoProto:
    try:
        elem = D.to_onnx(v.dtype)
    except DTypeError as err:
        raise ExportError(f"value %{v.name}: {err}") from None
    if role and v.type.shape is None:
        raise ExportError(
            f"{role} %{v.name} has unknown rank; ONNX requires graph inputs and outputs to "
            "declare a shape (its dims may be unknown): give the value a known rank"
        )
    return helper.make_tensor_value_info(v.name, elem, v.type.shape)


class _Names:
    """Value names in use, to name the few tensors the writer adds (Split sizes)."""

    def __init__(self, used: Iterable[str]) -> None:
        self.used = set(used)

    def fresh(self, hint: str) -> str:
        name, i = hint, 0
        while name in self.used:
            i += 1
            name = f"{hint}_{i}"
        self.used.add(name)
        return name


# ---------------------------------------------------------------- nodes


def schema_at(op: OpDef, opset: int, node: str = "") -> defs.OpSchema:
    """The ONNX schema of ``op`` that a model of default-domain ``opset`` uses.

    Ops of other domains are written at the version the registry implements; onnxruntime's
    contrib ops get its schema (``export.onnx.microsoft``).

    Raises:
        ExportError: the op does not exist yet at that opset.
    """
    contrib = contrib_schema(op.op_type, op.domain)
    if contrib is not None:  # onnxruntime's contrib ops: one version each
        return contrib
    opset = opset if op.domain == "" else op.since
    try:
        return defs.get_schema(op.op_type, opset, op.domain)
    except defs.SchemaError:
        where = f"node {node!r} " if node else ""
        try:
            first = defs.get_schema(op.op_type, op.since, op.domain).since_version
        except defs.SchemaError:
            raise ExportError(
                f"{where}uses {op.domain or 'ai.onnx'}::{op.op_type}, for which onnx knows no "
                "schema; its domain's schemas must be registered with onnx.defs first"
            ) from None
        raise ExportError(
            f"{where}uses {op.op_type}, which ONNX adds at opset {first}; the model is being "
            f"written at opset {opset}: ask for opset >= {first}"
        ) from None


def _node_proto(
    node: Node, opset: int, names: _Names, extra: list[TensorProto], scope: Mapping[str, str]
) -> onnx.NodeProto:
    """``node`` as a ``NodeProto``; ``scope`` renames the values of the graph it is in."""
    op = node.op
    schema = schema_at(op, opset, node.name)
    inputs: list[Any] = list(node.inputs[: len(node.inputs) - node.num_captured])
    outer = [scope.get(x.name, x.name) for x in _captured(node) if x is not None]
    attrs = {k: v for k, v in node.attrs.items() if v is not None}
    if schema.since_version < op.since:
        inputs, attrs = _older_form(node, schema, inputs, attrs, names, extra)
    _check_dtypes(node, schema, inputs, opset)
    while inputs and inputs[-1] is None:
        inputs.pop()
    proto = helper.make_node(
        op.op_type,
        ["" if v is None else (v if isinstance(v, str) else v.name) for v in inputs],
        _output_names(node, schema),
        name=node.name,
        domain=op.domain,
    )
    for key in sorted(attrs):
        proto.attribute.append(_attribute(node, schema, key, attrs[key], opset, names, outer))
    if "source" in node.meta:
        proto.metadata_props.add(key="source", value=str(node.meta["source"]))
    if node.meta.get("stop_gradient"):  # a traced detach(), for graphs differentiated later
        proto.metadata_props.add(key="stop_gradient", value="1")
    return proto


def _output_names(node: Node, schema: defs.OpSchema) -> list[str]:
    """Output names, with optional outputs nothing reads left unnamed.

    Runtimes skip the work of an unnamed optional output (``Attention``'s scores,
    ``LayerNormalization``'s mean and inverse deviation, ``Dropout``'s mask).
    """
    graph_outputs = {id(v) for v in node.graph.outputs}
    optional = defs.OpSchema.FormalParameterOption.Optional
    names = []
    for i, v in enumerate(node.outputs):
        unused = not v.uses and id(v) not in graph_outputs
        is_optional = i < len(schema.outputs) and schema.outputs[i].option == optional
        names.append("" if unused and is_optional else v.name)
    while names and names[-1] == "":
        names.pop()
    return names


def _attribute(
    node: Node,
    schema: defs.OpSchema,
    key: str,
    value: Any,
    opset: int,
    names: _Names,
    outer: list[str],
) -> AttributeProto:
    spec = schema.attributes.get(key)
    if spec is None:
        raise ExportError(
            f"node {node.name!r} ({node.op.op_type}) has attribute {key!r}, which ONNX "
            f"{node.op.op_type}-{schema.since_version} does not define; "
            f"it defines {sorted(schema.attributes)}"
        )
    kind = AttributeProto.AttributeType
    t = kind.Value(spec.type.name)  # type: ignore[attr-defined]  # pybind enum
    try:
        if t == kind.FLOAT:
            value = float(value)
        elif t == kind.INT:
            value = int(value)
        elif t == kind.STRING:
            value = str(value).encode()
        elif t == kind.FLOATS:
            value = [float(x) for x in np.asarray(value).reshape(-1)]
        elif t == kind.INTS:
            value = [int(x) for x in np.asarray(value).reshape(-1)]
        elif t == kind.STRINGS:
            value = [str(x).encode() for x in value]
        elif t == kind.TENSOR:
            arr = np.asarray(value)
            if node.op.op_type == "ConstantOfShape":
                arr = arr.reshape(1)  # onnxruntime insists on a 1-D, one-element value
            value = _inline_tensor("", arr)
        elif t == kind.GRAPH and isinstance(value, Graph):
            value = _subgraph(value, opset, names, outer)
        else:
            raise TypeError(f"attribute type {kind.Name(t)} is not written by graphcap")
    except (TypeError, ValueError, DTypeError) as err:
        raise ExportError(
            f"node {node.name!r} ({node.op.op_type}): attribute {key}={value!r} cannot be "
            f"written as ONNX {kind.Name(t)}: {err}"
        ) from None
    return helper.make_attribute(key, value, attr_type=t)


def _older_form(
    node: Node,
    schema: defs.OpSchema,
    inputs: list[Any],
    attrs: dict[str, Any],
    names: _Names,
    extra: list[TensorProto],
) -> tuple[list[Any], dict[str, Any]]:
    """Rewrite ``node`` into the older ONNX form ``schema``, or raise naming the opset needed."""
    op = node.op
    opset = schema.since_version
    if op.op_type.startswith("Reduce") and "axes" in schema.attributes:
        inputs, attrs = _axes_to_attribute(node, inputs, attrs)
    if op.op_type == "Split" and "num_outputs" in attrs:
        inputs, attrs = _split_sizes_input(node, inputs, attrs, names, extra)
    for key in list(attrs):
        if key in schema.attributes:
            continue
        if _same(attrs[key], op.attrs.get(key)):
            del attrs[key]  # the older form's behaviour is this attribute's default
        else:
            need = _first_opset(op, opset, _has_attribute(key))
            raise _needs(node, need, f"attribute {key}={attrs[key]!r}")
    need = _value_constraint(op, attrs)
    if need > opset:
        raise _needs(node, need, f"attributes {attrs}")
    present = len(inputs)
    while present and inputs[present - 1] is None:
        present -= 1
    if present > schema.max_input:
        need = _first_opset(op, opset, lambda s: s.max_input >= present)
        raise _needs(node, need, f"{present} inputs")
    return inputs, attrs


def _axes_to_attribute(
    node: Node, inputs: list[Any], attrs: dict[str, Any]
) -> tuple[list[Any], dict[str, Any]]:
    # The opset whose version takes axes as an input (ReduceSum 13, the other Reduce* 18).
    since = next(a.until for a in node.op.legacy.inputs if a.name == "axes")
    axes = inputs[1] if len(inputs) > 1 else None
    if axes is None:
        if attrs.get("noop_with_empty_axes"):
            raise _needs(node, since, "noop_with_empty_axes=1 without axes")
        return inputs[:1], attrs
    if axes.const is None:
        raise _needs(node, since, f"axes computed at run time (%{axes.name})")
    values = [int(a) for a in np.asarray(axes.const).reshape(-1)]
    if not values and attrs.get("noop_with_empty_axes"):
        raise _needs(node, since, "noop_with_empty_axes=1 with empty axes")
    attrs = {k: v for k, v in attrs.items() if k != "noop_with_empty_axes"}
    return inputs[:1], ({**attrs, "axes": values} if values else attrs)


def _split_sizes_input(
    node: Node, inputs: list[Any], attrs: dict[str, Any], names: _Names, extra: list[TensorProto]
) -> tuple[list[Any], dict[str, Any]]:
    """Split's ``num_outputs`` (18) as the older ``split`` input when the sizes are static.

    With a dynamic axis the input is left out: older Split then cuts equal parts, which is
    what ``num_outputs`` does when the length divides evenly (otherwise runtimes refuse).
    """
    attrs = {k: v for k, v in attrs.items() if k != "num_outputs"}
    x = node.inputs[0]
    assert x is not None
    axis = int(attrs.get("axis", 0))
    sizes = []
    for v in node.outputs:
        shape = v.type.shape
        dim = None if shape is None else shape[axis % len(shape)]
        sizes.append(dim)
    if all(isinstance(d, int) for d in sizes):
        name = names.fresh(f"{node.name}_split")
        extra.append(numpy_helper.from_array(np.asarray(sizes, dtype=np.int64), name=name))
        return [inputs[0], name], attrs
    return inputs[:1], attrs


def _has_attribute(key: str) -> Callable[[defs.OpSchema], bool]:
    return lambda s: key in s.attributes


def _value_constraint(op: OpDef, attrs: Mapping[str, Any]) -> int:
    """The opset an attribute *value* needs (the schema cannot say; the op's legacy does)."""
    needs = [v for key, value, v in op.legacy.values if attrs.get(key) == value]
    return max(needs, default=0)


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except (TypeError, ValueError):
        return False


def _first_opset(op: OpDef, after: int, fits: Callable[[defs.OpSchema], bool]) -> int:
    for v in range(after + 1, MAX_OPSET + 1):
        if fits(defs.get_schema(op.op_type, v, op.domain)):
            return v
    return op.since


def _needs(node: Node, opset: int, what: str) -> ExportError:
    return ExportError(
        f"node {node.name!r} ({node.op.op_type}) uses {what}, which ONNX {node.op.op_type} "
        f"supports from opset {opset}: ask for opset >= {opset}"
    )


# ---------------------------------------------------------------- dtypes


def _type_string(dtype: np.dtype) -> str:
    return f"tensor({TensorProto.DataType.Name(D.to_onnx(dtype)).lower()})"


def _allowed(schema: defs.OpSchema, formal: Any) -> set[str]:
    for c in schema.type_constraints:
        if c.type_param_str == formal.type_str:
            return set(c.allowed_type_strs)
    return {formal.type_str}


def _formals(params: list[Any], count: int) -> list[Any]:
    """The formal parameter of each actual position (the last one may be variadic)."""
    if not params:
        return []
    variadic = params[-1].option == defs.OpSchema.FormalParameterOption.Variadic
    if not variadic:
        return params[:count]
    return [params[min(i, len(params) - 1)] for i in range(count)]


def _check_dtypes(node: Node, schema: defs.OpSchema, inputs: list[Any], opset: int) -> None:
    """Refuse dtypes the ONNX op does not accept: runtimes would reject the model later."""
    actual = [
        ("input", i, v)
        for i, v in enumerate(inputs)
        if isinstance(v, Value) and i < schema.max_input
    ]
    actual += [("output", i, v) for i, v in enumerate(node.outputs)]
    ins = _formals(list(schema.inputs), len(inputs))
    outs = _formals(list(schema.outputs), len(node.outputs))
    for kind, i, v in actual:
        formals = ins if kind == "input" else outs
        if i >= len(formals):
            continue
        formal = formals[i]
        allowed = _allowed(schema, formal)
        if _type_string(v.dtype) not in allowed:
            raise ExportError(
                f"node {node.name!r} ({node.op.op_type}): {kind} {i} (%{v.name}) is {v.dtype}, "
                f"which ONNX {node.op.op_type} at opset {opset} does not accept; it accepts "
                f"{sorted(allowed)}"
            )
