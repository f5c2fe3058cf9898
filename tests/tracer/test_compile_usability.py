"""``compile``'s automatic dynamic axes; ``compile_step``'s clipping and accumulation.

Oracles: the eager code itself (outputs and gradients of a compiled call), and torch's
``clip_grad_norm_`` / ``clip_grad_value_`` and big-batch training step for the compiled
steps, run from the same weights; eager graphcap is checked against torch alongside.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tracer
from tracer import nn
from tracer.nn import functional as F  # noqa: N812 - PyTorch's name

torch = pytest.importorskip("torch")

BACKENDS = ["interpreter", "onnxruntime"]


class MLP(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.fc2 = nn.Linear(16, 3)

    def forward(self, x: Any) -> Any:
        return self.fc2(F.gelu(self.fc1(x)))


def _torch_mlp(ours: MLP) -> Any:
    theirs = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.GELU(), torch.nn.Linear(16, 3))
    names = {"0.weight": "fc1.weight", "0.bias": "fc1.bias"}
    names |= {"2.weight": "fc2.weight", "2.bias": "fc2.bias"}
    mine = ours.state_dict()
    theirs.load_state_dict({k: torch.from_numpy(mine[v].numpy().copy()) for k, v in names.items()})
    return theirs


def _data(t: Any) -> np.ndarray:
    return t.detach().numpy()


# ---------------------------------------------------------------- automatic dynamic axes


@pytest.mark.parametrize("backend", BACKENDS)
def test_seven_batch_widths_take_two_captures(backend: str) -> None:
    tracer.manual_seed(0)
    model = MLP()
    compiled = tracer.compile(model, backend=backend, optimize=0)
    rng = np.random.default_rng(0)
    for rows in (4, 7, 1, 12, 3, 4, 9):
        x = tracer.tensor(rng.standard_normal((rows, 6)).astype(np.float32), requires_grad=True)
        got = compiled(x)
        (got * got).sum().backward()
        got_grads = [x.grad.numpy().copy(), *(p.grad.numpy().copy() for p in model.parameters())]
        x.grad = None
        model.zero_grad()
        want = model(x)
        (want * want).sum().backward()
        np.testing.assert_allclose(_data(got), _data(want), rtol=1e-5, atol=1e-6)
        want_grads = [x.grad.numpy(), *(p.grad.numpy() for p in model.parameters())]
        for g, w in zip(got_grads, want_grads, strict=True):
            np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
        model.zero_grad()
    assert compiled.captures == 2  # the first width as it is, then the batch axis dynamic
    assert compiled.graphs()[-1].inputs[0].type.shape == ("x_0", 6)


def test_dynamic_false_captures_every_shape_and_true_captures_once() -> None:
    widths = (2, 3, 5)
    static = tracer.compile(lambda x: (x * 2).sum(0), backend="interpreter", dynamic=False)
    dynamic = tracer.compile(lambda x: (x * 2).sum(0), backend="interpreter", dynamic=True)
    for rows in widths:
        x = tracer.ones(rows, 4)
        for fn in (static, dynamic):
            np.testing.assert_array_equal(fn(x).numpy(), np.full(4, 2.0 * rows))
    assert static.captures == len(widths)
    assert dynamic.captures == 1
    assert dynamic.graphs()[0].inputs[0].type.shape == ("x_0", "x_1")
    with pytest.raises(ValueError, match="dynamic="):
        tracer.compile(lambda x: x, dynamic="yes")  # type: ignore[arg-type]


def test_an_axis_the_code_fixes_stays_static() -> None:
    """A reshape to the example's constant size cannot be symbolic: captures per shape."""
    fn = tracer.compile(lambda x: x.reshape(6) * 3, backend="interpreter", optimize=0)
    for shape in [(2, 3), (3, 2), (2, 3), (6, 1), (3, 2)]:
        x = tracer.tensor(np.arange(6.0).reshape(shape))
        np.testing.assert_array_equal(fn(x).numpy(), np.arange(6.0) * 3)
    assert fn.captures == 3  # one per shape, after one failed try to make the axes dynamic


def test_compile_step_marks_the_batch_axis_dynamic() -> None:
    tracer.manual_seed(0)
    model = MLP()
    opt = tracer.optim.SGD(model.parameters(), lr=0.1)
    step = tracer.compile_step(
        lambda x, y: F.cross_entropy(model(x), y), opt, backend="interpreter", optimize=0
    )
    rng = np.random.default_rng(1)
    for rows in (4, 5, 6, 2):
        x = rng.standard_normal((rows, 6)).astype(np.float32)
        step(tracer.tensor(x), tracer.tensor(rng.integers(0, 3, rows)))
    assert step.captures == 2


# ---------------------------------------------------------------- clipping and accumulation


def _batch(rng: np.random.Generator, rows: int) -> tuple[np.ndarray, np.ndarray]:
    return (rng.standard_normal((rows, 6)) * 3).astype(np.float32), rng.integers(0, 3, rows)


def _twins(opt: str) -> tuple[Any, Any, Any, Any, Any, Any]:
    """The model + optimizer for the compiled step, an eager twin, and torch's."""
    models = []
    for _ in range(2):
        tracer.manual_seed(0)
        models.append(MLP())
    theirs = _torch_mlp(models[0])
    if opt == "sgd":
        make = lambda ps: tracer.optim.SGD(ps, lr=0.1, momentum=0.9)  # noqa: E731
        t_opt = torch.optim.SGD(theirs.parameters(), lr=0.1, momentum=0.9)
    else:
        make = lambda ps: tracer.optim.AdamW(ps, lr=0.01)  # noqa: E731
        t_opt = torch.optim.AdamW(theirs.parameters(), lr=0.01)
    a, b = models
    return a, make(a.parameters()), b, make(b.parameters()), theirs, t_opt


def _assert_weights(model: Any, eager: Any, theirs: Any, tol: float) -> None:
    want = [p.detach().numpy() for p in theirs.parameters()]
    for ps in (model.parameters(), eager.parameters()):
        for got, w in zip(ps, want, strict=True):
            np.testing.assert_allclose(_data(got), w, rtol=tol, atol=tol)


CLIPS = [
    {"max_norm": 0.5},
    {"max_norm": 0.3, "norm_type": float("inf")},
    {"max_norm": 0.5, "norm_type": 1.0},
    {"clip_value": 0.05},
    {"clip_value": 0.2, "max_norm": 0.1},
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("clip", CLIPS, ids=lambda c: "-".join(f"{k}{v}" for k, v in c.items()))
def test_compile_step_clips_as_torch(clip: dict[str, float], backend: str) -> None:
    model, opt, eager, eager_opt, theirs, t_opt = _twins("sgd")
    step = tracer.compile_step(
        lambda x, y: F.cross_entropy(model(x), y), opt, backend=backend, optimize=0, **clip
    )
    rng = np.random.default_rng(2)
    t_params = list(theirs.parameters())
    for _ in range(3):
        x, y = _batch(rng, 8)
        loss = step(tracer.tensor(x), tracer.tensor(y))
        # Eager graphcap and torch: backward, clip_grad_value_, clip_grad_norm_, step.
        eager_opt.zero_grad()
        F.cross_entropy(eager(tracer.tensor(x)), tracer.tensor(y)).backward()
        t_opt.zero_grad()
        t_loss = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y))
        t_loss.backward()
        if "clip_value" in clip:
            tracer.nn.utils.clip_grad_value_(eager.parameters(), clip["clip_value"])
            torch.nn.utils.clip_grad_value_(t_params, clip["clip_value"])
        if "max_norm" in clip:
            p = clip.get("norm_type", 2.0)
            eager_norm = tracer.nn.utils.clip_grad_norm_(eager.parameters(), clip["max_norm"], p)
            t_norm = torch.nn.utils.clip_grad_norm_(t_params, clip["max_norm"], p)
            assert float(t_norm) > clip["max_norm"]  # the clipping is active
            np.testing.assert_allclose(step.grad_norm.item(), float(t_norm), rtol=1e-5)
            np.testing.assert_allclose(eager_norm.item(), float(t_norm), rtol=1e-5)
        eager_opt.step()
        t_opt.step()
        np.testing.assert_allclose(loss.item(), t_loss.item(), rtol=1e-5)
    step.sync()
    _assert_weights(model, eager, theirs, 1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize(
    ("micro", "opt_name", "max_norm"),
    [(2, "sgd", None), (4, "sgd", None), (4, "adamw", 1.0)],
)
def test_accumulation_equals_the_big_batch_step(
    micro: int, opt_name: str, max_norm: float | None, backend: str
) -> None:
    """Some micro-batches of a mean loss make the update of one step on them joined (float32).

    SGD without clipping sees the gradient's scale (the mean, not the sum, of the n parts).
    """
    model, opt, eager, eager_opt, theirs, t_opt = _twins(opt_name)
    step = tracer.compile_step(
        lambda x, y: F.cross_entropy(model(x), y),
        opt,
        backend=backend,
        max_norm=max_norm,
        accumulation_steps=micro,
    )
    rng = np.random.default_rng(3)
    t_params = list(theirs.parameters())
    for _ in range(2):
        x, y = _batch(rng, 8)
        step.sync()
        before = [_data(p).copy() for p in model.parameters()]
        losses = []
        for i, (xs, ys) in enumerate(zip(np.split(x, micro), np.split(y, micro), strict=True)):
            losses.append(step(tracer.tensor(xs), tracer.tensor(ys)).item())
            if i < micro - 1:  # no update before the last micro-batch
                step.sync()
                for p, b in zip(model.parameters(), before, strict=True):
                    np.testing.assert_array_equal(_data(p), b)
        eager_opt.zero_grad()
        eager_loss = F.cross_entropy(eager(tracer.tensor(x)), tracer.tensor(y))
        eager_loss.backward()
        if max_norm is not None:
            tracer.nn.utils.clip_grad_norm_(eager.parameters(), max_norm)
        eager_opt.step()
        t_opt.zero_grad()
        t_loss = torch.nn.functional.cross_entropy(theirs(torch.from_numpy(x)), torch.from_numpy(y))
        t_loss.backward()
        if max_norm is not None:
            torch.nn.utils.clip_grad_norm_(t_params, max_norm)
        t_opt.step()
        np.testing.assert_allclose(np.mean(losses), t_loss.item(), rtol=1e-5)
        np.testing.assert_allclose(eager_loss.item(), t_loss.item(), rtol=1e-5)
    step.sync()
    _assert_weights(model, eager, theirs, 2e-5)
    assert step.captures == 2  # the accumulating micro-batches' graph and the updating one


def test_bad_step_settings_raise() -> None:
    model = MLP()
    opt = tracer.optim.SGD(model.parameters(), lr=0.1)
    for bad in (
        {"accumulation_steps": 0},
        {"accumulation_steps": 1.5},
        {"max_norm": -1.0},
        {"norm_type": 0.0},
        {"clip_value": -0.1},
    ):
        with pytest.raises(ValueError, match=next(iter(bad))):
            tracer.compile_step(lambda x: model(x).sum(), opt, **bad)
