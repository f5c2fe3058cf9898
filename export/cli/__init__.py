"""The ``graphcap`` command line (also ``python -m export.cli``).

The top layer: it uses ``tracer`` (to trace a model factory), ``runtime`` (to run and verify
a file) and the codec in ``export.onnx``. Modules: ``app`` (the parser, ``main``, ``run`` and
``ops``), ``prepare`` (model factory and example inputs), ``export_command``,
``training_command`` (``export --training``), ``verify`` and ``localise`` (``export
--verify``), ``inspect_command`` and ``common``.
"""

from export.cli.app import main

__all__ = ["main"]
