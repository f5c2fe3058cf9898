"""``tracer.utils``: ``torch.utils``'s ``data`` (datasets, samplers, ``DataLoader``)."""

from tracer._missing import missing_attribute
from tracer.utils import data

__all__ = ["data"]


def __getattr__(name: str) -> object:
    # torch.utils.checkpoint, tensorboard, ...: say graphcap lacks them, and what to use.
    raise missing_attribute("tracer.utils", name, globals())
