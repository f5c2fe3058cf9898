"""``com.microsoft`` ops: the contrib ops onnxruntime's transformer optimizer and quantizer write.

Importing this package registers them (domain ``"com.microsoft"``, version 1), so a model
that onnxruntime's ``optimize_model`` fused (BERT's ``EmbedLayerNormalization``,
``Attention``, ``SkipLayerNormalization``, ``BiasGelu``...) loads and runs on the
interpreter. Each op reuses the kernel and vjp of the ONNX op it fuses wherever one exists.
Their schemas, as onnxruntime declares them, are data in ``schemas``; the ONNX codec reads
them (``export.onnx.microsoft``). ``SimplifiedLayerNormalization`` (``rms``) is the one
onnxruntime op here that it registers in the default ONNX domain.
"""

from ir.ops.microsoft import activation, attention, matmul, norm, quant, rms  # noqa: F401
