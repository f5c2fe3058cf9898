"""Shape methods of ``tracer.Tensor``: reshape, view, transpose, permute, (un)squeeze, ...

Also the dtype conversions (``to``, ``float``, ``long``, ...), ``clone``, and the methods
that select along an axis (``gather``, ``index_select``, ``split``, ``tril``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ir import dtypes as D  # noqa: N812 - the project's short name
from ir.ops.registry import op
from tracer import _device
from tracer._math import cast
from tracer._symint import SymInt, is_symbolic
from tracer._tensor_base import TensorBase, wrap

if TYPE_CHECKING:
    from tracer.tensor import Tensor


def shape_operand(shape: tuple[Any, ...]) -> Any:
    """``reshape(2, 3)`` or ``reshape((2, 3))`` arguments as an int64 shape input.

    Sizes that are ``SymInt`` (dynamic dims while tracing) make it a recorded tensor, so
    the graph computes the shape instead of baking the example's.
    """
    if len(shape) == 1 and not isinstance(shape[0], int | SymInt):
        shape = tuple(shape[0])
    if is_symbolic(shape):
        return symbolic_shape(shape)
    return np.asarray(shape, dtype=np.int64)


def _concrete(size: Any) -> int:
    """The example's value of a size (checks compare values, not graph decisions)."""
    return size.value if isinstance(size, SymInt) else size


def symbolic_shape(sizes: Sequence[Any]) -> Any:
    """A recorded 1-D int64 tensor of ``sizes`` (ints and SymInts): Unsqueeze + Concat."""
    from tracer._functions import cat

    parts = [
        s.tensor.reshape(1) if isinstance(s, SymInt) else wrap(np.asarray([s], dtype=np.int64))
        for s in sizes
    ]
    return cat(parts)


def _ints(values: Sequence[int]) -> np.ndarray:
    return np.asarray(values, dtype=np.int64)


def _diagonal(diagonal: Any) -> Any:
    """Trilu's ``k``: a 0-d int64 constant, or the recorded tensor of a SymInt."""
    return diagonal.tensor if isinstance(diagonal, SymInt) else np.asarray(diagonal, np.int64)


def _dims(args: tuple[Any, ...]) -> tuple[int, ...]:
    """``permute(0, 2, 1)`` or ``permute((0, 2, 1))`` arguments as a tuple of ints."""
    if len(args) == 1 and not isinstance(args[0], int):
        return tuple(args[0])
    return args


def _axis(rank: int, dim: int) -> int:
    """``dim`` in ``[0, rank)``; a 0-d tensor accepts 0 and -1 as PyTorch does."""
    top = max(rank, 1)
    if not -top <= dim < top:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [{-top}, {top - 1}], "
            f"but got {dim})"
        )
    return dim % top


def _reshape(x: TensorBase, shape: Any) -> Tensor:
    # ONNX reads a 0 in the target as "copy this dim" unless allowzero; PyTorch means size 0.
    # A recorded shape (dynamic dims while tracing) is checked on its example values.
    values = shape._data if isinstance(shape, TensorBase) else shape
    attrs = {"allowzero": 1} if 0 in values else {}
    return op.Reshape(x, shape, **attrs)


def _copy(x: TensorBase) -> Tensor:
    return op.Identity(x)


def _is_device(value: Any) -> bool:
    if isinstance(value, _device.device):
        return True
    if not isinstance(value, str):
        return False
    return value.partition(":")[0] in _device.device_types()


class _ConvertMixin(TensorBase):
    """Dtype conversions; apart because their names (``int``, ``float``) shadow builtins."""

    __slots__ = ()

    def to(self, *args: Any, **kwargs: Any) -> Tensor:
        """This tensor in another dtype: ``to(dtype)``, ``to(device, dtype)``, ``to(other)``.

        Returns ``self`` when nothing changes. The only eager device is the CPU;
        ``non_blocking`` and ``memory_format`` are accepted and change nothing.

        Raises:
            DeviceError: a device other than the CPU (the message says where CUDA runs).
        """
        dtype = kwargs.get("dtype")
        copy = kwargs.get("copy", False)
        for a in (*args, kwargs.get("device")):
            if a is None or isinstance(a, bool):  # to(device, dtype, non_blocking, copy)
                continue
            if isinstance(a, TensorBase):
                dtype = a._data.dtype
            elif _is_device(a):
                _device.check_device(a, "Tensor.to")
            else:
                dtype = a
        out = self if dtype is None else cast(self, np.dtype(dtype))
        return _copy(out) if copy and out is self else out  # type: ignore[return-value]

    def type_as(self, other: TensorBase) -> Tensor:
        """This tensor in ``other``'s dtype."""
        return cast(self, other._data.dtype)

    def float(self) -> Tensor:
        """This tensor as float32."""
        return cast(self, D.float32)

    def double(self) -> Tensor:
        """This tensor as float64."""
        return cast(self, D.float64)

    def half(self) -> Tensor:
        """This tensor as float16."""
        return cast(self, D.float16)

    def long(self) -> Tensor:
        """This tensor as int64 (floats truncate toward zero)."""
        return cast(self, D.int64)

    def int(self) -> Tensor:
        """This tensor as int32 (floats truncate toward zero)."""
        return cast(self, D.int32)

    def short(self) -> Tensor:
        """This tensor as int16."""
        return cast(self, D.int16)

    def byte(self) -> Tensor:
        """This tensor as uint8."""
        return cast(self, D.uint8)

    def bool(self) -> Tensor:
        """This tensor as bool (nonzero is True)."""
        return cast(self, D.bool_)


class ShapeMixin(_ConvertMixin):
    """Shape methods of ``tracer.Tensor``."""

    __slots__ = ()

    def reshape(self, *shape: Any) -> Tensor:
        """A tensor with the same data and a new shape; one dim may be -1."""
        return _reshape(self, shape_operand(shape))

    def view(self, *shape: Any) -> Tensor:
        """Same as :meth:`reshape` (eager tensors are always contiguous)."""
        return _reshape(self, shape_operand(shape))

    def reshape_as(self, other: TensorBase) -> Tensor:
        """This tensor reshaped to ``other``'s shape."""
        return _reshape(self, _ints(other._data.shape))

    view_as = reshape_as

    def contiguous(self, memory_format: Any = None) -> Tensor:
        """``self``: eager tensors are always contiguous."""
        return self  # type: ignore[return-value]

    def clone(self, memory_format: Any = None) -> Tensor:
        """A copy that does not share memory; gradients flow through it."""
        return _copy(self)

    def flatten(self, start_dim: int = 0, end_dim: int = -1) -> Tensor:
        """Merge dims ``start_dim..end_dim`` into one; a 0-d tensor becomes 1-d."""
        shape = self.shape  # SymInts for dynamic dims while tracing: the result stays dynamic
        if not shape:
            return _reshape(self, _ints([1]))
        s, e = _axis(len(shape), start_dim), _axis(len(shape), end_dim)
        if s > e:
            raise RuntimeError("flatten() has invalid args: start_dim cannot come after end_dim")
        merged = math.prod(shape[s : e + 1])
        return _reshape(self, shape_operand((*shape[:s], merged, *shape[e + 1 :])))

    def unflatten(self, dim: int, sizes: Sequence[int]) -> Tensor:
        """Split dim ``dim`` into ``sizes`` (one of which may be -1)."""
        shape = self.shape
        d = _axis(len(shape), dim)
        return _reshape(self, shape_operand((*shape[:d], *sizes, *shape[d + 1 :])))

    def transpose(self, dim0: int, dim1: int) -> Tensor:
        """Swap dims ``dim0`` and ``dim1``."""
        rank = self._data.ndim
        perm = list(range(rank))
        if rank:
            a, b = _axis(rank, dim0), _axis(rank, dim1)
            perm[a], perm[b] = perm[b], perm[a]
        return op.Transpose(self, perm=perm)

    swapaxes = transpose

    def t(self) -> Tensor:
        """Transpose of a tensor of at most 2 dims.

        Raises:
            RuntimeError: the tensor has more than 2 dims.
        """
        if self._data.ndim > 2:
            raise RuntimeError(f"t() expects a tensor with <= 2 dims, but self is {self.ndim}D")
        return op.Transpose(self, perm=list(range(self._data.ndim))[::-1])

    @property
    def T(self) -> Tensor:  # noqa: N802 - PyTorch's name
        """The tensor with its dims reversed."""
        return op.Transpose(self, perm=list(range(self._data.ndim))[::-1])

    @property
    def mT(self) -> Tensor:  # noqa: N802 - PyTorch's name
        """The tensor with its last two dims swapped (a batch of matrix transposes).

        Raises:
            RuntimeError: the tensor has fewer than 2 dims.
        """
        if self._data.ndim < 2:
            raise RuntimeError(
                "tensor.mT is only supported on matrices or batches of matrices. "
                f"Got {self.ndim}-D tensor."
            )
        return self.transpose(-2, -1)

    def permute(self, *dims: Any) -> Tensor:
        """Reorder the dims: output dim ``i`` is input dim ``dims[i]``.

        Raises:
            RuntimeError: ``dims`` is not a permutation of the tensor's dims.
        """
        rank = self._data.ndim
        perm = [_axis(rank, d) for d in _dims(dims)]
        if sorted(perm) != list(range(rank)):
            raise RuntimeError(f"permute: dims {list(_dims(dims))} do not permute {rank} dims")
        return op.Transpose(self, perm=perm)

    def unsqueeze(self, dim: int) -> Tensor:
        """Insert a dim of size 1 at ``dim`` (negative counts from the new rank's end)."""
        _axis(self._data.ndim + 1, dim)
        return op.Unsqueeze(self, _ints([dim]))

    def squeeze(self, dim: int | Sequence[int] | None = None) -> Tensor:
        """Remove dims of size 1: all of them, or those among ``dim`` (others are kept)."""
        shape = self._data.shape
        if dim is None:
            axes = [i for i, d in enumerate(shape) if d == 1]
        else:
            picked = [dim] if isinstance(dim, int) else list(dim)
            axes = sorted({_axis(len(shape), d) for d in picked if shape and shape[d] == 1})
        if not axes:
            return _reshape(self, _ints(shape))
        return op.Squeeze(self, _ints(axes))

    def expand(self, *sizes: Any) -> Tensor:
        """Broadcast size-1 dims to ``sizes`` (-1 keeps a dim); new dims are added in front.

        Raises:
            RuntimeError: a dim that is neither 1 nor the requested size.
        """
        target = list(_dims(sizes))
        shape = self.shape  # SymInts for dynamic dims while tracing: -1 keeps them dynamic
        lead = len(target) - len(shape)
        if lead < 0:
            raise RuntimeError(
                f"expand: the number of sizes ({len(target)}) must be at least the number of "
                f"dims ({len(shape)})"
            )
        for i, d in enumerate(shape):
            want = target[lead + i]
            if _concrete(want) == -1:
                target[lead + i] = d
            elif _concrete(d) not in (1, _concrete(want)):
                raise RuntimeError(
                    f"The expanded size of the tensor ({want}) must match the existing size "
                    f"({d}) at non-singleton dimension {lead + i}. Target sizes: {list(sizes)}. "
                    f"Tensor sizes: {list(shape)}"
                )
        if any(_concrete(d) < 0 for d in target):
            raise RuntimeError(f"expand: -1 is not allowed for a new leading dim: {target}")
        return op.Expand(self, shape_operand(tuple(target)))

    def expand_as(self, other: TensorBase) -> Tensor:
        """This tensor broadcast to ``other``'s shape."""
        return self.expand(tuple(other.shape))

    def repeat(self, *sizes: Any) -> Tensor:
        """Tile the tensor ``sizes[i]`` times along dim ``i`` (extra sizes add leading dims).

        Raises:
            RuntimeError: fewer sizes than dims.
        """
        reps = list(_dims(sizes))
        lead = len(reps) - self._data.ndim
        if lead < 0:
            raise RuntimeError(
                "Number of dimensions of repeat dims can not be smaller than number of "
                "dimensions of tensor"
            )
        x: TensorBase = self
        if lead:  # new leading axes of size 1 (Unsqueeze keeps dynamic sizes dynamic)
            x = op.Unsqueeze(self, _ints(list(range(lead))))
        return op.Tile(x, shape_operand(tuple(reps)))

    def split(self, split_size_or_sections: Any, dim: int = 0) -> tuple[Tensor, ...]:
        """Pieces along ``dim``: of an int size each (the last may be short), or of listed sizes.

        Raises:
            RuntimeError: the sections do not add up to the size of ``dim``.
        """
        axis = _axis(self._data.ndim, dim)
        n = self._data.shape[axis]
        dynamic = self.shape[axis]  # a SymInt along a dynamic axis while tracing
        sections = split_size_or_sections
        if isinstance(dynamic, SymInt) and (isinstance(sections, int) or not is_symbolic(sections)):
            # The pieces' count or sizes would be the example's: x.split([a, b]) with
            # SymInts a and b, or slices (x[:, :n], x[:, n:]), stay dynamic.
            raise dynamic.refused("Splitting (split, chunk, unbind)")
        if isinstance(sections, int):
            sizes: list[Any] = [sections] * (n // sections)
            sizes += [n % sections] if n % sections or n == 0 else []
        else:
            sizes = list(sections)
            if sum(_concrete(s) for s in sizes) != n:
                raise RuntimeError(
                    f"split_with_sizes expects split_sizes to sum exactly to {n} (input tensor's "
                    f"size at dimension {dim}), but got split_sizes={sizes}"
                )
        out = op.Split(self, shape_operand(tuple(sizes)), axis=axis)
        return tuple(out)

    def chunk(self, chunks: int, dim: int = 0) -> tuple[Tensor, ...]:
        """At most ``chunks`` pieces of equal size (the last may be smaller) along ``dim``."""
        n = self._data.shape[_axis(self._data.ndim, dim)]
        return self.split(max(-(-n // chunks), 1), dim)

    def unbind(self, dim: int = 0) -> tuple[Tensor, ...]:
        """The slices along ``dim``, each without that dim."""
        axis = _axis(self._data.ndim, dim)
        pieces = self.split(1, axis)
        axes = _ints([axis])
        return tuple(op.Squeeze(p, axes) for p in pieces)

    def narrow(self, dim: int, start: int, length: int) -> Tensor:
        """The ``length`` elements from ``start`` along ``dim``."""
        axis = _axis(self._data.ndim, dim)
        begin = start % self._data.shape[axis] if start < 0 else start
        args = (self, _ints([begin]), _ints([begin + length]), _ints([axis]))
        return op.Slice(*args)

    def gather(self, dim: int, index: TensorBase) -> Tensor:
        """``out[i][j] = self[index[i][j]][j]`` for ``dim=0`` (ONNX GatherElements)."""
        return op.GatherElements(self, index, axis=_axis(self._data.ndim, dim))

    def index_select(self, dim: int, index: TensorBase) -> Tensor:
        """The entries at the 1-d integer ``index`` along ``dim`` (ONNX Gather)."""
        if index._data.ndim != 1:
            index = _reshape(index, _ints([-1]))
        return op.Gather(self, index, axis=_axis(self._data.ndim, dim))

    def tril(self, diagonal: int = 0) -> Tensor:
        """The lower triangle of the last two dims, from ``diagonal`` down; the rest zero.

        A symbolic ``diagonal`` (``T - t`` of dynamic sizes, a causal mask over a cache)
        stays symbolic in a trace.
        """
        return op.Trilu(self, _diagonal(diagonal), upper=0)

    def triu(self, diagonal: int = 0) -> Tensor:
        """The upper triangle of the last two dims, from ``diagonal`` up; the rest zero."""
        return op.Trilu(self, _diagonal(diagonal), upper=1)

    def flip(self, *dims: Any) -> Tensor:
        """The tensor with the order of elements reversed along ``dims``."""
        rank = self._data.ndim
        axes = [_axis(rank, d) for d in _dims(dims)]
        n = len(axes)
        big = np.iinfo(np.int64)
        args = (self, _ints([-1] * n), _ints([big.min] * n), _ints(axes), _ints([-1] * n))
        return op.Slice(*args)

    def new_tensor(
        self, data: Any, *, dtype: Any = None, device: Any = None, requires_grad: bool = False
    ) -> Tensor:
        """A new leaf tensor holding ``data``, in this tensor's dtype unless ``dtype``."""
        from tracer.tensor import tensor

        dtype = self._data.dtype if dtype is None else dtype
        return tensor(data, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_zeros(self, *size: Any, **kwargs: Any) -> Tensor:
        """Zeros of ``size``, in this tensor's dtype unless ``dtype`` is given."""
        return self.new_full(_dims(size), 0, **kwargs)

    def new_ones(self, *size: Any, **kwargs: Any) -> Tensor:
        """Ones of ``size``, in this tensor's dtype unless ``dtype`` is given."""
        return self.new_full(_dims(size), 1, **kwargs)

    def new_full(
        self,
        size: Sequence[int],
        fill_value: Any,
        *,
        dtype: Any = None,
        device: Any = None,
        requires_grad: bool = False,
    ) -> Tensor:
        """``fill_value`` of ``size``, in this tensor's dtype unless ``dtype`` is given.

        Raises:
            DeviceError: a device other than the CPU.
        """
        from tracer._creation import full

        dtype = self._data.dtype if dtype is None else dtype
        return full(size, fill_value, dtype=dtype, device=device, requires_grad=requires_grad)

    def new_empty(self, *size: Any, **kwargs: Any) -> Tensor:
        """Uninitialised values of ``size`` (zeros here)."""
        return self.new_full(_dims(size), 0, **kwargs)
