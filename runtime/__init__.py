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
"""

from ir._packages import import_own

import_own("export")  # graphcap's, even beside a user's export.py (see ir._packages)

from runtime.errors import (
    BackendUnavailableError,
    DeviceFallbackWarning,
    FeedError,
    NodeExecutionError,
)
from runtime.numpy_interpreter import Interpreter
from runtime.session import Session, load
from runtime.signature import Signature

__all__ = [
    "BackendUnavailableError",
    "DeviceFallbackWarning",
    "FeedError",
    "Interpreter",
    "NodeExecutionError",
    "Session",
    "Signature",
    "load",
]
