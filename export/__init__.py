"""graphcap's ONNX boundary: write an ``ir.Graph`` as ``.onnx``, read one back, and the CLI.

- ``save(graph, path, opset=None, external_data=None)`` writes a standard ONNX file
  (``ir_version`` 10, default opset ``DEFAULT_OPSET`` = 20, weights in ``<file>.data`` past
  protobuf's 2 GB limit), atomically; ``to_model(graph, opset=None)`` builds the
  ``onnx.ModelProto`` in memory.
- ``load(path)`` / ``from_model(model, base_dir=None)`` read a model back into an
  ``ir.Graph``, normalising older opsets' forms into the registry's opset-20 form.
- ``export.cli`` is the ``graphcap`` command.
"""

import export.schemas  # noqa: F401  (registers graphcap's own op schemas with onnx)
from export.reader import from_model, load
from export.writer import DEFAULT_OPSET, save, to_model

__all__ = ["DEFAULT_OPSET", "from_model", "load", "save", "to_model"]
