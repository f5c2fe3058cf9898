"""graphcap's ONNX boundary: the codec (``export.onnx``) and the ``graphcap`` command.

- ``save(graph, path, opset=None, external_data=None)`` writes a standard ONNX file
  (``ir_version`` 10, default opset ``DEFAULT_OPSET`` = 20, weights in ``<file>.data`` past
  protobuf's 2 GB limit), atomically; ``to_model(graph, opset=None)`` builds the
  ``onnx.ModelProto`` in memory.
- ``load(path)`` / ``from_model(model, base_dir=None)`` read a model back into an
  ``ir.Graph``, normalising older opsets' forms into the registry's opset-20 form.

Those five names are ``export.onnx``'s, re-exported here; importing ``export`` imports only
the codec. Above ``tracer`` sit ``export.cli`` (the ``graphcap`` command) and
``export.training`` (training bundles), which are imported only by name.
"""

from export.onnx import DEFAULT_OPSET, from_model, load, save, to_model

__all__ = ["DEFAULT_OPSET", "from_model", "load", "save", "to_model"]
