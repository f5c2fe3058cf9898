"""``torch.nn.parameter``'s path: ``Parameter`` (defined in ``tracer/nn/module.py``)."""

from tracer.nn.module import Parameter

__all__ = ["Parameter"]
