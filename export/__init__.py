"""graphcap's ONNX boundary and command line.

Today this package holds the ``graphcap`` command (``export.cli``), whose ``graphcap ops``
lists the op registry. Planned, with the capture and export issues: ``save(graph, path,
opset=None)`` to write an ``ir.Graph`` as a standard ``.onnx`` file (explicit ``ir_version``
and opset, external data past 2 GB), ``load(path) -> ir.Graph`` to read one back, and
``graphcap`` subcommands to export and inspect models. None of those exist yet.
"""
