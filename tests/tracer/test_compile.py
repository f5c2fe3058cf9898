"""``tracer.compile`` and ``tracer.compile_step`` against the eager code they capture.

The oracle is always the eager library running the same module (itself checked against
torch elsewhere): compiled outputs, the gradients ``loss.backward()`` leaves through a
compiled call, and a compiled training step's losses, weights and optimizer state must match
what the plain eager loop gives, on the NumPy interpreter and on onnxruntime. The tests with
the default ``optimize`` level run ``ir.optimize``; the recurrent models' backward graphs need
``ir.lower_recurrent``.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tracer
from tracer import nn, optim
from tracer.nn import functional as F  # noqa: N812 - PyTorch's name
from tracer.optim import lr_scheduler

BACKENDS = ["interpreter", "onnxruntime"]
VOCAB, CLASSES = 13, 3
IDS = np.array([[3, 5, 7, 2, 9], [4, 1, 8, 0, 0], [6, 2, 0, 0, 0]], dtype=np.int64)
LENGTHS = np.array([5, 3, 2], dtype=np.int64)


# ---------------------------------------------------------------- models


class MLP(nn.Module):
    def __init__(self, n_in: int = 6, hidden: int = 16, n_out: int = CLASSES) -> None:
        super().__init__()
        self.fc1 = nn.Linear(n_in, hidden)
        self.fc2 = nn.Linear(hidden, n_out)

    def forward(self, x: Any) -> Any:
        return self.fc2(self.fc1(x).tanh())


class EmbeddingClassifier(nn.Module):
    """Embedding -> LayerNorm -> mean over the sequence -> Linear."""

    def __init__(self, dim: int = 8, padding_idx: int | None = None) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, dim, padding_idx=padding_idx)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, CLASSES)

    def forward(self, ids: Any) -> Any:
        return self.head(self.norm(self.embedding(ids)).mean(1))


class EncoderClassifier(nn.Module):
    """Embedding -> 2-layer TransformerEncoder with a key-padding mask -> masked mean -> Linear."""

    def __init__(self, dim: int = 8) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, dim)
        layer = nn.TransformerEncoderLayer(
            dim, 2, dim_feedforward=12, dropout=0.0, activation="gelu", batch_first=True
        )
        self.encoder = nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = nn.Linear(dim, CLASSES)

    def forward(self, ids: Any) -> Any:
        pad = ids == 0
        x = self.encoder(self.embedding(ids), src_key_padding_mask=pad)
        keep = (~pad).unsqueeze(-1).to(x.dtype)
        return self.head((x * keep).sum(dim=1) / keep.sum(dim=1))


class BiLSTMTagger(nn.Module):
    """Embedding -> bidirectional LSTM on the true lengths -> Linear per token."""

    def __init__(self, dim: int = 5, hidden: int = 4) -> None:
        super().__init__()
        self.embedding = nn.Embedding(VOCAB, dim)
        self.lstm = nn.LSTM(dim, hidden, bidirectional=True, batch_first=True)
        self.proj = nn.Linear(2 * hidden, CLASSES)

    def forward(self, ids: Any, lengths: Any) -> Any:
        out, _ = self.lstm(self.embedding(ids), lengths=lengths)
        return self.proj(out)


def _mlp_inputs() -> tuple[Any, ...]:
    return (tracer.tensor(np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)),)


MODELS: dict[str, tuple[Callable[[], nn.Module], Callable[[], tuple[Any, ...]]]] = {
    "mlp": (MLP, _mlp_inputs),
    "embedding_layernorm": (EmbeddingClassifier, lambda: (tracer.tensor(IDS),)),
    "transformer": (EncoderClassifier, lambda: (tracer.tensor(IDS),)),
    "bilstm": (BiLSTMTagger, lambda: (tracer.tensor(IDS), tracer.tensor(LENGTHS))),
}


def _build(name: str, dtype: Any = np.float32) -> tuple[nn.Module, tuple[Any, ...]]:
    tracer.manual_seed(0)
    make, inputs = MODELS[name]
    model = make()
    args = inputs()
    if dtype == np.float64:
        model.double()
        args = tuple(a.double() if a.dtype == tracer.float32 else a for a in args)
    return model, args


def _grad(t: Any) -> np.ndarray:
    assert t.grad is not None, "no gradient reached the tensor"
    return t.grad.numpy().copy()


def _grads(model: nn.Module) -> dict[str, np.ndarray | None]:
    """Every parameter's gradient (copied), then cleared."""
    out = {n: None if p.grad is None else _grad(p) for n, p in model.named_parameters()}
    model.zero_grad()
    return out


def _assert_grads_equal(got: dict[str, Any], model: nn.Module, tol: float) -> None:
    """``got`` equals the gradients now held by ``model``'s parameters (all present)."""
    want = _grads(model)
    assert got.keys() == want.keys() and all(g is not None for g in want.values())
    for key, value in want.items():
        _close(got[key], value, tol)


def _weighted_sum(y: Any) -> Any:
    """A loss whose gradient differs per output element (a plain sum would hide mix-ups)."""
    w = np.random.default_rng(7).standard_normal(y.shape).astype(_data(y).dtype)
    return (y * tracer.tensor(w)).sum()


def _close(got: Any, want: Any, tol: float) -> None:
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=tol, atol=tol)


def _data(t: Any) -> np.ndarray:
    return t.detach().numpy()


# ---------------------------------------------------------------- forward


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("grad", [False, True], ids=["no_grad", "grad"])
def test_forward_matches_eager(name: str, backend: str, grad: bool) -> None:
    model, args = _build(name)
    compiled = tracer.compile(model, backend=backend, optimize=0)
    with tracer.set_grad_enabled(grad):
        got = compiled(*args)
        want = model(*args)
    assert got.shape == want.shape and got.dtype == want.dtype
    assert got.requires_grad == grad
    _close(_data(got), _data(want), 1e-5)


@pytest.mark.parametrize("backend", BACKENDS)
def test_forward_default_optimize_level(backend: str) -> None:
    """The default level runs ``ir.optimize`` on the captured graphs."""
    model, args = _build("transformer")
    got = tracer.compile(model, backend=backend)(*args)
    _close(_data(got), _data(model(*args)), 1e-5)


def _structured(x: Any, kind: str) -> Any:
    h = x.tanh() * 2.0
    items = {"h": h, "top": h.argmax(-1), "total": h.sum()}
    if kind == "single":
        return h
    if kind == "dict":
        return items
    return tuple(items.values()) if kind == "tuple" else list(items.values())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("kind", ["single", "tuple", "list", "dict"])
def test_output_structure_is_kept(kind: str, backend: str) -> None:
    x = tracer.randn(3, 4).requires_grad_()
    fn = functools.partial(_structured, kind=kind)
    got = tracer.compile(lambda x: fn(x), backend=backend, optimize=0)(x)
    want = fn(x)
    assert type(got) is type(want)
    if kind == "dict":
        assert list(got) == list(want)
    flat = {"single": lambda o: [o], "dict": lambda o: list(o.values())}.get(kind, list)
    for g, w in zip(flat(got), flat(want), strict=True):
        assert g.dtype == w.dtype and g.requires_grad == w.requires_grad
        _close(_data(g), _data(w), 1e-6)


# ---------------------------------------------------------------- gradients


GRAD_CASES = [
    *((n, "interpreter", np.float64, 1e-10, 0) for n in MODELS),
    *((n, "onnxruntime", np.float32, 1e-5, 0) for n in MODELS),
    ("transformer", "interpreter", np.float64, 1e-10, 2),  # with ir.optimize
]


@pytest.mark.parametrize(
    ("name", "backend", "dtype", "tol", "level"),
    GRAD_CASES,
    ids=[f"{c[0]}-{c[1]}-O{c[4]}" for c in GRAD_CASES],
)
def test_backward_matches_eager(
    name: str, backend: str, dtype: Any, tol: float, level: int
) -> None:
    model, args = _build(name, dtype)
    compiled = tracer.compile(model, backend=backend, optimize=level)
    _weighted_sum(compiled(*args)).backward()
    got = _grads(model)
    _weighted_sum(model(*args)).backward()
    _assert_grads_equal(got, model, tol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_embedding_padding_row_gets_no_gradient(backend: str) -> None:
    """``padding_idx`` rows receive no gradient, through a compiled call as in eager."""
    tracer.manual_seed(0)
    emb = nn.Embedding(VOCAB, 4, padding_idx=0)
    ids = tracer.tensor(IDS)
    _weighted_sum(tracer.compile(emb, backend=backend, optimize=0)(ids)).backward()
    got = _grad(emb.weight)
    emb.zero_grad()
    _weighted_sum(emb(ids)).backward()
    want = _grad(emb.weight)
    np.testing.assert_array_equal(want[0], 0.0)
    _close(got, want, 1e-6)


@pytest.mark.parametrize("backend", BACKENDS)
def test_detach_stops_the_gradient(backend: str) -> None:
    x = tracer.tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    tracer.compile(lambda x: (x * x.detach()).sum(), backend=backend, optimize=0)(x).backward()
    np.testing.assert_array_equal(_grad(x), [1.0, 2.0, 3.0])  # d/dx of x * const


@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_reaches_inputs_that_require_grad(backend: str) -> None:
    model, (x,) = _build("mlp", np.float64)
    tol = 1e-10 if backend == "interpreter" else 1e-6
    x.requires_grad_()
    _weighted_sum(tracer.compile(model, backend=backend, optimize=0)(x)).backward()
    got, got_x = _grads(model), _grad(x)
    x.grad = None
    _weighted_sum(model(x)).backward()
    _close(got_x, _grad(x), tol)
    _assert_grads_equal(got, model, tol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_compiled_module_used_twice_accumulates(backend: str) -> None:
    model, (x,) = _build("mlp", np.float64)
    tol = 1e-10 if backend == "interpreter" else 1e-6
    x2 = tracer.tensor(np.random.default_rng(5).standard_normal(x.shape))
    compiled = tracer.compile(model, backend=backend, optimize=0)

    def loss(f: Any) -> Any:
        return _weighted_sum(f(x) * f(x2).sigmoid())

    loss(compiled).backward()
    assert compiled.captures == 1
    got = _grads(model)
    loss(model).backward()
    _assert_grads_equal(got, model, tol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_outputs_partly_unused_by_the_loss(backend: str) -> None:
    model, (x,) = _build("mlp", np.float64)
    tol = 1e-10 if backend == "interpreter" else 1e-6

    def two_heads(x: Any) -> Any:
        h = model.fc1(x).tanh()
        return model.fc2(h), h.sum(-1), h.argmax(-1)

    logits, _, _ = tracer.compile(two_heads, backend=backend, optimize=0)(x)
    _weighted_sum(logits).backward()
    got = _grads(model)
    _weighted_sum(two_heads(x)[0]).backward()
    _assert_grads_equal(got, model, tol)


@pytest.mark.parametrize("backend", BACKENDS)
def test_no_grad_call_records_no_autograd_node(backend: str) -> None:
    model, (x,) = _build("mlp")
    compiled = tracer.compile(model, backend=backend, optimize=0)
    with tracer.no_grad():
        y = compiled(x)
    assert not y.requires_grad and y.grad_fn is None
    model.requires_grad_(False)  # grad mode on, but nothing to differentiate
    z = compiled(x)
    assert not z.requires_grad and z.grad_fn is None
    _close(_data(z), _data(model(x)), 1e-6)
    assert compiled.captures == 2


# ---------------------------------------------------------------- signatures


def test_new_shape_captures_same_shape_reuses() -> None:
    model, _ = _build("mlp")
    compiled = tracer.compile(model, backend="interpreter", optimize=0)
    rng = np.random.default_rng(0)
    for rows, captures in [(4, 1), (4, 1), (2, 2), (4, 2), (2, 2)]:
        x = tracer.tensor(rng.standard_normal((rows, 6)).astype(np.float32))
        _close(_data(compiled(x)), _data(model(x)), 1e-6)
        assert compiled.captures == captures
    assert len(compiled.graphs()) == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_dynamic_axes_cover_every_size(backend: str) -> None:
    model, _ = _build("transformer")
    dyn = {"ids": {0: "batch", 1: "seq"}}
    compiled = tracer.compile(model, backend=backend, optimize=0, dynamic_axes=dyn)
    rng = np.random.default_rng(3)
    for batch, seq in [(3, 5), (1, 2), (4, 7)]:
        ids = tracer.tensor(rng.integers(1, VOCAB, size=(batch, seq)))
        got = compiled(ids)
        want = model(ids)
        _close(_data(got), _data(want), 1e-5)
        _weighted_sum(got).backward()
        got_grads = _grads(model)
        _weighted_sum(want).backward()
        _assert_grads_equal(got_grads, model, 1e-5)
    assert compiled.captures == 1
    assert compiled.graphs()[0].inputs[0].type.shape == ("batch", "seq")


@pytest.mark.parametrize("backend", BACKENDS)
def test_dynamic_axes_as_lists_are_independent(backend: str) -> None:
    """``{"x": [0], "y": [0]}`` names two symbols (``x_0``, ``y_0``), as ``trace`` does."""
    fn = tracer.compile(
        lambda x, y: x.sum(0) * y.sum(0),
        backend=backend,
        optimize=0,
        dynamic_axes={"x": [0], "y": [0]},
    )
    for rows_x, rows_y in [(2, 5), (4, 1)]:
        got = fn(tracer.ones(rows_x, 3), tracer.ones(rows_y, 3))
        np.testing.assert_array_equal(got.numpy(), np.full(3, rows_x * rows_y))
    assert fn.captures == 1
    assert [v.type.shape for v in fn.graphs()[0].inputs] == [("x_0", 3), ("y_0", 3)]


def test_dtype_change_captures() -> None:
    compiled = tracer.compile(lambda x: (x * x).sum(-1), backend="interpreter", optimize=0)
    x = np.arange(6.0).reshape(2, 3)
    assert compiled(tracer.tensor(x.astype(np.float32))).dtype == tracer.float32
    y = compiled(tracer.tensor(x))
    assert y.dtype == tracer.float64 and compiled.captures == 2
    np.testing.assert_array_equal(y.numpy(), (x * x).sum(-1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_train_eval_switch_captures_and_dropout_differs(backend: str) -> None:
    tracer.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 64), nn.Dropout(0.5))
    x = tracer.randn(8, 6)
    compiled = tracer.compile(model, backend=backend, optimize=0)
    with tracer.no_grad():
        model.eval()
        kept = _data(compiled(x))
        _close(kept, _data(model(x)), 1e-6)
        model.train()
        dropped = _data(compiled(x))
        assert compiled.captures == 2
        zero = dropped == 0
        assert 0.3 < zero.mean() < 0.7, "about half the units are dropped"
        _close(dropped[~zero], 2 * kept[~zero], 1e-5)  # survivors scaled by 1 / (1 - p)
        compiled.eval()  # the module's own methods, through the compiled wrapper
        _close(_data(compiled(x)), kept, 1e-6)
    assert compiled.captures == 2


def test_grad_mode_switch_captures() -> None:
    model, (x,) = _build("mlp")
    compiled = tracer.compile(model, backend="interpreter", optimize=0)
    with tracer.no_grad():
        compiled(x)
    assert compiled(x).requires_grad
    with tracer.no_grad():
        compiled(x)
    assert compiled.captures == 2


def test_non_tensor_arguments_are_part_of_the_signature() -> None:
    compiled = tracer.compile(lambda x, scale: x * scale, backend="interpreter", optimize=0)
    x = tracer.tensor(np.arange(3.0))
    for scale, captures in [(2.0, 1), (2.0, 1), (3.0, 2), (2.0, 2)]:
        np.testing.assert_array_equal(compiled(x, scale).numpy(), np.arange(3.0) * scale)
        assert compiled.captures == captures


@pytest.mark.parametrize("backend", BACKENDS)
def test_replacing_a_parameter_object_captures(backend: str) -> None:
    model, (x,) = _build("mlp")
    compiled = tracer.compile(model, backend=backend, optimize=0)
    compiled(x)
    model.fc2.weight = nn.Parameter(tracer.randn(CLASSES, 16))
    y = compiled(x)
    assert compiled.captures == 2
    _close(_data(y), _data(model(x)), 1e-5)
    _weighted_sum(y).backward()
    assert model.fc2.weight.grad is not None


@pytest.mark.parametrize("backend", BACKENDS)
def test_updated_weights_are_seen_without_capture(backend: str) -> None:
    model, (x,) = _build("mlp")
    compiled = tracer.compile(model, backend=backend, optimize=0)
    opt = optim.SGD(model.parameters(), lr=0.5)
    before = _data(compiled(x)).copy()
    for _ in range(2):
        opt.zero_grad()
        _weighted_sum(compiled(x)).backward()
        opt.step()
    with tracer.no_grad():
        model.fc1.bias.fill_(0.25)  # an in-place edit of the same tensor object
    got = _data(compiled(x))
    assert not np.allclose(got, before)
    _close(got, _data(model(x)), 1e-5)
    assert compiled.captures == 1


def test_compiled_call_inside_trace_traces_the_eager_code() -> None:
    model, args = _build("embedding_layernorm")
    compiled = tracer.compile(model, backend="interpreter", optimize=0)
    compiled(*args)  # a captured signature must not leak into the trace
    ids = tracer.tensor(IDS)
    dyn = {"ids": {0: "batch"}}
    direct = tracer.trace(model, (ids,), dyn)
    through = tracer.trace(compiled, (ids,), dyn)
    assert str(through) == str(direct)
    assert list(through.initializers) == list(direct.initializers)
    for key, value in direct.initializers.items():
        np.testing.assert_array_equal(through.initializers[key].const, value.const)
    assert compiled.captures == 1


# ---------------------------------------------------------------- compile_step


OPTIMIZERS: dict[str, Callable[[Any], Any]] = {
    "sgd_momentum": lambda p: optim.SGD(p, lr=0.1, momentum=0.9, dampening=0.1),
    "sgd_nesterov_wd": lambda p: optim.SGD(
        p, lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01
    ),
    "adam": lambda p: optim.Adam(p, lr=0.02, weight_decay=0.01),
    "adamw_amsgrad": lambda p: optim.AdamW(p, lr=0.02, weight_decay=0.1, amsgrad=True),
}


def _batches(sizes: list[int], seed: int = 11) -> list[tuple[Any, Any]]:
    rng = np.random.default_rng(seed)
    return [
        (tracer.tensor(rng.integers(0, VOCAB, size=(n, 5))), tracer.tensor(rng.integers(0, 3, n)))
        for n in sizes
    ]


def _loss_of(model: nn.Module) -> Callable[[Any, Any], Any]:
    def loss_fn(ids: Any, labels: Any) -> Any:
        return F.cross_entropy(model(ids), labels)

    return loss_fn


def _train_eager(model: nn.Module, opt: Any, batches: list, sched: Any = None) -> list[float]:
    losses = []
    for batch in batches:
        opt.zero_grad()
        loss = _loss_of(model)(*batch)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(loss.item())
    return losses


Pair = tuple[Any, Any]  # (model, optimizer)


def _twins(opt_name: str, make: Callable[[], nn.Module] = EmbeddingClassifier) -> tuple[Pair, Pair]:
    """Two identical (model, optimizer) pairs."""
    out = []
    for _ in range(2):
        tracer.manual_seed(0)
        model = make()
        out.append((model, OPTIMIZERS[opt_name](model.parameters())))
    return out[0], out[1]


def _assert_same_training(eager: tuple[Any, Any], compiled: tuple[Any, Any], tol: float) -> None:
    got_weights = compiled[0].state_dict()
    for key, want in eager[0].state_dict().items():
        _close(got_weights[key].numpy(), want.numpy(), tol)
    want_sd, got_sd = eager[1].state_dict(), compiled[1].state_dict()
    assert got_sd["param_groups"] == want_sd["param_groups"]
    assert sorted(got_sd["state"]) == sorted(want_sd["state"])
    for index, state in want_sd["state"].items():
        assert list(got_sd["state"][index]) == list(state)
        for key, value in state.items():
            got = got_sd["state"][index][key]
            if key == "step":
                assert got == value and type(got) is type(value)
            else:
                _close(got.numpy(), value.numpy(), tol)


def _check_step(
    opt_name: str,
    sizes: list[int],
    *,
    make: Callable[[], nn.Module] = EmbeddingClassifier,
    schedule: Callable[[Any], Any] | None = None,
    tol: float = 1e-5,
    **options: Any,
) -> Any:
    """Train twins eagerly and with ``compile_step(**options)``; return the TrainStep.

    Batches have ``sizes`` rows; a ``schedule``d lr steps after each. Losses, and after
    ``sync()`` weights and optimizer state, must agree.
    """
    eager, compiled = _twins(opt_name, make)
    batches = _batches(sizes)
    want = _train_eager(*eager, batches, schedule and schedule(eager[1]))
    step = tracer.compile_step(_loss_of(compiled[0]), compiled[1], model=compiled[0], **options)
    sched = schedule and schedule(compiled[1])
    got = []
    for batch in batches:
        got.append(step(*batch).item())
        if sched is not None:
            sched.step()
    _close(got, want, tol)
    step.sync()
    _assert_same_training(eager, compiled, tol)
    return step


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("opt_name", list(OPTIMIZERS))
def test_compile_step_matches_eager_loop(opt_name: str, backend: str) -> None:
    assert _check_step(opt_name, [6] * 4, backend=backend, optimize=0).captures == 1


# Adam on the transformer would amplify rounding noise: the key bias's true gradient is 0.
@pytest.mark.parametrize(
    ("make", "opt_name"),
    [(EmbeddingClassifier, "adamw_amsgrad"), (EncoderClassifier, "sgd_nesterov_wd")],
    ids=["embedding-adamw", "transformer-sgd"],
)
def test_compile_step_with_default_optimize_level(make: Any, opt_name: str) -> None:
    _check_step(opt_name, [4] * 3, make=make)


@pytest.mark.parametrize("backend", BACKENDS)
def test_compile_step_honours_the_lr_scheduler(backend: str) -> None:
    def schedule(opt: Any) -> Any:
        return lr_scheduler.StepLR(opt, step_size=2, gamma=0.3)

    step = _check_step("sgd_momentum", [6] * 5, schedule=schedule, backend=backend, optimize=0)
    assert step.captures == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_compile_step_new_batch_shape_continues_from_current_state(backend: str) -> None:
    step = _check_step("adam", [6, 6, 4, 4, 6, 4], backend=backend, optimize=0)
    assert step.captures == 2


def test_compile_step_leaves_the_padding_row_alone() -> None:
    """``padding_idx`` rows get no gradient, so plain SGD never moves them (as in eager)."""
    step = _check_step(
        "sgd_momentum",
        [6] * 3,
        make=lambda: EmbeddingClassifier(padding_idx=0),
        backend="interpreter",
        optimize=0,
    )
    weight = step.last.params["embedding.weight"].detach().numpy()
    np.testing.assert_array_equal(weight[0], 0.0)
    assert np.abs(weight[1:]).min() > 0


def test_compile_step_dynamic_axes_train_across_sizes() -> None:
    dyn = {"ids": {0: "batch"}, "labels": {0: "batch"}}
    step = _check_step(
        "sgd_nesterov_wd", [6, 3, 5], backend="interpreter", optimize=0, dynamic_axes=dyn
    )
    assert step.captures == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_compile_step_hyper_parameter_change_captures(backend: str) -> None:
    """Only the lr is fed per call; other hyper-parameters are baked, so a change re-captures.

    Momentum 0 keeps no buffer: the state itself changes form, both ways.
    """
    eager, compiled = _twins("sgd_nesterov_wd")
    step = tracer.compile_step(_loss_of(compiled[0]), compiled[1], backend=backend, optimize=0)
    settings = [(0.9, True, 0.01), (0.9, True, 0.2), (0.0, False, 0.0), (0.9, True, 0.01)]
    got, want = [], []
    for batch, (momentum, nesterov, decay) in zip(_batches([6] * 4), settings, strict=True):
        for _, opt in (eager, compiled):
            opt.param_groups[0].update(momentum=momentum, nesterov=nesterov, weight_decay=decay)
        want += _train_eager(*eager, [batch])
        got.append(step(*batch).item())
    _close(got, want, 1e-5)
    assert step.captures == 3
    step.sync()
    _assert_same_training(eager, compiled, 1e-5)


def test_compile_step_non_tensor_arguments_are_part_of_the_signature() -> None:
    (eager, eager_opt), (model, opt) = _twins("sgd_momentum")

    def loss_fn(ids: Any, labels: Any, smoothing: float) -> Any:
        return F.cross_entropy(model(ids), labels, label_smoothing=smoothing)

    step = tracer.compile_step(loss_fn, opt, backend="interpreter", optimize=0)
    got, want = [], []
    for (ids, labels), smoothing in zip(_batches([4] * 4), [0.0, 0.3, 0.3, 0.0], strict=True):
        got.append(step(ids, labels, smoothing).item())
        eager_opt.zero_grad()
        loss = F.cross_entropy(eager(ids), labels, label_smoothing=smoothing)
        loss.backward()
        eager_opt.step()
        want.append(loss.item())
    _close(got, want, 1e-5)
    assert step.captures == 2
    step.sync()
    _assert_same_training((eager, eager_opt), (model, opt), 1e-5)


def test_compile_step_train_eval_switch_captures() -> None:
    tracer.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.Dropout(0.5), nn.Linear(32, CLASSES))
    x, y = tracer.randn(8, 6), tracer.tensor(np.arange(8) % CLASSES)

    def loss_fn(x: Any, y: Any) -> Any:
        return F.cross_entropy(model(x), y)

    step = tracer.compile_step(
        loss_fn, optim.SGD(model.parameters(), lr=0.1), model=model, backend="interpreter"
    )
    step(x, y)
    model.eval()
    step.sync()
    want = loss_fn(x, y).item()  # no dropout: deterministic
    assert step(x, y).item() == pytest.approx(want, rel=1e-6)
    assert step.captures == 2


class PartlyUsed(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.used = EmbeddingClassifier()
        self.unused = nn.Linear(4, 4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_compile_step_leaves_unused_parameters_alone(backend: str) -> None:
    pairs = []
    for _ in range(2):
        tracer.manual_seed(0)
        model = PartlyUsed()
        pairs.append((model, OPTIMIZERS["adamw_amsgrad"](model.parameters())))
    (eager, eager_opt), (model, opt) = pairs
    batches = _batches([6] * 3)
    want = _train_eager(eager.used, eager_opt, batches)
    before = {k: v.numpy().copy() for k, v in model.unused.state_dict().items()}
    step = tracer.compile_step(_loss_of(model.used), opt, model=model, backend=backend, optimize=0)
    _close([step(*b).item() for b in batches], want, 1e-5)
    step.sync()
    for key, value in model.unused.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), before[key])
    assert all(p not in opt.state for p in model.unused.parameters())
    assert step.last is not None and "unused.weight" not in step.last.params
    _assert_same_training((eager, eager_opt), (model, opt), 1e-5)


def _domains(graph: Any) -> set[str]:
    """The domains of every node, in Scan bodies too."""
    found = set()
    for node in graph.nodes:
        found.add(node.op.domain)
        for body in node.attrs.values():
            if hasattr(body, "nodes"):
                found |= _domains(body)
    return found


def _tagger_loss(model: nn.Module) -> Callable[..., Any]:
    def loss_fn(ids: Any, lengths: Any, labels: Any) -> Any:
        return F.cross_entropy(model(ids, lengths).sum(1), labels)

    return loss_fn


@pytest.mark.parametrize("kind", ["transformer", "bilstm"])
def test_step_graph_is_standard_onnx_and_updates_name_every_output(kind: str) -> None:
    make, loss_of = (
        (EncoderClassifier, _loss_of) if kind == "transformer" else (BiLSTMTagger, _tagger_loss)
    )
    _, (model, opt) = _twins("adamw_amsgrad", make)
    step = tracer.compile_step(loss_of(model), opt, model=model, optimize=0)
    ids, labels = _batches([3])[0]
    batch = (ids, labels) if kind == "transformer" else (ids, tracer.tensor(LENGTHS), labels)
    step(*batch)
    built = step.last
    assert built is not None and step.graph is built.graph
    graph = built.graph
    assert _domains(graph) <= {"", "ai.onnx"}
    outputs = [v.name for v in graph.outputs]
    inputs = {v.name for v in graph.inputs}
    assert outputs[0] == built.loss == "loss"
    assert sorted(built.updates) == sorted(outputs[1:])
    assert sorted(built.updates.values()) == sorted([*built.params, *built.states])
    assert set(built.updates.values()) <= inputs
    assert set(built.params) == {n for n, _ in model.named_parameters()}
    assert built.batch == (
        ["ids", "labels"] if kind == "transformer" else ["ids", "lengths", "labels"]
    )
    assert built.lrs == ["lr"]


# ---------------------------------------------------------------- CUDA


@functools.cache
def _cuda_usable() -> bool:
    """Whether onnxruntime lists the CUDA provider and a session really runs on it."""
    try:
        import onnxruntime as ort

        if "CUDAExecutionProvider" not in ort.get_available_providers():
            return False
        from runtime import Session

        g = tracer.trace(lambda x: x + 1.0, (tracer.zeros(2),))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Session(g, device="cuda").device == "cuda"
    except Exception:
        return False


@pytest.mark.cuda
def test_compile_step_on_cuda_keeps_state_on_the_gpu() -> None:
    if not _cuda_usable():
        pytest.skip("onnxruntime's CUDA provider is not usable on this machine")
    import onnxruntime as ort

    step = _check_step("adam", [6] * 3, device="cuda", optimize=0, tol=2e-3)  # TF32 matmuls
    store = step._store
    assert store is not None and store.values
    for value in store.values.values():
        assert isinstance(value, ort.OrtValue) and value.device_name().lower() == "cuda"


# ---------------------------------------------------------------- errors


def test_compile_step_rejects_a_non_scalar_loss() -> None:
    model, opt = _twins("adam")[0]
    with pytest.raises(ValueError, match="float scalar"):
        tracer.compile_step(lambda ids: model(ids), opt, backend="interpreter")(tracer.tensor(IDS))


def test_compile_step_rejects_a_loss_without_optimizer_parameters() -> None:
    model, _ = _twins("adam")[0]
    other = optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    step = tracer.compile_step(_loss_of(model), other, backend="interpreter")
    with pytest.raises(ValueError, match="depends on none of the optimizer's parameters"):
        step(*_batches([3])[0])


def test_backend_name_typo_is_refused() -> None:
    model, opt = _twins("adam")[0]
    with pytest.raises(ValueError, match=r"'onnxruntme'.*'onnxruntime' or 'interpreter'"):
        tracer.compile(model, backend="onnxruntme")
    with pytest.raises(ValueError, match=r"'onnxruntme'.*'onnxruntime' or 'interpreter'"):
        tracer.compile_step(_loss_of(model), opt, backend="onnxruntme")


def test_a_parameter_the_outputs_do_not_read_is_not_fed() -> None:
    """A layer computed but unused (BertModel's pooler under a head) is optimized away."""

    class Model(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used = nn.Linear(4, 3)
            self.unused = nn.Linear(4, 4)

        def forward(self, x: tracer.Tensor) -> tracer.Tensor:
            self.unused(x)
            return self.used(x)

    tracer.manual_seed(0)
    model = Model()
    compiled = tracer.compile(model, optimize=2)
    x = tracer.randn(2, 4)
    with tracer.no_grad():
        np.testing.assert_allclose(compiled(x).numpy(), model(x).numpy(), rtol=1e-6)
    compiled(x).sum().backward()
    want = model.used.weight.grad.numpy().copy()
    model.zero_grad()
    model(x).sum().backward()
    np.testing.assert_allclose(want, model.used.weight.grad.numpy(), rtol=1e-6)
