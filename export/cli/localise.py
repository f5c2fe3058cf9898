"""Where a ``--verify`` mismatch starts: the first node whose output parts.

* interpreter vs onnxruntime: both are run with every intermediate value exposed (the
  interpreter returns any value; onnxruntime gets a copy of the model with every node output
  added as a graph output), and the first node, in topological order, whose output differs
  beyond tolerance is reported;
* exported graph vs eager: the model is traced again on the failing inputs, which records,
  node by node, what eager execution does at that size. The two graphs are compared node by
  node (op, attributes, constant inputs, then output values on the interpreter), and the
  first difference is reported with its source line and the baked Python decisions. Where
  the re-trace fails or does not reproduce eager, the report says so and localises by
  output only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from export.cli.common import Diff, compare, one_line
from export.cli.prepare import Prepared
from export.onnx import from_model, load, to_model
from ir.dtypes import to_onnx
from ir.graph import Graph, Node, Value
from runtime.numpy_interpreter import Interpreter
from runtime.ort_backend import OrtBackend


def localise(
    path: Path,
    prepared: Prepared,
    label: str,
    feeds: dict[str, np.ndarray],
    eager: list[np.ndarray],
    *,
    atol: float,
    rtol: float,
) -> list[str]:
    """Report lines naming the first node where the file stops matching, at ``label``."""
    graph = load(path)
    values, error = all_values(graph, feeds)
    lines = [f"\nfirst divergence, at {label}:"]
    ort_values, ort_error = ort_all_values(path, graph, feeds)
    if ort_error:
        lines.append(f"  interpreter vs onnxruntime: onnxruntime could not run: {ort_error}")
    else:
        lines += ["  interpreter vs onnxruntime (every intermediate value, in graph order):"]
        lines += _indent(backend_divergence(graph, values, error, ort_values, atol, rtol))
    lines.append("  exported graph vs eager (the model re-traced on these inputs, node by node):")
    opset = _opset(path)
    lines += _indent(
        eager_divergence(graph, values, error, prepared, feeds, eager, atol, rtol, opset)
    )
    return lines


def _opset(path: Path) -> int | None:
    model = onnx.load(str(path), load_external_data=False)
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)


def _indent(lines: Sequence[str]) -> list[str]:
    return [f"    {line}" for line in lines]


def all_values(graph: Graph, feeds: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], str]:
    """Every node output on the interpreter; on a failure, those before it and the error."""
    names = [v.name for n in graph.nodes for v in n.outputs]
    got: dict[str, np.ndarray] = {}

    def keep(step: Any, live: Mapping[str, np.ndarray]) -> None:
        got.update((n, live[n]) for n in step.outputs if n in live)

    try:
        Interpreter(graph).run(feeds, names, hook=keep)
    except Exception as err:
        return got, one_line(err)
    return got, ""


def ort_all_values(
    path: Path, graph: Graph, feeds: Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray], str]:
    """Every node output on onnxruntime, from a copy of the model that outputs them all."""
    try:
        proto = onnx.load(str(path))
        declared = {o.name for o in proto.graph.output}
        produced = {name for node in proto.graph.node for name in node.output if name}
        types = {v.name: v.dtype for v in graph.values()}
        for name in sorted(produced - declared):
            dtype = to_onnx(types[name]) if name in types else onnx.TensorProto.UNDEFINED
            proto.graph.output.append(onnx.helper.make_tensor_value_info(name, dtype, None))
        backend = OrtBackend(proto)
        return backend.run(dict(feeds), sorted(produced)), ""
    except Exception as err:
        return {}, one_line(err)


def backend_divergence(
    graph: Graph,
    values: Mapping[str, np.ndarray],
    error: str,
    ort_values: Mapping[str, np.ndarray],
    atol: float,
    rtol: float,
) -> list[str]:
    """The first node whose output differs between the interpreter and onnxruntime."""
    for node in graph.nodes:
        for v in node.outputs:
            if v.name not in values:
                return [*_node_lines(node), f"the interpreter fails here: {error}"]
            if v.name not in ort_values:
                continue  # a value the reader added (older-opset form): onnxruntime has none
            d = compare(values[v.name], ort_values[v.name], atol, rtol)
            if not d.ok:
                return [*_node_lines(node), f"%{v.name}: {_what(d)} (onnxruntime vs interpreter)"]
    return ["they agree at every node"]


def eager_divergence(
    graph: Graph,
    values: Mapping[str, np.ndarray],
    error: str,
    prepared: Prepared,
    feeds: dict[str, np.ndarray],
    eager: list[np.ndarray],
    atol: float,
    rtol: float,
    opset: int | None = None,
) -> list[str]:
    """The first node where the exported graph departs from what eager does on ``feeds``.

    The model is traced again on ``feeds`` and written and read back at ``opset``, as the
    file was, so both graphs have the same form; then they are compared node by node.
    """
    try:
        retraced = replace(prepared, examples=feeds).trace()
        again = from_model(to_model(retraced, opset))
    except Exception as err:
        return [
            f"the model cannot be re-traced on these inputs ({one_line(err)}); "
            "eager vs graph is localised by output only (see the table)"
        ]
    values2, error2 = all_values(again, feeds)
    reproduced = not error2 and all(
        compare(values2[v.name], e, atol, rtol).ok
        for v, e in zip(again.outputs, eager, strict=False)
        if v.name in values2
    )
    if not reproduced:
        return [
            "re-tracing does not reproduce the eager outputs (a random or stateful "
            "model?); eager vs graph is localised by output only (see the table)"
        ]
    place1, place2 = _places(graph), _places(again)
    for a, b in zip(graph.nodes, again.nodes, strict=False):
        why = _structural(a, b, place1, place2, atol, rtol)
        if why:
            return [*_node_lines(a), why, *_baked(graph, a)]
        for va, vb in zip(a.outputs, b.outputs, strict=True):
            if va.name not in values:
                return [*_node_lines(a), f"the interpreter fails here: {error}"]
            d = compare(values[va.name], values2[vb.name], atol, rtol)
            if not d.ok:
                return [
                    *_node_lines(a),
                    f"%{va.name}: {_what(d)} (exported vs eager)",
                    *_baked(graph, a),
                ]
    if len(graph.nodes) != len(again.nodes):
        return [
            f"the exported graph has {len(graph.nodes)} nodes, the re-trace "
            f"{len(again.nodes)}: eager runs different code at these sizes",
            *_baked(graph, None),
        ]
    return ["every node matches the re-trace; only the outputs differ (see the table)"]


def _places(graph: Graph) -> dict[str, tuple[int, int]]:
    return {v.name: (i, k) for i, n in enumerate(graph.nodes) for k, v in enumerate(n.outputs)}


def _structural(
    a: Node,
    b: Node,
    place1: Mapping[str, tuple[int, int]],
    place2: Mapping[str, tuple[int, int]],
    atol: float,
    rtol: float,
) -> str:
    if a.op.op_type != b.op.op_type or len(a.inputs) != len(b.inputs):
        return f"eager runs a different op here: the re-trace has {b.format()}"
    if sorted(a.attrs) != sorted(b.attrs) or any(
        not _same(a.attrs[k], b.attrs[k]) for k in a.attrs
    ):
        return f"its attributes differ from the re-trace: {b.format()}"
    for x, y in zip(a.inputs, b.inputs, strict=True):
        if x is None or y is None:
            if x is not y:
                return "an optional input is present in one graph only"
            continue
        if x.const is not None and y.const is not None:
            if x.const.shape != y.const.shape or not compare(x.const, y.const, atol, rtol).ok:
                return _const_difference(x, y.const)
        elif _where(x, place1) != _where(y, place2):
            return f"its input %{x.name} comes from elsewhere in the re-trace ({b.format()})"
    return ""


def _where(v: Value, places: Mapping[str, tuple[int, int]]) -> Any:
    return places.get(v.name, ("const" if v.const is not None else "input", v.name))


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except (TypeError, ValueError):
        return a == b


def _const_difference(x: Value, eager: np.ndarray) -> str:
    ours = x.const
    assert ours is not None
    head = f"its constant input %{x.name}"
    if ours.shape != eager.shape or ours.size <= 6:
        return f"{head} is {_show(ours)} in the file, but {_show(eager)} when eager runs here"
    gap = np.abs(ours.astype(np.float64) - eager.astype(np.float64))
    at = np.unravel_index(int(np.nanargmax(gap)), gap.shape)
    where = tuple(int(i) for i in at)
    return (
        f"{head} ({ours.dtype}{list(ours.shape)}) differs from the one eager uses here: at "
        f"{list(where)} the file holds {ours[at].item():.6g}, eager {eager[at].item():.6g}"
    )


def _show(array: np.ndarray) -> str:
    if array.size <= 6:
        return str(array.reshape(-1).tolist() if array.ndim else array.item())
    return f"{array.dtype}{list(array.shape)}"


def _what(d: Diff) -> str:
    return d.note or f"max abs err {d.max_abs:.3g}, max rel err {d.max_rel:.3g}"


def _node_lines(node: Node) -> list[str]:
    source = node.meta.get("source", "unknown source")
    return [f"node {node.name!r} ({node.op.op_type}) at {source}:", f"  {node.format()}"]


def _baked(graph: Graph, node: Node | None) -> list[str]:
    decisions = [d for d in graph.meta.get("baked", []) if isinstance(d, dict)]
    if node is not None:
        here = [d for d in decisions if d.get("source") == node.meta.get("source")]
        decisions = here or decisions
    lines = [
        f"  {d.get('kind')}: {d.get('what')} -> {d.get('result')!r} at {d.get('source')}"
        for d in decisions[:5]
    ]
    return ["Python decisions baked in at trace time:", *lines] if lines else []
