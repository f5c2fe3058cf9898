"""Every registry op against its spec: schema, forward oracles, shape rule, gradients."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest

import ir
from ir.ops.registry import InferContext, OpDef
from ir.types import TensorType
from tests import gradcheck, oracles
from tests.op_specs import ALL_SPECS, SPECS_BY_KEY, OpSpec, Sample
from tests.op_specs.common import F64

OPS = ir.ops.all_ops()


def _cases(spec_filter: Any = None, float64_only: bool = False, oracle: str = "") -> list[Any]:
    cases = []
    for spec in ALL_SPECS:
        if spec_filter is not None and not spec_filter(spec):
            continue
        for dtype in (F64,) if float64_only else spec.dtypes:
            if float64_only and F64 not in spec.dtypes:
                continue
            if oracle and {oracle, f"{oracle}/{dtype}"} & set(spec.oracle_skip):
                continue
            rng = np.random.default_rng(0)
            for i, sample in enumerate(spec.samples(rng, dtype)):
                name = f"{spec.domain}.{spec.op_type}" if spec.domain else spec.op_type
                cases.append(pytest.param(spec, sample, id=f"{name}-{dtype}-{i}"))
    return cases


def _kernel_outputs(op: OpDef, sample: Sample) -> list[np.ndarray]:
    out = op.kernel(*sample.inputs, **sample.attrs)
    return [np.asarray(o) for o in (out if isinstance(out, tuple) else (out,))]


# ---------------------------------------------------------------- the table itself


def test_every_op_has_a_spec() -> None:
    registered = {o.key for o in OPS}
    assert registered - set(SPECS_BY_KEY) == set(), "registry ops without a spec"
    assert set(SPECS_BY_KEY) - registered == set(), "specs for ops that are not registered"
    assert len(ALL_SPECS) == len(SPECS_BY_KEY), "an op has two specs"


@pytest.mark.parametrize(
    "op", OPS, ids=lambda o: f"{o.domain}.{o.op_type}" if o.domain else o.op_type
)
def test_vjp_or_reason(op: OpDef) -> None:
    spec = SPECS_BY_KEY[op.key]
    if op.vjp is None:
        assert op.no_vjp, f"{op.op_type}: vjp=None needs a reason"
        assert spec.grad_order == 0, f"{op.op_type} has no vjp, so its spec must say grad_order=0"
    else:
        assert spec.grad_order > 0, f"{op.op_type} has a vjp that the spec does not check"
        if spec.grad_order == 1:
            assert spec.no_second_order, f"{op.op_type}: say why second order is not checked"


@pytest.mark.parametrize(
    "op", OPS, ids=lambda o: f"{o.domain}.{o.op_type}" if o.domain else o.op_type
)
def test_schema_matches_onnx(op: OpDef) -> None:
    """Version, attribute names and defaults, and input counts agree with ONNX's schema."""
    opset = oracles.opset_for(op)
    schema = oracles.schema_of(op, opset)
    assert schema.since_version == op.since, (
        f"{op.op_type}: the schema in force at opset {opset} is version "
        f"{schema.since_version}, the registry says {op.since}"
    )
    assert set(op.attrs) <= set(schema.attributes), set(op.attrs) - set(schema.attributes)
    for name, default in op.attrs.items():
        proto = schema.attributes[name].default_value
        if proto.name:  # the schema declares a default
            assert onnx.helper.get_attribute_value(proto) == _onnx_form(default), name
    lo, hi = op.num_inputs
    assert lo == schema.min_input, f"{op.op_type}: min inputs {lo} vs ONNX {schema.min_input}"
    if hi is not None:
        assert hi == schema.max_input, f"{op.op_type}: max inputs {hi} vs ONNX {schema.max_input}"


def _onnx_form(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, list | tuple):
        return [_onnx_form(v) for v in value]
    return value


# ---------------------------------------------------------------- forward


def _compare(spec: OpSpec, ours: list[np.ndarray], theirs: list[np.ndarray]) -> None:
    assert len(ours) == len(theirs)
    for a, b in zip(ours, theirs, strict=True):
        assert a.dtype == b.dtype, f"dtype {a.dtype} vs oracle {b.dtype}"
        assert a.shape == b.shape, f"shape {a.shape} vs oracle {b.shape}"
        if not spec.random:
            np.testing.assert_allclose(a, b, rtol=spec.rtol, atol=spec.atol)


@pytest.mark.parametrize(("spec", "sample"), _cases(oracle="reference"))
def test_forward_vs_onnx_reference(spec: OpSpec, sample: Sample) -> None:
    op = ir.ops.get(spec.op_type, spec.domain)
    ours = _kernel_outputs(op, sample)
    theirs = oracles.run_reference(op, sample.inputs, sample.attrs, len(ours))
    _compare(spec, ours, theirs)


@pytest.mark.parametrize(("spec", "sample"), _cases(oracle="onnxruntime"))
def test_forward_vs_onnxruntime(spec: OpSpec, sample: Sample) -> None:
    op = ir.ops.get(spec.op_type, spec.domain)
    ours = _kernel_outputs(op, sample)
    dtypes = [o.dtype for o in ours]
    theirs = oracles.run_onnxruntime(op, sample.inputs, sample.attrs, len(ours), dtypes)
    _compare(spec, ours, theirs)


@pytest.mark.parametrize(("spec", "sample"), _cases())
def test_shape_rule_matches_kernel(spec: OpSpec, sample: Sample) -> None:
    op = ir.ops.get(spec.op_type, spec.domain)
    types = [None if x is None else TensorType(x.dtype, x.shape) for x in sample.inputs]
    inferred = op.infer(InferContext(sample.inputs), *types, **op.full_attrs(sample.attrs))
    inferred = inferred if isinstance(inferred, tuple) else (inferred,)
    actual = _kernel_outputs(op, sample)
    assert [(t.dtype, t.shape) for t in inferred] == [(a.dtype, a.shape) for a in actual]


@pytest.mark.parametrize(("spec", "sample"), _cases())
def test_eager_matches_kernel(spec: OpSpec, sample: Sample) -> None:
    """Applying the op to tensors gives the kernel's values, dtypes and shapes."""
    import tracer

    op = ir.ops.get(spec.op_type, spec.domain)
    tensors = [None if x is None else tracer.tensor(x) for x in sample.inputs]
    result = op(*tensors, **sample.attrs)
    outs = list(result) if isinstance(result, tuple) else [result]
    _compare(spec, [o.numpy() for o in outs], _kernel_outputs(op, sample))


# ---------------------------------------------------------------- gradients


def _grad_cases(order: int) -> list[Any]:
    return _cases(lambda s: s.grad_order >= order, float64_only=True)


def _close(ad: float, fd: float) -> bool:
    return abs(ad - fd) <= 1e-6 * (1.0 + abs(fd))


def _checkable(op: OpDef, sample: Sample) -> bool:
    outs = _kernel_outputs(op, sample)
    floats = [o for o in outs if o.dtype.kind == "f"]
    return (
        bool(gradcheck.wrt_inputs(sample)) and bool(floats) and all(o.dtype == F64 for o in floats)
    )


@pytest.mark.parametrize(("spec", "sample"), _grad_cases(1))
def test_first_order_gradient(spec: OpSpec, sample: Sample) -> None:
    op = ir.ops.get(spec.op_type, spec.domain)
    if not _checkable(op, sample):
        pytest.skip("no float64 input/output pair to differentiate in this sample")
    ad, fd = gradcheck.check_first_order(op, sample, np.random.default_rng(1))
    assert _close(ad, fd), f"autograd {ad!r} vs finite differences {fd!r}"


@pytest.mark.parametrize(("spec", "sample"), _grad_cases(2))
def test_second_order_gradient(spec: OpSpec, sample: Sample) -> None:
    op = ir.ops.get(spec.op_type, spec.domain)
    if not _checkable(op, sample):
        pytest.skip("no float64 input/output pair to differentiate in this sample")
    ad, fd = gradcheck.check_second_order(op, sample, np.random.default_rng(2))
    assert _close(ad, fd), f"autograd {ad!r} vs finite differences {fd!r}"


def test_every_differentiable_op_is_gradient_checked() -> None:
    """Each op with a vjp has at least one sample the gradient tests actually run."""
    for spec in ALL_SPECS:
        if spec.grad_order == 0:
            continue
        op = ir.ops.get(spec.op_type, spec.domain)
        samples = spec.samples(np.random.default_rng(0), F64)
        assert any(_checkable(op, s) for s in samples), f"{spec.op_type}: no checkable sample"
