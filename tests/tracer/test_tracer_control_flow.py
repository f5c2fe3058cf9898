"""``tracer.cond`` and ``tracer.while_loop``: eager against torch's, traced into If / Loop.

Traced graphs run on graphcap's interpreter and onnxruntime at inputs that take the other
branch, run another number of iterations and have another batch size than the example, and
must match eager; ``ir.grad`` of a traced graph must match eager autograd.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

import ir
import tracer
from export.onnx import to_model
from runtime.numpy_interpreter import Interpreter
from tracer import nn

F32 = np.float32


class Model(nn.Module):
    """A branch on the input's sign, then a loop until the state's norm passes ``limit``."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 4)
        self.scale = nn.Parameter(tracer.tensor(np.float32(1.5)))

    def forward(self, x: tracer.Tensor, limit: tracer.Tensor) -> tuple[tracer.Tensor, ...]:
        y = tracer.cond(
            x.sum() > 0,
            lambda v: self.lin(v).tanh(),
            lambda v: v * self.scale,
            (x,),
        )

        def keep(i: tracer.Tensor, h: tracer.Tensor) -> tracer.Tensor:
            return h.abs().sum() < limit

        def step(i: tracer.Tensor, h: tracer.Tensor) -> tuple[tracer.Tensor, tracer.Tensor]:
            # a branch inside the loop, reading a parameter two scopes up
            h = tracer.cond(h.sum() > 0, lambda u: u + self.scale, lambda u: u - 1.0, (h,))
            return i + 1, self.lin(h) * 0.5 + h

        count, h = tracer.while_loop(keep, step, (tracer.tensor(0), y))
        return h, count


def _inputs(rng: np.random.Generator, batch: int, sign: float) -> tuple[np.ndarray, np.ndarray]:
    return (sign * np.abs(rng.normal(size=(batch, 4)))).astype(F32), np.asarray(40.0, F32)


def _run_all(g: ir.Graph, feeds: dict[str, np.ndarray]) -> list[list[np.ndarray]]:
    ours = Interpreter(g).run(feeds)
    sess = ort.InferenceSession(to_model(g).SerializeToString(), providers=["CPUExecutionProvider"])
    return [[ours[v.name] for v in g.outputs], sess.run(None, feeds)]


def test_traced_cond_and_while_loop_match_eager_on_other_branches_and_trip_counts() -> None:
    tracer.manual_seed(0)
    model = Model()
    rng = np.random.default_rng(0)
    x, limit = _inputs(rng, 2, 1.0)
    g = tracer.trace(model, (tracer.tensor(x), tracer.tensor(limit)), {"x": {0: "batch"}})
    assert {n.op.op_type for n in g.nodes} >= {"If", "Loop"}
    counts, branches = set(), set()
    for batch, sign, lim in [(2, 1.0, 40.0), (3, -1.0, 40.0), (1, 1.0, 400.0), (5, -1.0, 4.0)]:
        xs, _ = _inputs(rng, batch, sign)
        feeds = {"x": xs, "limit": np.asarray(lim, F32)}
        want = [t.detach().numpy() for t in model(tracer.tensor(xs), tracer.tensor(feeds["limit"]))]
        counts.add(int(want[1]))
        branches.add(sign)
        for got in _run_all(g, feeds):
            np.testing.assert_allclose(got[0], want[0], rtol=2e-5, atol=2e-5)
            np.testing.assert_array_equal(got[1], want[1])
    assert len(counts) >= 3 and branches == {1.0, -1.0}


@pytest.mark.slow  # torch.cond and while_loop compile through dynamo: about 12 s
def test_eager_semantics_match_torch() -> None:
    torch = pytest.importorskip("torch")
    from torch._higher_order_ops.while_loop import while_loop as torch_while_loop

    rng = np.random.default_rng(1)
    w = rng.normal(size=(3, 3)).astype(F32)
    for sign in (1.0, -1.0):
        x = (sign * np.abs(rng.normal(size=3))).astype(F32)
        ours = tracer.cond(
            tracer.tensor(x).sum() > 0,
            lambda v: (v @ tracer.tensor(w)).tanh(),
            lambda v: v * 2.0,
            (tracer.tensor(x),),
        )
        theirs = torch.cond(
            torch.tensor(x).sum() > 0,
            lambda v: (v @ torch.tensor(w)).tanh(),
            lambda v: v * 2.0,
            (torch.tensor(x),),
        )
        np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6)
    i, h = tracer.while_loop(
        lambda i, h: h.abs().sum() < 50.0,
        lambda i, h: (i + 1, h @ tracer.tensor(w) + h),
        (tracer.tensor(0), tracer.tensor(x)),
    )
    ti, th = torch_while_loop(
        lambda i, h: h.abs().sum() < 50.0,
        lambda i, h: (i + 1, h @ torch.tensor(w) + h),
        (torch.tensor(0), torch.tensor(x)),
    )
    assert int(i) == int(ti) > 1
    np.testing.assert_allclose(h.numpy(), th.numpy(), rtol=1e-5)


def test_eager_autograd_flows_through_the_branch_taken_and_the_unrolled_loop() -> None:
    x = tracer.tensor(np.array([0.3, -0.2, 0.5]), requires_grad=True)
    y = tracer.cond(x.sum() > 0, lambda v: (v * v).sum(), lambda v: v.sum(), (x,))
    y.backward()
    np.testing.assert_allclose(x.grad.numpy(), 2 * x.detach().numpy())
    w = tracer.tensor(np.array([1.1, 0.9, 1.2]), requires_grad=True)
    (_, h) = tracer.while_loop(lambda i, h: i < 3, lambda i, h: (i + 1, h * w), (0, w * 1.0))
    h.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 4 * w.detach().numpy() ** 3)


def test_graph_grad_of_a_traced_model_matches_eager_autograd() -> None:
    tracer.manual_seed(2)
    model = Model()
    rng = np.random.default_rng(3)
    x, limit = _inputs(rng, 2, 1.0)

    class Loss(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, x: tracer.Tensor, limit: tracer.Tensor) -> tracer.Tensor:
            h, _ = self.model(x, limit)
            return (h * h).sum()

    loss = Loss()
    g = tracer.trace(loss, (tracer.tensor(x), tracer.tensor(limit)), {"x": {0: "batch"}})
    grad = ir.grad(g, ["x", "model.lin.weight", "model.scale"])
    for sign in (1.0, -1.0):
        xs, _ = _inputs(rng, 3, sign)
        got = Interpreter(grad).run({"x": xs, "limit": limit})
        xt = tracer.tensor(xs, requires_grad=True)
        model.zero_grad()
        loss(xt, tracer.tensor(limit)).backward()
        for name, t in [
            ("x", xt),
            ("model.lin.weight", model.lin.weight),
            ("model.scale", model.scale),
        ]:
            np.testing.assert_allclose(got[f"{name}_grad"], t.grad.numpy(), rtol=1e-4, atol=1e-5)


def test_a_growing_carried_value_gets_a_symbolic_dim_and_runs_on_onnxruntime() -> None:
    def grow(x: tracer.Tensor, n: tracer.Tensor) -> tuple[tracer.Tensor, tracer.Tensor]:
        def body(i: tracer.Tensor, seq: tracer.Tensor) -> tuple[tracer.Tensor, tracer.Tensor]:
            nxt = seq[:, -1:] * 2.0 + i.float()
            return i + 1, tracer.cat([seq, nxt], dim=1)

        return tracer.while_loop(lambda i, seq: i < n, body, (tracer.tensor(0), x))

    x = np.ones((2, 3), F32)
    g = tracer.trace(grow, (tracer.tensor(x), tracer.tensor(4)), {"x": {0: "b", 1: "t"}})
    loop = next(n for n in g.nodes if n.op.op_type == "Loop")
    seq = loop.attrs["body"].inputs[3]
    assert seq.type.shape[0] == "b" and isinstance(seq.type.shape[1], str)
    assert seq.type.shape[1] != "t"  # generalised: the sequence grows
    for b, t, n in [(2, 3, 4), (3, 1, 0), (1, 5, 7)]:
        xs = np.arange(b * t, dtype=F32).reshape(b, t)
        want = [a.numpy() for a in grow(tracer.tensor(xs), tracer.tensor(n))][::-1]
        for got in _run_all(g, {"x": xs, "n": np.asarray(n)}):
            outs = dict(zip([v.name for v in g.outputs], got, strict=True))
            np.testing.assert_array_equal(outs["output_1"], want[0])
            np.testing.assert_array_equal(outs["output_0"], want[1])


def test_branching_on_a_tensor_while_tracing_points_at_cond_and_while_loop() -> None:
    def f(x: tracer.Tensor) -> tracer.Tensor:
        return x * 2 if x.sum() > 0 else x

    with pytest.raises(tracer.TraceError, match=r"tracer\.cond\(pred.*tracer\.while_loop\("):
        tracer.trace(f, tracer.tensor(np.ones(3, F32)))


def test_cond_refuses_mismatched_branches_and_non_boolean_predicates() -> None:
    x = tracer.tensor(np.ones(3, F32))

    def traced(fn):  # type: ignore[no-untyped-def]
        return tracer.trace(fn, x)

    with pytest.raises(TypeError, match="same structure"):
        traced(lambda v: tracer.cond(v.sum() > 0, lambda u: (u, u), lambda u: u, (v,)))
    with pytest.raises(TypeError, match="agree on dtypes"):
        traced(lambda v: tracer.cond(v.sum() > 0, lambda u: u, lambda u: u.long(), (v,)))
    with pytest.raises(TypeError, match="bool tensor of one element"):
        traced(lambda v: tracer.cond(v.sum(), lambda u: u, lambda u: u, (v,)))
    with pytest.raises(TypeError, match="dtype and rank must stay the same"):
        traced(lambda v: tracer.while_loop(lambda u: u.sum() < 9, lambda u: u.sum(), (v,))[0])


def test_a_python_bool_predicate_runs_one_branch_and_is_recorded() -> None:
    g = tracer.trace(
        lambda v: tracer.cond(v.shape[0] > 2, lambda u: u * 2, lambda u: u - 1, (v,)),
        tracer.tensor(np.ones(3, F32)),
    )
    assert "If" not in {n.op.op_type for n in g.nodes}
    assert any(b["kind"] == "cond" and b["result"] is True for b in g.meta["baked"])
