"""Loss modules and their functional forms against torch 2.13: values and gradients.

Each case builds the graphcap module and the torch module with the same arguments (a class
``weight`` is a buffer in both ``state_dict``s) and compares the loss and the gradients of
every floating input, in float32 and float64, for each reduction.
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest

import tracer
from tests.nn_parity import compare, export_check
from tracer import nn
from tracer.nn import functional as F  # noqa: N812 - PyTorch's name


@pytest.fixture(scope="module")
def torch() -> Any:
    return pytest.importorskip("torch")


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _probs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.uniform(0.05, 0.95, shape)


def _log_probs(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    x = rng.standard_normal(shape)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _inputs(kind: str) -> list[np.ndarray]:
    rng = _rng(3)
    x, y = rng.standard_normal((4, 5)), rng.standard_normal((4, 5))
    sign = np.array([1, -1, 1, -1], np.int64)
    if kind == "regression":
        return [x, y * 2]
    if kind == "probs":
        return [_probs(rng, (4, 5)), rng.uniform(0, 1, (4, 5))]
    if kind == "logits":
        return [x * 3, rng.uniform(0, 1, (4, 5))]
    if kind == "kl":
        target = np.exp(_log_probs(rng, (4, 5)))
        target[0, 1] = 0.0  # 0 log 0 counts as 0
        return [_log_probs(rng, (4, 5)), target]
    if kind == "kl_log":
        return [_log_probs(rng, (4, 5)), _log_probs(rng, (4, 5))]
    if kind == "pairs":
        return [x, y, sign]
    if kind == "ranking":
        return [x[:, 0], y[:, 0], sign.astype(np.float64)]
    if kind == "classes":
        return [x, np.array([0, 3, -100, 4], np.int64)]
    if kind == "classes_3d":
        return [rng.standard_normal((2, 5, 3)), np.array([[0, 1, 4], [2, 2, 3]], np.int64)]
    if kind == "soft":
        return [x, np.exp(_log_probs(rng, (4, 5)))]
    raise AssertionError(kind)


# (class name, constructor kwargs, input kind, which inputs need grad or None for floats)
CASES: list[tuple[str, dict[str, Any], str, list[bool] | None]] = [
    ("L1Loss", {}, "regression", None),
    ("MSELoss", {}, "regression", None),
    ("SmoothL1Loss", {"beta": 0.5}, "regression", None),
    ("SmoothL1Loss", {"beta": 0.0}, "regression", None),
    ("HuberLoss", {"delta": 0.7}, "regression", None),
    ("BCELoss", {}, "probs", None),
    ("BCELoss", {"weight": np.linspace(0.5, 2, 5)}, "probs", None),
    ("BCEWithLogitsLoss", {"pos_weight": np.linspace(0.5, 3, 5)}, "logits", None),
    ("BCEWithLogitsLoss", {"weight": np.linspace(0.5, 2, 5)}, "logits", None),
    ("KLDivLoss", {"reduction_mean": "batchmean"}, "kl", [True, False]),
    ("KLDivLoss", {"log_target": True}, "kl_log", None),
    ("CosineEmbeddingLoss", {"margin": 0.2}, "pairs", None),
    ("MarginRankingLoss", {"margin": 0.3}, "ranking", None),
    ("CrossEntropyLoss", {"weight": np.linspace(0.5, 2, 5)}, "classes", None),
    ("CrossEntropyLoss", {"label_smoothing": 0.1, "ignore_index": 2}, "classes_3d", None),
    ("CrossEntropyLoss", {"label_smoothing": 0.2}, "soft", None),
    ("NLLLoss", {"weight": np.linspace(0.5, 2, 5)}, "classes", None),
    ("NLLLoss", {"ignore_index": 3}, "classes_3d", None),
]


def _build(torch: Any, name: str, kwargs: dict[str, Any], reduction: str) -> tuple[Any, Any]:
    kwargs = dict(kwargs)
    if kwargs.pop("reduction_mean", None) == "batchmean" and reduction == "mean":
        reduction = "batchmean"
    ours_kw = {k: tracer.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    theirs_kw = {k: torch.tensor(v) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}
    return (
        getattr(nn, name)(reduction=reduction, **ours_kw),
        getattr(torch.nn, name)(reduction=reduction, **theirs_kw),
    )


@pytest.mark.torch
@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize(("name", "kwargs", "kind", "grad"), CASES, ids=lambda c: str(c)[:24])
def test_loss_module_matches_torch(
    torch: Any, name: str, kwargs: dict[str, Any], kind: str, grad: Any, reduction: str
) -> None:
    ours, theirs = _build(torch, name, kwargs, reduction)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # KLDivLoss's "mean" warning, in both libraries
        compare(torch, ours, theirs, _inputs(kind), np.float32, grad, loss=_sum_of_squares)


@pytest.mark.torch
@pytest.mark.parametrize(("name", "kwargs", "kind", "grad"), CASES[::2], ids=lambda c: str(c)[:24])
def test_loss_module_matches_torch_in_float64(
    torch: Any, name: str, kwargs: dict[str, Any], kind: str, grad: Any
) -> None:
    ours, theirs = _build(torch, name, kwargs, "mean")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compare(torch, ours, theirs, _inputs(kind), np.float64, grad, loss=_sum_of_squares)


def _sum_of_squares(outs: list[Any]) -> Any:
    return sum((o * o).sum() for o in outs)


@pytest.mark.torch
def test_weight_buffers_are_in_the_state_dict_as_torch(torch: Any) -> None:
    w = np.linspace(0.5, 2, 5).astype(np.float32)
    for ours, theirs in [
        (nn.CrossEntropyLoss(weight=tracer.tensor(w)), torch.nn.CrossEntropyLoss(torch.tensor(w))),
        (
            nn.BCEWithLogitsLoss(pos_weight=tracer.tensor(w)),
            torch.nn.BCEWithLogitsLoss(pos_weight=torch.tensor(w)),
        ),
        (nn.MSELoss(), torch.nn.MSELoss()),
    ]:
        assert list(ours.state_dict()) == list(theirs.state_dict())


@pytest.mark.torch
@pytest.mark.parametrize("fn", ["l1_loss", "mse_loss", "huber_loss"])
def test_elementwise_weight_and_broadcast_warning(torch: Any, fn: str) -> None:
    rng = _rng(1)
    x, y, w = rng.standard_normal((3, 4)), rng.standard_normal((3, 4)), rng.uniform(0, 2, (3, 4))
    ours = getattr(F, fn)(tracer.tensor(x), tracer.tensor(y), weight=tracer.tensor(w))
    theirs = getattr(torch.nn.functional, fn)(
        torch.tensor(x), torch.tensor(y), weight=torch.tensor(w)
    )
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    with pytest.warns(UserWarning, match="different to the input size"):
        ours = getattr(F, fn)(tracer.tensor(x), tracer.tensor(y[0]))
    with pytest.warns(UserWarning, match="different to the input size"):
        theirs = getattr(torch.nn.functional, fn)(torch.tensor(x), torch.tensor(y[0]))
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-12)
    with pytest.raises(ValueError, match="same size"):
        getattr(F, fn)(tracer.tensor(x), tracer.tensor(y), weight=tracer.tensor(w[0]))


@pytest.mark.torch
def test_legacy_size_average_and_reduce(torch: Any) -> None:
    x, y = _inputs("regression")
    for size_average, reduce in [(False, None), (None, False), (True, True)]:
        with pytest.warns(UserWarning, match="will be deprecated"):
            ours = nn.L1Loss(size_average=size_average, reduce=reduce)
        with pytest.warns(UserWarning, match="will be deprecated"):
            theirs = torch.nn.L1Loss(size_average=size_average, reduce=reduce)
        assert ours.reduction == theirs.reduction
        got = ours(tracer.tensor(x), tracer.tensor(y)).numpy()
        np.testing.assert_allclose(got, theirs(torch.tensor(x), torch.tensor(y)).numpy())


@pytest.mark.torch
def test_kl_div_mean_warns_and_batchmean_divides_by_the_batch(torch: Any) -> None:
    x, t = _inputs("kl")
    with pytest.warns(UserWarning, match="batchmean"):
        mean = F.kl_div(tracer.tensor(x), tracer.tensor(t))
    total = F.kl_div(tracer.tensor(x), tracer.tensor(t), reduction="sum").item()
    assert mean.item() == pytest.approx(total / x.size)
    batchmean = F.kl_div(tracer.tensor(x), tracer.tensor(t), reduction="batchmean").item()
    assert batchmean == pytest.approx(total / x.shape[0])
    expected = torch.nn.functional.kl_div(torch.tensor(x), torch.tensor(t), reduction="batchmean")
    assert batchmean == pytest.approx(expected.item(), rel=1e-12)


@pytest.mark.torch
def test_unbatched_cosine_embedding_loss(torch: Any) -> None:
    x, y, _ = _inputs("pairs")
    for label in (1, -1):
        ours = F.cosine_embedding_loss(
            tracer.tensor(x[0]), tracer.tensor(y[0]), tracer.tensor(label)
        )
        theirs = torch.nn.functional.cosine_embedding_loss(
            torch.tensor(x[0]), torch.tensor(y[0]), torch.tensor(label), margin=0.0
        )
        assert ours.item() == pytest.approx(theirs.item(), rel=1e-12)


def test_bad_inputs_raise_clear_errors() -> None:
    x, y = (tracer.tensor(a) for a in _inputs("regression"))
    with pytest.raises(ValueError, match="not a valid value for reduction"):
        F.l1_loss(x, y, reduction="average")
    with pytest.raises(RuntimeError, match="between 0 and 1"):
        F.binary_cross_entropy(x, y.sigmoid())
    with pytest.raises(ValueError, match="different to the input size"):
        F.binary_cross_entropy(x.sigmoid(), y[0].sigmoid())
    with pytest.raises(RuntimeError, match="negative values for beta"):
        F.smooth_l1_loss(x, y, beta=-1.0)
    with pytest.raises(RuntimeError, match="same dimension"):
        F.margin_ranking_loss(x, y, tracer.ones(4))


def test_losses_export_and_match_on_onnxruntime() -> None:
    x, target = _inputs("classes")
    ops = export_check(nn.CrossEntropyLoss(), [x.astype(np.float32), target])
    assert ops == ["SoftmaxCrossEntropyLoss"]
    ops = export_check(nn.NLLLoss(), [_log_probs(_rng(), (4, 5)).astype(np.float32), target])
    assert ops == ["NegativeLogLikelihoodLoss"]
    pair = [a.astype(np.float32) for a in _inputs("regression")]
    export_check(nn.HuberLoss(delta=0.5), pair, ["Where"])
    export_check(nn.SmoothL1Loss(beta=0.5), pair, ["Where"])
    kl = [a.astype(np.float32) for a in _inputs("kl")]
    export_check(nn.KLDivLoss(reduction="batchmean"), kl)
