"""``torch.nn.modules.activation``'s path: activations and attention.

Defined in ``activation.py``, ``attention.py`` and ``layers.py`` of ``tracer/nn``; re-exported.
"""

from tracer.nn.activation import Hardtanh, Mish, SiLU
from tracer.nn.attention import MultiheadAttention
from tracer.nn.layers import (
    GELU,
    LeakyReLU,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
)

__all__ = [
    "GELU",
    "Hardtanh",
    "LeakyReLU",
    "LogSoftmax",
    "Mish",
    "MultiheadAttention",
    "ReLU",
    "SiLU",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
]
