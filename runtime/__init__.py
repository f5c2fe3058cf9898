"""graphcap's runtime: executes an ``ir.Graph``, an ``.onnx`` file or an ``onnx.ModelProto``.

``Session(model, device="cpu"|"cuda", backend="auto"|"interpreter"|"onnxruntime")`` is the
entry point; ``Session.run(feeds) -> dict[str, np.ndarray]`` validates the feeds against
``Session.input_signature`` (names, dtypes, ranks, static and symbolic dims) and runs one of:

- the NumPy interpreter (``runtime.numpy_interpreter.Interpreter``): graphcap's reference
  semantics and embedded runtime. It calls each registry op's kernel, frees every value
  after its last use, returns any value of the graph on request, and reports a failing node
  with its text form and the source line it was traced from;
- onnxruntime (``runtime.ort_backend.OrtBackend``), on CPU, or on CUDA through IOBinding. It
  reports the providers that really run and warns when CUDA was asked for but not granted.

``"auto"`` picks onnxruntime when it can load the model and the interpreter otherwise.
``load(path, **kwargs)`` opens an ``.onnx`` file as a ``Session``. Sessions are thread-safe.
``set_num_threads(n)`` / ``get_num_threads()`` (``runtime.threads``) govern NumPy's BLAS
threads and the intra-op threads of onnxruntime sessions opened afterwards.

``Pipeline.load(folder)`` runs a pipeline folder (tokenizer, model, post-processing) written
by ``save_pipeline``: ``pipe(["great film", "dull"])`` gives labels and scores.
``runtime.text`` holds the tokenizers and vocabularies it needs (NumPy and the standard
library only).

The names are imported on first use, so ``import runtime.text`` does not load onnx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ir._packages import import_own

if TYPE_CHECKING:
    from runtime.errors import (
        BackendUnavailableError,
        DeviceFallbackWarning,
        FeedError,
        NodeExecutionError,
    )
    from runtime.numpy_interpreter import Interpreter
    from runtime.pipeline import Pipeline, PipelineError, PipelineInputError, save_pipeline
    from runtime.session import Session, load
    from runtime.signature import Signature
    from runtime.threads import get_num_threads, set_num_threads

_WHERE = {
    "BackendUnavailableError": "runtime.errors",
    "DeviceFallbackWarning": "runtime.errors",
    "FeedError": "runtime.errors",
    "Interpreter": "runtime.numpy_interpreter",
    "NodeExecutionError": "runtime.errors",
    "Pipeline": "runtime.pipeline",
    "PipelineError": "runtime.pipeline",
    "PipelineInputError": "runtime.pipeline",
    "Session": "runtime.session",
    "Signature": "runtime.signature",
    "get_num_threads": "runtime.threads",
    "load": "runtime.session",
    "save_pipeline": "runtime.pipeline",
    "set_num_threads": "runtime.threads",
}

__all__ = [
    "BackendUnavailableError",
    "DeviceFallbackWarning",
    "FeedError",
    "Interpreter",
    "NodeExecutionError",
    "Pipeline",
    "PipelineError",
    "PipelineInputError",
    "Session",
    "Signature",
    "get_num_threads",
    "load",
    "save_pipeline",
    "set_num_threads",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'runtime' has no attribute {name!r}")
    import_own("export")  # graphcap's, even beside a user's export.py (see ir._packages)
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
