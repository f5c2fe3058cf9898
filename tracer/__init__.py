"""graphcap's user-facing package: eager tensors with autograd, PyTorch names."""

import builtins

from ir._packages import import_own

# graphcap's, even beside a user's runtime.py or export.py (see ir._packages).
import_own("export", "runtime")

from ir.dtypes import bool_ as bool
from ir.dtypes import float16, float32, float64, int8, int16, int32, int64, uint8
from runtime.threads import get_num_threads, set_num_threads
from tracer import autograd
from tracer._creation import (
    Generator,
    arange,
    empty,
    empty_like,
    eye,
    full,
    full_like,
    linspace,
    manual_seed,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    randperm,
    zeros,
    zeros_like,
)
from tracer._device import DeviceError, device
from tracer._functions import (
    broadcast_to,
    cat,
    concat,
    concatenate,
    einsum,
    maximum,
    minimum,
    stack,
    where,
)
from tracer._functions import pow as pow  # re-exported; not in __all__ (a builtin's name)
from tracer._inference import inference_mode, is_inference_mode_enabled
from tracer._missing import MissingFeatureError, missing_attribute
from tracer._random import bernoulli, multinomial
from tracer._reduce import ValuesIndices
from tracer._tensor_types import (
    BoolTensor,
    ByteTensor,
    CharTensor,
    DoubleTensor,
    FloatTensor,
    HalfTensor,
    IntTensor,
    LongTensor,
    ShortTensor,
)
from tracer.autograd import enable_grad, is_grad_enabled, no_grad, set_grad_enabled
from tracer.compile import Compiled, compile
from tracer.control_flow import cond, while_loop
from tracer.tensor import Tensor, as_tensor, from_numpy, tensor
from tracer.trace import TraceError, trace
from tracer.train_step import TrainStep, compile_step

# PyTorch's dtype aliases; ``float`` and ``int`` stay out of __all__ so that
# ``from tracer import *`` does not shadow the builtins.
float = float32
double = float64
half = float16
long = int64
int = int32
short = int16


def is_tensor(obj: object) -> builtins.bool:
    """Whether ``obj`` is a ``tracer.Tensor``."""
    return isinstance(obj, Tensor)


# Functions that are also methods: the methods themselves, so both spellings agree. Those
# named like builtins (abs all any max min pow round sum) stay out of __all__, as above.
abs = Tensor.abs
neg = Tensor.neg
sign = Tensor.sign
exp = Tensor.exp
log = Tensor.log
sqrt = Tensor.sqrt
rsqrt = Tensor.rsqrt
reciprocal = Tensor.reciprocal
sin = Tensor.sin
cos = Tensor.cos
tanh = Tensor.tanh
sigmoid = Tensor.sigmoid
erf = Tensor.erf
relu = Tensor.relu
floor = Tensor.floor
ceil = Tensor.ceil
trunc = Tensor.trunc
round = Tensor.round
clamp = Tensor.clamp
clip = Tensor.clip
masked_fill = Tensor.masked_fill
add = Tensor.add
sub = Tensor.sub
mul = Tensor.mul
div = Tensor.div
true_divide = Tensor.true_divide
floor_divide = Tensor.floor_divide
remainder = Tensor.remainder
fmod = Tensor.fmod
matmul = Tensor.matmul
dot = Tensor.dot
mm = Tensor.mm
mv = Tensor.mv
bmm = Tensor.bmm
addmm = Tensor.addmm
baddbmm = Tensor.baddbmm
addcmul = Tensor.addcmul
addcdiv = Tensor.addcdiv
lerp = Tensor.lerp
square = Tensor.square
masked_select = Tensor.masked_select
eq = Tensor.eq
ne = Tensor.ne
lt = Tensor.lt
le = Tensor.le
gt = Tensor.gt
ge = Tensor.ge
logical_not = Tensor.logical_not
logical_and = Tensor.logical_and
logical_or = Tensor.logical_or
logical_xor = Tensor.logical_xor
isnan = Tensor.isnan
isinf = Tensor.isinf
isfinite = Tensor.isfinite
sum = Tensor.sum
prod = Tensor.prod
mean = Tensor.mean
var = Tensor.var
std = Tensor.std
amax = Tensor.amax
amin = Tensor.amin
max = Tensor.max
min = Tensor.min
argmax = Tensor.argmax
argmin = Tensor.argmin
all = Tensor.all
any = Tensor.any
logsumexp = Tensor.logsumexp
norm = Tensor.norm
cumsum = Tensor.cumsum
softmax = Tensor.softmax
log_softmax = Tensor.log_softmax
topk = Tensor.topk
sort = Tensor.sort
argsort = Tensor.argsort
reshape = Tensor.reshape
flatten = Tensor.flatten
unflatten = Tensor.unflatten
transpose = Tensor.transpose
swapaxes = Tensor.swapaxes
t = Tensor.t
permute = Tensor.permute
unsqueeze = Tensor.unsqueeze
squeeze = Tensor.squeeze
split = Tensor.split
chunk = Tensor.chunk
unbind = Tensor.unbind
narrow = Tensor.narrow
gather = Tensor.gather
index_select = Tensor.index_select
tril = Tensor.tril
triu = Tensor.triu
flip = Tensor.flip
clone = Tensor.clone
numel = Tensor.numel

__all__ = [
    "BoolTensor",
    "ByteTensor",
    "CharTensor",
    "DeviceError",
    "DoubleTensor",
    "FloatTensor",
    "Generator",
    "HalfTensor",
    "IntTensor",
    "LongTensor",
    "MissingFeatureError",
    "ShortTensor",
    "addcdiv",
    "addcmul",
    "addmm",
    "baddbmm",
    "bernoulli",
    "bmm",
    "device",
    "get_num_threads",
    "inference_mode",
    "is_inference_mode_enabled",
    "lerp",
    "masked_select",
    "mm",
    "multinomial",
    "mv",
    "square",
    "TraceError",
    "trace",
    "cond",
    "while_loop",
    "compile",
    "compile_step",
    "TrainStep",
    "Compiled",
    "Tensor",
    "ValuesIndices",
    "add",
    "amax",
    "amin",
    "arange",
    "argmax",
    "argmin",
    "argsort",
    "as_tensor",
    "autograd",
    "bool",
    "broadcast_to",
    "cat",
    "ceil",
    "chunk",
    "clamp",
    "clip",
    "clone",
    "concat",
    "concatenate",
    "cos",
    "cumsum",
    "div",
    "dot",
    "double",
    "einsum",
    "empty",
    "empty_like",
    "enable_grad",
    "eq",
    "erf",
    "exp",
    "eye",
    "flatten",
    "flip",
    "float16",
    "float32",
    "float64",
    "floor",
    "floor_divide",
    "fmod",
    "from_numpy",
    "full",
    "full_like",
    "gather",
    "ge",
    "gt",
    "half",
    "index_select",
    "int8",
    "int16",
    "int32",
    "int64",
    "is_grad_enabled",
    "is_tensor",
    "isfinite",
    "isinf",
    "isnan",
    "le",
    "linspace",
    "log",
    "log_softmax",
    "logical_and",
    "logical_not",
    "logical_or",
    "logical_xor",
    "logsumexp",
    "long",
    "lt",
    "manual_seed",
    "masked_fill",
    "matmul",
    "maximum",
    "mean",
    "minimum",
    "mul",
    "narrow",
    "ne",
    "neg",
    "no_grad",
    "norm",
    "numel",
    "ones",
    "ones_like",
    "permute",
    "prod",
    "rand",
    "rand_like",
    "randint",
    "randn",
    "randn_like",
    "randperm",
    "reciprocal",
    "relu",
    "remainder",
    "reshape",
    "rsqrt",
    "set_grad_enabled",
    "set_num_threads",
    "short",
    "sigmoid",
    "sign",
    "sin",
    "softmax",
    "sort",
    "split",
    "sqrt",
    "squeeze",
    "stack",
    "std",
    "sub",
    "swapaxes",
    "t",
    "tanh",
    "tensor",
    "topk",
    "transpose",
    "tril",
    "triu",
    "true_divide",
    "trunc",
    "uint8",
    "unbind",
    "unflatten",
    "unsqueeze",
    "var",
    "where",
    "zeros",
    "zeros_like",
]

# Subpackages, imported last: they build on everything above (``tracer.nn`` as ``torch.nn``).
from tracer import accelerator, cuda, data, distributed, metrics, nn, onnx, optim, utils
from tracer.serialization import load, save

__all__ += [
    "accelerator",
    "cuda",
    "data",
    "distributed",
    "load",
    "metrics",
    "nn",
    "onnx",
    "optim",
    "save",
    "utils",
]

# Pretrained models by name and text generation build on nn and data.
from tracer import generation, models

__all__ += ["generation", "models"]


# Fix the thread default now (runtime.threads): NumPy's BLAS is used from the first op on.
get_num_threads()


def __getattr__(name: str) -> object:
    # A PyTorch name graphcap lacks: say so, and point at the closest graphcap way.
    raise missing_attribute("tracer", name, globals())
