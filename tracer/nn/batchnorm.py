"""``BatchNorm1d`` and ``BatchNorm2d`` with PyTorch's parameters, buffers and update rule.

``weight`` (ones) and ``bias`` (zeros) when ``affine``; buffers ``running_mean`` (zeros),
``running_var`` (ones) and ``num_batches_tracked`` (int64 0) when ``track_running_stats``,
in PyTorch's ``state_dict`` order. Training normalises with the batch statistics and moves
the running ones by ``momentum`` (the variance unbiased; ``momentum=None`` is a cumulative
average); evaluation uses the running statistics. Either way the layer is one ONNX
BatchNormalization node.
"""

from __future__ import annotations

from typing import Any

import tracer
from tracer._creation import empty, ones, zeros
from tracer.autograd import no_grad
from tracer.nn import functional as F  # noqa: N812 - PyTorch's conventional name
from tracer.nn import init
from tracer.nn._factory import param_dtype
from tracer.nn.module import Module, Parameter
from tracer.tensor import Tensor

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Module):
    """Shared by :class:`BatchNorm1d` and :class:`BatchNorm2d`."""

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        device: Any = None,
        dtype: Any = None,
        *,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.num_features = num_features
        self.eps = eps
        self.momentum = momentum
        self.affine = affine
        self.track_running_stats = track_running_stats
        dt = param_dtype(device, dtype)
        if affine:
            self.weight = Parameter(empty(num_features, dtype=dt))
            if bias:
                self.bias = Parameter(empty(num_features, dtype=dt))
            else:
                self.register_parameter("bias", None)
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)
        if track_running_stats:
            self.register_buffer("running_mean", zeros(num_features, dtype=dt))
            self.register_buffer("running_var", ones(num_features, dtype=dt))
            self.register_buffer("num_batches_tracked", tracer.tensor(0, dtype=tracer.int64))
        else:
            self.register_buffer("running_mean", None)
            self.register_buffer("running_var", None)
            self.register_buffer("num_batches_tracked", None)
        self.reset_parameters()

    def reset_running_stats(self) -> None:
        """Running mean to zeros, variance to ones, batch count to 0."""
        if self.track_running_stats:
            with no_grad():
                self.running_mean.zero_()
                self.running_var.fill_(1)
                self.num_batches_tracked.zero_()

    def reset_parameters(self) -> None:
        """Reset the running statistics; weight to ones, bias to zeros."""
        self.reset_running_stats()
        if self.weight is not None:
            init.ones_(self.weight)
        if self.bias is not None:
            init.zeros_(self.bias)

    def _check_input_dim(self, input: Tensor) -> None:
        raise NotImplementedError

    def forward(self, input: Tensor) -> Tensor:
        """Normalise ``input`` per channel (axis 1), then scale and shift."""
        self._check_input_dim(input)
        factor = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats and self.num_batches_tracked is not None:
            with no_grad():
                self.num_batches_tracked.add_(1)
            if self.momentum is None:  # a cumulative moving average
                factor = 1.0 / float(self.num_batches_tracked.item())
        use_batch = self.training or (self.running_mean is None and self.running_var is None)
        keep = not self.training or self.track_running_stats
        return F.batch_norm(
            input,
            self.running_mean if keep else None,
            self.running_var if keep else None,
            self.weight,
            self.bias,
            use_batch,
            factor,
            self.eps,
        )

    def extra_repr(self) -> str:
        """PyTorch's settings line."""
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
            f"affine={self.affine}, bias={self.bias is not None}, "
            f"track_running_stats={self.track_running_stats}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over ``[N, C]`` or ``[N, C, L]``, as ``torch.nn.BatchNorm1d``.

    Args:
        num_features: channels ``C``.
        eps: added to the variance.
        momentum: weight of the new batch in the running statistics; None for a
            cumulative average.
        affine: learn ``weight`` and ``bias``.
        track_running_stats: keep running statistics (otherwise batch statistics are
            used in evaluation too).
        device: ``None`` or ``"cpu"``.
        dtype: the parameters' and buffers' dtype (float32 by default).
        bias: learn ``bias`` (with ``affine``).

    Raises:
        ValueError: (in ``forward``) an input that is not 2-D or 3-D, or one value per
            channel in training.
    """

    def _check_input_dim(self, input: Tensor) -> None:
        if input.ndim not in (2, 3):
            raise ValueError(f"expected 2D or 3D input (got {input.ndim}D input)")


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over ``[N, C, H, W]``; arguments as :class:`BatchNorm1d`'s."""

    def _check_input_dim(self, input: Tensor) -> None:
        if input.ndim != 4:
            raise ValueError(f"expected 4D input (got {input.ndim}D input)")
