"""``tracer.onnx.export``: ``torch.onnx.export``'s signature and meaning, on graphcap's exporter.

``export(model, args, "model.onnx", input_names=..., output_names=..., dynamic_axes=...,
opset_version=...)`` runs ``model(*args)`` once under ``tracer.trace`` and writes the graph
with ``export.save``. As in PyTorch, nested tuples and lists of tensors in ``args`` and in
the result are flattened into the model's inputs and outputs in order (an LSTM's ``(h, c)``
gives two), a trailing dict in ``args`` holds keyword arguments, the model runs in eval
mode during the export, and ``f`` may be a path or a binary file object.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

from export.onnx import save, to_model
from ir import optimize
from tracer._tensor_base import TensorBase
from tracer.trace import trace

__all__ = ["export"]


def _flatten(tree: Any, out: list[Any]) -> Any:
    """Tensors of ``tree`` appended to ``out``; returns the structure with their positions."""
    if isinstance(tree, TensorBase):
        out.append(tree)
        return len(out) - 1
    if isinstance(tree, tuple | list):
        return type(tree)(_flatten(t, out) for t in tree), "seq"
    if isinstance(tree, Mapping):
        return {k: _flatten(v, out) for k, v in tree.items()}, "map"
    return tree, "leaf"


def _rebuild(spec: Any, flat: Sequence[Any]) -> Any:
    if isinstance(spec, int):
        return flat[spec]
    body, kind = spec
    if kind == "leaf":
        return body
    if kind == "map":
        return {k: _rebuild(s, flat) for k, s in body.items()}
    return type(body)(_rebuild(s, flat) for s in body)


def _flat_outputs(result: Any) -> tuple[Any, ...]:
    flat: list[Any] = []
    _flatten(result, flat)
    return tuple(flat)


def export(
    model: Any,
    args: Any = (),
    f: str | os.PathLike[str] | BinaryIO | None = None,
    *,
    kwargs: Mapping[str, Any] | None = None,
    export_params: bool = True,
    verbose: bool | None = None,
    input_names: Sequence[str] | None = None,
    output_names: Sequence[str] | None = None,
    opset_version: int | None = None,
    dynamic_axes: Mapping[str, Any] | None = None,
    keep_initializers_as_inputs: bool = False,
    do_constant_folding: bool = True,
    external_data: bool = True,
    training: Any = None,
    dynamo: bool = False,
    **unsupported: Any,
) -> None:
    """Trace ``model`` on ``args`` and write it to ``f`` as an ONNX model.

    Args:
        model: a module or function of tensors.
        args: the example positional arguments: a tensor or a tuple (nested tuples and lists
            of tensors are flattened into inputs); a trailing dict holds keyword arguments.
        f: the ``.onnx`` path, or a binary file object to write the bytes to.
        kwargs: keyword arguments, as a trailing dict in ``args``.
        export_params: must be True: weights are stored in the model.
        verbose: print the captured graph.
        input_names: names of the flattened inputs, in order.
        output_names: names of the flattened outputs, in order.
        opset_version: the default-domain opset (default ``export.DEFAULT_OPSET``).
        dynamic_axes: per input or output name, ``{axis: "symbol"}`` or a list of axes.
        keep_initializers_as_inputs: must be False.
        do_constant_folding: run ``ir.optimize`` (level 1) on the graph first.
        external_data: allow weights in a ``.data`` file when the model reaches 2 GB.
        training: PyTorch's ``TrainingMode``; anything but training exports in eval mode.
        dynamo: PyTorch's exporter switch; graphcap has one exporter, so it changes nothing.
        **unsupported: any other ``torch.onnx.export`` option; each raises TypeError.

    Raises:
        TypeError: ``f`` is missing, or an argument ``torch.onnx.export`` has that graphcap
            does not (``operator_export_type``, ``dynamic_shapes``, ...).
        NotImplementedError: ``export_params=False`` or ``keep_initializers_as_inputs=True``.
        TraceError: the model branched on an input-dependent value (see ``tracer.trace``).
    """
    if unsupported:
        raise TypeError(
            f"tracer.onnx.export does not take {', '.join(sorted(unsupported))}; its options "
            "are torch.onnx.export's core ones (input_names, output_names, dynamic_axes, "
            "opset_version, do_constant_folding, ...)"
        )
    if f is None:
        raise TypeError("tracer.onnx.export needs f: an .onnx path or a binary file object")
    if not export_params or keep_initializers_as_inputs:
        raise NotImplementedError(
            "graphcap always stores the weights as initializers inside the model "
            "(export_params=True, keep_initializers_as_inputs=False)"
        )
    positional = list(args) if isinstance(args, tuple | list) else [args]
    keywords = dict(kwargs or {})
    if positional and isinstance(positional[-1], Mapping):
        keywords.update(positional.pop())
    graph = _trace(model, positional, keywords, input_names, output_names, dynamic_axes, training)
    if do_constant_folding:
        graph = optimize(graph, level=1)
    if verbose:
        print(graph)
    _write(graph, f, opset_version, external_data)


def _trace(
    model: Any,
    positional: list[Any],
    keywords: dict[str, Any],
    input_names: Sequence[str] | None,
    output_names: Sequence[str] | None,
    dynamic_axes: Mapping[str, Any] | None,
    training: Any,
) -> Any:
    flat: list[Any] = []
    spec = _flatten((positional, keywords), flat)

    def flat_model(*tensors: Any) -> tuple[Any, ...]:
        pos, kw = _rebuild(spec, tensors)
        return _flat_outputs(model(*pos, **kw))

    names = list(input_names or [])
    names += [f"input_{i}" for i in range(len(names), len(flat))]
    in_axes = {k: v for k, v in (dynamic_axes or {}).items() if k in names}
    out_axes = {k: v for k, v in (dynamic_axes or {}).items() if k not in names}
    exporting_training = str(training).rsplit(".", 1)[-1].upper() == "TRAINING"
    was_training = getattr(model, "training", None)
    if was_training is not None and hasattr(model, "train"):
        model.train(exporting_training)
    try:
        graph = trace(
            flat_model, tuple(flat), in_axes, input_names=names[: len(flat)],
            output_names=output_names,
        )  # fmt: skip
    finally:
        if was_training is not None and hasattr(model, "train"):
            model.train(was_training)
    _name_output_axes(graph, out_axes)
    return graph


def _name_output_axes(graph: Any, out_axes: Mapping[str, Any]) -> None:
    """Dynamic axes given for outputs must already be symbolic: check, as the names differ."""
    by_name = {v.name: v for v in graph.outputs}
    for name, spec in out_axes.items():
        if name not in by_name:
            raise ValueError(
                f"dynamic_axes names {name!r}, which is neither an input "
                f"{[v.name for v in graph.inputs]} nor an output {sorted(by_name)}"
            )
        axes = spec.keys() if isinstance(spec, Mapping) else spec
        shape = by_name[name].type.shape
        fixed = [int(a) for a in axes if isinstance(shape[int(a)], int)]
        if fixed:
            raise ValueError(
                f"output {name!r} has static size on axes {fixed} though dynamic_axes marks them "
                "dynamic; make the inputs it depends on dynamic"
            )


def _write(graph: Any, f: Any, opset: int | None, external_data: bool) -> None:
    if isinstance(f, str | os.PathLike):
        save(graph, f, opset, external_data=None if external_data else False)
        return
    if not hasattr(f, "write"):
        raise TypeError(f"f must be a path or a binary file object, got {type(f).__name__}")
    f.write(to_model(graph, opset).SerializeToString())
