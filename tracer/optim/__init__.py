"""``tracer.optim``: optimizers and learning-rate schedulers with PyTorch's semantics."""

from tracer.optim import lr_scheduler
from tracer.optim.adam import Adam, AdamW
from tracer.optim.lr_scheduler import (
    get_cosine_schedule_with_warmup,
    get_linear_schedule_with_warmup,
)
from tracer.optim.optimizer import Optimizer
from tracer.optim.sgd import SGD

__all__ = [
    "SGD",
    "Adam",
    "AdamW",
    "Optimizer",
    "get_cosine_schedule_with_warmup",
    "get_linear_schedule_with_warmup",
    "lr_scheduler",
]


def __getattr__(name: str) -> object:
    # A torch.optim name graphcap lacks: say so, and point at the optimizers it has.
    from tracer._missing import missing_attribute

    raise missing_attribute("tracer.optim", name, globals())
