"""The error for PyTorch names graphcap does not have: what is missing, and the closest way.

``tracer``, ``tracer.nn``, ``tracer.nn.functional``, ``tracer.optim``, ``tracer.utils`` and
``Tensor`` send attribute misses here (module ``__getattr__`` / ``Tensor.__getattr__``), so
``torch.jit.trace`` ported as ``tracer.jit.trace`` fails with a message that names PyTorch's
API, says graphcap lacks it, and points at what to use, instead of a bare AttributeError.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from ir.errors import GraphcapError

_TRACE = (
    "graphcap captures eager code as a graph with tracer.trace(model, example_inputs) or "
    "tracer.compile(model), and writes ONNX with tracer.onnx.export(model, args, 'model.onnx')"
)
_DENSE = "graphcap tensors are dense NumPy arrays; use dense tensors and layers"
_NUMPY = "graphcap tensors are NumPy arrays underneath: use tensor.numpy() (shares memory)"
_NO_CTC = "graphcap has no CTC loss; its sequence losses are F.cross_entropy and F.nll_loss"
_RESAMPLE = "graphcap has no resampling or image ops (it targets text models)"

# PyTorch name -> the closest graphcap way. Names not listed get close matches instead.
HINTS: dict[str, str] = {
    "torch.jit": _TRACE,
    "torch.export": _TRACE,
    "torch.fx": _TRACE + "; the result is an ir.Graph you can print and transform",
    "torch.fft": "graphcap has no FFT ops; use numpy.fft on tensor.numpy()",
    "torch.stft": "graphcap has no FFT ops; use numpy.fft on tensor.numpy()",
    "torch.sparse": _DENSE,
    "torch.sparse_coo_tensor": _DENSE,
    "torch.distributions": (
        "graphcap has no distributions module; sample with tracer.multinomial, "
        "tracer.bernoulli or tracer.randn and write log-probabilities with tensor ops "
        "(F.log_softmax, ...)"
    ),
    "torch.hub": (
        "graphcap has no model hub; load a safetensors state dict with tracer.load(path) and "
        "model.load_state_dict(...)"
    ),
    "torch.backends": (
        "graphcap has no backend switches (cudnn, mps, ...): eager tensors run on NumPy on "
        "the CPU; for reproducibility call tracer.manual_seed(seed)"
    ),
    "torch.amp": (
        "graphcap has no autocast; cast explicitly (model.half(), tensor.to(tracer.float16))"
    ),
    "torch.autocast": (
        "graphcap has no autocast; cast explicitly (model.half(), tensor.to(tracer.float16))"
    ),
    "torch.quantization": (
        "graphcap has no quantization; export with tracer.onnx.export and quantize the ONNX "
        "file with onnxruntime.quantization"
    ),
    "torch.ao": (
        "graphcap has no quantization; export with tracer.onnx.export and quantize the ONNX "
        "file with onnxruntime.quantization"
    ),
    "torch.complex64": "graphcap has no complex dtypes; keep real and imaginary parts apart",
    "torch.complex128": "graphcap has no complex dtypes; keep real and imaginary parts apart",
    "torch.cfloat": "graphcap has no complex dtypes; keep real and imaginary parts apart",
    "torch.view_as_complex": "graphcap has no complex dtypes; keep real and imaginary parts apart",
    "torch.vmap": "graphcap has no vmap; batch explicitly (graphcap ops broadcast as PyTorch's)",
    "torch.func": (
        "graphcap has no functorch transforms; use tracer.autograd.grad for gradients and "
        "batch explicitly"
    ),
    "torch.set_default_device": (
        "eager tensors always live on the CPU; CUDA runs compiled graphs "
        "(tracer.compile(model, device='cuda'))"
    ),
    "torch.profiler": "graphcap has no profiler; time with time.perf_counter or cProfile",
    "torch.Size": "shapes are plain tuples of ints: use tuple(t.shape)",
    "torch.nn.DataParallel": (
        "graphcap runs an eager model in one process on the CPU; for several processes (or "
        "machines) use tracer.nn.parallel.DistributedDataParallel under mpirun; for a GPU, "
        "compile it: tracer.compile(model, device='cuda')"
    ),
    "torch.nn.Conv3d": "graphcap's convolutions are nn.Conv1d and nn.Conv2d",
    "torch.nn.ConvTranspose1d": "graphcap's convolutions are nn.Conv1d and nn.Conv2d",
    "torch.nn.ConvTranspose2d": "graphcap's convolutions are nn.Conv1d and nn.Conv2d",
    "torch.nn.CTCLoss": _NO_CTC,
    "torch.nn.functional.ctc_loss": _NO_CTC,
    "torch.nn.Upsample": _RESAMPLE,
    "torch.nn.functional.interpolate": _RESAMPLE,
    "torch.nn.functional.grid_sample": _RESAMPLE,
    "torch.nn.functional.unfold": "graphcap has no im2col; use F.conv1d / F.conv2d",
    "torch.nn.functional.fold": "graphcap has no col2im; use F.conv1d / F.conv2d",
    "torch.Tensor.register_hook": (
        "graphcap has no gradient hooks but register_post_accumulate_grad_hook (on leaves); "
        "read .grad after backward(), or get any tensor's gradient with "
        "tracer.autograd.grad(loss, [tensor])"
    ),
    "torch.Tensor.retain_grad": (
        "graphcap keeps .grad for leaves only; get a non-leaf's gradient with "
        "tracer.autograd.grad(loss, [tensor])"
    ),
    "torch.Tensor.storage": _NUMPY,
    "torch.Tensor.untyped_storage": _NUMPY,
    "torch.Tensor.data_ptr": _NUMPY + " and its .ctypes.data",
    "torch.Tensor.stride": _NUMPY + " and its .strides (in bytes)",
    "torch.Tensor.as_strided": _NUMPY + " with numpy.lib.stride_tricks",
    "torch.Tensor.to_sparse": _DENSE,
    "torch.Tensor.to_dense": _DENSE + " (every tensor already is dense)",
    "torch.Tensor.unfold": (
        "graphcap has no sliding-window unfold; stack slices (tracer.stack([x[i:i + k] "
        "for i in ...])) or use F.conv1d"
    ),
    "torch.Tensor.record_stream": "eager tensors live on the CPU; there are no CUDA streams",
    "torch.optim.LBFGS": "graphcap's optimizers are SGD, Adam and AdamW",
    "torch.optim.RMSprop": "graphcap's optimizers are SGD, Adam and AdamW",
    "torch.optim.Adagrad": "graphcap's optimizers are SGD, Adam and AdamW",
    "torch.utils.checkpoint": "graphcap has no activation checkpointing",
    "torch.utils.tensorboard": (
        "graphcap has no TensorBoard writer; log tensor.item() values with the tensorboard "
        "package's SummaryWriter"
    ),
    "torch.utils.cpp_extension": "graphcap has no C++ extensions: ops live in ir/ops/",
}

_TORCH_NAME = {
    "tracer": "torch",
    "tracer.nn": "torch.nn",
    "tracer.nn.functional": "torch.nn.functional",
    "tracer.optim": "torch.optim",
    "tracer.utils": "torch.utils",
    "Tensor": "torch.Tensor",
}


class MissingFeatureError(GraphcapError, AttributeError):
    """A PyTorch name graphcap does not have (an ``AttributeError``, so ``hasattr`` works)."""


def missing_attribute(owner: str, name: str, known: Iterable[str] = ()) -> AttributeError:
    """The error for ``<owner>.<name>``, which does not exist.

    Args:
        owner: ``"tracer"``, ``"tracer.nn"``, ``"tracer.nn.functional"``, ``"tracer.optim"``,
            ``"tracer.utils"`` or ``"Tensor"``.
        name: the attribute asked for.
        known: the owner's names, for "did you mean" suggestions.
    """
    if name.startswith("_"):
        # Private and protocol names (__array_interface__, _repr_html_): plain and fast.
        return AttributeError(f"{owner!r} object has no attribute {name!r}")
    torch_name = f"{_TORCH_NAME.get(owner, owner)}.{name}"
    hint = HINTS.get(torch_name)
    if hint is None:
        public = [k for k in known if not k.startswith("_")]
        close = difflib.get_close_matches(name, public, n=3, cutoff=0.75)
        hint = (
            f"did you mean {', '.join(f'{owner}.{c}' for c in close)}?"
            if close
            else "see README.md, 'Moving a PyTorch script', for what carries over"
        )
    return MissingFeatureError(
        f"{owner} has no attribute {name!r}: graphcap does not have PyTorch's {torch_name}; {hint}"
    )
