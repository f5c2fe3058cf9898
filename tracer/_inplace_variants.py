"""In-place twins (``abs_``, ``tanh_``, ``addcmul_``, ``unsqueeze_``, ...) of out-of-place methods.

A value variant computes the out-of-place method and writes the result into the tensor's
memory through ``update_inplace`` (version bump, autograd history rebased, the tensor's
dtype kept: a result that cannot be cast to it raises). A shape variant (``unsqueeze_``,
``squeeze_``, ``t_``, ``transpose_``) gives the tensor the view's shape, over the same
memory, and moves its history onto the view op (nodes recorded earlier keep their edges).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tracer import _state
from tracer._inplace import _check_not_leaf, _stand_in, update_inplace
from tracer._tensor_base import TensorBase

if TYPE_CHECKING:
    from tracer.tensor import Tensor


def _value_variant(name: str) -> Callable[..., Any]:
    def method(self: TensorBase, *args: Any, **kwargs: Any) -> Any:
        others = [a for a in (*args, *kwargs.values()) if isinstance(a, TensorBase)]

        def compute(source: Any) -> Any:
            return getattr(source, name)(*args, **kwargs)

        return update_inplace(self, f"{name}_", compute, others, reads_target=True)

    method.__name__ = f"{name}_"
    method.__doc__ = f"In-place :meth:`{name}`: the result is written into this tensor."
    return method


def _shape_variant(name: str) -> Callable[..., Any]:
    def method(self: TensorBase, *args: Any, **kwargs: Any) -> Any:
        record = _state.grad_enabled and self._requires_grad
        if record:
            _check_not_leaf(self, f"{name}_", "")
            source = _stand_in(self, self._data)
        else:
            source = self
        result = getattr(source, name)(*args, **kwargs)
        if _state.tracer is not None:
            _state.tracer.alias(self, result)
        self._data = result._data
        self._bump_version()
        if record:
            self._node, self._index = result._node, result._index
        return self

    method.__name__ = f"{name}_"
    method.__doc__ = f"In-place :meth:`{name}`: this tensor takes the new shape (same memory)."
    return method


# exp_, neg_, clamp_ and the arithmetic ones are InplaceMixin's (they save less for backward).
_VALUE = (
    "abs",
    "sign",
    "log",
    "sqrt",
    "rsqrt",
    "reciprocal",
    "sin",
    "cos",
    "tanh",
    "sigmoid",
    "erf",
    "relu",
    "floor",
    "ceil",
    "trunc",
    "round",
    "square",
    "clamp_min",
    "clamp_max",
    "clip",
    "fmod",
    "remainder",
    "floor_divide",
    "true_divide",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "logical_and",
    "logical_or",
    "logical_xor",
    "logical_not",
    "tril",
    "triu",
    "cumsum",
    "addcmul",
    "addcdiv",
    "lerp",
    "addmm",
    "baddbmm",
)
_SHAPE = ("unsqueeze", "squeeze", "t", "transpose", "swapaxes")
_ALIASES = {
    "absolute_": "abs_",
    "negative_": "neg_",
    "fix_": "trunc_",
    "multiply_": "mul_",
    "divide_": "div_",
    "subtract_": "sub_",
    "greater_": "gt_",
    "greater_equal_": "ge_",
    "less_": "lt_",
    "less_equal_": "le_",
    "not_equal_": "ne_",
    "swapdims_": "swapaxes_",
}


class InplaceVariantsMixin(TensorBase):
    """``name_`` for the out-of-place methods in ``_VALUE`` and ``_SHAPE``."""

    __slots__ = ()

    def share_memory_(self) -> Tensor:
        """This tensor: NumPy memory is shared with worker processes by fork, as is."""
        return self  # type: ignore[return-value]


for _name in _VALUE:
    setattr(InplaceVariantsMixin, f"{_name}_", _value_variant(_name))
for _name in _SHAPE:
    setattr(InplaceVariantsMixin, f"{_name}_", _shape_variant(_name))
for _alias, _target in _ALIASES.items():
    if hasattr(InplaceVariantsMixin, _target):
        setattr(InplaceVariantsMixin, _alias, getattr(InplaceVariantsMixin, _target))
