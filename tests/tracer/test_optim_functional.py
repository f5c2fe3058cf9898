"""The optimizers' functional form against torch.optim, on NumPy, the interpreter and ORT.

One update rule (``Optimizer.functional_update``) serves the eager ``step`` and graph
building; the graph, run for a few steps with outputs fed back as inputs, must reproduce the
eager optimizer (itself checked against torch.optim), parameters and state alike.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tracer
from ir import Graph, ShapeError
from runtime import Session
from tracer import optim
from tracer.optim import lr_scheduler

SHAPES = [(3, 4), (5,), ()]

CONFIGS: list[tuple[str, dict[str, Any]]] = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.05}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "weight_decay": 0.1, "maximize": True}),
    ("Adam", {"lr": 0.01}),
    ("Adam", {"lr": 0.01, "betas": (0.3, 0.8), "eps": 1e-6}),  # lerp's large-weight formula
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "maximize": True}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1, "decoupled_weight_decay": True}),
    ("AdamW", {"lr": 0.01}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
]
IDS = [f"{name}-{'-'.join(kw)}" for name, kw in CONFIGS]


def _arrays(seed: int, dtype: str, steps: int) -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """Initial parameters and, for each step, one gradient per parameter."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]
    return params, grads


def _eager(name: str, kw: dict[str, Any], params: list[np.ndarray]) -> tuple[list, Any]:
    ps = [tracer.tensor(p, requires_grad=True) for p in params]
    return ps, getattr(optim, name)(ps, **kw)


def _step(opt: Any, ps: list, gs: list[np.ndarray], lib: Any = tracer) -> None:
    for p, g in zip(ps, gs, strict=True):
        p.grad = lib.tensor(g)
    opt.step()


# ---------------------------------------------------------------- (a) eager against torch


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "kw"), CONFIGS, ids=IDS)
def test_eager_step_matches_torch(name, kw, dtype):
    torch = pytest.importorskip("torch")
    params, grads = _arrays(0, dtype, 5)
    ours, opt = _eager(name, kw, params)
    theirs = [torch.tensor(p, requires_grad=True) for p in params]
    topt = getattr(torch.optim, name)(theirs, **kw)
    for gs in grads:
        _step(opt, ours, gs)
        _step(topt, theirs, gs, torch)
    tol = 1e-6 if dtype == "float32" else 1e-12
    for p, tp in zip(ours, theirs, strict=True):
        assert p.dtype == np.dtype(dtype)
        np.testing.assert_allclose(p.detach().numpy(), tp.detach().numpy(), rtol=tol, atol=tol)
        state, tstate = opt.functional_state(p), topt.state[tp]
        assert list(state)[1:] == list(tstate)[1 if "step" in tstate else 0 :]
        for key, value in tstate.items():
            want = np.asarray(value.numpy(), dtype=np.int64 if key == "step" else dtype)
            np.testing.assert_allclose(state[key], want, rtol=tol, atol=tol, err_msg=key)


# ---------------------------------------------------------------- (b) the rule as a graph


def _train_graph(opt: Any, dtype: str) -> Graph:
    """One graph updating every parameter of ``opt``'s first group; lr is an input."""
    graph = Graph("optimizer_step")
    lr = graph.add_input("lr", np.float64, ())
    outputs = []
    group = opt.param_groups[0]
    for i, p in enumerate(group["params"]):
        pv = graph.add_input(f"p{i}", dtype, p.shape)
        gv = graph.add_input(f"g{i}", dtype, p.shape)
        state = {
            k: graph.add_input(f"s{i}_{k}", a.dtype, a.shape)
            for k, a in opt.functional_state(p).items()
        }
        new_p, new_state = opt.functional_update(group, pv, gv, state, lr)
        assert list(new_state) == list(state)
        graph.rename(new_p, f"p{i}_out")
        for k, v in new_state.items():
            graph.rename(v, f"s{i}_{k}_out")
        outputs += [new_p, *new_state.values()]
    graph.set_outputs(outputs)
    graph.verify()
    return graph


def _run_graph(session: Session, opt: Any, params, grads, lrs) -> dict[str, np.ndarray]:
    """Run ``session`` once per step, feeding parameters and state back in."""
    feeds = {f"p{i}": p for i, p in enumerate(params)}
    for i, p in enumerate(opt.param_groups[0]["params"]):
        feeds |= {f"s{i}_{k}": v for k, v in opt.functional_state(p).items()}
    for gs, lr in zip(grads, lrs, strict=True):
        feeds |= {f"g{i}": g for i, g in enumerate(gs)} | {"lr": np.asarray(lr)}
        outs = session.run(feeds)
        feeds |= {name.removesuffix("_out"): value for name, value in outs.items()}
    return feeds


@pytest.mark.parametrize("backend", ["interpreter", "onnxruntime"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "kw"), CONFIGS, ids=IDS)
def test_graph_rule_matches_eager(name, kw, dtype, backend):
    """Three steps of the graph equal three eager steps, under a changing learning rate."""
    params, grads = _arrays(1, dtype, 3)
    ps, opt = _eager(name, kw, params)
    sched = lr_scheduler.LambdaLR(opt, lambda e: 0.6**e)
    lrs = []
    for gs in grads:
        lrs.append(opt.param_groups[0]["lr"])
        _step(opt, ps, gs)
        sched.step()
    assert len(set(lrs)) == 3  # the scheduler moved the rate, which the graph takes as input
    fresh_ps, fresh = _eager(name, kw, params)
    fed = _run_graph(
        Session(_train_graph(fresh, dtype), backend=backend), fresh, params, grads, lrs
    )
    # The interpreter runs the eager kernels on the same arrays: the results are identical.
    tol = 0.0 if backend == "interpreter" else 1e-6 if dtype == "float32" else 1e-12
    for i, p in enumerate(ps):
        assert fed[f"p{i}"].dtype == np.dtype(dtype)
        np.testing.assert_allclose(fed[f"p{i}"], p.detach().numpy(), rtol=tol, atol=tol)
        state = opt.functional_state(p)
        for key in list(state)[1:]:
            np.testing.assert_allclose(fed[f"s{i}_{key}"], state[key], rtol=tol, atol=tol)
        assert fed[f"s{i}_step"] == 3 and fed[f"s{i}_step"].dtype == np.int64
        # SGD keeps no count (as torch): its step reads 1 once it has a momentum buffer.
        assert state["step"] == (3 if name != "SGD" else int(kw.get("momentum", 0) != 0))
        fresh.load_functional_state(fresh_ps[i], {k: fed[f"s{i}_{k}"] for k in state})
    _assert_same_state(fresh.state_dict(), opt.state_dict(), tol)


def _assert_same_state(ours: dict, theirs: dict, tol: float) -> None:
    assert ours["param_groups"][0]["params"] == theirs["param_groups"][0]["params"]
    assert set(ours["state"]) == set(theirs["state"])
    for index, state in theirs["state"].items():
        assert list(ours["state"][index]) == list(state)
        for key, value in state.items():
            if key == "step":
                assert type(ours["state"][index][key]) is int and ours["state"][index][key] == value
            else:
                got = ours["state"][index][key].numpy()
                np.testing.assert_allclose(got, value.numpy(), rtol=tol, atol=tol)


@pytest.mark.parametrize(
    ("name", "kw"),
    [("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}), ("AdamW", {"lr": 0.02})],
)
def test_graph_resumes_a_torch_run(name, kw):
    """Two steps of torch, then its state loaded here and 3 steps on ORT, equal 5 of torch."""
    torch = pytest.importorskip("torch")
    params, grads = _arrays(2, "float64", 5)
    theirs = [torch.tensor(p, requires_grad=True) for p in params]
    topt = getattr(torch.optim, name)(theirs, **kw)
    for gs in grads[:2]:
        _step(topt, theirs, gs, torch)
    middle = [p.detach().numpy().copy() for p in theirs]
    _, opt = _eager(name, kw, middle)
    opt.load_state_dict(topt.state_dict())
    session = Session(_train_graph(opt, "float64"), backend="onnxruntime")
    fed = _run_graph(session, opt, middle, grads[2:], [kw["lr"]] * 3)
    for gs in grads[2:]:
        _step(topt, theirs, gs, torch)
    for i, tp in enumerate(theirs):
        np.testing.assert_allclose(fed[f"p{i}"], tp.detach().numpy(), rtol=1e-12, atol=1e-12)


# ---------------------------------------------------------------- (c) state round trips


@pytest.mark.parametrize(("name", "kw"), [CONFIGS[1], CONFIGS[3], CONFIGS[9], CONFIGS[12]])
def test_functional_state_round_trip(name, kw):
    params, grads = _arrays(3, "float32", 5)
    ps, opt = _eager(name, kw, params)
    for gs in grads[:2]:
        _step(opt, ps, gs)
    copies, other = _eager(name, kw, [p.detach().numpy() for p in ps])
    for p, q in zip(ps, copies, strict=True):
        other.load_functional_state(q, opt.functional_state(p))
    _assert_same_state(other.state_dict(), opt.state_dict(), 0.0)
    for gs in grads[2:]:
        _step(opt, ps, gs)
        _step(other, copies, gs)
    for p, q in zip(ps, copies, strict=True):
        np.testing.assert_array_equal(q.detach().numpy(), p.detach().numpy())


def test_fresh_state_is_zeros_in_a_fixed_order():
    p = tracer.zeros(2, 3, requires_grad=True)
    state = optim.Adam([p], amsgrad=True).functional_state(p)
    assert list(state) == ["step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"]
    assert state["step"].shape == () and state["step"].dtype == np.int64 and state["step"] == 0
    assert all(
        v.shape == (2, 3) and v.dtype == np.float32 and not v.any()
        for v in list(state.values())[1:]
    )
    assert list(optim.SGD([p], momentum=0.9).functional_state(p)) == ["step", "momentum_buffer"]
    assert list(optim.SGD([p]).functional_state(p)) == ["step"]


def test_state_views_are_read_only_and_loading_keeps_tensors():
    p = tracer.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.Adam([p], lr=0.1)
    _step(opt, [p], [np.asarray([0.5, -0.5], np.float32)])
    exp_avg = opt.state_dict()["state"][0]["exp_avg"]
    state = opt.functional_state(p)
    with pytest.raises(ValueError, match="read-only"):
        state["exp_avg"][0] = 1.0
    opt.load_functional_state(p, state | {"step": np.asarray(7), "exp_avg": np.ones(2)})
    assert opt.state[p]["exp_avg"] is exp_avg and opt.state[p]["step"] == 7
    np.testing.assert_array_equal(exp_avg.numpy(), [1.0, 1.0])
    assert exp_avg.dtype == np.float32


def test_functional_update_is_pure_and_accepts_a_python_lr():
    p = np.asarray([1.0, -2.0], np.float32)
    g = np.asarray([0.25, 0.5], np.float32)
    opt = optim.SGD([tracer.tensor(p)], lr=0.1, momentum=0.9)
    state = opt.functional_state(opt.param_groups[0]["params"][0])
    new_p, new_state = opt.functional_update(opt.param_groups[0], p, g, state, 0.5)
    np.testing.assert_array_equal(new_p, p - np.float32(0.5) * g)  # first step: buf = g
    np.testing.assert_array_equal(new_state["momentum_buffer"], g)
    assert new_state["step"] == 1 and state["step"] == 0 and not state["momentum_buffer"].any()
    np.testing.assert_array_equal(p, [1.0, -2.0])


def test_sgd_without_updates_stores_no_state():
    p = tracer.zeros(2, requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9)
    opt.load_functional_state(p, opt.functional_state(p))
    assert opt.state_dict()["state"] == {}
    plain = optim.SGD([p], lr=0.1)
    plain.load_functional_state(p, {"step": np.asarray(4)})
    assert plain.state_dict()["state"] == {}


def test_errors_name_what_was_wrong():
    p = tracer.zeros(2, requires_grad=True)
    opt = optim.Adam([p])
    state = opt.functional_state(p)
    with pytest.raises(ValueError, match="expected \\['step', 'exp_avg', 'exp_avg_sq'\\]"):
        opt.load_functional_state(p, {"step": state["step"]})
    with pytest.raises(ValueError, match="functional_update got state keys"):
        opt.functional_update(opt.param_groups[0], p.detach().numpy(), p.detach().numpy(), {}, 0.1)
    with pytest.raises(ValueError, match="in none of this Adam's param groups"):
        opt.functional_state(tracer.zeros(2))
    with pytest.raises(ShapeError, match="'exp_avg' has shape \\(3,\\)"):
        opt.load_functional_state(p, state | {"exp_avg": np.zeros(3, np.float32)})


def test_eager_step_bumps_the_version_counter():
    """An in-place update of a saved parameter is detected by autograd, as in PyTorch."""
    w = tracer.tensor([1.0, 2.0], requires_grad=True)
    loss = (w * w).sum()
    w.grad = tracer.ones(2)
    optim.SGD([w], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        loss.backward()


@pytest.mark.parametrize("kw", [{"momentum": 0.9}, {"momentum": 0.9, "dampening": 0.5}])
def test_first_momentum_step_copies_the_gradient_bit_for_bit(kw):
    """PyTorch's first buffer is a clone of the gradient: signed zeros included."""
    torch = pytest.importorskip("torch")
    p0 = np.asarray([0.0, -0.0, 1.0, -0.0, 2.0], np.float32)
    grads = [np.asarray([-0.0, 0.0, -0.0, -0.0, 0.5], np.float32), np.full(5, -0.0, np.float32)]
    ours, opt = _eager("SGD", {"lr": 0.1, **kw}, [p0])
    theirs = [torch.tensor(p0, requires_grad=True)]
    topt = torch.optim.SGD(theirs, lr=0.1, **kw)
    for g in grads:
        _step(opt, ours, [g])
        _step(topt, theirs, [g], torch)
        for mine, want in [
            (
                opt.functional_state(ours[0])["momentum_buffer"],
                topt.state[theirs[0]]["momentum_buffer"],
            ),
            (ours[0].detach().numpy(), theirs[0].detach()),
        ]:
            np.testing.assert_array_equal(mine, want.numpy())
            np.testing.assert_array_equal(np.signbit(mine), np.signbit(want.numpy()))
