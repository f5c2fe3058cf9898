"""graphcap's ONNX codec: write an ``ir.Graph`` as ``.onnx``, read one back.

- ``save(graph, path, opset=None, external_data=None)`` writes a standard ONNX file
  (``ir_version`` 10, default opset ``DEFAULT_OPSET`` = 20, weights in ``<file>.data`` past
  protobuf's 2 GB limit), atomically; ``to_model(graph, opset=None)`` builds the
  ``onnx.ModelProto`` in memory (``writer``).
- ``load(path)`` / ``from_model(model, base_dir=None)`` read a model back into an
  ``ir.Graph``, normalising older opsets' forms into the registry's opset-20 form
  (``reader``; ``compat`` says which newer op versions mean the same).
- ``schemas`` registers graphcap's own ``ai.graphcap`` op schemas with onnx on import;
  ``microsoft`` gives the codec onnxruntime's schemas of the contrib ops the registry
  implements (not registered with onnx).

The codec is the layer just above ``ir``: it imports only ``ir``, ``onnx`` (with its
protobuf), NumPy and the standard library, so ``runtime`` and ``tracer`` can use it.
"""

import export.onnx.schemas  # noqa: F401  (registers graphcap's own op schemas with onnx)
from export.onnx.reader import from_model, load
from export.onnx.writer import DEFAULT_OPSET, save, to_model

__all__ = ["DEFAULT_OPSET", "from_model", "load", "save", "to_model"]
