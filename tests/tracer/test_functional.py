"""tracer.nn.functional against torch.nn.functional: values and gradients, same inputs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pytest

import tracer
import tracer.nn.functional as F  # noqa: N812 - PyTorch's conventional name

RNG = np.random.default_rng(0)


def _rand(*shape: int, dtype: Any = np.float64) -> np.ndarray:
    return RNG.standard_normal(shape).astype(dtype)


def compare(
    fn: Callable[..., Any],
    torch_fn: Callable[..., Any],
    inputs: Sequence[np.ndarray],
    grad: Sequence[int] = (0,),
    rtol: float = 1e-6,
    atol: float = 1e-7,
) -> None:
    """Run both on the same arrays; compare outputs and the gradients of a random projection."""
    torch = pytest.importorskip("torch")
    ours = [tracer.tensor(x, requires_grad=i in grad) for i, x in enumerate(inputs)]
    theirs = [torch.tensor(x, requires_grad=i in grad) for i, x in enumerate(inputs)]
    out, expected = fn(*ours), torch_fn(*theirs)
    np.testing.assert_allclose(out.detach().numpy(), expected.detach().numpy(), rtol, atol)
    if not grad:
        return
    cot = RNG.standard_normal(expected.shape).astype(inputs[grad[0]].dtype)
    (out * tracer.tensor(cot)).sum().backward()
    (expected * torch.tensor(cot)).sum().backward()
    for i in grad:
        assert ours[i].grad is not None, f"no gradient for input {i}"
        np.testing.assert_allclose(ours[i].grad.numpy(), theirs[i].grad.numpy(), rtol, atol)


# ---------------------------------------------------------------- linear, embedding


@pytest.mark.parametrize("bias", [True, False])
def test_linear(bias: bool) -> None:
    torch = pytest.importorskip("torch")
    args = [_rand(2, 3, 5), _rand(4, 5)] + ([_rand(4)] if bias else [])
    compare(F.linear, torch.nn.functional.linear, args, grad=range(len(args)))


def test_embedding_padding_row_gets_no_gradient() -> None:
    torch = pytest.importorskip("torch")
    idx = np.array([[0, 2, 1], [2, 0, 3]])
    weight = _rand(5, 4)
    ours_w = tracer.tensor(weight, requires_grad=True)
    theirs_w = torch.tensor(weight, requires_grad=True)
    out = F.embedding(tracer.tensor(idx), ours_w, padding_idx=2)
    expected = torch.nn.functional.embedding(torch.tensor(idx), theirs_w, padding_idx=2)
    np.testing.assert_array_equal(out.detach().numpy(), expected.detach().numpy())
    cot = _rand(2, 3, 4)
    (out * tracer.tensor(cot)).sum().backward()
    (expected * torch.tensor(cot)).sum().backward()
    np.testing.assert_allclose(ours_w.grad.numpy(), theirs_w.grad.numpy(), rtol=1e-12)
    assert not ours_w.grad.numpy()[2].any()


def test_embedding_rejects_bad_indices() -> None:
    w = tracer.randn(4, 2)
    with pytest.raises(IndexError, match="out of range"):
        F.embedding(tracer.tensor([0, 4]), w)
    with pytest.raises(TypeError, match="integer"):
        F.embedding(tracer.tensor([0.0, 1.0]), w)


# ---------------------------------------------------------------- activations


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("relu", {}),
        ("gelu", {}),
        ("gelu", {"approximate": "tanh"}),
        ("leaky_relu", {"negative_slope": 0.2}),
        ("softplus", {}),
        ("softplus", {"beta": 2.0, "threshold": 3.0}),
        ("softmax", {"dim": 1}),
        ("softmax", {"dim": -1}),
        ("log_softmax", {"dim": 0}),
        ("log_softmax", {"dim": 2}),
        ("silu", {}),
        ("elu", {"alpha": 0.7}),
        ("tanh", {}),
        ("sigmoid", {}),
    ],
)
def test_activation(name: str, kwargs: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    ours, theirs = getattr(F, name), getattr(torch.nn.functional, name)
    compare(lambda x: ours(x, **kwargs), lambda x: theirs(x, **kwargs), [_rand(2, 3, 4) * 3])


def test_softmax_implicit_dim_follows_pytorch() -> None:
    torch = pytest.importorskip("torch")
    for shape in [(5,), (2, 5), (2, 3, 4), (2, 3, 4, 5)]:
        x = _rand(*shape)
        with pytest.warns(UserWarning, match="Implicit dimension"):
            got = F.softmax(tracer.tensor(x)).numpy()
        with pytest.warns(UserWarning):
            want = torch.nn.functional.softmax(torch.tensor(x)).numpy()
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_gelu_rejects_unknown_approximation() -> None:
    with pytest.raises(ValueError, match="none or tanh"):
        F.gelu(tracer.randn(3), approximate="fast")


# ---------------------------------------------------------------- dropout


def test_dropout_statistics_scale_and_gradient() -> None:
    tracer.manual_seed(3)
    x = tracer.ones(200, 500, requires_grad=True)
    out = F.dropout(x, p=0.3)
    kept = out.detach().numpy() != 0
    assert abs(1 - kept.mean() - 0.3) < 0.01
    np.testing.assert_allclose(out.detach().numpy()[kept], 1 / 0.7, rtol=1e-6)
    out.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), np.where(kept, 1 / 0.7, 0), rtol=1e-6)


def test_dropout_is_seeded_and_an_identity_when_not_training() -> None:
    x = tracer.randn(50)
    tracer.manual_seed(7)
    a = F.dropout(x, 0.5).numpy()
    tracer.manual_seed(7)
    np.testing.assert_array_equal(a, F.dropout(x, 0.5).numpy())
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    assert not F.dropout(x, 1.0).numpy().any()
    with pytest.raises(ValueError, match="between 0 and 1"):
        F.dropout(x, 1.5)


# ---------------------------------------------------------------- layer norm and pad


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("shape", [(6,), (3, 6)])
def test_layer_norm(affine: bool, shape: tuple[int, ...]) -> None:
    torch = pytest.importorskip("torch")
    args = [_rand(2, 3, 6) * 2 + 1]
    if affine:
        args += [_rand(*shape), _rand(*shape)]
    compare(
        lambda x, *wb: F.layer_norm(x, shape, *wb, eps=1e-3),
        lambda x, *wb: torch.nn.functional.layer_norm(x, shape, *wb, eps=1e-3),
        args,
        grad=range(len(args)),
        rtol=1e-9,
        atol=1e-10,
    )


def test_layer_norm_shape_error() -> None:
    with pytest.raises(RuntimeError, match=r"normalized_shape=\[4\]"):
        F.layer_norm(tracer.randn(2, 3), [4])


@pytest.mark.parametrize(
    ("pads", "mode", "value"),
    [
        ((1, 2), "constant", None),
        ((1, 0, 2, 1), "constant", 1.5),
        ((0, 1, 1, 0, 1, 1), "constant", -2.0),
        ((2, 1), "reflect", None),
        ((1, 2, 2, 1), "replicate", None),
        ((1, 2), "circular", None),
        ((-1, 2), "constant", None),
    ],
)
def test_pad(pads: tuple[int, ...], mode: str, value: float | None) -> None:
    torch = pytest.importorskip("torch")
    kw = {} if value is None else {"value": value}
    compare(
        lambda x: F.pad(x, pads, mode=mode, **kw),
        lambda x: torch.nn.functional.pad(x, pads, mode=mode, **kw),
        [_rand(2, 3, 4)],
    )


def test_pad_errors() -> None:
    x = tracer.randn(2, 3)
    with pytest.raises(ValueError, match="divisible by 2"):
        F.pad(x, (1,))
    with pytest.raises(ValueError, match="less than or equal"):
        F.pad(x, (1, 1, 1, 1, 1, 1))
    with pytest.raises(ValueError, match="padding mode"):
        F.pad(x, (1, 1), mode="mirror")


# ---------------------------------------------------------------- attention


def _bool_mask(*shape: int) -> np.ndarray:
    mask = RNG.random(shape) > 0.3
    mask[..., 0] = True  # every row keeps a position
    return mask


@pytest.mark.parametrize(
    "case",
    [
        "plain",
        "bool_mask",
        "float_mask",
        "masked_row",
        "causal",
        "causal_long_keys",
        "scale",
        "gqa",
    ],
)
# The Softmax kernel warns on the all -inf row before the row is zeroed.
@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_scaled_dot_product_attention(case: str) -> None:
    torch = pytest.importorskip("torch")
    L, S = 4, 6 if case == "causal_long_keys" else 4
    hk = 1 if case == "gqa" else 2
    q, k, v = _rand(2, 2, L, 8), _rand(2, hk, S, 8), _rand(2, hk, S, 5)
    args: list[np.ndarray] = [q, k, v]
    kw: dict[str, Any] = {}
    if case == "bool_mask":
        args.append(_bool_mask(2, 1, L, S))
    elif case == "float_mask":
        args.append(_rand(L, S))
    elif case == "masked_row":
        mask = _bool_mask(2, 1, L, S)
        mask[0, 0, 1] = False  # a row that attends to nothing gives zeros
        args.append(mask)
    elif case.startswith("causal"):
        kw["is_causal"] = True
    elif case == "scale":
        kw["scale"] = 0.3
    elif case == "gqa":
        kw["enable_gqa"] = True
    compare(
        lambda *a: F.scaled_dot_product_attention(*a, **kw),
        lambda *a: torch.nn.functional.scaled_dot_product_attention(*a, **kw),
        args,
        grad=(0, 1, 2),
        rtol=1e-9,
        atol=1e-10,
    )


def test_attention_dropout_keeps_expected_value() -> None:
    tracer.manual_seed(0)
    q = tracer.zeros(1, 1, 2, 4)  # uniform weights
    v = tracer.ones(1, 1, 2000, 3)
    out = F.scaled_dot_product_attention(q, tracer.zeros(1, 1, 2000, 4), v, dropout_p=0.5)
    assert abs(float(out.mean()) - 1.0) < 0.1


# ---------------------------------------------------------------- losses


def _targets(shape: tuple[int, ...], classes: int, ignore: int | None = None) -> np.ndarray:
    t = RNG.integers(0, classes, shape)
    if ignore is not None:
        t.flat[::3] = ignore
    return t


CE_CASES = [
    {},
    {"reduction": "sum"},
    {"reduction": "none"},
    {"weight": True},
    {"ignore_index": 1},
    {"ignore_index": -100, "ignored": True, "weight": True},
    {"label_smoothing": 0.1},
    {"label_smoothing": 0.2, "weight": True, "ignored": True},
    {"label_smoothing": 0.2, "weight": True, "ignored": True, "reduction": "sum"},
    {"label_smoothing": 0.3, "ignored": True, "reduction": "none"},
]


@pytest.mark.parametrize("kdim", [False, True])
@pytest.mark.parametrize("case", CE_CASES)
def test_cross_entropy_class_indices(case: dict[str, Any], kdim: bool) -> None:
    torch = pytest.importorskip("torch")
    shape = (3, 5, 2, 3) if kdim else (6, 5)
    kw = {k: v for k, v in case.items() if k not in ("weight", "ignored")}
    ignore = kw.get("ignore_index", -100) if case.get("ignored") else None
    target = _targets((shape[0], *shape[2:]), 5, ignore)
    args = [_rand(*shape) * 2, target] + ([np.abs(_rand(5)) + 0.1] if case.get("weight") else [])

    def ours(x: Any, t: Any, w: Any = None) -> Any:
        return F.cross_entropy(x, t, weight=w, **kw)

    def theirs(x: Any, t: Any, w: Any = None) -> Any:
        return torch.nn.functional.cross_entropy(x, t, weight=w, **kw)

    compare(ours, theirs, args, rtol=1e-9, atol=1e-10)  # torch: no weight gradient


@pytest.mark.parametrize(
    "kw",
    [{}, {"label_smoothing": 0.25}, {"reduction": "sum"}, {"reduction": "none", "weight": True}],
)
def test_cross_entropy_probability_targets(kw: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    kw = dict(kw)
    use_weight = kw.pop("weight", False)
    probs = RNG.random((4, 5, 3))
    probs /= probs.sum(1, keepdims=True)
    args = [_rand(4, 5, 3), probs] + ([np.abs(_rand(5)) + 0.1] if use_weight else [])

    def ours(x: Any, t: Any, w: Any = None) -> Any:
        return F.cross_entropy(x, t, weight=w, **kw)

    def theirs(x: Any, t: Any, w: Any = None) -> Any:
        return torch.nn.functional.cross_entropy(x, t, weight=w, **kw)

    compare(ours, theirs, args, grad=(0, 1), rtol=1e-9, atol=1e-10)


def test_cross_entropy_unbatched_and_float32() -> None:
    torch = pytest.importorskip("torch")
    compare(
        lambda x, t: F.cross_entropy(x, t, label_smoothing=0.1),
        lambda x, t: torch.nn.functional.cross_entropy(x, t, label_smoothing=0.1),
        [_rand(7, dtype=np.float32), np.array(3)],
        rtol=1e-5,
        atol=1e-6,
    )


def test_cross_entropy_errors() -> None:
    x = tracer.randn(2, 3)
    with pytest.raises(ValueError, match="reduction"):
        F.cross_entropy(x, tracer.tensor([0, 1]), reduction="avg")
    with pytest.raises(ValueError, match="label_smoothing"):
        F.cross_entropy(x, tracer.tensor([0, 1]), label_smoothing=1.5)


@pytest.mark.parametrize(
    "kw", [{}, {"reduction": "sum"}, {"reduction": "none"}, {"weight": True, "ignore_index": 2}]
)
def test_nll_loss(kw: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    kw = dict(kw)
    use_weight = kw.pop("weight", False)
    logp = np.log(RNG.random((4, 3, 2)))
    args = [logp, _targets((4, 2), 3)] + ([np.abs(_rand(3)) + 0.1] if use_weight else [])

    def ours(x: Any, t: Any, w: Any = None) -> Any:
        return F.nll_loss(x, t, weight=w, **kw)

    def theirs(x: Any, t: Any, w: Any = None) -> Any:
        return torch.nn.functional.nll_loss(x, t, weight=w, **kw)

    compare(ours, theirs, args, rtol=1e-9, atol=1e-10)  # torch: no weight gradient


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("extras", [(), ("weight",), ("pos_weight",), ("weight", "pos_weight")])
def test_binary_cross_entropy_with_logits(reduction: str, extras: tuple[str, ...]) -> None:
    torch = pytest.importorskip("torch")
    logits = _rand(4, 3) * 30  # large logits: the stable form must not overflow
    target = RNG.random((4, 3))
    args = [logits, target]
    names = ["input", "target"]
    if "weight" in extras:
        args.append(RNG.random((4, 3)))
        names.append("weight")
    if "pos_weight" in extras:
        args.append(RNG.random(3) * 3)
        names.append("pos_weight")

    def call(fn: Callable[..., Any]) -> Callable[..., Any]:
        return lambda *a: fn(**dict(zip(names, a, strict=True)), reduction=reduction)

    compare(
        call(F.binary_cross_entropy_with_logits),
        call(torch.nn.functional.binary_cross_entropy_with_logits),
        args,
        grad=(0, 1),  # torch has no gradient for weight and pos_weight
        rtol=1e-9,
        atol=1e-10,
    )


def test_bce_with_logits_shape_error() -> None:
    with pytest.raises(ValueError, match="must be the same as input size"):
        F.binary_cross_entropy_with_logits(tracer.randn(3), tracer.rand(2))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss(reduction: str) -> None:
    torch = pytest.importorskip("torch")
    compare(
        lambda x, t: F.mse_loss(x, t, reduction=reduction),
        lambda x, t: torch.nn.functional.mse_loss(x, t, reduction=reduction),
        [_rand(3, 4), _rand(3, 4)],
        grad=(0, 1),
    )
