"""Optimizers, schedulers and gradient clipping against torch.optim (the oracle), same inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

import tracer
from tracer import optim
from tracer.nn.utils import clip_grad_norm_, clip_grad_value_
from tracer.optim import lr_scheduler

SHAPES = [(3, 4), (5,), ()]
STEPS = 6


def _arrays(seed: int, dtype: str = "float32") -> tuple[list[np.ndarray], list[list[np.ndarray]]]:
    """Initial parameters and, for each step, one gradient per parameter."""
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(STEPS)]
    return params, grads


def _run_ours(cls, params, grads, steps=None, **kw):
    ps = [tracer.tensor(p, requires_grad=True) for p in params]
    opt = cls(ps, **kw)
    for gs in grads[:steps]:
        for p, g in zip(ps, gs, strict=True):
            p.grad = tracer.tensor(g)
        opt.step()
    return ps, opt


def _run_torch(cls, params, grads, steps=None, **kw):
    torch = pytest.importorskip("torch")
    ps = [torch.tensor(p, requires_grad=True) for p in params]
    opt = cls(ps, **kw)
    for gs in grads[:steps]:
        for p, g in zip(ps, gs, strict=True):
            p.grad = torch.tensor(g)
        opt.step()
    return ps, opt


def _assert_close(ours, theirs, tol=1e-6):
    for a, b in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(a.detach().numpy(), b.detach().numpy(), rtol=tol, atol=tol)


CONFIGS = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "dampening": 0.3, "weight_decay": 0.1}),
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("SGD", {"lr": 0.05, "momentum": 0.5, "maximize": True}),
    ("Adam", {}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.9), "eps": 1e-6}),
    ("Adam", {"lr": 0.01, "weight_decay": 0.1}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.05}),
    ("Adam", {"lr": 0.01, "maximize": True}),
    ("AdamW", {}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01, "weight_decay": 0.1, "amsgrad": True}),
]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("name", "kw"), CONFIGS)
def test_matches_torch(name, kw, dtype):
    torch = pytest.importorskip("torch")
    params, grads = _arrays(0, dtype)
    ours, _ = _run_ours(getattr(optim, name), params, grads, **kw)
    theirs, _ = _run_torch(getattr(torch.optim, name), params, grads, **kw)
    _assert_close(ours, theirs, 1e-6 if dtype == "float32" else 1e-12)
    assert all(p.dtype == np.dtype(dtype) for p in ours)


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_real_backward_matches_torch(name):
    """Gradients from autograd through a loss, updated in place; parameters keep identity."""
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(1)
    w0, x, y = (rng.standard_normal(s).astype(np.float32) for s in [(4, 3), (8, 4), (8, 3)])
    kw = {"lr": 0.05, "momentum": 0.9} if name == "SGD" else {"lr": 0.05}
    w = tracer.tensor(w0, requires_grad=True)
    tw = torch.tensor(w0, requires_grad=True)
    opt, topt = getattr(optim, name)([w], **kw), getattr(torch.optim, name)([tw], **kw)
    identity = id(w)
    for _ in range(5):
        opt.zero_grad()
        ((tracer.tensor(x) @ w - tracer.tensor(y)) ** 2).mean().backward()
        opt.step()
        topt.zero_grad()
        ((torch.tensor(x) @ tw - torch.tensor(y)) ** 2).mean().backward()
        topt.step()
    assert id(w) == identity and w.requires_grad and w.is_leaf
    _assert_close([w], [tw])


def test_param_groups_match_torch():
    torch = pytest.importorskip("torch")
    params, grads = _arrays(2)

    def groups(ps):
        return [
            {"params": ps[:1]},
            {"params": ps[1:], "lr": 0.01, "weight_decay": 0.1, "amsgrad": True},
        ]

    ps = [tracer.tensor(p, requires_grad=True) for p in params]
    tps = [torch.tensor(p, requires_grad=True) for p in params]
    opt, topt = optim.Adam(groups(ps), lr=0.1), torch.optim.Adam(groups(tps), lr=0.1)
    assert [g["lr"] for g in opt.param_groups] == [0.1, 0.01]
    for gs in grads:
        for p, tp, g in zip(ps, tps, gs, strict=True):
            p.grad, tp.grad = tracer.tensor(g), torch.tensor(g)
        ps[2].grad = tps[2].grad = None  # parameters without a gradient are skipped
        opt.step()
        topt.step()
    _assert_close(ps, tps)
    assert opt.state_dict()["param_groups"][1]["params"] == [1, 2]
    assert set(opt.state_dict()["state"]) == set(topt.state_dict()["state"]) == {0, 1}


@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
        ("Adam", {"lr": 0.01, "amsgrad": True}),
        ("AdamW", {"lr": 0.01}),
    ],
)
def test_state_dict_resume_gives_identical_steps(name, kw):
    params, grads = _arrays(3)
    cls = getattr(optim, name)
    straight, _ = _run_ours(cls, params, grads, **kw)
    first, opt = _run_ours(cls, params, grads, steps=3, **kw)
    state = opt.state_dict()
    assert set(state) == {"state", "param_groups"}
    assert state["param_groups"][0]["params"] == [0, 1, 2]
    resumed = [tracer.tensor(p.detach().numpy(), requires_grad=True) for p in first]
    opt2 = cls(resumed, lr=123.0)  # hyper-parameters come from the state dict
    opt2.load_state_dict(state)
    assert opt2.param_groups[0]["lr"] == kw["lr"]
    assert opt2.param_groups[0]["params"][0] is resumed[0]
    for gs in grads[3:]:
        for p, g in zip(resumed, gs, strict=True):
            p.grad = tracer.tensor(g)
        opt2.step()
        # the loaded state is a copy: stepping the new optimizer leaves the old one alone
        assert opt.state[first[0]] is not opt2.state[resumed[0]]
    _assert_close(resumed, straight, 0)


def test_state_dict_structure_matches_torch():
    torch = pytest.importorskip("torch")
    params, grads = _arrays(4)
    _, opt = _run_ours(optim.Adam, params, grads, steps=2, amsgrad=True)
    _, topt = _run_torch(torch.optim.Adam, params, grads, steps=2, amsgrad=True)
    ours, theirs = opt.state_dict(), topt.state_dict()
    assert set(ours["state"]) == set(theirs["state"])
    assert set(ours["state"][0]) == set(theirs["state"][0])
    assert set(ours["param_groups"][0]) <= set(theirs["param_groups"][0])
    assert ours["state"][0]["step"] == int(theirs["state"][0]["step"])


def test_loads_torch_optimizer_state():
    """A state dict from torch.optim (tensors and a step tensor) resumes identically."""
    torch = pytest.importorskip("torch")
    params, grads = _arrays(5)
    kw = {"lr": 0.01, "weight_decay": 0.1}
    theirs, topt = _run_torch(torch.optim.AdamW, params, grads, steps=3, **kw)
    ours = [tracer.tensor(p.detach().numpy(), requires_grad=True) for p in theirs]
    opt = optim.AdamW(ours)
    opt.load_state_dict(topt.state_dict())
    for gs in grads[3:]:
        for p, tp, g in zip(ours, theirs, gs, strict=True):
            p.grad, tp.grad = tracer.tensor(g), torch.tensor(g)
        opt.step()
        topt.step()
    _assert_close(ours, theirs)


def test_load_state_dict_mismatch_raises():
    params, grads = _arrays(6)
    _, opt = _run_ours(optim.SGD, params, grads, steps=1, lr=0.1, momentum=0.9)
    state = opt.state_dict()
    other = optim.SGD([tracer.zeros(2, requires_grad=True)], lr=0.1)
    with pytest.raises(ValueError, match="doesn't match the size"):
        other.load_state_dict(state)
    two = optim.SGD(
        [{"params": [tracer.zeros(2, requires_grad=True)]}, {"params": [tracer.zeros(1)]}], lr=1
    )
    with pytest.raises(ValueError, match="number of parameter groups"):
        two.load_state_dict(state)
    with pytest.raises(ValueError, match="'state' and 'param_groups'"):
        other.load_state_dict({"state": {}})


def test_zero_grad_and_closure():
    p = tracer.tensor([1.0, 2.0], requires_grad=True)
    opt = optim.SGD([p], lr=0.5)

    def closure():
        opt.zero_grad()
        loss = (p * p).sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() == 5.0
    np.testing.assert_allclose(p.detach().numpy(), [0.0, 0.0])
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad.numpy(), [0.0, 0.0])
    opt.zero_grad()
    assert p.grad is None
    opt.step()  # no gradients: nothing happens
    np.testing.assert_allclose(p.detach().numpy(), [0.0, 0.0])


def test_named_params_and_add_param_group():
    a, b = tracer.zeros(2, requires_grad=True), tracer.zeros(3, requires_grad=True)
    opt = optim.SGD([("a", a)], lr=0.1)
    assert opt.param_groups[0]["param_names"] == ["a"]
    opt.add_param_group({"params": b, "lr": 0.5})
    assert opt.param_groups[1]["params"] == [b] and opt.param_groups[1]["momentum"] == 0
    assert "SGD (" in repr(opt)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda p: optim.SGD([], lr=0.1), ValueError, "empty parameter list"),
        (lambda p: optim.SGD(p, lr=0.1), TypeError, "iterable of Tensors"),
        (lambda p: optim.SGD([p * 2], lr=0.1), ValueError, "non-leaf"),
        (lambda p: optim.SGD([p.detach().numpy()], lr=0.1), TypeError, "only optimize Tensors"),
        (lambda p: optim.SGD({p}, lr=0.1), TypeError, "ordered collections"),
        (lambda p: optim.SGD([{"params": [p]}, {"params": [p]}]), ValueError, "more than one"),
        (lambda p: optim.SGD([p], lr=-1), ValueError, "learning rate"),
        (lambda p: optim.SGD([p], nesterov=True), ValueError, "Nesterov"),
        (lambda p: optim.Adam([p], betas=(0.9, 1.0)), ValueError, "beta parameter at index 1"),
        (lambda p: optim.Adam([p], eps=-1), ValueError, "epsilon"),
    ],
)
def test_invalid_arguments(make, error, match):
    p = tracer.zeros(2, requires_grad=True)
    with pytest.raises(error, match=match):
        make(p)


# ---------------------------------------------------------------- schedulers


def _lrs(sched_cls, opt_cls, n, param, **kw):
    opt = opt_cls([param], lr=0.1)
    sched = sched_cls(opt, **kw)
    seq = [sched.get_last_lr()[0]]
    for _ in range(n):
        opt.step()
        sched.step()
        seq.append(sched.get_last_lr()[0])
        assert opt.param_groups[0]["lr"] == seq[-1]
    return seq


SCHEDULERS = [
    ("StepLR", {"step_size": 3, "gamma": 0.5}),
    ("CosineAnnealingLR", {"T_max": 7, "eta_min": 0.001}),
    ("LambdaLR", {"lr_lambda": lambda e: 0.95**e}),
    ("LinearLR", {"start_factor": 0.25, "end_factor": 0.9, "total_iters": 6}),
    ("LinearLR", {}),
]


@pytest.mark.parametrize(("name", "kw"), SCHEDULERS)
def test_scheduler_matches_torch(name, kw):
    torch = pytest.importorskip("torch")
    ours = _lrs(getattr(lr_scheduler, name), optim.SGD, 20, tracer.zeros(1), **kw)
    theirs = _lrs(
        getattr(torch.optim.lr_scheduler, name), torch.optim.SGD, 20, torch.zeros(1), **kw
    )
    np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


def test_linear_warmup_matches_transformers():
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    for ours_fn, theirs_fn in [
        (optim.get_linear_schedule_with_warmup, transformers.get_linear_schedule_with_warmup),
        (optim.get_cosine_schedule_with_warmup, transformers.get_cosine_schedule_with_warmup),
    ]:
        ours = _lrs(ours_fn, optim.SGD, 14, tracer.zeros(1), num_warmup_steps=4,
                    num_training_steps=12)  # fmt: skip
        theirs = _lrs(theirs_fn, torch.optim.SGD, 14, torch.zeros(1), num_warmup_steps=4,
                      num_training_steps=12)  # fmt: skip
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=0)


def test_linear_warmup_values():
    """The schedule's definition, without an oracle: 0 -> lr over warm-up, then -> 0."""
    opt = optim.AdamW([tracer.zeros(1, requires_grad=True)], lr=1.0)
    sched = optim.get_linear_schedule_with_warmup(opt, 2, 6)
    seq = [sched.get_last_lr()[0]]
    for _ in range(7):
        sched.step()
        seq.append(sched.get_last_lr()[0])
    np.testing.assert_allclose(seq, [0, 0.5, 1, 0.75, 0.5, 0.25, 0, 0])


@pytest.mark.parametrize(("name", "kw"), SCHEDULERS[:2] + SCHEDULERS[3:4])
def test_scheduler_state_dict_resume(name, kw):
    cls = getattr(lr_scheduler, name)
    straight = _lrs(cls, optim.SGD, 10, tracer.zeros(1), **kw)
    opt = optim.SGD([tracer.zeros(1)], lr=0.1)
    sched = cls(opt, **kw)
    for _ in range(4):
        sched.step()
    state, opt_state = sched.state_dict(), opt.state_dict()
    assert "optimizer" not in state and state["last_epoch"] == 4
    opt2 = optim.SGD([tracer.zeros(1)], lr=0.1)
    opt2.load_state_dict(opt_state)
    sched2 = cls(opt2, **kw)
    sched2.load_state_dict(state)
    opt2.param_groups[0]["lr"] = opt_state["param_groups"][0]["lr"]
    rest = [sched2.step() or sched2.get_last_lr()[0] for _ in range(6)]
    np.testing.assert_allclose(rest, straight[5:], rtol=1e-12)


def test_lambda_lr_state_dict_and_errors():
    opt = optim.SGD([{"params": [tracer.zeros(1)]}, {"params": [tracer.zeros(1)]}], lr=1.0)
    sched = lr_scheduler.LambdaLR(opt, [lambda e: 1.0, lambda e: 0.5**e])
    sched.step()
    assert sched.get_last_lr() == [1.0, 0.5]
    assert sched.state_dict()["lr_lambdas"] == [None, None]
    with pytest.raises(ValueError, match="Expected 2 lr_lambdas"):
        lr_scheduler.LambdaLR(opt, [lambda e: 1.0])
    with pytest.raises(TypeError, match="not an Optimizer"):
        lr_scheduler.StepLR(object(), 3)
    with pytest.raises(KeyError, match="initial_lr"):
        lr_scheduler.StepLR(optim.SGD([tracer.zeros(1)]), 3, last_epoch=5)


# ---------------------------------------------------------------- gradient clipping


def _with_grads(lib, params, grads):
    ps = [lib.tensor(p, requires_grad=True) for p in params]
    for p, g in zip(ps, grads, strict=True):
        p.grad = lib.tensor(g)
    return ps


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("max_norm", [0.5, 1e4])
def test_clip_grad_norm_matches_torch(norm_type, max_norm):
    torch = pytest.importorskip("torch")
    params, grads = _arrays(7)
    ours, theirs = _with_grads(tracer, params, grads[0]), _with_grads(torch, params, grads[0])
    total = clip_grad_norm_(ours, max_norm, norm_type)
    ttotal = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type)
    assert total.shape == () and total.dtype == np.float32
    np.testing.assert_allclose(total.item(), ttotal.item(), rtol=1e-6)
    _assert_close([p.grad for p in ours], [p.grad for p in theirs])


def test_clip_grad_norm_edge_cases():
    p = tracer.tensor([3.0, 4.0], requires_grad=True)
    assert clip_grad_norm_([p], 1.0).item() == 0.0  # no gradients
    p.grad = tracer.tensor([3.0, 4.0])
    assert clip_grad_norm_(p, 1.0).item() == 5.0  # a single tensor
    np.testing.assert_allclose(p.grad.numpy(), [0.6, 0.8], rtol=1e-5)
    p.grad = tracer.tensor([math.inf, 1.0])
    with pytest.raises(RuntimeError, match="non-finite"):
        clip_grad_norm_([p], 1.0, error_if_nonfinite=True)
    np.testing.assert_array_equal(p.grad.numpy(), [math.inf, 1.0])  # left alone


def test_clip_grad_value_matches_torch():
    torch = pytest.importorskip("torch")
    params, grads = _arrays(8)
    ours, theirs = _with_grads(tracer, params, grads[0]), _with_grads(torch, params, grads[0])
    assert clip_grad_value_(ours, 0.5) is None
    torch.nn.utils.clip_grad_value_(theirs, 0.5)
    _assert_close([p.grad for p in ours], [p.grad for p in theirs], 0)


def test_training_loop_with_module_matches_torch():
    """nn.Linear + AdamW + clip_grad_norm_ + linear warm-up, step by step against torch."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    theirs = torch.nn.Linear(4, 3)
    ours = tracer.nn.Linear(4, 3)
    ours.load_state_dict({k: tracer.tensor(v.numpy()) for k, v in theirs.state_dict().items()})
    opt = optim.AdamW(ours.parameters(), lr=0.05)
    topt = torch.optim.AdamW(theirs.parameters(), lr=0.05)
    sched = optim.get_linear_schedule_with_warmup(opt, 2, 8)
    tsched = transformers.get_linear_schedule_with_warmup(topt, 2, 8)
    rng = np.random.default_rng(9)
    for _ in range(8):
        x = rng.standard_normal((5, 4)).astype(np.float32)
        y = rng.integers(0, 3, 5)
        opt.zero_grad()
        loss = tracer.nn.functional.cross_entropy(ours(tracer.tensor(x)), tracer.tensor(y))
        loss.backward()
        norm = clip_grad_norm_(ours.parameters(), 0.5)
        opt.step()
        sched.step()
        topt.zero_grad()
        tloss = torch.nn.functional.cross_entropy(theirs(torch.tensor(x)), torch.tensor(y))
        tloss.backward()
        tnorm = torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.5)
        topt.step()
        tsched.step()
        np.testing.assert_allclose(loss.item(), tloss.item(), rtol=1e-5)
        np.testing.assert_allclose(norm.item(), tnorm.item(), rtol=1e-5)
        assert sched.get_last_lr() == tsched.get_last_lr()
    _assert_close(list(ours.parameters()), list(theirs.parameters()), 1e-5)
