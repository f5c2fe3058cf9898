"""``graphcap inspect``: what an ONNX file holds, read without running it.

The file is parsed without its external data (``export.onnx.tensors.read_model``: regular
files only), so weights stored in external data files are counted from their declared shapes
and never read; any ONNX file can be inspected, not only graphcap's own. External data files
are looked up (for their size) only inside the model's folder.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path
from typing import Any

import onnx
from onnx import TensorProto, helper

from export.cli.common import UsageError, human_bytes, text_table
from export.onnx.tensors import inside_folder, read_model
from ir.errors import ExportError


def describe(path: Path) -> dict[str, Any]:
    """Everything ``inspect`` reports about the model at ``path``, as plain data.

    Raises:
        UsageError: no such file, or not an ONNX model.
    """
    try:
        model = read_model(path)
    except FileNotFoundError:
        raise UsageError(f"no such file: {str(path)!r}") from None
    except ExportError as err:
        raise UsageError(str(err)) from None
    graph = model.graph
    inits = {t.name for t in graph.initializer}
    graphs = _graphs(graph)
    nodes = [n for g in graphs for n in g.node]
    ops = Counter(f"{n.domain}::{n.op_type}" if n.domain else n.op_type for n in nodes)
    params = [_tensor_info(t) for g in graphs for t in g.initializer]
    constants = [c for n in nodes if (c := _constant_info(n)) is not None]
    externals = sorted({p["location"] for p in params if p["location"]})
    meta = {e.key: e.value for e in model.metadata_props}
    return {
        "path": str(path),
        "file_bytes": path.stat().st_size,
        "ir_version": model.ir_version,
        "opsets": {(o.domain or "ai.onnx"): o.version for o in model.opset_import},
        "producer": f"{model.producer_name} {model.producer_version}".strip(),
        "graph": graph.name,
        "inputs": [_value_info(v) for v in graph.input if v.name not in inits],
        "outputs": [_value_info(v) for v in graph.output],
        "nodes": len(nodes),
        "subgraph_nodes": len(nodes) - len(graph.node),
        "ops": dict(sorted(ops.items(), key=lambda kv: (-kv[1], kv[0]))),
        "initializers": len(params),
        "constant_nodes": len(constants),
        "parameters": sum(p["size"] for p in params + constants),
        "parameter_bytes": sum(p["bytes"] for p in params + constants),
        "external_data": [_external(path.parent, loc) for loc in externals],
        "nodes_with_source": sum(any(p.key == "source" for p in n.metadata_props) for n in nodes),
        "baked": _json_list(meta.get("graphcap.baked")),
        "metadata": {k: v for k, v in meta.items() if k != "graphcap.baked"},
    }


def _graphs(graph: onnx.GraphProto) -> list[onnx.GraphProto]:
    """``graph`` and every graph nested in its nodes (``Scan``/``Loop`` bodies, ``If`` branches)."""
    found = [graph]
    for n in graph.node:
        for a in n.attribute:
            for sub in [a.g] if a.type == onnx.AttributeProto.GRAPH else a.graphs:
                found += _graphs(sub)
    return found


def _constant_info(node: onnx.NodeProto) -> dict[str, Any] | None:
    """Size and bytes of the tensor a ``Constant`` node holds (None for other nodes)."""
    if node.domain not in ("", "ai.onnx") or node.op_type != "Constant" or not node.attribute:
        return None
    a = node.attribute[0]
    if a.type == onnx.AttributeProto.TENSOR:
        return _tensor_info(a.t)
    if a.type == onnx.AttributeProto.SPARSE_TENSOR:
        return _tensor_info(a.sparse_tensor.values)
    sizes = {  # attribute -> (elements, bytes)
        "value_float": (1, 4),
        "value_int": (1, 8),
        "value_floats": (len(a.floats), 4 * len(a.floats)),
        "value_ints": (len(a.ints), 8 * len(a.ints)),
        "value_string": (1, len(a.s)),
        "value_strings": (len(a.strings), sum(len(x) for x in a.strings)),
    }
    size, nbytes = sizes.get(a.name, (0, 0))
    return {"name": node.output[0] if node.output else "", "size": size, "bytes": nbytes}


def _value_info(v: Any) -> dict[str, Any]:
    t = v.type.tensor_type
    dims: list[int | str | None] | None = None
    if t.HasField("shape"):
        dims = [
            d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in t.shape.dim
        ]
    return {"name": v.name, "dtype": _dtype_name(t.elem_type), "shape": dims}


def _dtype_name(elem_type: int) -> str:
    """NumPy's name for an ONNX element type (``float32``), else ONNX's (``bfloat16``)."""
    if not elem_type:
        return "?"
    try:
        return str(helper.tensor_dtype_to_np_dtype(elem_type))
    except Exception:  # no NumPy counterpart
        return TensorProto.DataType.Name(elem_type).lower()


def _tensor_info(t: Any) -> dict[str, Any]:
    size = 1
    for d in t.dims:
        size *= int(d)
    try:
        itemsize = helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
    except Exception:  # a dtype NumPy lacks (bfloat16, float8): count what is stored
        itemsize = len(t.raw_data) // size if size and t.raw_data else 0
    location = next((e.value for e in t.external_data if e.key == "location"), "")
    return {"name": t.name, "size": size, "bytes": size * itemsize, "location": location}


def _external(folder: Path, location: str) -> dict[str, Any]:
    """An external data file's size, looked up only inside the model's folder.

    A location outside it (absolute, ``../``, a symlink out) is reported as refused without
    touching the path: ``inspect`` must not tell whether a file elsewhere exists.
    """
    try:
        target = inside_folder(folder, location, "")
    except ExportError:
        return {"location": location, "bytes": 0, "exists": False, "refused": _OUTSIDE}
    exists = target.is_file()
    return {"location": location, "bytes": target.stat().st_size if exists else 0, "exists": exists}


_OUTSIDE = "outside the model's folder (graphcap reads external data only inside it)"


def _json_list(text: str | None) -> list[Any]:
    if not text:
        return []
    try:
        value = json.loads(text)
    except ValueError:
        return [{"kind": "?", "what": text, "result": None, "source": "?"}]
    return value if isinstance(value, list) else [value]


def _type_text(info: dict[str, Any]) -> str:
    shape = info["shape"]
    dims = "?" if shape is None else ", ".join("?" if d is None else str(d) for d in shape)
    return f"{info['dtype']}[{dims}]"


def render(d: dict[str, Any]) -> str:
    """The text ``graphcap inspect`` prints for :func:`describe`'s result."""
    opsets = ", ".join(f"{k} {v}" for k, v in d["opsets"].items())
    lines = [
        f"{d['path']}: {human_bytes(d['file_bytes'])}, ONNX IR version {d['ir_version']}, "
        f"opset {opsets}, producer {d['producer'] or '?'}, graph {d['graph']!r}",
        "",
        "signature:",
    ]
    lines += [f"  input   {i['name']}: {_type_text(i)}" for i in d["inputs"]]
    lines += [f"  output  {o['name']}: {_type_text(o)}" for o in d["outputs"]]
    inner = f", {d['subgraph_nodes']} of them in subgraphs" if d["subgraph_nodes"] else ""
    lines += ["", f"ops ({d['nodes']} nodes{inner}, {d['nodes_with_source']} with a source line):"]
    lines += [f"  {count:>5}  {op}" for op, count in d["ops"].items()]
    lines += [
        "",
        f"parameters: {d['parameters']:,} in {d['initializers']} initializers"
        + (f" and {d['constant_nodes']} Constant nodes" if d["constant_nodes"] else "")
        + f" ({human_bytes(d['parameter_bytes'])})",
    ]
    for ext in d["external_data"]:
        state = human_bytes(ext["bytes"]) if ext["exists"] else "MISSING"
        if "refused" in ext:
            state = f"refused: {ext['refused']}"
        lines.append(f"external data: {ext['location']} ({state})")
    lines += ["", f"baked Python decisions: {len(d['baked'])}"]
    if d["baked"]:
        rows = [
            (str(b.get("kind")), str(b.get("what")), repr(b.get("result")), str(b.get("source")))
            for b in d["baked"]
        ]
        table = text_table(("kind", "what", "result", "source"), rows)
        lines += [f"  {line}" for line in table.splitlines()]
    for key, value in d["metadata"].items():
        lines.append(f"metadata {key}: {value if len(value) <= 80 else value[:77] + '...'}")
    return "\n".join(lines)


def run_inspect(args: argparse.Namespace) -> int:
    """``graphcap inspect``: print :func:`render` (or JSON with ``--json``)."""
    info = describe(Path(args.model))
    print(json.dumps(info, indent=2) if args.json else render(info))
    return 0
