"""tracer.nn core: Module, Parameter, containers, layers and init, against torch.nn."""

from __future__ import annotations

import math
from collections import OrderedDict
from typing import Any

import numpy as np
import pytest

import tracer
import tracer.nn as nn
import tracer.nn.functional as F  # noqa: N812 - PyTorch's conventional name
from runtime import Session
from tracer.nn import init


def _build(m: Any, lib: Any, vocab: int = 11, dim: int = 8, classes: int = 3) -> None:
    """The same nested model in tracer.nn or torch.nn."""
    m.embed = lib.Embedding(vocab, dim, padding_idx=0)
    m.layers = lib.ModuleList([lib.Linear(dim, dim) for _ in range(2)])
    m.norm = lib.LayerNorm(dim)
    m.head = lib.Sequential(lib.GELU(), lib.Dropout(0.1), lib.Linear(dim, classes))
    m.act = lib.ModuleDict({"relu": lib.ReLU()})


class TracerBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        _build(self, nn)
        self.register_buffer("steps", tracer.zeros(1))
        self.register_buffer("cache", tracer.zeros(2), persistent=False)

    def forward(self, ids: tracer.Tensor) -> tracer.Tensor:
        h = self.embed(ids)
        for layer in self.layers:
            h = self.act["relu"](layer(h))
        return self.head(self.norm(h))


def _torch_block() -> Any:
    torch = pytest.importorskip("torch")

    class TorchBlock(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            _build(self, torch.nn)
            self.register_buffer("steps", torch.zeros(1))
            self.register_buffer("cache", torch.zeros(2), persistent=False)

        def forward(self, ids: Any) -> Any:
            h = self.embed(ids)
            for layer in self.layers:
                h = self.act["relu"](layer(h))
            return self.head(self.norm(h))

    return TorchBlock()


def _copy_torch_weights(ours: nn.Module, theirs: Any) -> None:
    ours.load_state_dict({k: v.detach().numpy() for k, v in theirs.state_dict().items()})


# ---------------------------------------------------------------- Parameter


def test_parameter_is_a_leaf_tensor_sharing_memory() -> None:
    t = tracer.zeros(2, 3)
    p = nn.Parameter(t)
    assert isinstance(p, tracer.Tensor) and p.is_leaf and p.requires_grad
    t.add_(1)
    assert p.detach().numpy().sum() == 6
    assert repr(p).startswith("Parameter containing:\ntensor(")
    assert not nn.Parameter(tracer.ones(2), requires_grad=False).requires_grad
    with pytest.raises(RuntimeError, match="floating point"):
        nn.Parameter(tracer.tensor([1, 2]))


# ---------------------------------------------------------------- registration and names


def test_state_dict_keys_order_and_shapes_match_torch() -> None:
    ours, theirs = TracerBlock(), _torch_block()
    sd, expected = ours.state_dict(), theirs.state_dict()
    assert list(sd) == list(expected)
    for k in sd:
        assert tuple(sd[k].shape) == tuple(expected[k].shape)
        assert not sd[k].requires_grad
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    assert [n for n, _ in ours.named_buffers()] == [n for n, _ in theirs.named_buffers()]
    assert [n for n, _ in ours.named_modules()] == [n for n, _ in theirs.named_modules()]
    assert [type(m).__name__ for m in ours.children()] == [
        type(m).__name__ for m in theirs.children()
    ]


def test_repr_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    assert repr(TracerBlock()).replace("TracerBlock", "B") == repr(_torch_block()).replace(
        "TorchBlock", "B"
    )
    for ours, theirs in [
        (nn.Softplus(2.0, 10.0), torch.nn.Softplus(2.0, 10.0)),
        (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
        (nn.Softmax(-1), torch.nn.Softmax(-1)),
        (nn.LogSoftmax(1), torch.nn.LogSoftmax(1)),
        (nn.GELU("tanh"), torch.nn.GELU("tanh")),
        (nn.Linear(2, 3, bias=False), torch.nn.Linear(2, 3, bias=False)),
        (
            nn.Sequential(nn.Tanh(), nn.Sigmoid()),
            torch.nn.Sequential(torch.nn.Tanh(), torch.nn.Sigmoid()),
        ),
        (
            nn.ModuleList([nn.ReLU(), nn.ReLU(), nn.Tanh()]),
            torch.nn.ModuleList([torch.nn.ReLU(), torch.nn.ReLU(), torch.nn.Tanh()]),
        ),
        (nn.Identity(), torch.nn.Identity()),
        (nn.LayerNorm(4, bias=False), torch.nn.LayerNorm(4, bias=False)),
    ]:
        assert repr(ours) == repr(theirs)


def test_attribute_registration_rules() -> None:
    m = nn.Module()
    m.w = nn.Parameter(tracer.ones(2))
    m.sub = nn.Linear(2, 2)
    m.register_buffer("b", tracer.zeros(2))
    m.plain = 3
    assert set(m._parameters) == {"w"} and set(m._modules) == {"sub"} and set(m._buffers) == {"b"}
    with pytest.raises(TypeError, match="Parameter or None expected"):
        m.w = tracer.ones(2)
    with pytest.raises(TypeError, match="buffer"):
        m.b = 3
    with pytest.raises(KeyError, match="already exists"):
        m.register_buffer("plain", tracer.zeros(1))
    with pytest.raises(KeyError, match=r"contain \"\.\""):
        m.register_parameter("a.b", None)
    m.w = None
    assert m.w is None and [n for n, _ in m.named_parameters()] == ["sub.weight", "sub.bias"]
    del m.sub
    assert not hasattr(m, "sub")
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        _ = m.missing


def test_shared_parameters_come_once() -> None:
    lin = nn.Linear(3, 3)
    model = nn.Sequential(lin, nn.ReLU(), lin)
    assert len(list(model.parameters())) == 2
    assert list(model.state_dict()) == ["0.weight", "0.bias", "2.weight", "2.bias"]


# ---------------------------------------------------------------- load_state_dict


def test_load_state_dict_from_torch_matches_forward_and_grad() -> None:
    torch = pytest.importorskip("torch")
    ours, theirs = TracerBlock().eval(), _torch_block().eval()
    params_before = list(ours.parameters())
    result = ours.load_state_dict(theirs.state_dict())
    assert result == ([], []) and result.missing_keys == []
    assert all(a is b for a, b in zip(params_before, ours.parameters(), strict=True))
    ids = np.array([[0, 3, 5, 10], [2, 2, 0, 1]])
    out = ours(tracer.tensor(ids))
    expected = theirs(torch.tensor(ids))
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), atol=1e-5)
    out.sum().backward()
    expected.sum().backward()
    for (name, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
        np.testing.assert_allclose(p.grad.numpy(), q.grad.numpy(), atol=1e-5, err_msg=name)


def test_load_state_dict_errors_like_torch() -> None:
    m = nn.Sequential(nn.Linear(4, 3))
    state = {"0.weight": np.zeros((4, 4), np.float32), "0.extra": np.zeros(1)}
    with pytest.raises(RuntimeError) as err:
        m.load_state_dict(state)
    assert str(err.value) == (
        "Error(s) in loading state_dict for Sequential:\n"
        '\tMissing key(s) in state_dict: "0.bias". \n'
        '\tUnexpected key(s) in state_dict: "0.extra". \n'
        "\tsize mismatch for 0.weight: copying a param with shape [4, 4] from checkpoint, "
        "the shape in current model is [3, 4]."
    )
    state["0.weight"] = np.ones((3, 4))  # float64: converted to the parameter's dtype
    missing, unexpected = m.load_state_dict(state, strict=False)
    assert (missing, unexpected) == (["0.bias"], ["0.extra"])
    assert m[0].weight.dtype == tracer.float32 and float(m[0].weight.sum()) == 12


def test_load_state_dict_keeps_optimizer_references_working() -> None:
    m = nn.Linear(2, 2)
    w = m.weight
    src = nn.Linear(2, 2)
    m.load_state_dict(src.state_dict())
    assert m.weight is w and w.is_leaf and w.requires_grad
    np.testing.assert_array_equal(w.detach().numpy(), src.weight.detach().numpy())
    src.weight.detach().add_(1)  # the copy does not alias the source
    assert not np.array_equal(w.detach().numpy(), src.weight.detach().numpy())


# ---------------------------------------------------------------- modes, grads, dtype


def test_train_eval_recurse_and_dropout_obeys() -> None:
    m = TracerBlock()
    assert all(x.training for x in m.modules())
    assert m.eval() is m and not any(x.training for x in m.modules())
    x = tracer.randn(4, 8)
    assert m.head[1](x) is x
    m.train()
    assert m.head[1].training
    with pytest.raises(ValueError, match="boolean"):
        m.train("yes")  # type: ignore[arg-type]


def test_zero_grad_apply_to_and_requires_grad() -> None:
    m = nn.Linear(3, 2)
    m(tracer.randn(4, 3)).sum().backward()
    m.zero_grad(set_to_none=False)
    assert not m.weight.grad.numpy().any()
    m.zero_grad()
    assert m.weight.grad is None
    seen: list[str] = []
    nn.Sequential(nn.ReLU(), nn.Tanh()).apply(lambda mod: seen.append(type(mod).__name__))
    assert seen == ["ReLU", "Tanh", "Sequential"]
    w = m.weight
    assert m.to(tracer.float64) is m and m.weight is w and w.dtype == tracer.float64
    assert m(tracer.randn(1, 3).double()).dtype == tracer.float64
    m.requires_grad_(False)
    assert not any(p.requires_grad for p in m.parameters())


# ---------------------------------------------------------------- containers


def test_sequential_and_module_list_indexing() -> None:
    a, b, c = nn.ReLU(), nn.Tanh(), nn.Sigmoid()
    seq = nn.Sequential(a, b, c)
    assert seq[0] is a and seq[-1] is c and len(seq) == 3 and list(seq) == [a, b, c]
    assert list(seq[1:]) == [b, c] and isinstance(seq[1:], nn.Sequential)
    del seq[0]
    assert list(seq._modules) == ["0", "1"] and seq[0] is b
    named = nn.Sequential(OrderedDict([("first", a), ("second", b)]))
    assert list(named._modules) == ["first", "second"]
    ml = nn.ModuleList([a])
    ml.append(b).extend([c])
    ml.insert(0, nn.Identity())
    assert [type(x).__name__ for x in ml] == ["Identity", "ReLU", "Tanh", "Sigmoid"]
    with pytest.raises(IndexError):
        ml[4]
    md = nn.ModuleDict([("x", a)])
    md["y"] = b
    assert list(md.keys()) == ["x", "y"] and "y" in md and md.pop("x") is a and len(md) == 1


# ---------------------------------------------------------------- layers against torch


def _layer_pairs(torch: Any) -> list[tuple[Any, Any, tuple[int, ...]]]:
    return [
        (nn.Linear(5, 4), torch.nn.Linear(5, 4), (2, 3, 5)),
        (nn.Linear(5, 4, bias=False), torch.nn.Linear(5, 4, bias=False), (3, 5)),
        (nn.LayerNorm(5), torch.nn.LayerNorm(5), (2, 3, 5)),
        (nn.LayerNorm([3, 5], bias=False), torch.nn.LayerNorm([3, 5], bias=False), (2, 3, 5)),
        (
            nn.LayerNorm(5, elementwise_affine=False),
            torch.nn.LayerNorm(5, elementwise_affine=False),
            (4, 5),
        ),
        (nn.GELU(), torch.nn.GELU(), (3, 5)),
        (nn.GELU("tanh"), torch.nn.GELU("tanh"), (3, 5)),
        (nn.ReLU(), torch.nn.ReLU(), (3, 5)),
        (nn.Tanh(), torch.nn.Tanh(), (3, 5)),
        (nn.Sigmoid(), torch.nn.Sigmoid(), (3, 5)),
        (nn.LeakyReLU(0.1), torch.nn.LeakyReLU(0.1), (3, 5)),
        (nn.Softplus(), torch.nn.Softplus(), (3, 5)),
        (nn.Softmax(-1), torch.nn.Softmax(-1), (3, 5)),
        (nn.LogSoftmax(0), torch.nn.LogSoftmax(0), (3, 5)),
        (nn.Identity(), torch.nn.Identity(), (3, 5)),
    ]


def test_layers_match_torch_with_copied_weights() -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    for ours, theirs, shape in _layer_pairs(torch):
        with torch.no_grad():
            for p in theirs.parameters():
                p.add_(torch.tensor(rng.standard_normal(p.shape), dtype=p.dtype))
        _copy_torch_weights(ours, theirs)
        x = rng.standard_normal(shape).astype(np.float32) * 2
        xt, tt = tracer.tensor(x, requires_grad=True), torch.tensor(x, requires_grad=True)
        out, expected = ours(xt), theirs(tt)
        name = repr(ours)
        np.testing.assert_allclose(
            out.detach().numpy(), expected.detach().numpy(), rtol=1e-5, atol=1e-6, err_msg=name
        )
        cot = rng.standard_normal(expected.shape).astype(np.float32)
        (out * tracer.tensor(cot)).sum().backward()
        (expected * torch.tensor(cot)).sum().backward()
        np.testing.assert_allclose(
            xt.grad.numpy(), tt.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=name
        )
        for (n, p), (_, q) in zip(ours.named_parameters(), theirs.named_parameters(), strict=True):
            np.testing.assert_allclose(
                p.grad.numpy(), q.grad.numpy(), rtol=1e-4, atol=1e-5, err_msg=f"{name} {n}"
            )


def test_embedding_matches_torch_and_from_pretrained() -> None:
    torch = pytest.importorskip("torch")
    ours, theirs = nn.Embedding(6, 3, padding_idx=-1), torch.nn.Embedding(6, 3, padding_idx=-1)
    assert ours.padding_idx == theirs.padding_idx == 5
    _copy_torch_weights(ours, theirs)
    ids = np.array([[5, 1, 1], [0, 5, 2]])
    out, expected = ours(tracer.tensor(ids)), theirs(torch.tensor(ids))
    np.testing.assert_array_equal(out.detach().numpy(), expected.detach().numpy())
    out.sum().backward()
    expected.sum().backward()
    np.testing.assert_array_equal(ours.weight.grad.numpy(), theirs.weight.grad.numpy())
    table = tracer.randn(4, 2)
    frozen = nn.Embedding.from_pretrained(table, padding_idx=1)
    assert not frozen.weight.requires_grad and frozen.padding_idx == 1
    np.testing.assert_array_equal(frozen.weight.detach().numpy(), table.numpy())
    assert nn.Embedding.from_pretrained(table, freeze=False).weight.requires_grad
    assert repr(frozen) == "Embedding(4, 2, padding_idx=1)"


# ---------------------------------------------------------------- initialisation


def test_default_init_statistics() -> None:
    tracer.manual_seed(0)
    lin = nn.Linear(400, 300)
    bound = 1 / math.sqrt(400)
    w, b = lin.weight.detach().numpy(), lin.bias.detach().numpy()
    assert np.abs(w).max() <= bound and np.abs(b).max() <= bound
    assert abs(w.std() - bound / math.sqrt(3)) < 0.01 * bound and abs(w.mean()) < 0.01 * bound
    assert b.std() > 0.5 * bound / math.sqrt(3)
    emb = nn.Embedding(500, 200, padding_idx=3).weight.detach().numpy()
    assert not emb[3].any()
    assert abs(emb.mean()) < 0.01 and abs(emb.std() - 1) < 0.01
    ln = nn.LayerNorm(7)
    assert (ln.weight.detach().numpy() == 1).all() and not ln.bias.detach().numpy().any()
    assert lin.weight.dtype == tracer.float32
    assert nn.Linear(2, 2, dtype=tracer.float64).weight.dtype == tracer.float64


def test_manual_seed_makes_init_reproducible() -> None:
    tracer.manual_seed(5)
    a = nn.Linear(3, 3).weight.detach().numpy().copy()
    tracer.manual_seed(5)
    assert np.array_equal(a, nn.Linear(3, 3).weight.detach().numpy())
    assert not np.array_equal(a, nn.Linear(3, 3).weight.detach().numpy())


def test_init_functions_match_torch_formulas() -> None:
    torch = pytest.importorskip("torch")
    for args in [("linear",), ("relu",), ("tanh",), ("leaky_relu", 0.2), ("selu",), ("sigmoid",)]:
        assert init.calculate_gain(*args) == torch.nn.init.calculate_gain(*args)
    t = tracer.zeros(64, 32, 3, 3)
    assert init._calculate_fan_in_and_fan_out(t) == torch.nn.init._calculate_fan_in_and_fan_out(
        torch.zeros(64, 32, 3, 3)
    )
    tracer.manual_seed(1)
    w = tracer.zeros(300, 500)
    assert init.xavier_uniform_(w, gain=2.0) is w
    a = 2.0 * math.sqrt(6 / 800)
    assert np.abs(w.numpy()).max() <= a and abs(w.numpy().std() - a / math.sqrt(3)) < 0.01 * a
    init.xavier_normal_(w)
    assert abs(w.numpy().std() - math.sqrt(2 / 800)) < 0.01 * math.sqrt(2 / 800)
    init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu")
    assert abs(w.numpy().std() - math.sqrt(2 / 300)) < 0.01 * math.sqrt(2 / 300)
    init.kaiming_uniform_(w, nonlinearity="relu")
    assert np.abs(w.numpy()).max() <= math.sqrt(6 / 500)
    init.constant_(w, 0.5)
    assert (w.numpy() == 0.5).all()
    init.uniform_(w, -1, 1)
    init.normal_(w, 2.0, 0.1)
    assert abs(w.numpy().mean() - 2) < 0.01
    with pytest.raises(ValueError, match="fewer than 2"):
        init.xavier_uniform_(tracer.zeros(3))
    with pytest.raises(ValueError, match="Unsupported nonlinearity"):
        init.calculate_gain("swish")
    p = nn.Linear(2, 2).weight
    init.zeros_(p)  # in place on a parameter that requires grad: outside autograd
    assert p.is_leaf and p.requires_grad and not p.detach().numpy().any()


# ---------------------------------------------------------------- tracing


class TinyClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(20, 16, padding_idx=0)
        self.proj = nn.Linear(16, 16)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(16)
        self.out = nn.Linear(16, 5)

    def forward(self, ids: tracer.Tensor, labels: tracer.Tensor) -> tracer.Tensor:
        h = self.norm(self.act(self.proj(self.embed(ids))))
        logits = self.out(h).mean(1)
        return F.cross_entropy(logits, labels, label_smoothing=0.1)


def test_small_model_traces_and_graph_matches_eager() -> None:
    tracer.manual_seed(0)
    model = TinyClassifier().eval()
    ids, labels = tracer.randint(0, 20, (3, 7)), tracer.randint(0, 5, (3,))
    with tracer.no_grad():
        graph = tracer.trace(
            model,
            (ids, labels),
            dynamic_axes={"ids": {0: "batch", 1: "seq"}, "labels": {0: "batch"}},
        )
    ops = {n.op.op_type for n in graph.nodes}
    assert {"Gather", "Gelu", "LayerNormalization", "SoftmaxCrossEntropyLoss"} <= ops
    assert "embed.weight" in graph.initializers or any("embed" in k for k in graph.initializers)
    session = Session(graph, backend="interpreter")
    for batch, seq in [(3, 7), (2, 4)]:
        x, y = tracer.randint(0, 20, (batch, seq)), tracer.randint(0, 5, (batch,))
        got = session.run({"ids": x.numpy(), "labels": y.numpy()})
        want = model(x, y).detach().numpy()
        np.testing.assert_allclose(next(iter(got.values())), want, rtol=1e-5, atol=1e-6)
