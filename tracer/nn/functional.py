"""``tracer.nn.functional``: PyTorch's functional API as compositions of registry ops.

Where ONNX has a native op that runtimes fuse, the function lowers to it: ``gelu`` to
``Gelu``, ``layer_norm`` to ``LayerNormalization``, ``dropout`` to ``Dropout``,
``softmax`` to ``Softmax``, ``embedding`` to ``Gather``, ``pad`` to ``Pad``, ``cross_entropy``
to ``SoftmaxCrossEntropyLoss``, ``nll_loss`` to ``NegativeLogLikelihoodLoss``, ``conv1d``/
``conv2d`` to ``Conv``, ``batch_norm`` to ``BatchNormalization``, the pools to ``MaxPool``/
``AveragePool``/``Global*Pool`` and ``mish`` to ``Mish``. Everything
is recorded by autograd and by ``tracer.trace``. Signatures and semantics are PyTorch's;
``inplace=True`` is accepted for compatibility, but results are computed out of place.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ir.errors import DTypeError
from ir.ops.registry import op
from tracer._creation import ones
from tracer._functions import where
from tracer._math import const
from tracer._shape import shape_operand
from tracer._symint import SymInt
from tracer.autograd import is_grad_enabled
from tracer.nn._conv import batch_norm, conv1d, conv2d
from tracer.nn._embedding_bag import embedding_bag
from tracer.nn._functional_misc import (
    bilinear,
    cosine_similarity,
    hardtanh,
    mish,
    pairwise_distance,
)
from tracer.nn._loss import (
    binary_cross_entropy_with_logits,
    cross_entropy,
    nll_loss,
)
from tracer.nn._loss_pointwise import (
    binary_cross_entropy,
    cosine_embedding_loss,
    huber_loss,
    kl_div,
    l1_loss,
    margin_ranking_loss,
    mse_loss,
    smooth_l1_loss,
)
from tracer.nn._pool import (
    adaptive_avg_pool1d,
    adaptive_avg_pool2d,
    adaptive_max_pool1d,
    avg_pool1d,
    avg_pool2d,
    max_pool1d,
    max_pool2d,
)
from tracer.trace import record_decision

if TYPE_CHECKING:
    from tracer.tensor import Tensor

__all__ = [
    "adaptive_avg_pool1d",
    "adaptive_avg_pool2d",
    "adaptive_max_pool1d",
    "avg_pool1d",
    "avg_pool2d",
    "batch_norm",
    "bilinear",
    "binary_cross_entropy",
    "binary_cross_entropy_with_logits",
    "conv1d",
    "conv2d",
    "cosine_embedding_loss",
    "cosine_similarity",
    "cross_entropy",
    "dropout",
    "elu",
    "embedding",
    "embedding_bag",
    "gelu",
    "hardtanh",
    "huber_loss",
    "kl_div",
    "l1_loss",
    "layer_norm",
    "leaky_relu",
    "linear",
    "log_softmax",
    "margin_ranking_loss",
    "max_pool1d",
    "max_pool2d",
    "mish",
    "mse_loss",
    "nll_loss",
    "pad",
    "pairwise_distance",
    "relu",
    "scaled_dot_product_attention",
    "sigmoid",
    "silu",
    "smooth_l1_loss",
    "softmax",
    "softplus",
    "tanh",
]

# ---------------------------------------------------------------- linear and embedding


def linear(input: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``input @ weight.T + bias``, with ``weight`` of shape ``[out_features, in_features]``."""
    out = input.matmul(weight.t())
    return out if bias is None else out + bias


def embedding(
    input: Tensor,
    weight: Tensor,
    padding_idx: int | None = None,
    max_norm: float | None = None,
    norm_type: float = 2.0,
    scale_grad_by_freq: bool = False,
    sparse: bool = False,
) -> Tensor:
    """Rows of ``weight`` picked by the integer ``input`` (ONNX Gather on axis 0).

    Output shape is ``[*input.shape, embedding_dim]``. Positions whose index is
    ``padding_idx`` send no gradient to ``weight`` (their row is still returned).

    Raises:
        DTypeError: ``input`` is not an integer tensor.
        IndexError: an index (or ``padding_idx``) outside ``[0, num_embeddings)``.
        NotImplementedError: ``max_norm``, ``scale_grad_by_freq`` or ``sparse``.
    """
    if max_norm is not None or scale_grad_by_freq or sparse:
        raise NotImplementedError("embedding: max_norm, scale_grad_by_freq and sparse")
    if input._data.dtype.kind not in "iu":
        raise DTypeError(
            "embedding: expected indices of an integer dtype (int64 or int32), "
            f"but got {input._data.dtype}"
        )
    n = weight._data.shape[0]
    if input._data.size and (input._data.min() < 0 or input._data.max() >= n):
        raise IndexError(
            f"embedding: index out of range: indices must be in [0, {n}), got values in "
            f"[{input._data.min()}, {input._data.max()}]"
        )
    out = op.Gather(weight, input, axis=0)
    if padding_idx is None or not weight._requires_grad:
        return out
    padding_idx = _padding_index(padding_idx, n)
    if not is_grad_enabled():
        # A trace for inference leaves the gradient cut out; ir.grad refuses such a graph.
        record_decision(
            "grad-mode", f"gradient cut of embedding(padding_idx={padding_idx})", "left out"
        )
        return out
    # Same values, but the padding positions are detached: no gradient reaches their row.
    keep = (input != padding_idx).unsqueeze(-1)
    return op.Where(keep, out, out.detach())


def _padding_index(padding_idx: int, n: int) -> int:
    if not -n <= padding_idx < n:
        raise IndexError(f"Padding_idx must be within num_embeddings, got {padding_idx} for {n}")
    return padding_idx % n


# ---------------------------------------------------------------- activations


def relu(input: Tensor, inplace: bool = False) -> Tensor:
    """Elementwise ``max(x, 0)`` (ONNX Relu)."""
    return input.relu()


def gelu(input: Tensor, approximate: str = "none") -> Tensor:
    """Gaussian error linear unit (ONNX Gelu), exact (``"none"``) or ``"tanh"``-approximated.

    Raises:
        ValueError: another ``approximate``.
    """
    if approximate not in ("none", "tanh"):
        raise ValueError(f"approximate argument must be either none or tanh, got {approximate!r}")
    return op.Gelu(input, approximate=approximate)


def leaky_relu(input: Tensor, negative_slope: float = 0.01, inplace: bool = False) -> Tensor:
    """``x`` where positive, else ``negative_slope * x`` (ONNX LeakyRelu)."""
    return op.LeakyRelu(input, alpha=float(negative_slope))


def elu(input: Tensor, alpha: float = 1.0, inplace: bool = False) -> Tensor:
    """``x`` where positive, else ``alpha * (exp(x) - 1)`` (ONNX Elu)."""
    return op.Elu(input, alpha=float(alpha))


def silu(input: Tensor, inplace: bool = False) -> Tensor:
    """``x * sigmoid(x)`` (swish)."""
    return input * input.sigmoid()


def tanh(input: Tensor) -> Tensor:
    """Elementwise hyperbolic tangent."""
    return input.tanh()


def sigmoid(input: Tensor) -> Tensor:
    """Elementwise logistic function."""
    return input.sigmoid()


def softplus(input: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """``log(1 + exp(beta * x)) / beta``, and ``x`` itself where ``beta * x > threshold``.

    Lowers to ONNX Softplus; with the default threshold (20) the switch to ``x`` is left
    out, since the two differ there by less than ``exp(-20)``.
    """
    z = input if beta == 1 else input * beta
    out = op.Softplus(z)
    if beta != 1:
        out = out / beta
    if threshold != 20.0:
        out = op.Where(z > threshold, input, out)
    return out


def _softmax_dim(name: str, ndim: int) -> int:
    warnings.warn(
        f"Implicit dimension choice for {name} has been deprecated. "
        "Change the call to include dim=X as an argument.",
        stacklevel=3,
    )
    return 0 if ndim in (0, 1, 3) else 1


def softmax(input: Tensor, dim: int | None = None, dtype: Any = None) -> Tensor:
    """``exp(x) / sum(exp(x))`` along ``dim`` (ONNX Softmax), optionally cast to ``dtype`` first.

    With ``dim=None`` PyTorch's legacy choice applies (0 for 0-, 1- and 3-d input, else 1).
    """
    if dim is None:
        dim = _softmax_dim("softmax", input._data.ndim)
    return input.softmax(dim, dtype=dtype)


def log_softmax(input: Tensor, dim: int | None = None, dtype: Any = None) -> Tensor:
    """``log(softmax(x))`` along ``dim``, computed stably (ONNX LogSoftmax)."""
    if dim is None:
        dim = _softmax_dim("log_softmax", input._data.ndim)
    return input.log_softmax(dim, dtype=dtype)


# ---------------------------------------------------------------- dropout and normalisation


def dropout(input: Tensor, p: float = 0.5, training: bool = True, inplace: bool = False) -> Any:
    """Zero each element with probability ``p`` and scale the rest by ``1 / (1 - p)``.

    Lowers to ONNX Dropout (training mode); when not ``training`` or ``p == 0`` the input is
    returned unchanged. Masks come from the generator ``tracer.manual_seed`` seeds.

    Raises:
        ValueError: ``p`` outside ``[0, 1]``.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability has to be between 0 and 1, but got {p}")
    if not training or p == 0.0:
        return input
    ratio = np.asarray(p, dtype=input._data.dtype)
    out, _mask = op.Dropout(input, ratio, np.asarray(True))
    return out


def layer_norm(
    input: Tensor,
    normalized_shape: int | Sequence[int],
    weight: Tensor | None = None,
    bias: Tensor | None = None,
    eps: float = 1e-5,
) -> Tensor:
    """Normalise over the trailing ``normalized_shape`` dims, then scale and shift.

    Lowers to ONNX LayerNormalization (biased variance, as PyTorch).

    Raises:
        RuntimeError: the input's trailing dims are not ``normalized_shape``.
    """
    shape = (normalized_shape,) if isinstance(normalized_shape, int) else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or tuple(input._data.shape[input._data.ndim - k :]) != shape:
        raise RuntimeError(
            f"Given normalized_shape={list(shape)}, expected input with shape "
            f"[*, {', '.join(map(str, shape))}], but got input of size{list(input._data.shape)}"
        )
    scale: Any = weight if weight is not None else np.ones(shape, input._data.dtype)
    out, _mean, _inv = op.LayerNormalization(input, scale, bias, axis=-k, epsilon=float(eps))
    return out


def pad(input: Tensor, pad: Sequence[int], mode: str = "constant", value: Any = None) -> Tensor:
    """Pad the last ``len(pad) // 2`` dims, PyTorch's order: ``(last_lo, last_hi, prev_lo, ...)``.

    Modes: "constant" (with ``value``, default 0), "reflect", "replicate", "circular";
    negative pads crop. Lowers to ONNX Pad with pads over every axis.

    Raises:
        ValueError: an odd-length or too long ``pad``, an unknown mode, or a ``value`` with a
            mode other than "constant".
    """
    modes = {"constant": "constant", "reflect": "reflect", "replicate": "edge", "circular": "wrap"}
    if mode not in modes:
        raise ValueError(f"Unrecognised padding mode {mode!r}; expected one of {list(modes)}")
    ndim = input._data.ndim
    if len(pad) % 2:
        raise ValueError("Padding length must be divisible by 2")
    if len(pad) // 2 > ndim:
        raise ValueError(
            "Padding length should be less than or equal to two times the input dimension but "
            f"got padding length {len(pad)} and input of dimension {ndim}"
        )
    if mode != "constant" and value not in (None, 0):
        raise ValueError(f'Padding mode "{mode}" doesn\'t take in value argument')
    begins: list[Any] = [0] * ndim
    ends: list[Any] = [0] * ndim
    for i in range(len(pad) // 2):  # ints, or SymInts that keep dynamic pads in a trace
        begins[ndim - 1 - i], ends[ndim - 1 - i] = _size(pad[2 * i]), _size(pad[2 * i + 1])
    pads = shape_operand(tuple(begins + ends))
    fill = const(0 if value is None else value, input._data.dtype) if mode == "constant" else None
    return op.Pad(input, pads, fill, mode=modes[mode])


def _size(n: Any) -> Any:
    return n if isinstance(n, SymInt) else int(n)


# ---------------------------------------------------------------- attention


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """``softmax(q k^T * scale + mask) v`` over the last two dims, as PyTorch defines it.

    ``query`` is ``[..., L, E]``, ``key`` ``[..., S, E]``, ``value`` ``[..., S, Ev]``.
    A bool ``attn_mask`` marks the positions that may be attended (True = keep); a float one
    is added to the scores; either broadcasts to ``[..., L, S]``. ``is_causal`` keeps the
    lower triangle (top-left aligned). ``scale`` defaults to ``1 / sqrt(E)``. Composed of
    MatMul, Softmax and Where, so it traces with dynamic L and S. A row whose every
    position is masked gives zeros, as PyTorch's kernels do.

    Raises:
        ValueError: both ``attn_mask`` and ``is_causal``, or incompatible GQA head counts.
    """
    if is_causal and attn_mask is not None:
        raise ValueError("scaled_dot_product_attention: pass either attn_mask or is_causal")
    if enable_gqa:
        key, value = _repeat_kv(query, key), _repeat_kv(query, value)
    head_dim = query.shape[-1]
    factor = 1.0 / math.sqrt(int(head_dim)) if scale is None else float(scale)
    scores = (query * factor).matmul(key.transpose(-2, -1))
    # Masks are made additive on their own (small) shape and added: a broadcasting Add over
    # the scores is much cheaper than a full-size Where, and its gradient is the identity.
    if is_causal:
        causal = ones(query.shape[-2], key.shape[-2], dtype=np.bool_).tril()
        scores = scores + _additive_mask(causal, scores.dtype)
    live = None
    if attn_mask is not None:
        additive = _additive_mask(attn_mask, scores.dtype)
        # PyTorch's safe softmax: a row whose every position is masked attends to nothing.
        # Such rows get a zero mask (finite scores, no NaN), then weights multiplied by 0.
        dead = (additive == float("-inf")).all(-1, keepdim=True)
        scores = scores + additive.masked_fill(dead, 0.0)
        live = dead.logical_not().to(scores.dtype)
    weights = scores.softmax(-1)
    if live is not None:
        weights = weights * live
    if dropout_p > 0.0:
        weights = dropout(weights, dropout_p, training=True)
    return weights.matmul(value)


def _additive_mask(mask: Tensor, dtype: Any) -> Tensor:
    """A bool mask (True: keep) as 0 / -inf of ``dtype``; a float mask as it is."""
    if mask._data.dtype != np.bool_:
        return mask
    return where(mask, 0.0, float("-inf")).to(dtype)


def _repeat_kv(query: Tensor, kv: Tensor) -> Tensor:
    """``kv``'s heads (dim -3) repeated so they match ``query``'s (grouped-query attention)."""
    hq, hk = query._data.shape[-3], kv._data.shape[-3]
    if hq == hk:
        return kv
    if hk == 0 or hq % hk:
        raise ValueError(f"enable_gqa: {hq} query heads are not a multiple of {hk} key heads")
    shape = tuple(kv.shape)
    x = kv.unsqueeze(-3)
    x = x.expand(*shape[:-2], hq // hk, *shape[-2:])
    return x.reshape(*shape[:-3], hq, *shape[-2:])


def __getattr__(name: str) -> object:
    # A torch.nn.functional name graphcap lacks: say so, and point at the closest way.
    from tracer._missing import missing_attribute

    raise missing_attribute("tracer.nn.functional", name, globals())
