"""PyTorch names graphcap deliberately lacks, and the error a user meets for each.

The message names the PyTorch API, says graphcap does not have it, and points at the
closest graphcap way (or at close names, for a misspelling).
"""

from __future__ import annotations

import importlib.util

import pytest

import tracer
import tracer.nn as nn
import tracer.nn.functional as F  # noqa: N812 - PyTorch's customary name
import tracer.optim as optim
from tracer import MissingFeatureError

# (owner, name, a fragment of the pointer to the graphcap way)
MISSING = [
    (tracer, "jit", "tracer.trace"),
    (tracer, "export", "tracer.onnx.export"),
    (tracer, "fx", "ir.Graph"),
    (tracer, "fft", "numpy.fft"),
    (tracer, "stft", "numpy.fft"),
    (tracer, "sparse", "dense"),
    (tracer, "distributions", "tracer.multinomial"),
    (tracer, "hub", "tracer.load"),
    (tracer, "backends", "tracer.manual_seed"),
    (tracer, "amp", "model.half()"),
    (tracer, "autocast", "model.half()"),
    (tracer, "quantization", "onnxruntime.quantization"),
    (tracer, "complex64", "complex"),
    (tracer, "vmap", "batch explicitly"),
    (tracer, "func", "tracer.autograd.grad"),
    (tracer, "set_default_device", "tracer.compile(model, device='cuda')"),
    (tracer, "profiler", "perf_counter"),
    (tracer, "Size", "tuple(t.shape)"),
    (tracer, "arangee", "did you mean tracer.arange"),
    (nn, "DataParallel", "tracer.compile(model, device='cuda')"),
    (nn, "Conv3d", "nn.Conv1d and nn.Conv2d"),
    (nn, "ConvTranspose1d", "nn.Conv1d and nn.Conv2d"),
    (nn, "CTCLoss", "F.cross_entropy"),
    (nn, "Upsample", "text models"),
    (nn, "Linaer", "did you mean tracer.nn.Linear"),
    (F, "ctc_loss", "F.cross_entropy"),
    (F, "interpolate", "text models"),
    (F, "grid_sample", "text models"),
    (F, "unfold", "F.conv1d"),
    (F, "log_softmx", "did you mean tracer.nn.functional.log_softmax"),
    (optim, "LBFGS", "SGD, Adam and AdamW"),
    (optim, "RMSprop", "SGD, Adam and AdamW"),
    (tracer.utils, "checkpoint", "activation checkpointing"),
    (tracer.utils, "tensorboard", "SummaryWriter"),
]

TENSOR_MISSING = [
    ("register_hook", "tracer.autograd.grad"),
    ("retain_grad", "tracer.autograd.grad"),
    ("storage", "tensor.numpy()"),
    ("data_ptr", ".ctypes.data"),
    ("stride", ".strides"),
    ("as_strided", "stride_tricks"),
    ("to_sparse", "dense"),
    ("unfold", "tracer.stack"),
    ("record_stream", "CUDA streams"),
    ("unsqueez", "did you mean Tensor.unsqueeze"),
]

_TORCH_PREFIX = {
    "tracer": "torch",
    "tracer.nn": "torch.nn",
    "tracer.nn.functional": "torch.nn.functional",
    "tracer.optim": "torch.optim",
    "tracer.utils": "torch.utils",
}


@pytest.mark.parametrize("owner, name, hint", MISSING, ids=lambda v: getattr(v, "__name__", v))
def test_missing_module_names_say_so_and_point_the_way(owner: object, name: str, hint: str) -> None:
    module = owner.__name__  # type: ignore[attr-defined]
    with pytest.raises(AttributeError) as err:
        getattr(owner, name)
    message = str(err.value)
    assert isinstance(err.value, MissingFeatureError)
    assert f"PyTorch's {_TORCH_PREFIX[module]}.{name}" in message
    assert "graphcap does not have" in message and hint in message
    assert not hasattr(owner, name)  # still an AttributeError, so hasattr and getattr work
    assert getattr(owner, name, "default") == "default"


@pytest.mark.parametrize("name, hint", TENSOR_MISSING)
def test_missing_tensor_attributes_say_so_and_point_the_way(name: str, hint: str) -> None:
    t = tracer.zeros(2)
    with pytest.raises(MissingFeatureError) as err:
        getattr(t, name)
    message = str(err.value)
    assert f"PyTorch's torch.Tensor.{name}" in message and hint in message


def test_protocol_lookups_stay_plain_and_cheap() -> None:
    t = tracer.zeros(2)
    for name in ("__array_interface__", "__array_struct__", "_repr_html_"):
        with pytest.raises(AttributeError) as err:
            getattr(t, name)
        assert not isinstance(err.value, MissingFeatureError)
    with pytest.raises(AttributeError):
        tracer.__wrapped__  # noqa: B018


def test_names_graphcap_lacks_are_real_pytorch_names() -> None:
    torch = pytest.importorskip("torch")
    roots = {
        "tracer": torch,
        "tracer.nn": torch.nn,
        "tracer.nn.functional": torch.nn.functional,
        "tracer.optim": torch.optim,
        "tracer.utils": torch.utils,
    }
    for owner, name, hint in MISSING:
        if not hint.startswith("did you mean"):
            root = roots[owner.__name__]
            exists = hasattr(root, name) or importlib.util.find_spec(f"{root.__name__}.{name}")
            assert exists, f"torch has no {root.__name__}.{name}"
    for name, hint in TENSOR_MISSING:
        if not hint.startswith("did you mean"):
            assert hasattr(torch.Tensor, name), name
