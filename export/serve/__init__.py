"""``graphcap serve``: models and pipelines over HTTP (the serving layer, on top of the stack).

- ``export.serve.cli``: the ``serve`` subcommand (uvicorn); ``export.serve.pipeline_cli``: the
  ``pipeline`` subcommand, which writes pipeline folders (``runtime.save_pipeline``);
- ``export.serve.app``: the Starlette application (KServe/Triton v2 protocol, ``:predict``,
  ``/metrics``, ``/openapi.json``, a page at ``/``);
- ``export.serve.batcher``: dynamic batching; ``export.serve.models``: pipelines and plain
  ONNX models as served models; ``export.serve.repository``: finding and reloading them;
  ``export.serve.tensors``: the v2 protocol's tensors (JSON and binary);
  ``export.serve.metrics``: Prometheus metrics.

Starlette and uvicorn come with the ``serve`` extra (``pip install 'graphcap[serve]'``);
only ``export.serve.app`` and the running command import them.
"""
