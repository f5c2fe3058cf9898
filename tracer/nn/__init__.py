"""``tracer.nn``: modules, parameters, initialisers and the functional API (PyTorch's names)."""

from tracer.nn import functional, init, utils
from tracer.nn.attention import MultiheadAttention
from tracer.nn.containers import ModuleDict, ModuleList, Sequential
from tracer.nn.layers import (
    GELU,
    Dropout,
    Embedding,
    Identity,
    LayerNorm,
    LeakyReLU,
    Linear,
    LogSoftmax,
    ReLU,
    Sigmoid,
    Softmax,
    Softplus,
    Tanh,
)
from tracer.nn.module import Module, Parameter
from tracer.nn.rnn import GRU, LSTM, RNN
from tracer.nn.transformer import (
    PositionalEmbedding,
    SinusoidalPositionalEmbedding,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)

__all__ = [
    "GELU",
    "GRU",
    "LSTM",
    "RNN",
    "MultiheadAttention",
    "PositionalEmbedding",
    "SinusoidalPositionalEmbedding",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "Dropout",
    "Embedding",
    "Identity",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "Module",
    "ModuleDict",
    "ModuleList",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Softplus",
    "Tanh",
    "functional",
    "init",
    "utils",
]
