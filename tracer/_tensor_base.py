"""The eager tensor's core: storage, the autograd fields, and ``apply``, the eager funnel.

``apply`` is the one path every eager op takes: it runs the registry kernel on the inputs'
arrays now and, when grad mode is on and an input requires grad, records a tape ``Node``.
Op-specific methods live in mixins (``_math``, ``_reduce``, ``_shape``, ``_indexing``,
``_inplace``) that ``tracer.tensor.Tensor`` combines; they spell each op ``op.X(...)``
(``ir.ops.registry.op``), which the registry hands to ``apply`` through the bind hook.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ir import dtypes
from ir.errors import DTypeError, ShapeError
from ir.ops.registry import OpDef
from tracer import _state
from tracer._hooks import register_post_accumulate_grad_hook
from tracer._node import Edge, Node

if TYPE_CHECKING:
    from tracer.tensor import Tensor

_new = object.__new__
# Set by tracer.tensor once the full class exists; apply() builds instances of it.
TENSOR_CLASS: type[Any] = object


def wrap(data: np.ndarray) -> Tensor:
    """A new tensor over ``data`` (no copy), not requiring grad."""
    t = _new(TENSOR_CLASS)
    t._data = data
    t._requires_grad = False
    t._node = None
    t._index = 0
    t._version = None
    t.grad = None
    return t


def apply(op: OpDef, inputs: Sequence[Any], attrs: Mapping[str, Any]) -> Any:
    """The eager funnel: run ``op`` now on tensors and constants; record it when needed.

    Every eager op ends here: tensor code spells an op ``op.X(...)``, which reaches this
    function through the registry's bind hook (``TensorBase.__graphcap_bind__``). The
    kernel runs on the inputs' arrays; when grad mode is on and an input requires grad, a
    tape ``Node`` records the op with its edges; while tracing, the op is also lowered
    into the trace's graph.

    Returns:
        A tensor, or a tuple of tensors for multi-output ops.

    Raises:
        GraphcapError: the kernel rejected the inputs; the message names the op and the
            inputs' types.
    """
    try:
        # Unrolled for one and two inputs, the operators' and most methods' path.
        if len(inputs) == 2:
            x, y = inputs
            if isinstance(x, TensorBase):
                grad = x._requires_grad
                x = x._data
            else:
                grad = False
            if isinstance(y, TensorBase):
                grad = grad or y._requires_grad
                y = y._data
            out = op.kernel(x, y, **attrs) if attrs else op.kernel(x, y)
        elif len(inputs) == 1 and isinstance(inputs[0], TensorBase):
            x = inputs[0]
            grad = x._requires_grad
            out = op.kernel(x._data, **attrs) if attrs else op.kernel(x._data)
        else:
            grad = False
            arrays = []
            for x in inputs:
                if isinstance(x, TensorBase):
                    arrays.append(x._data)
                    if x._requires_grad:
                        grad = True
                else:
                    arrays.append(x)
            out = op.kernel(*arrays, **attrs)
    except (ValueError, TypeError, IndexError) as err:
        raise _kernel_error(op, inputs, attrs, err) from err
    if op.num_outputs == 1:
        # wrap(), inlined: the fast path of every single-output op.
        t = _new(TENSOR_CLASS)
        t._data = out if type(out) is np.ndarray else np.asarray(out)
        t._requires_grad, t._node, t._index, t._version, t.grad = False, None, 0, None, None
        if op.view and isinstance(inputs[0], TensorBase):
            t._version = _version_cell(inputs[0])
        if grad and _state.grad_enabled:
            _record(op, inputs, attrs, (t,))
        if _state.tracer is not None:
            _state.tracer.record(op, inputs, attrs, (t,))
        return t
    outs = tuple(wrap(o if type(o) is np.ndarray else np.asarray(o)) for o in out)
    if op.view and isinstance(inputs[0], TensorBase):
        outs[0]._version = _version_cell(inputs[0])
    if grad and _state.grad_enabled:
        _record(op, inputs, attrs, outs)
    if _state.tracer is not None:
        _state.tracer.record(op, inputs, attrs, outs)
    return outs


def _version_cell(t: TensorBase) -> list[int]:
    if t._version is None:
        t._version = [0]
    return t._version


def _record(
    op: OpDef, inputs: Sequence[Any], attrs: Mapping[str, Any], outs: tuple[Any, ...]
) -> None:
    """Leave a tape node for ``op``, its input edges fixed now, and attach the outputs."""
    edges: list[Edge] = []
    versioned = False
    for x in inputs:
        if isinstance(x, TensorBase):
            if x._version is not None:
                versioned = True
            if x._requires_grad:
                producer = x._node  # None for a leaf: its gradient accumulates into it
                edges.append(x if producer is None else (producer, x._index))
                continue
        edges.append(None)
    out_data = (outs[0]._data,) if len(outs) == 1 else tuple(o._data for o in outs)
    node = Node(op, tuple(inputs), attrs, tuple(edges), out_data)
    if versioned:
        node.versions = tuple(
            v._version[0] if isinstance(v, TensorBase) and v._version is not None else 0
            for v in inputs
        )
    if op.saves == "outputs":
        node.out_versions = tuple((_version_cell(o), o._version[0]) for o in outs)
    if len(outs) == 1:  # most ops; the output's _index is already 0
        o = outs[0]
        if o._data.dtype.kind == "f":
            o._node, o._requires_grad = node, True
        return
    for i, o in enumerate(outs):
        if o._data.dtype.kind == "f":
            o._node, o._index, o._requires_grad = node, i, True


def _kernel_error(
    op: OpDef, inputs: Sequence[Any], attrs: Mapping[str, Any], err: Exception
) -> Exception:
    shown = ", ".join(_describe(x) for x in inputs)
    extra = f" with {dict(attrs)}" if attrs else ""
    cls = DTypeError if isinstance(err, TypeError) else ShapeError
    return cls(f"{op.op_type}({shown}){extra} failed: {err}")


def _describe(x: Any) -> str:
    if isinstance(x, TensorBase):
        return f"tensor {x._data.dtype}{list(x._data.shape)}"
    if isinstance(x, np.ndarray):
        return f"constant {x.dtype}{list(x.shape)}"
    return repr(x)


def to_array(data: Any, dtype: np.dtype | None = None) -> np.ndarray:
    """``data`` as an array of a supported dtype, following PyTorch's defaults.

    Python floats become float32, ints int64, bools bool; arrays keep their dtype.

    Raises:
        DTypeError: a dtype graphcap does not support (strings, objects, complex).
    """
    if isinstance(data, TensorBase):
        data = data._data
    if dtype is not None:
        arr = np.asarray(data, dtype=dtype)
    elif isinstance(data, np.ndarray | np.generic):
        arr = np.asarray(data)
    else:
        arr = np.asarray(data)
        if arr.dtype == np.float64:
            arr = arr.astype(np.float32)
    if arr.dtype not in dtypes.ALL:
        raise DTypeError(
            f"cannot make a tensor of dtype {arr.dtype}; expected one of "
            f"{sorted(str(d) for d in dtypes.ALL)}"
        )
    return arr


class TensorBase:
    """Storage and autograd state of an eager tensor (see ``tracer.Tensor``)."""

    __slots__ = ("__weakref__", "_data", "_index", "_node", "_requires_grad", "_version", "grad")

    # NumPy hands ``ndarray * tensor`` back to the tensor's operators instead of turning the
    # tensor into an array (which would silently drop it from the autograd graph).
    __array_ufunc__: Any = None

    _data: np.ndarray
    _requires_grad: bool
    _node: Node | None
    _index: int
    _version: list[int] | None
    grad: Tensor | None

    # The registry's hook: ``op.X(tensor, ...)`` runs eagerly through :func:`apply`.
    __graphcap_bind__ = staticmethod(apply)

    # ------------------------------------------------------------ properties

    @property
    def shape(self) -> tuple[Any, ...]:
        """The shape: a tuple of ints (``SymInt`` for dynamic dims while tracing)."""
        if _state.tracer is None:
            return self._data.shape
        return _state.tracer.shape_of(self)

    @property
    def dtype(self) -> np.dtype:
        """The element dtype (``tracer.float32``, ...)."""
        return self._data.dtype

    @property
    def ndim(self) -> int:
        """Number of axes."""
        return self._data.ndim

    @property
    def device(self) -> str:
        """Always "cpu": eager tensors live in host memory."""
        return "cpu"

    @property
    def requires_grad(self) -> bool:
        """Whether gradients flow to this tensor."""
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if self._node is not None and not value:
            raise RuntimeError(
                "you can only change requires_grad flags of leaf tensors; "
                "use .detach() to get a tensor that does not require grad"
            )
        if value and self._data.dtype.kind != "f":
            raise RuntimeError(
                f"only tensors of floating point dtype can require gradients, not {self.dtype}"
            )
        self._requires_grad = bool(value)

    @property
    def is_leaf(self) -> bool:
        """True for tensors not produced by a recorded op."""
        return self._node is None

    @property
    def grad_fn(self) -> Node | None:
        """The tape node that produced this tensor, or None for leaves."""
        return self._node

    def size(self, dim: int | None = None) -> Any:
        """The shape, or the size of axis ``dim``."""
        return self.shape if dim is None else self.shape[dim]

    def dim(self) -> int:
        """Number of axes."""
        return self._data.ndim

    def numel(self) -> int:
        """Number of elements."""
        return self._data.size

    def element_size(self) -> int:
        """Bytes per element."""
        return self._data.itemsize

    def is_floating_point(self) -> bool:
        """Whether the dtype is a floating-point one."""
        return self._data.dtype.kind == "f"

    # ------------------------------------------------------------ NumPy and Python

    def numpy(self) -> np.ndarray:
        """The underlying array, without a copy.

        Raises:
            RuntimeError: the tensor requires grad (as in PyTorch: detach it first).
        """
        if self._requires_grad:
            raise RuntimeError(
                "can't call numpy() on a tensor that requires grad; use tensor.detach().numpy()"
            )
        return self._data

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        if dtype is not None and np.dtype(dtype) != self._data.dtype:
            return self._data.astype(dtype)
        return self._data.copy() if copy else self._data

    def item(self) -> Any:
        """The value of a one-element tensor as a Python number.

        Raises:
            ValueError: the tensor has more than one element.
        """
        self._read_into_python("item()")
        if self._data.size != 1:
            raise ValueError(
                f"a tensor with {self._data.size} elements cannot be converted to a Python scalar"
            )
        return self._data.reshape(()).item()

    def tolist(self) -> Any:
        """Nested Python lists of the values."""
        self._read_into_python("tolist()")
        return self._data.tolist()

    def _read_into_python(self, how: str) -> None:
        """While tracing, refuse to read an input-dependent value into Python."""
        tracer = _state.tracer
        if tracer is not None and tracer.is_dependent(self):
            from tracer.trace import TraceError, user_source

            raise TraceError(
                f"{how} at {user_source() or 'an unknown line'} reads a value that depends on "
                "the traced inputs into Python; a graph cannot branch or compute on it. Use "
                "tensor ops instead: tracer.where(c, a, b) to pick values, tracer.cond(pred, "
                "true_fn, false_fn, operands) for a branch (ONNX If), tracer.while_loop("
                "cond_fn, body_fn, carried_inputs) for a loop or a data-dependent break "
                "(ONNX Loop)."
            )

    def __len__(self) -> int:
        if self._data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        if _state.tracer is not None:
            size = self.shape[0]
            if not isinstance(size, int):  # len() must return an int: it would be baked
                raise size.refused("len() (use x.shape[0] or x.size(0), which stay symbolic)")
            _state.tracer.decide("len", f"len() of a tensor of shape {list(self.shape)}", size)
        return self._data.shape[0]

    def __iter__(self) -> Iterator[Tensor]:
        # Through len(): while tracing, a dynamic first dim refuses to be unrolled.
        for i in range(len(self)):
            yield self[i]  # type: ignore[index]

    def __bool__(self) -> bool:
        self._read_into_python("bool() (an `if` or `while` on a tensor)")
        return bool(self.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        if self._data.dtype.kind not in "iub" or self._data.size != 1:
            raise TypeError("only integer tensors of a single element can be used as an index")
        return int(self.item())

    # Identity, in C: tensors key the engine's and optimizers' dicts.
    __hash__ = object.__hash__

    def __repr__(self) -> str:
        body = np.array2string(
            self._data, separator=", ", prefix="tensor(", precision=4, threshold=1000
        )
        extras = []
        if self._data.dtype not in (dtypes.float32, dtypes.int64, dtypes.bool_):
            extras.append(f"dtype={self._data.dtype}")
        if self._node is not None:
            extras.append(f"grad_fn={self._node!r}")
        elif self._requires_grad:
            extras.append("requires_grad=True")
        return "tensor(" + ", ".join([body, *extras]) + ")"

    # ------------------------------------------------------------ autograd

    def backward(
        self,
        gradient: Tensor | None = None,
        retain_graph: bool | None = None,
        create_graph: bool = False,
        inputs: Sequence[Tensor] | None = None,
    ) -> None:
        """Accumulate the gradient of this tensor into the ``.grad`` of leaves.

        See ``tracer.autograd.backward``.
        """
        from tracer.autograd import backward

        backward(self, gradient, retain_graph, create_graph, inputs)  # type: ignore[arg-type]

    def register_post_accumulate_grad_hook(self, hook: Callable[[Any], None]) -> Any:
        """Call ``hook(self)`` each time a ``backward()`` has finished accumulating ``.grad``.

        See ``tracer._hooks.register_post_accumulate_grad_hook``; returns a handle whose
        ``remove()`` unregisters the hook.
        """
        return register_post_accumulate_grad_hook(self, hook)  # type: ignore[arg-type]

    def detach(self) -> Tensor:
        """A tensor sharing this one's data (and version counter), cut from the graph."""
        t = wrap(self._data)
        t._version = _version_cell(self)
        if _state.tracer is not None:
            _state.tracer.detach(t, self)
        return t

    def detach_(self) -> Tensor:
        """Cut this tensor from the graph, in place."""
        self._node, self._index, self._requires_grad = None, 0, False
        return self  # type: ignore[return-value]

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        """Set ``requires_grad`` in place and return self."""
        self.requires_grad = requires_grad
        return self  # type: ignore[return-value]

    def _bump_version(self) -> None:
        if self._version is None:
            self._version = [1]
        else:
            self._version[0] += 1
