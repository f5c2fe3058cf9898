"""Independent oracles for op tests: onnx.reference and onnxruntime on one-node models."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnx.onnx_ml_pb2 import ValueInfoProto

from export.onnx.microsoft import contrib_schema
from ir.ops.registry import OpDef

OPSET = 20  # the opset whose schemas the registry implements


def schema_of(op: OpDef, opset: int) -> onnx.defs.OpSchema:
    """ONNX's schema of ``op`` at ``opset``, or onnxruntime's for its contrib ops."""
    return contrib_schema(op.op_type, op.domain) or onnx.defs.get_schema(
        op.op_type, opset, op.domain
    )


def opset_for(op: OpDef) -> int:
    """The opset a one-node model of ``op`` declares: 20, or later for ops new since 20."""
    return max(OPSET, op.since)


IR_VERSION = 10  # onnxruntime 1.31 reads IR versions up to 13; onnx 1.23 writes 14 by default


def one_node_model(
    op: OpDef,
    inputs: Sequence[np.ndarray | None],
    attrs: Mapping[str, Any],
    n_outputs: int,
    out_dtypes: Sequence[np.dtype] = (),
) -> onnx.ModelProto:
    """A model running ``op`` once; absent optional inputs are left empty.

    ``out_dtypes`` declare the outputs' element types where onnx's shape inference gives
    none (onnxruntime's contrib ops) and the runtime cannot infer them either
    (``com.microsoft`` ``MultiHeadAttention``'s ``qk``).
    """
    names = [f"in{i}" if x is not None else "" for i, x in enumerate(inputs)]
    outputs = [f"out{i}" for i in range(n_outputs)]
    given = {
        k: numpy_helper.from_array(v) if isinstance(v, np.ndarray) else v
        for k, v in attrs.items()
        if v is not None
    }
    node = helper.make_node(op.op_type, names, outputs, domain=op.domain, **given)
    graph = helper.make_graph(
        [node],
        "one_node",
        [
            helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(x.dtype), x.shape)
            for n, x in zip(names, inputs, strict=True)
            if x is not None
        ],
        [ValueInfoProto(name=n) for n in outputs],
    )
    opsets = [helper.make_opsetid(op.domain, opset_for(op))]
    if op.domain:  # its own version, next to the default domain's
        opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid(op.domain, op.since)]
    model = helper.make_model(graph, opset_imports=opsets, ir_version=IR_VERSION)
    # Output types come from ONNX's own shape inference, so the oracle stays independent;
    # onnx knows no schema of onnxruntime's contrib ops to infer them with.
    known = {}
    if contrib_schema(op.op_type, op.domain) is None:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
        known = {v.name: v.type for v in [*inferred.graph.value_info, *inferred.graph.output]}
    for i, out in enumerate(model.graph.output):
        if out.name in known and known[out.name].HasField("tensor_type"):
            out.type.CopyFrom(known[out.name])
        elif i < len(out_dtypes):
            elem = helper.np_dtype_to_tensor_dtype(np.dtype(out_dtypes[i]))
            out.type.CopyFrom(helper.make_tensor_type_proto(elem, None))
    return model


def _feeds(inputs: Sequence[np.ndarray | None]) -> dict[str, np.ndarray]:
    return {f"in{i}": x for i, x in enumerate(inputs) if x is not None}


def run_reference(
    op: OpDef, inputs: Sequence[np.ndarray | None], attrs: Mapping[str, Any], n_outputs: int
) -> list[np.ndarray]:
    """Outputs of ``onnx.reference.ReferenceEvaluator`` for one application of ``op``."""
    from onnx.reference import ReferenceEvaluator

    model = one_node_model(op, inputs, attrs, n_outputs)
    return [np.asarray(o) for o in ReferenceEvaluator(model).run(None, _feeds(inputs))]


def run_onnxruntime(
    op: OpDef,
    inputs: Sequence[np.ndarray | None],
    attrs: Mapping[str, Any],
    n_outputs: int,
    out_dtypes: Sequence[np.dtype] = (),
) -> list[np.ndarray]:
    """Outputs of onnxruntime's CPU provider for one application of ``op``."""
    import onnxruntime as ort

    model = one_node_model(op, inputs, attrs, n_outputs, out_dtypes)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    sess = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    return [np.asarray(o) for o in sess.run(None, _feeds(inputs))]
