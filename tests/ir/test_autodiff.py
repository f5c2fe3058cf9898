"""Graph autodiff (``ir.grad``): every op's vjp as a graph, NLP models, and the API.

Oracles: eager autograd (``tracer.autograd.grad``: the same vjp rules, run on tensors, so a
mismatch is a bug in graph building, accumulation, constants or the interpreter), central
finite differences of the NumPy kernels (independent of every vjp rule), onnxruntime running
the backward graph (independent kernels), and PyTorch when installed.

Recurrent layers' backward graphs need ``ir.lower_recurrent`` for ``standard_only=True``;
those cases skip until it exists and run unchanged once it does. ``standard_only=False``
variants run now on the interpreter.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnx
import pytest

import export
import ir
import tracer
from ir.errors import GraphInvariantError, UnsupportedOpError
from ir.graph import Graph, Value
from ir.ops.registry import OpDef, op
from runtime import Session
from tests import gradcheck
from tests.autodiff_models import MODELS, Batch, ModelCase, make_batch, torch_gradients
from tests.op_specs import ALL_SPECS, OpSpec, Sample
from tests.op_specs.common import F32, F64

RECURRENT = {"LSTM", "GRU", "RNN"}


# ============================================================== 1. every op, one node


def _grad_cases(dtype: np.dtype, oracle: str = "", custom: bool = True) -> list[Any]:
    """``(spec, sample, standard_only)`` cases: ops with a vjp, samples with something to do.

    A sample needs a float input to perturb and a float output. Recurrent ops come twice
    with ``custom`` and no oracle: also ``standard_only=False`` (onnxruntime cannot run
    graphcap's own ops, so not under an oracle).
    """
    cases = []
    for spec in ALL_SPECS:
        opdef = ir.ops.get(spec.op_type, spec.domain)
        if opdef.vjp is None or dtype not in spec.dtypes:
            continue
        if oracle and {oracle, f"{oracle}/{dtype}"} & set(spec.oracle_skip):
            continue
        both = spec.op_type in RECURRENT and custom and not oracle
        for i, sample in enumerate(spec.samples(np.random.default_rng(0), dtype)):
            floats_out = any(o.dtype.kind == "f" for o in _kernel(opdef, sample))
            if not gradcheck.wrt_inputs(sample) or not floats_out:
                continue  # e.g. Dropout with a fresh mask per call, Cast to an integer
            for std in (True, False) if both else (True,):
                tag = f"{spec.op_type}-{dtype}-{i}" + ("" if std else "-custom")
                cases.append(pytest.param(spec, sample, std, id=tag))
    return cases


@dataclass
class OneNode:
    """A one-node graph of an op on a sample, its gradient graph and their feeds."""

    forward: Graph
    backward: Graph
    wrt: list[int]  # sample inputs that are graph inputs (the rest are initializers)
    outs: list[int]  # which op outputs are differentiated
    feeds: dict[str, np.ndarray]  # inputs and one cotangent per differentiated output


def _one_node(
    opdef: OpDef,
    sample: Sample,
    rng: np.random.Generator,
    *,
    standard_only: bool = True,
    dynamic: bool = False,
    only_f64: bool = False,
) -> OneNode:
    """``opdef`` applied once to ``sample``, and ``ir.grad`` of it.

    Operands the gradient checks perturb become graph inputs, the others initializers
    (so rules can read axes, shapes and indices off them). The gradient is taken by every
    graph input, of every float output (float64 only with ``only_f64``) with random
    cotangents fed as seeds. ``dynamic`` makes axis 0 of each graph input symbolic
    (``n<size>``; size-1 axes stay static).
    """
    wrt = gradcheck.wrt_inputs(sample)
    g = Graph("one_node")
    args: list[Value | None] = []
    for i, x in enumerate(sample.inputs):
        if x is None:
            args.append(None)
        elif i in wrt:
            shape = [f"n{d}" if dynamic and a == 0 and d > 1 else d for a, d in enumerate(x.shape)]
            args.append(g.add_input(f"in{i}", x.dtype, shape))
        else:
            args.append(g.add_initializer(f"in{i}", x))
    values = g.apply(opdef, args, sample.attrs)
    for k, v in enumerate(values):
        g.rename(v, f"out{k}")
    g.set_outputs(values)
    outs = [k for k, v in enumerate(values) if v.dtype == F64 or (not only_f64 and v.dtype == F32)]
    assert outs, "the case list keeps samples with a float output only"
    feeds = {f"in{i}": np.asarray(sample.inputs[i]) for i in wrt}
    concrete = _kernel(opdef, sample)
    for k in outs:
        feeds[f"seed{k}"] = rng.standard_normal(concrete[k].shape).astype(concrete[k].dtype)
    try:
        backward = ir.grad(
            g,
            [f"in{i}" for i in wrt],
            of=[f"out{k}" for k in outs],
            seed=[f"seed{k}" for k in outs],
            standard_only=standard_only,
        )
    except UnsupportedOpError as e:
        # What the Scan lowering refuses (e.g. peepholes) is its own documented limit; the
        # standard_only=False variant of the same sample still checks the gradient.
        if standard_only and opdef.op_type in RECURRENT and str(e).startswith("lowering node"):
            pytest.skip(f"not lowered to standard ops: {e}")
        raise
    return OneNode(g, backward, wrt, outs, feeds)


def _kernel(opdef: OpDef, sample: Sample) -> list[np.ndarray]:
    out = opdef.kernel(*sample.inputs, **sample.attrs)
    return [np.asarray(o) for o in (out if isinstance(out, tuple) else (out,))]


def _eager_grads(opdef: OpDef, sample: Sample, case: OneNode) -> list[np.ndarray]:
    """``tracer.autograd.grad`` of the same outputs with the same cotangents.

    Zeros where autograd finds no dependence, as ``ir.grad`` gives.
    """
    tensors = [
        None if x is None else tracer.tensor(x, requires_grad=i in case.wrt)
        for i, x in enumerate(sample.inputs)
    ]
    result = opdef(*tensors, **sample.attrs)
    outs = list(result) if isinstance(result, tuple) else [result]
    targets = [t for i, t in enumerate(tensors) if i in case.wrt and t is not None]
    grads = tracer.autograd.grad(
        [outs[k] for k in case.outs],
        targets,
        [tracer.tensor(case.feeds[f"seed{k}"]) for k in case.outs],
        allow_unused=True,
    )
    return [
        np.zeros_like(np.asarray(sample.inputs[i])) if gr is None else gr.numpy()
        for i, gr in zip(case.wrt, grads, strict=True)
    ]


def _assert_grads(
    got: dict[str, np.ndarray], case: OneNode, want: list[np.ndarray], rtol: float, atol: float
) -> None:
    for i, w in zip(case.wrt, want, strict=True):
        g = got[f"in{i}_grad"]
        assert (g.dtype, g.shape) == (w.dtype, w.shape), f"in{i}: {g.dtype}{g.shape} vs {w.dtype}"
        scale = max(1.0, float(np.nanmax(np.abs(w)))) if w.size else 1.0
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol * scale, err_msg=f"in{i}")


@pytest.mark.parametrize(("spec", "sample", "standard_only"), _grad_cases(F64))
def test_op_grad_matches_eager_autograd(spec: OpSpec, sample: Sample, standard_only: bool) -> None:
    """float64, NumPy interpreter: the backward graph's gradients are eager autograd's."""
    opdef = ir.ops.get(spec.op_type, spec.domain)
    case = _one_node(opdef, sample, np.random.default_rng(1), standard_only=standard_only)
    if standard_only:  # no graphcap-own op; an onnxruntime contrib op keeps its own
        assert {n.op.domain for n in case.backward.nodes} <= {"", spec.domain}
    got = Session(case.backward, backend="interpreter").run(case.feeds)
    _assert_grads(got, case, _eager_grads(opdef, sample, case), rtol=1e-6, atol=1e-12)


def _thinned(cases: list[Any]) -> list[Any]:
    """``cases`` with all but the first and the last of each op marked slow.

    The first and last run with ``-m "not slow"``; a full run runs all.
    """
    by_op: dict[str, list[Any]] = {}
    for p in cases:
        by_op.setdefault(p.values[0].op_type, []).append(p)
    out = []
    for ps in by_op.values():
        for j, p in enumerate(ps):
            if 0 < j < len(ps) - 1:
                p = pytest.param(*p.values, id=p.id, marks=pytest.mark.slow)
            out.append(p)
    return out


def _fd_cases() -> list[Any]:
    """Samples with a float64 output, for finite differences.

    Only float64 outputs are differentiated there: float32 ones (Cast's) would swamp the
    differences in rounding.
    """
    cases = []
    for p in _grad_cases(F64, custom=False):
        spec, sample = p.values[0], p.values[1]
        if any(o.dtype == F64 for o in _kernel(ir.ops.get(spec.op_type, spec.domain), sample)):
            cases.append(p)
    return _thinned(cases)


@pytest.mark.parametrize(("spec", "sample", "standard_only"), _fd_cases())
def test_op_grad_finite_differences(spec: OpSpec, sample: Sample, standard_only: bool) -> None:
    """<J u, v> by central differences of the kernel against <u, backward graph(v)>."""
    opdef = ir.ops.get(spec.op_type, spec.domain)
    rng = np.random.default_rng(2)
    case = _one_node(opdef, sample, rng, only_f64=True)
    got = Session(case.backward, backend="interpreter").run(case.feeds)
    u = {i: rng.standard_normal(case.feeds[f"in{i}"].shape) for i in case.wrt}
    ad = sum(float(np.sum(got[f"in{i}_grad"] * u[i])) for i in case.wrt)

    def phi(t: float) -> float:
        shifted = [
            x + t * u[i] if i in u and x is not None else x for i, x in enumerate(sample.inputs)
        ]
        outs = _kernel(opdef, Sample(tuple(shifted), sample.attrs, sample.wrt))
        return sum(float(np.sum(outs[k] * case.feeds[f"seed{k}"])) for k in case.outs)

    fd = (phi(gradcheck.EPS) - phi(-gradcheck.EPS)) / (2 * gradcheck.EPS)
    assert abs(ad - fd) <= 1e-6 * (1 + abs(fd)), f"graph {ad!r} vs finite differences {fd!r}"


@pytest.mark.parametrize(
    ("spec", "sample", "standard_only"), _thinned(_grad_cases(F32, oracle="onnxruntime"))
)
def test_op_grad_onnxruntime_float32(spec: OpSpec, sample: Sample, standard_only: bool) -> None:
    """float32: onnxruntime runs the backward graph and agrees with the interpreter."""
    opdef = ir.ops.get(spec.op_type, spec.domain)
    case = _one_node(opdef, sample, np.random.default_rng(1))
    assert {n.op.domain for n in case.backward.nodes} <= {"", spec.domain}
    ours = Session(case.backward, backend="interpreter").run(case.feeds)
    theirs = Session(case.backward, backend="onnxruntime").run(case.feeds)
    want = [ours[f"in{i}_grad"] for i in case.wrt]
    if spec.random:  # onnxruntime draws its own Dropout masks: types only, as test_ops
        for i, w in zip(case.wrt, want, strict=True):
            assert (theirs[f"in{i}_grad"].dtype, theirs[f"in{i}_grad"].shape) == (w.dtype, w.shape)
        return
    _assert_grads(theirs, case, want, rtol=1e-4, atol=1e-5)


# Gradients that need static shapes, by design (their messages say so).
# The contrib attentions: a 1-D mask is end positions or end and start, by batch size.
STATIC_ONLY = {"Resize", "GridSample", "Pad", "Einsum", "Attention", "MultiHeadAttention"}


@pytest.mark.parametrize(
    ("spec", "sample", "standard_only"), _thinned(_grad_cases(F64, custom=False))
)
def test_op_grad_with_symbolic_batch_axis(
    spec: OpSpec, sample: Sample, standard_only: bool
) -> None:
    """Axis 0 of every graph input symbolic: the gradients are still eager's.

    Rules then build shapes at run time; a few refuse by name, by design, where the
    gradient needs static shapes (``STATIC_ONLY``).
    """
    opdef = ir.ops.get(spec.op_type, spec.domain)
    try:
        case = _one_node(opdef, sample, np.random.default_rng(1), dynamic=True)
    except UnsupportedOpError as e:
        if spec.op_type in STATIC_ONLY and ("static" in str(e) or "symbolic" in str(e)):
            pytest.skip(f"documented: {e}")
        raise
    got = Session(case.backward, backend="interpreter").run(case.feeds)
    _assert_grads(got, case, _eager_grads(opdef, sample, case), rtol=1e-6, atol=1e-12)


def test_every_differentiable_op_has_a_graph_grad_case() -> None:
    ran = {p.values[0].op_type for p in _grad_cases(F64)}
    with_vjp = {o.op_type for o in ir.ops.all_ops() if o.vjp is not None and not o.domain}
    assert with_vjp - ran == set()


# ============================================================== 2. NLP models


def _model(case: ModelCase, dtype: Any) -> Any:
    tracer.manual_seed(0)
    return case.make().to(dtype).eval()


def _grad_graph(case: ModelCase, model: Any, standard_only: bool) -> tuple[Graph, list[str]]:
    """The gradient graph, by every parameter, of the loss traced on a (3, 5) batch.

    Batch and sequence axes are symbolic in the trace.
    """
    example = make_batch(3, 5, seed=0).tensors(*case.fields)
    graph = tracer.trace(
        model,
        example,
        dynamic_axes=case.dynamic_axes(),
        output_names=["loss"],
        differentiable=True,  # the Embedding padding cut is part of the gradient
    )
    names = [n for n, _ in model.named_parameters()]
    assert set(names) <= set(graph.initializers), "every parameter is an initializer"
    return ir.grad(graph, names, standard_only=standard_only), names


def _eager(model: Any, case: ModelCase, batch: Batch) -> tuple[float, dict[str, np.ndarray]]:
    model.zero_grad()
    loss = model(*batch.tensors(*case.fields))
    loss.backward()
    grads = {n: p.grad.numpy() for n, p in model.named_parameters()}
    return loss.item(), grads


def _feeds(case: ModelCase, batch: Batch) -> dict[str, np.ndarray]:
    return {f: getattr(batch, f) for f in case.fields}


def _model_params(with_custom: bool) -> list[Any]:
    params = [pytest.param(c, True, id=c.name) for c in MODELS]
    if with_custom:
        params += [pytest.param(c, False, id=f"{c.name}-custom") for c in MODELS if c.recurrent]
    return params


@pytest.mark.parametrize(("case", "standard_only"), _model_params(with_custom=True))
def test_model_grad_float64_matches_eager(case: ModelCase, standard_only: bool) -> None:
    """Every parameter's gradient from the graph is ``loss.backward()``'s (float64).

    Checked at the traced size and at another one; ``standard_only`` graphs hold
    default-domain ops only.
    """
    model = _model(case, tracer.float64)
    backward, names = _grad_graph(case, model, standard_only)
    assert [v.name for v in backward.outputs] == ["loss", *(f"{n}_grad" for n in names)]
    domains = {n.op.domain for n in backward.nodes}
    assert domains <= {""} if standard_only else domains <= {"", "ai.graphcap"}
    session = Session(backward, backend="interpreter")
    for size in [(3, 5, 0), (4, 7, 1)]:
        batch = make_batch(*size)
        got = session.run(_feeds(case, batch))
        loss, want = _eager(model, case, batch)
        np.testing.assert_allclose(got["loss"], loss, rtol=1e-12)
        for n, w in want.items():
            np.testing.assert_allclose(got[f"{n}_grad"], w, rtol=1e-6, atol=1e-12, err_msg=n)


@pytest.mark.parametrize(("case", "standard_only"), _model_params(with_custom=True))
def test_model_grad_finite_differences(case: ModelCase, standard_only: bool) -> None:
    """<grad, u> from the graph against central differences of the eager loss along u."""
    model = _model(case, tracer.float64)
    backward, names = _grad_graph(case, model, standard_only)
    batch = make_batch(4, 6, seed=2)
    got = Session(backward, backend="interpreter").run(_feeds(case, batch))
    params = dict(model.named_parameters())
    base = {n: p.detach().numpy().copy() for n, p in params.items()}
    rng = np.random.default_rng(3)
    u = {n: rng.standard_normal(b.shape) for n, b in base.items()}

    def loss_at(t: float) -> float:
        with tracer.no_grad():
            for n, p in params.items():
                p.copy_(tracer.tensor(base[n] + t * u[n]))
            return model(*batch.tensors(*case.fields)).item()

    eps = 1e-6
    fd = (loss_at(eps) - loss_at(-eps)) / (2 * eps)
    loss_at(0.0)
    ad = sum(float(np.sum(got[f"{n}_grad"] * u[n])) for n in names)
    assert abs(ad - fd) <= 1e-6 * (1 + abs(fd)), f"graph {ad!r} vs finite differences {fd!r}"


@pytest.mark.parametrize(("case", "standard_only"), _model_params(with_custom=False))
def test_model_grad_float32_onnxruntime_other_sizes(case: ModelCase, standard_only: bool) -> None:
    """The float32 gradient graph, traced at (3, 5), on onnxruntime at two other sizes."""
    model = _model(case, tracer.float32)
    backward, _ = _grad_graph(case, model, standard_only)
    assert {n.op.domain for n in backward.nodes} == {""}
    session = Session(backward, backend="onnxruntime")
    for size in [(2, 4, 3), (6, 9, 4)]:
        batch = make_batch(*size)
        got = session.run(_feeds(case, batch))
        loss, want = _eager(model, case, batch)
        np.testing.assert_allclose(got["loss"], loss, rtol=1e-5)
        for n, w in want.items():
            assert got[f"{n}_grad"].dtype == np.float32
            np.testing.assert_allclose(got[f"{n}_grad"], w, rtol=1e-4, atol=1e-5, err_msg=n)


@pytest.mark.parametrize("case", MODELS, ids=lambda c: c.name)
def test_model_grad_matches_torch(case: ModelCase) -> None:
    """The graph's float64 gradients against PyTorch's twin with the same weights."""
    pytest.importorskip("torch")
    model = _model(case, tracer.float64)
    backward, _ = _grad_graph(case, model, standard_only=not case.recurrent)
    batch = make_batch(4, 7, seed=5)
    got = Session(backward, backend="interpreter").run(_feeds(case, batch))
    state = {k: v.numpy() for k, v in model.state_dict().items()}
    want = torch_gradients(case.name, state, batch)
    assert set(want) == {n for n, _ in model.named_parameters()}
    for n, w in want.items():
        np.testing.assert_allclose(got[f"{n}_grad"], w, rtol=1e-6, atol=1e-12, err_msg=n)


# ============================================================== 3. the API and edge cases


def _traced(fn: Any, *arrays: np.ndarray, axes: Any = None) -> Graph:
    return tracer.trace(fn, tuple(tracer.tensor(a) for a in arrays), dynamic_axes=axes)


def _mlp_loss(x: Any, w: Any, b: Any) -> Any:
    return (tracer.tanh(x @ w + b) ** 2).sum()


_RNG = np.random.default_rng(7)
X, W, B = _RNG.standard_normal((3, 4)), _RNG.standard_normal((4, 2)), _RNG.standard_normal(2)


def test_unknown_wrt_name_lists_the_known_ones() -> None:
    g = _traced(_mlp_loss, X, W, B)
    with pytest.raises(ValueError, match=r"'v' is not an input or initializer; known: \['x', 'w'"):
        ir.grad(g, ["v"])


def test_integer_wrt_is_refused() -> None:
    def f(x: Any, ids: Any) -> Any:
        return x[ids].sum()

    g = _traced(f, X, np.asarray([0, 2]))
    with pytest.raises(ValueError, match=r"wrt 'ids' has type i64\[2\]; gradients need floats"):
        ir.grad(g, ["ids"])


def test_non_scalar_output_needs_a_seed() -> None:
    g = _traced(lambda x, w: x @ w, X, W)
    with pytest.raises(ValueError, match=r"not a scalar; pass seed=<name>"):
        ir.grad(g, ["w"])


def test_of_must_name_an_output() -> None:
    g = _traced(lambda x, w: (x @ w, (x * 2).sum()), X, W)
    with pytest.raises(ValueError, match="say which one with of="):
        ir.grad(g, ["w"])
    with pytest.raises(ValueError, match=r"'nope' is not an output; outputs are \['output_0'"):
        ir.grad(g, ["w"], of="nope")


def test_wrt_twice_is_refused() -> None:
    with pytest.raises(ValueError, match="twice"):
        ir.grad(_traced(_mlp_loss, X, W, B), ["w", "w"])


def test_node_without_vjp_is_named_with_its_source_line() -> None:
    def f(x: Any) -> Any:
        y = x * 2.0
        return op.Det(y).sum()  # the line the error must name

    line = inspect.getsourcelines(f)[1] + 2
    g = _traced(f, _RNG.standard_normal((2, 3, 3)))
    det = next(n for n in g.nodes if n.op.op_type == "Det")
    with pytest.raises(UnsupportedOpError) as info:
        ir.grad(g, ["x"])
    message = str(info.value)
    assert f"node {det.name} (Det" in message
    assert f"test_autodiff.py:{line}" in message
    assert "matrix inverse" in message  # the op's no_vjp reason


def test_no_vjp_off_the_path_is_fine() -> None:
    """ArgMax and Shape have no vjp, but no gradient flows through them."""

    def f(x: Any, w: Any) -> Any:
        h = x @ w
        h = h.reshape(h.shape[0], -1)
        return (h * h.argmax(dim=1, keepdim=True).to(h.dtype)).sum()

    g = _traced(f, X, W, axes={"x": {0: "batch"}})
    got = Session(ir.grad(g, ["w"]), backend="interpreter").run({"x": X, "w": W})
    ax = (X @ W).argmax(axis=1)[:, None].astype(float)
    np.testing.assert_allclose(got["w_grad"], X.T @ np.broadcast_to(ax, (3, 2)), rtol=1e-12)


def test_value_the_output_does_not_depend_on_gets_zeros() -> None:
    """Values the output does not depend on get zeros of their shapes.

    A static unused weight, and a dynamically shaped input read only through an integer
    path; on both backends, at a batch size other than the traced one.
    """

    def f(x: Any, z: Any, w: Any, unused: Any) -> Any:
        return (x @ w).sum() + z.argmax().to(x.dtype)

    g = _traced(f, X, X, W, np.ones((5, 2)), axes={"x": {0: "batch"}, "z": {0: "rows"}})
    backward = ir.grad(g, ["w", "z", "unused"])
    assert [v.name for v in backward.outputs] == ["output", "w_grad", "z_grad", "unused_grad"]
    x, z = _RNG.standard_normal((6, 4)), _RNG.standard_normal((2, 4))
    feeds = {"x": x, "z": z, "w": W, "unused": np.ones((5, 2))}
    for backend in ("interpreter", "onnxruntime"):
        got = Session(backward, backend=backend).run(feeds)
        np.testing.assert_array_equal(got["z_grad"], np.zeros((2, 4)))
        np.testing.assert_array_equal(got["unused_grad"], np.zeros((5, 2)))
        np.testing.assert_allclose(got["w_grad"], np.broadcast_to(x.sum(0)[:, None], (4, 2)))


def test_value_used_twice_accumulates() -> None:
    """Each gradient is the sum over uses (x has three, w two), against the analytic one."""

    def f(x: Any, w: Any) -> Any:
        return (x * x + tracer.sin(x) * w).sum() + (w * x).sum()

    x, w = _RNG.standard_normal((2, 3)), _RNG.standard_normal(3)
    got = Session(ir.grad(_traced(f, x, w), ["x", "w"]), backend="interpreter").run(
        {"x": x, "w": w}
    )
    np.testing.assert_allclose(got["x_grad"], 2 * x + np.cos(x) * w + w, rtol=1e-12)
    np.testing.assert_allclose(got["w_grad"], (np.sin(x) + x).sum(0), rtol=1e-12)


def test_same_gradient_for_two_values_gets_two_names() -> None:
    """For y = a + b both gradients are the seed itself; each still gets its own output."""
    g = _traced(lambda a, b: (a + b).sum(), X, X)
    backward = ir.grad(g, ["a", "b"])
    got = Session(backward, backend="interpreter").run({"a": X, "b": X})
    np.testing.assert_array_equal(got["a_grad"], np.ones_like(X))
    np.testing.assert_array_equal(got["b_grad"], np.ones_like(X))


def test_seed_is_a_new_input_typed_like_the_output() -> None:
    g = _traced(lambda x, w: tracer.tanh(x @ w), X, W, axes={"x": {0: "batch"}})
    backward = ir.grad(g, ["x", "w"], seed="dy")
    dy = backward.inputs[-1]
    assert (dy.name, dy.dtype, dy.shape) == ("dy", F64, ("batch", 2))
    x, v = _RNG.standard_normal((5, 4)), _RNG.standard_normal((5, 2))
    got = Session(backward, backend="onnxruntime").run({"x": x, "w": W, "dy": v})
    local = v * (1 - np.tanh(x @ W) ** 2)
    np.testing.assert_allclose(got["x_grad"], local @ W.T, rtol=1e-10)
    np.testing.assert_allclose(got["w_grad"], x.T @ local, rtol=1e-10)


def test_input_graph_is_not_modified() -> None:
    case = MODELS[1]
    model = _model(case, tracer.float64)
    example = make_batch(3, 5, seed=0).tensors(*case.fields)
    g = tracer.trace(
        model, example, dynamic_axes=case.dynamic_axes(), output_names=["loss"], differentiable=True
    )
    before = str(g)
    names = [n for n, _ in model.named_parameters()]
    ir.grad(g, names)
    ir.grad(g, names[:2], standard_only=False)
    with pytest.raises(ValueError):
        ir.grad(g, ["nope"])
    assert str(g) == before
    g.verify()


def test_gradient_outputs_follow_the_original_outputs_in_wrt_order() -> None:
    g = _traced(lambda x, w, b: (_mlp_loss(x, w, b), x @ w), X, W, B)
    backward = ir.grad(g, ["b", "x", "w"], of="output_0")
    names = [v.name for v in backward.outputs]
    assert names == ["output_0", "output_1", "b_grad", "x_grad", "w_grad"]
    for v in backward.outputs[2:]:
        source = v.name.removesuffix("_grad")
        assert (v.dtype, v.shape) == (F64, next(i for i in g.inputs if i.name == source).shape)


def test_name_taken_by_an_existing_value_is_an_error() -> None:
    g = _traced(lambda x, w: ((x @ w).sum(), (x * 3).sum()), X, W, axes=None)
    g.rename(g.outputs[1], "w_grad")
    with pytest.raises(GraphInvariantError, match="'w_grad'"):
        ir.grad(g, ["w"], of="output_0")


def _detached_square(x: Any, w: Any) -> Any:
    h = x @ w
    return (h.detach() * h).sum()


def test_traced_detach_stops_the_gradient() -> None:
    """A detach() traced while its input requires grad passes no gradient, as eagerly."""
    w = tracer.tensor(W, requires_grad=True)
    g = tracer.trace(_detached_square, (tracer.tensor(X), w))
    got = Session(ir.grad(g, ["w"]), backend="interpreter").run({"x": X, "w": W})
    _detached_square(tracer.tensor(X), w).backward()
    assert w.grad is not None
    np.testing.assert_allclose(got["w_grad"], w.grad.numpy(), rtol=1e-12)
    np.testing.assert_allclose(got["w_grad"], X.T @ (X @ W), rtol=1e-12)


def test_detach_traced_from_plain_tensors_still_stops_the_gradient() -> None:
    g = _traced(_detached_square, X, W)
    got = Session(ir.grad(g, ["w"]), backend="interpreter").run({"x": X, "w": W})
    np.testing.assert_allclose(got["w_grad"], X.T @ (X @ W), rtol=1e-12)


def test_an_output_named_twice_in_of_sums_both_seeds() -> None:
    g = _traced(lambda x: (x * x).sum(), X)
    backward = ir.grad(g, ["x"], of=["output", "output"], seed=["s1", "s2"])
    one = np.asarray(1.0)
    got = Session(backward, backend="interpreter").run({"x": X, "s1": one, "s2": one})
    np.testing.assert_allclose(got["x_grad"], 4 * X)


def test_second_order_through_the_gradient_graph() -> None:
    """The gradient of <grad_w f, u> by w is the Hessian-vector product.

    Checked against finite differences of the first gradient graph, whose ``w_grad`` is
    renamed first: the second ``grad`` names its own output ``w_grad``.
    """
    g = _traced(_mlp_loss, X, W, B)
    first = ir.grad(g, ["w"])
    first.rename(first.outputs[1], "dw")
    second = ir.grad(first, ["w"], of="dw", seed="u")
    u = _RNG.standard_normal(W.shape)
    hvp = Session(second, backend="interpreter").run({"x": X, "w": W, "b": B, "u": u})["w_grad"]
    s = Session(first, backend="interpreter")
    eps = 1e-6
    plus = s.run({"x": X, "w": W + eps * u, "b": B})["dw"]
    minus = s.run({"x": X, "w": W - eps * u, "b": B})["dw"]
    np.testing.assert_allclose(hvp, (plus - minus) / (2 * eps), rtol=1e-6, atol=1e-8)


def test_saved_gradient_graph_passes_the_checker_and_reloads(tmp_path: Any) -> None:
    """A saved gradient graph passes ``onnx.checker`` and reloads.

    Both the reloaded graph and onnxruntime on the file give the in-memory graph's results.
    """
    case = MODELS[1]
    model = _model(case, tracer.float32)
    backward, _ = _grad_graph(case, model, standard_only=True)
    path = tmp_path / "grad.onnx"
    export.save(backward, path)
    onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    reloaded = export.load(path)
    assert [v.name for v in reloaded.outputs] == [v.name for v in backward.outputs]
    feeds = _feeds(case, make_batch(2, 6, seed=9))
    want = Session(backward, backend="interpreter").run(feeds)
    for got in (
        Session(reloaded, backend="interpreter").run(feeds),
        Session(str(path), backend="onnxruntime").run(feeds),
    ):
        assert got.keys() == want.keys()
        for k, w in want.items():
            np.testing.assert_allclose(got[k], w, rtol=1e-4, atol=1e-6, err_msg=k)


def test_recurrent_grad_lowers_to_standard_ops() -> None:
    """With ``standard_only`` (the default) an LSTM's backward is default-domain only.

    Without it graphcap's own ``LSTMGrad`` node stays in the graph.
    """
    case = MODELS[2]
    model = _model(case, tracer.float64)
    custom, _ = _grad_graph(case, model, standard_only=False)
    assert "LSTMGrad" in {n.op.op_type for n in custom.nodes if n.op.domain == "ai.graphcap"}
    lowered, _ = _grad_graph(case, model, standard_only=True)
    assert {n.op.domain for n in lowered.nodes} == {""}


def test_embedding_gradient_of_repeated_tokens_on_onnxruntime() -> None:
    # Thousands of lookups of three rows: a scatter-add that loses updates to repeated
    # indices when it runs on several threads (onnxruntime's CPU ScatterND did) shows here.
    rng = np.random.default_rng(0)
    table = rng.standard_normal((50, 64)).astype(np.float32)
    ids = rng.integers(0, 3, (100, 50))
    g = _traced(lambda w, i: (w[i] ** 2).sum(), table, ids)
    backward = ir.grad(g, [g.inputs[0].name])
    want = np.zeros_like(table)
    np.add.at(want, ids.reshape(-1), 2 * table[ids.reshape(-1)])
    session = Session(backward, backend="onnxruntime", intra_op_threads=2)
    for _ in range(3):
        got = session.run({v.name: a for v, a in zip(g.inputs, (table, ids), strict=True)})
        np.testing.assert_allclose(got[f"{g.inputs[0].name}_grad"], want, rtol=1e-4, atol=1e-3)
