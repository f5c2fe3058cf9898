"""Conv, pooling, batch-norm and flatten layers against torch 2.13, and their ONNX export.

Values, input gradients, parameter gradients and buffers are compared with torch (weights
copied by ``state_dict`` name) in float32 and float64; each layer is then traced, written
to ONNX and run on onnxruntime against eager, with the single ONNX op it should lower to.
"""

from __future__ import annotations

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


def _x(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape)


# (class name, constructor args, constructor kwargs, input shape)
LAYERS: list[tuple[str, tuple[Any, ...], dict[str, Any], tuple[int, ...]]] = [
    ("Conv1d", (4, 6, 3), {}, (2, 4, 9)),
    ("Conv1d", (4, 6, 3), {"padding": "same", "dilation": 2, "groups": 2}, (2, 4, 9)),
    ("Conv1d", (4, 6, 4), {"stride": 2, "padding": 2, "bias": False}, (4, 9)),
    ("Conv1d", (4, 6, 4), {"padding": "same"}, (2, 4, 9)),  # odd total: one more at the end
    ("Conv1d", (4, 6, 4), {"padding": "same", "padding_mode": "reflect"}, (2, 4, 9)),
    ("Conv2d", (4, 6, (3, 2)), {"stride": (2, 1), "padding": (1, 0)}, (2, 4, 7, 6)),
    ("Conv2d", (4, 4, 3), {"padding": "same", "groups": 4, "dilation": (1, 2)}, (2, 4, 7, 6)),
    ("Conv2d", (4, 6, 2), {"padding": "valid", "padding_mode": "circular"}, (2, 4, 5, 5)),
    ("MaxPool1d", (3,), {}, (2, 3, 11)),
    ("MaxPool1d", (4, 3, 2), {"ceil_mode": True, "dilation": 1}, (2, 3, 11)),
    ("MaxPool1d", (3, 2, 1), {"dilation": 2, "return_indices": True}, (3, 11)),
    ("MaxPool2d", (3, 2, 1), {"ceil_mode": True, "return_indices": True}, (2, 3, 7, 6)),
    ("MaxPool2d", ((2, 3),), {}, (2, 3, 7, 6)),
    ("AvgPool1d", (3,), {}, (2, 3, 11)),
    ("AvgPool1d", (4, 3, 2), {"ceil_mode": True}, (2, 3, 11)),
    ("AvgPool1d", (4, 3, 2), {"ceil_mode": True, "count_include_pad": False}, (2, 3, 11)),
    ("AvgPool2d", (3, 2, 1), {"ceil_mode": True, "count_include_pad": False}, (2, 3, 7, 6)),
    ("AvgPool2d", (3, 2, 1), {"divisor_override": 5, "ceil_mode": True}, (2, 3, 7, 6)),
    ("AdaptiveAvgPool1d", (1,), {}, (2, 3, 11)),
    ("AdaptiveAvgPool1d", (4,), {}, (2, 3, 12)),
    ("AdaptiveAvgPool1d", (4,), {}, (3, 11)),
    ("AdaptiveAvgPool2d", ((3, 2),), {}, (2, 3, 7, 6)),
    ("AdaptiveAvgPool2d", ((None, 4),), {}, (2, 3, 7, 6)),
    ("AdaptiveMaxPool1d", (1,), {}, (2, 3, 11)),
    ("AdaptiveMaxPool1d", (4,), {"return_indices": True}, (2, 3, 12)),
    ("AdaptiveMaxPool1d", (4,), {"return_indices": True}, (2, 3, 11)),
    ("BatchNorm1d", (3,), {}, (4, 3)),
    ("BatchNorm1d", (3,), {"momentum": None, "affine": False}, (4, 3, 5)),
    ("BatchNorm2d", (3,), {"eps": 1e-3, "momentum": 0.3}, (2, 3, 4, 5)),
    ("BatchNorm2d", (3,), {"track_running_stats": False}, (2, 3, 4, 5)),
    ("Flatten", (), {}, (2, 3, 4, 5)),
    ("Flatten", (0, 2), {}, (2, 3, 4, 5)),
    ("Unflatten", (1, (3, 1)), {}, (2, 3, 4)),
]


def _ids(case: Any) -> str:
    if callable(case) and not isinstance(case, nn.Module):
        return "inputs"  # a lambda's repr holds its address, which differs between workers
    return str(case).replace(" ", "").replace("\n", "")[:28]


@pytest.mark.torch
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("name", "args", "kwargs", "shape"), LAYERS, ids=_ids)
def test_layer_matches_torch(
    torch: Any, name: str, args: tuple[Any, ...], kwargs: dict[str, Any], shape: Any, dtype: Any
) -> None:
    torch.manual_seed(0)
    ours, theirs = getattr(nn, name)(*args, **kwargs), getattr(torch.nn, name)(*args, **kwargs)
    if name.startswith("BatchNorm"):  # two training steps (running statistics), then eval
        compare(torch, ours, theirs, [_x(*shape)], dtype)
        compare(torch, ours, theirs, [_x(*shape, seed=1) * 2 + 1], dtype)
        ours.eval(), theirs.eval()
    compare(torch, ours, theirs, [_x(*shape, seed=2)], dtype)


@pytest.mark.torch
def test_default_initialisation_matches_torch_statistics(torch: Any) -> None:
    """Kaiming-uniform weights and fan-in biases: same bounds as torch's draws."""
    tracer.manual_seed(0)
    ours, theirs = nn.Conv2d(8, 16, 3, groups=2), torch.nn.Conv2d(8, 16, 3, groups=2)
    bound = 1 / np.sqrt(4 * 9)  # kaiming_uniform(a=sqrt(5)) and the fan-in bias share it
    for name in ("weight", "bias"):
        a, b = getattr(ours, name).detach().numpy(), getattr(theirs, name).detach().numpy()
        assert a.shape == b.shape
        assert np.abs(a).max() <= bound and np.abs(b).max() <= bound
    assert np.abs(ours.weight.detach().numpy()).max() > 0.95 * bound
    bn = nn.BatchNorm2d(3)
    assert bn.num_batches_tracked.dtype == tracer.int64
    assert list(bn.state_dict()) == list(torch.nn.BatchNorm2d(3).state_dict())


def test_functional_forms_and_unbatched_inputs() -> None:
    x = tracer.tensor(_x(3, 10).astype(np.float32))
    w = tracer.tensor(_x(5, 3, 3, seed=1).astype(np.float32))
    batched = F.conv1d(x.unsqueeze(0), w, padding=1)
    np.testing.assert_allclose(F.conv1d(x, w, padding=1).numpy(), batched[0].numpy())
    assert tuple(F.max_pool1d(x, 2).shape) == (3, 5)
    y, idx = F.max_pool1d(x, 2, return_indices=True)
    np.testing.assert_array_equal(y.numpy(), np.take_along_axis(x.numpy(), idx.numpy(), 1))


def test_bad_arguments_raise_torchs_errors() -> None:
    with pytest.raises(ValueError, match="divisible by groups"):
        nn.Conv1d(3, 4, 2, groups=2)
    with pytest.raises(ValueError, match="not supported for strided"):
        nn.Conv1d(4, 4, 3, stride=2, padding="same")
    with pytest.raises(ValueError, match="padding_mode"):
        nn.Conv2d(4, 4, 3, padding_mode="mirror")
    with pytest.raises(RuntimeError, match=r"expected input.*to have 4 channels"):
        nn.Conv1d(4, 2, 3)(tracer.zeros(1, 3, 8))
    with pytest.raises(RuntimeError, match="pad should be at most half"):
        F.max_pool1d(tracer.zeros(1, 1, 8), 3, padding=2)
    with pytest.raises(ValueError, match="expected 4D input"):
        nn.BatchNorm2d(3)(tracer.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        nn.BatchNorm1d(3)(tracer.zeros(1, 3))
    with pytest.raises(RuntimeError, match=r"device 'cuda'.*CUDA runs compiled"):
        nn.Conv1d(3, 4, 2, device="cuda")


# (module, input shape, the op it lowers to)
EXPORTS: list[tuple[Any, tuple[int, ...], str]] = [
    (nn.Conv1d(4, 6, 3, padding="same", dilation=2, groups=2), (2, 4, 9), "Conv"),
    (nn.Conv2d(4, 6, (3, 2), stride=2, padding=1), (2, 4, 7, 6), "Conv"),
    (nn.MaxPool1d(3, 2, 1, ceil_mode=True), (2, 4, 9), "MaxPool"),
    (nn.MaxPool2d(3, 2, 1, return_indices=True), (2, 4, 7, 6), "MaxPool"),
    (nn.AvgPool1d(4, 3, 2, ceil_mode=True, count_include_pad=False), (2, 4, 9), "AveragePool"),
    (nn.AvgPool2d(3, 2, 1, ceil_mode=True), (2, 4, 7, 6), "AveragePool"),
    (nn.AdaptiveAvgPool1d(1), (2, 4, 9), "GlobalAveragePool"),
    (nn.AdaptiveAvgPool1d(3), (2, 4, 9), "AveragePool"),
    (nn.AdaptiveAvgPool1d(4), (2, 4, 9), "MatMul"),
    (nn.AdaptiveAvgPool2d((3, 4)), (2, 4, 7, 6), "MatMul"),
    (nn.AdaptiveMaxPool1d(1), (2, 4, 9), "GlobalMaxPool"),
    (nn.AdaptiveMaxPool1d(3), (2, 4, 9), "MaxPool"),
    (nn.BatchNorm1d(4), (2, 4, 9), "BatchNormalization"),
    (nn.BatchNorm2d(4), (2, 4, 7, 6), "BatchNormalization"),
    (nn.Flatten(), (2, 4, 7, 6), "Flatten"),
]


@pytest.mark.parametrize(("module", "shape", "op_type"), EXPORTS, ids=_ids)
def test_layer_exports_as_its_onnx_op(module: Any, shape: tuple[int, ...], op_type: str) -> None:
    if isinstance(module, nn.BatchNorm1d | nn.BatchNorm2d):
        module(tracer.tensor(_x(*shape, seed=5).astype(np.float32)))  # non-trivial statistics
    ops = export_check(module, [_x(*shape).astype(np.float32)], [op_type])
    if op_type in ("Conv", "BatchNormalization", "AveragePool", "GlobalAveragePool", "Flatten"):
        assert ops == [op_type]


def test_cnn_text_classifier_exports_with_dynamic_batch_and_length() -> None:
    """A Kim-style CNN: Conv1d, BatchNorm1d, global max pooling over a dynamic length."""
    model = nn.Sequential(
        nn.Conv1d(4, 6, 3, padding=1), nn.BatchNorm1d(6), nn.ReLU(), nn.AdaptiveMaxPool1d(1),
        nn.Flatten(), nn.Linear(6, 2),
    )  # fmt: skip
    model(tracer.tensor(_x(3, 4, 7).astype(np.float32)))  # train-mode step: running stats
    axes = {"input": {0: "batch", 2: "length"}}
    ops = export_check(
        model,
        [_x(2, 4, 9).astype(np.float32)],
        ["Conv", "BatchNormalization", "GlobalMaxPool"],
        dynamic_axes=axes,
        feeds=[_x(5, 4, 13, seed=3).astype(np.float32)],
    )
    assert "MaxPool" not in ops
