"""``tracer.nn``: modules, parameters, initialisers and the functional API (PyTorch's names)."""

from tracer._missing import missing_attribute
from tracer.nn import functional, init, utils
from tracer.nn.activation import Hardtanh, Mish, SiLU
from tracer.nn.attention import MultiheadAttention
from tracer.nn.batchnorm import BatchNorm1d, BatchNorm2d
from tracer.nn.bilinear import Bilinear
from tracer.nn.containers import ModuleDict, ModuleList, Sequential
from tracer.nn.conv import Conv1d, Conv2d
from tracer.nn.distance import CosineSimilarity, PairwiseDistance
from tracer.nn.embedding_bag import EmbeddingBag
from tracer.nn.flatten import Flatten, Unflatten
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
from tracer.nn.loss import (
    BCELoss,
    BCEWithLogitsLoss,
    CosineEmbeddingLoss,
    CrossEntropyLoss,
    HuberLoss,
    KLDivLoss,
    L1Loss,
    MarginRankingLoss,
    MSELoss,
    NLLLoss,
    SmoothL1Loss,
)
from tracer.nn.module import Module, Parameter
from tracer.nn.padding import ConstantPad1d, ConstantPad2d, ZeroPad1d, ZeroPad2d
from tracer.nn.pooling import (
    AdaptiveAvgPool1d,
    AdaptiveAvgPool2d,
    AdaptiveMaxPool1d,
    AvgPool1d,
    AvgPool2d,
    MaxPool1d,
    MaxPool2d,
)
from tracer.nn.rnn import GRU, LSTM, RNN, RNNBase
from tracer.nn.rnn_cell import GRUCell, LSTMCell, RNNCell, RNNCellBase
from tracer.nn.transformer import (
    PositionalEmbedding,
    SinusoidalPositionalEmbedding,
    TransformerDecoderLayer,
    TransformerEncoder,
    TransformerEncoderLayer,
)
from tracer.nn.transformer_model import Transformer, TransformerDecoder

__all__ = [
    "AdaptiveAvgPool1d",
    "AdaptiveAvgPool2d",
    "AdaptiveMaxPool1d",
    "AvgPool1d",
    "AvgPool2d",
    "BCELoss",
    "BCEWithLogitsLoss",
    "BatchNorm1d",
    "BatchNorm2d",
    "Bilinear",
    "ConstantPad1d",
    "ConstantPad2d",
    "Conv1d",
    "Conv2d",
    "CosineEmbeddingLoss",
    "CosineSimilarity",
    "CrossEntropyLoss",
    "Dropout",
    "Embedding",
    "EmbeddingBag",
    "Flatten",
    "GELU",
    "GRU",
    "GRUCell",
    "Hardtanh",
    "HuberLoss",
    "Identity",
    "KLDivLoss",
    "L1Loss",
    "LSTM",
    "LSTMCell",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "MarginRankingLoss",
    "MaxPool1d",
    "MaxPool2d",
    "Mish",
    "Module",
    "ModuleDict",
    "ModuleList",
    "MultiheadAttention",
    "NLLLoss",
    "PairwiseDistance",
    "Parameter",
    "PositionalEmbedding",
    "RNN",
    "RNNBase",
    "RNNCell",
    "RNNCellBase",
    "ReLU",
    "Sequential",
    "SiLU",
    "Sigmoid",
    "SinusoidalPositionalEmbedding",
    "SmoothL1Loss",
    "Softmax",
    "Softplus",
    "Tanh",
    "Transformer",
    "TransformerDecoder",
    "TransformerDecoderLayer",
    "TransformerEncoder",
    "TransformerEncoderLayer",
    "Unflatten",
    "ZeroPad1d",
    "ZeroPad2d",
    "functional",
    "init",
    "modules",
    "parallel",
    "parameter",
    "utils",
]

# torch.nn.modules.* and torch.nn.parameter paths, and nn.parallel (DistributedDataParallel),
# imported last: they build on the above.
from tracer.nn import modules, parallel, parameter


def __getattr__(name: str) -> object:
    # A torch.nn name graphcap lacks: say so, and point at the closest graphcap way.
    raise missing_attribute("tracer.nn", name, globals())
