"""Checks that keep malformed ONNX files away from shape rules, kernels and allocations.

The reader (``export.onnx.reader``) calls these before it builds anything from a node:
every string of the model must be UTF-8, the default-domain opset one ONNX defines, each
node must fit its own ONNX schema at the model's opset (input and output counts, attribute
types, required attributes, no attribute twice) and then the registry's form of its op
(required inputs present, no extra ones, required attributes given). Each refusal is an
:class:`~ir.errors.ExportError` naming the node.
"""

from __future__ import annotations

import inspect
import json
from typing import Any

import onnx
from google.protobuf.descriptor import FieldDescriptor
from onnx import AttributeProto, TensorProto, defs

from ir.errors import ExportError
from ir.graph import Value
from ir.ops.registry import OpDef


def check_text(message: Any, where: str = "model") -> None:
    """Refuse string fields that are not UTF-8 (protobuf then hands out bytes, not str)."""
    string = FieldDescriptor.TYPE_STRING
    for fd, value in message.ListFields():
        repeated = getattr(fd, "is_repeated", None)  # protobuf >= 5.28; `label` before
        if repeated is None:
            repeated = fd.label == FieldDescriptor.LABEL_REPEATED
        if fd.type == string:
            values = value if repeated else [value]
            bad = next((v for v in values if not isinstance(v, str)), None)
            if bad is not None:
                raise ExportError(f"{where}.{fd.name} is not UTF-8 text: {bytes(bad)[:40]!r}")
        elif fd.type == FieldDescriptor.TYPE_MESSAGE:
            inner = f"{where}.{fd.name}"
            for item in value if repeated else [value]:
                check_text(item, inner)


def declared_opset(model: onnx.ModelProto) -> int | None:
    """The default-domain opset, checked to be one ONNX defines (None when not imported)."""
    versions = {int(e.version) for e in model.opset_import if e.domain in ("", "ai.onnx")}
    if not versions:
        return None
    newest = defs.onnx_opset_version()
    if len(versions) > 1 or not 1 <= min(versions) <= max(versions) <= newest:
        raise ExportError(
            f"the model imports default-domain opset(s) {sorted(versions)}; expected one "
            f"opset that ONNX defines, 1..{newest}"
        )
    return versions.pop()


def text(data: bytes, where: str, name: str) -> str:
    """A STRING(S) attribute's bytes as text; ExportError when they are not UTF-8."""
    try:
        return data.decode()
    except UnicodeDecodeError:
        raise ExportError(f"{where}: attribute {name} is not UTF-8 text: {data[:40]!r}") from None


def schema_of(op: OpDef, opset: int) -> defs.OpSchema | None:
    """The ONNX schema a node of ``op`` in a model of ``opset`` follows (None: onnx has none)."""
    try:
        return defs.get_schema(op.op_type, opset if not op.domain else op.since, op.domain)
    except defs.SchemaError:
        return None


def check_form(n: onnx.NodeProto, schema: defs.OpSchema, where: str) -> None:
    """Refuse a node that breaks its own ONNX schema: counts, attribute types, required ones.

    Shape rules and kernels then see only nodes of the form their op declares.
    """
    name = f"ONNX {n.op_type}-{schema.since_version}"
    for what, count, lo, hi in (
        ("inputs", len(n.input), schema.min_input, schema.max_input),
        ("outputs", len(n.output), schema.min_output, schema.max_output),
    ):
        if not lo <= count <= hi:
            raise ExportError(f"{where} has {count} {what}; {name} takes {lo}..{hi}")
    names = [a.name for a in n.attribute]
    twice = sorted({k for k in names if names.count(k) > 1})
    if twice:
        raise ExportError(f"{where}: attribute(s) {twice} are given more than once")
    for a in n.attribute:
        spec = schema.attributes.get(a.name)
        given = AttributeProto.AttributeType.Name(a.type)
        expected = None if spec is None else spec.type.name  # type: ignore[attr-defined]
        if expected is not None and expected != given:
            raise ExportError(
                f"{where}: attribute {a.name} is {given}; {name} declares it {expected}"
            )
    missing = sorted(k for k, spec in schema.attributes.items() if spec.required and k not in names)
    if missing:
        raise ExportError(f"{where}: required attribute(s) {missing} of {name} are missing")


def check_arity(op: OpDef, inputs: list[Value | None], attrs: dict[str, Any], where: str) -> None:
    """Refuse inputs and attributes that do not fit the registry's form of ``op``."""
    lo, hi = op.num_inputs
    if hi is not None and len(inputs) > hi:
        raise ExportError(f"{where} has {len(inputs)} inputs; graphcap's {op.op_type} takes {hi}")
    absent = op.absent_inputs(inputs)
    if absent:
        but = f" but {list(op.optional_inputs)}" if op.optional_inputs else ""
        raise ExportError(
            f"{where}: input(s) {absent} are missing; graphcap's {op.op_type} needs its first "
            f"{lo} inputs{but}"
        )
    required = [k for k, d in op.attrs.items() if d is inspect.Parameter.empty and k not in attrs]
    if required:
        raise ExportError(f"{where}: required attribute(s) {sorted(required)} are missing")


def type_code(name: str, where: str) -> int:
    """The ONNX element type named ``name`` (an old Cast's string ``to``)."""
    try:
        return int(TensorProto.DataType.Value(name.upper()))
    except ValueError:
        raise ExportError(f"{where}: Cast to {name!r}: no such ONNX element type") from None


def metadata_json(entry: onnx.StringStringEntryProto) -> Any:
    """A ``graphcap.*`` metadata value; ExportError for invalid or too deeply nested JSON."""
    try:
        return json.loads(entry.value)
    except RecursionError:
        raise ExportError(
            f"model metadata {entry.key!r} nests JSON deeper than Python's recursion limit"
        ) from None
    except ValueError as err:
        raise ExportError(f"model metadata {entry.key!r} is not valid JSON: {err}") from None
