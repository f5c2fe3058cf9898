"""The op registry: every primitive op is declared here once, as an :class:`OpDef`.

An ``OpDef`` holds an op's ONNX identity (domain, op_type, the schema version whose semantics
it implements), its NumPy kernel, its dtype/shape rule, its vjp rule and its traits (random,
shape-only, reshape, older ONNX forms...), which every consumer asks the op for. The attribute
schema is read off the kernel's keyword-only parameters, so defaults are written exactly once;
attributes several ops share are one dataclass, given to their kernels by :func:`with_attrs`.

Ops are applied with :func:`bind` (or by calling the ``OpDef``). ``bind`` hands the op to the
interpreter that owns the inputs: an eager ``tracer.Tensor`` runs the kernel now, a graph
``ir.Value`` emits a node. Both implement the classmethod ``__graphcap_bind__(op, inputs,
attrs)``. vjp rules are written with ``op.<OpType>(...)`` so one rule serves eager autograd,
graph autodiff and tracing.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ir.errors import UnsupportedOpError
from ir.types import TensorType

Kernel = Callable[..., Any]
InferFn = Callable[..., "TensorType | tuple[TensorType, ...]"]
VjpFn = Callable[..., Sequence[Any]]

# Which forward values a vjp rule reads, for the eager in-place (version counter) check:
# "all" inputs; "none" (shapes only); "outputs" only; "others": input i is read only when
# another input needs a gradient (Mul, MatMul).
SAVES = ("all", "none", "outputs", "others")


class InferContext:
    """What a shape rule may know besides input types.

    That is the values of constant inputs, and the symbolic values (ints and dim names) of
    int64 inputs computed from shapes.
    """

    __slots__ = ("_dims", "_values")

    def __init__(
        self,
        values: Sequence[np.ndarray | None] = (),
        dims: Sequence[tuple[Any, ...] | None] = (),
    ) -> None:
        self._values = tuple(values)
        self._dims = tuple(dims)

    def value(self, index: int) -> np.ndarray | None:
        """The constant value of input ``index``, or None when it is not known."""
        return self._values[index] if index < len(self._values) else None

    def dims(self, index: int) -> tuple[Any, ...] | None:
        """Input ``index`` as a tuple of dims (ints or symbol names), or None if unknown."""
        value = self.value(index)
        if value is not None:
            return tuple(int(v) for v in np.asarray(value).reshape(-1))
        return self._dims[index] if index < len(self._dims) else None


class VjpContext:
    """What a vjp rule may read besides the forward inputs.

    Attributes:
        needs_input_grad: one bool per input; a rule may return None where it is False.
    """

    __slots__ = ("_outputs", "needs_input_grad")

    def __init__(
        self,
        outputs: Sequence[Any] | Callable[[], Sequence[Any]],
        needs_input_grad: Sequence[bool],
    ) -> None:
        # A callable is resolved on first use: most rules never read their outputs.
        self._outputs = outputs
        self.needs_input_grad = needs_input_grad

    @property
    def outputs(self) -> tuple[Any, ...]:
        """The forward outputs, as values of the running interpreter."""
        if callable(self._outputs):
            self._outputs = tuple(self._outputs())
        return tuple(self._outputs)


@dataclass(frozen=True)
class AttrInput:
    """An input that the op's older ONNX versions took as an attribute.

    Attributes:
        name: the attribute's name.
        position: the index of the input that replaced it.
        kind: how the attribute's value becomes that input: ``"ints"`` (1-D int64), ``"int"``
            (0-d int64), ``"float"`` (input 0's dtype when it is a float, else float32) or
            ``"like_x"`` (input 0's dtype).
        until: the first opset whose version takes the input.
        default: what the input is before ``until`` when the node sets neither (the old
            attribute default, where it differs from the input's: DFT-17's ``axis=1``);
            None leaves the input absent.
    """

    name: str
    position: int
    kind: str
    until: int
    default: Any = None


@dataclass(frozen=True)
class Legacy:
    """How the op's older ONNX versions differ from the registry's form.

    The reader turns a node of an older opset into the registry's form with it; the writer
    reads ``values`` to name the opset an attribute value needs.

    Attributes:
        oldest: the oldest opset whose version of the op can be read; before it the op
            meant something else (Scan-8 was batched).
        inputs: attributes that later became inputs (:class:`AttrInput`).
        broadcast: before opset 7 the op had a ``broadcast`` attribute (and, except Gemm,
            ``axis``); without ``axis`` it means NumPy broadcasting, so it is dropped.
        dropped: ``(attribute, opset)``: attributes that lost their meaning at that opset
            (Dropout's ``is_test`` at 7), dropped from older nodes.
        defaults: ``(attribute, opset, old default)``: an attribute that had a default
            before that opset and has none, or another, since (Concat's ``axis=1`` before 4).
        flat_2d: before this opset the op ran on its input flattened to 2-D around
            ``axis`` (Softmax, LogSoftmax and Hardmax before 13); 0: never.
        values: ``(attribute, value, opset)``: attribute values that ONNX admits from that
            opset on (Pad's ``mode="wrap"`` from 19).
    """

    oldest: int = 1
    inputs: tuple[AttrInput, ...] = ()
    broadcast: bool = False
    dropped: tuple[tuple[str, int], ...] = ()
    defaults: tuple[tuple[str, int, Any], ...] = ()
    flat_2d: int = 0
    values: tuple[tuple[str, Any, int], ...] = ()


@dataclass(frozen=True, eq=False)
class OpDef:
    """One registry entry.

    Besides its semantics, an entry declares the op's traits, which passes, the tracer and
    the ONNX reader and writer ask the op for (``node.op.random``) instead of keeping lists
    of op types.

    Attributes:
        op_type: ONNX op type, the registry key together with ``domain``.
        since: the ONNX schema version whose semantics the kernel implements.
        kernel: NumPy implementation ``kernel(*inputs, **attrs)``; inputs are arrays (or
            None for an absent optional input); returns an array or a tuple of arrays.
            Its keyword-only parameters are the op's attributes, with their defaults.
        infer: dtype/shape rule ``infer(ctx, *types, **attrs)`` over :class:`TensorType`.
        vjp: ``vjp(ctx, grad_out, *inputs, **attrs)`` returning one gradient (or None) per
            input; ``grad_out`` is a tuple for multi-output ops. None: not differentiable.
        no_vjp: why ``vjp`` is None (required then).
        domain: ONNX domain, "" for the default one.
        num_outputs: number of outputs, None when attributes decide (Split).
        saves: which forward values the vjp reads (see ``SAVES``).
        view: the kernel may return a view of input 0's memory (eager aliasing).
        random: the result is drawn at random (Dropout), so passes never fold, merge or
            duplicate it. An op with a ``seed`` attribute must say so.
        shape_only: the result depends only on input 0's shape and dtype, never on its
            values (Shape, Size, EyeLike): constant folding computes it once the shape is
            static.
        symbolic: the kernel only moves, indexes or combines elements with ``+ - *``, so it
            runs unchanged on object arrays of ints and dimension symbols: shape inference
            carries symbolic int64 values (shape arithmetic) through the op.
        reshape: the result is input 0's elements in their row-major order under another
            shape (Reshape, Flatten, Squeeze, Unsqueeze).
        shape_input: the int64 input whose values are the result's shape, input 0 being
            only reshaped or broadcast to it (Reshape and Expand: 1); None for other ops.
        nary: the op combines any number of inputs by one rule (Sum, Max, Min, Mean,
            Concat), so of a single input it returns that input.
        commutative: a binary op whose result is the same with its two inputs swapped (Add,
            Mul): rewrite patterns match its operands in either order.
        legacy: how older ONNX versions of the op differ (see :class:`Legacy`).
        optional_inputs: inputs among the first ``num_inputs[0]`` that may be absent: ONNX
            keeps their positions (``Loop``'s M and cond, ``EmbedLayerNormalization``'s
            segment ids and table), which a signature's defaults cannot say.
    """

    op_type: str
    since: int
    kernel: Kernel
    infer: InferFn
    vjp: VjpFn | None
    no_vjp: str = ""
    domain: str = ""
    num_outputs: int | None = 1
    saves: str = "all"
    view: bool = False
    random: bool = False
    shape_only: bool = False
    symbolic: bool = False
    reshape: bool = False
    shape_input: int | None = None
    nary: bool = False
    commutative: bool = False
    legacy: Legacy = Legacy()
    optional_inputs: tuple[int, ...] = ()
    attrs: Mapping[str, Any] = field(init=False)
    num_inputs: tuple[int, int | None] = field(init=False)

    def __post_init__(self) -> None:
        if self.vjp is None and not self.no_vjp:
            raise ValueError(f"op {self.op_type}: vjp=None needs a reason in no_vjp")
        if self.saves not in SAVES:
            raise ValueError(f"op {self.op_type}: saves={self.saves!r}, expected one of {SAVES}")
        attrs, counts = _signature_schema(self.kernel)
        object.__setattr__(self, "attrs", attrs)
        object.__setattr__(self, "num_inputs", counts)
        if "seed" in attrs and not self.random:
            raise ValueError(f"op {self.op_type} has a seed attribute: declare random=True")
        if self.nary and counts[1] is not None:
            raise ValueError(f"op {self.op_type}: nary=True needs a variadic kernel (*inputs)")
        hi = counts[1]
        if self.shape_input is not None and hi is not None and not 0 < self.shape_input < hi:
            raise ValueError(f"op {self.op_type}: shape_input={self.shape_input} is no input")

    def absent_inputs(self, inputs: Sequence[object | None]) -> list[int]:
        """Positions of required inputs that ``inputs`` (None: not given) leave out."""
        lo = self.num_inputs[0]
        return [
            i
            for i in range(lo)
            if (i >= len(inputs) or inputs[i] is None) and i not in self.optional_inputs
        ]

    @property
    def key(self) -> tuple[str, str]:
        """Registry key ``(domain, op_type)``."""
        return (self.domain, self.op_type)

    def full_attrs(self, attrs: Mapping[str, Any]) -> dict[str, Any]:
        """``attrs`` completed with the schema's defaults.

        Raises:
            UnsupportedOpError: an attribute the op does not have.
        """
        unknown = set(attrs) - set(self.attrs)
        if unknown:
            raise UnsupportedOpError(
                f"{self.op_type} has no attribute(s) {sorted(unknown)}; "
                f"its attributes are {sorted(self.attrs)}"
            )
        return {**self.attrs, **attrs}

    def __call__(self, *inputs: Any, **attrs: Any) -> Any:
        """Apply the op to ``inputs`` through :func:`bind`."""
        handler = _HANDLERS.get(type(inputs[0])) if inputs else None
        if handler:  # the common case, one lookup: the first input owns the interpreter
            return handler(self, inputs, attrs)
        return bind(self, inputs, attrs)

    def __repr__(self) -> str:
        return f"OpDef({self.op_type!r}, since={self.since})"


def _signature_schema(kernel: Kernel) -> tuple[dict[str, Any], tuple[int, int | None]]:
    """Attributes (keyword-only params with defaults) and (min, max) input counts."""
    if isinstance(kernel, np.ufunc):
        return {}, (kernel.nin, kernel.nin)
    attrs: dict[str, Any] = {}
    lo, hi = 0, 0
    variadic = False
    for p in inspect.signature(kernel).parameters.values():
        if p.kind is p.KEYWORD_ONLY:
            attrs[p.name] = p.default
        elif p.kind is p.VAR_POSITIONAL:
            variadic = True
        elif p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            hi += 1
            lo += p.default is p.empty
    return attrs, (lo, None if variadic else hi)


def with_attrs(schema: type[Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a kernel (or shape or vjp rule) the attributes of a schema several ops share.

    ``schema`` is a frozen dataclass whose fields are attributes with their ONNX defaults,
    and whose ``__post_init__`` checks them (``WindowAttrs`` for convolutions and pools,
    ``RecurrentAttrs`` for RNN, GRU and LSTM). The decorated function takes one instance as
    its keyword-only parameter ``attrs``; the function returned takes the fields as
    keyword-only parameters instead, next to the function's own, so the registry reads the
    op's attribute schema off the kernel as for any other op and the defaults stay written
    once, in the dataclass.
    """
    names = frozenset(f.name for f in dataclasses.fields(schema))
    shared = [
        inspect.Parameter(f.name, inspect.Parameter.KEYWORD_ONLY, default=f.default)
        for f in dataclasses.fields(schema)
    ]

    def decorate(fn: Callable[..., Any]) -> Callable[..., Any]:
        sig = inspect.signature(fn)
        params = [p for p in sig.parameters.values() if p.name != "attrs"]
        rest = [p for p in params if p.kind is p.VAR_KEYWORD]
        front = [p for p in params if p.kind is not p.KEYWORD_ONLY and p not in rest]
        named = sorted([*shared, *(p for p in params if p.kind is p.KEYWORD_ONLY)], key=_name)

        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            given = {k: kwargs.pop(k) for k in names.intersection(kwargs)}
            return fn(*args, attrs=schema(**given), **kwargs)

        wrapper.__signature__ = sig.replace(parameters=[*front, *named, *rest])  # type: ignore[attr-defined]
        return wrapper

    return decorate


def _name(p: inspect.Parameter) -> str:
    return p.name


_REGISTRY: dict[tuple[str, str], OpDef] = {}


def register(opdef: OpDef) -> OpDef:
    """Add ``opdef`` to the registry and return it.

    Raises:
        ValueError: an op with the same ``(domain, op_type)`` is already registered.
    """
    if opdef.key in _REGISTRY:
        raise ValueError(f"op {opdef.key} is registered twice")
    _REGISTRY[opdef.key] = opdef
    return opdef


def get(op_type: str, domain: str = "") -> OpDef:
    """Look an op up by ONNX identity.

    Raises:
        UnsupportedOpError: no such op is registered.
    """
    try:
        return _REGISTRY[(domain, op_type)]
    except KeyError:
        where = f"domain {domain!r}" if domain else "the default domain"
        raise UnsupportedOpError(f"op {op_type!r} of {where} is not in the registry") from None


def all_ops() -> list[OpDef]:
    """Every registered op, sorted by (domain, op_type)."""
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


# Interpreter hook of each input type seen so far (None: a constant type); saves a getattr
# on the MRO for every op a vjp rule applies.
_HANDLERS: dict[type, Any] = {}
_UNSEEN = object()


def bind(op: OpDef, inputs: Sequence[Any], attrs: Mapping[str, Any]) -> Any:
    """Apply ``op`` with the interpreter that owns its inputs.

    The first input whose type defines ``__graphcap_bind__`` decides. Other inputs are
    constants: NumPy arrays (use :func:`scalar` for a number), tuples of ints, or None. With
    no interpreter-owned input the kernel runs on the constants at once.
    """
    for x in inputs:
        cls = type(x)
        handler = _HANDLERS.get(cls, _UNSEEN)
        if handler is _UNSEEN:
            handler = _HANDLERS[cls] = getattr(cls, "__graphcap_bind__", None)
        if handler is not None:
            return handler(op, inputs, attrs)
    return op.kernel(*(None if x is None else np.asarray(x) for x in inputs), **attrs)


_SCALARS: dict[tuple[float | bool, type, np.dtype], np.ndarray] = {}


def scalar(value: float | bool, like: Any) -> np.ndarray:
    """A read-only 0-d constant of ``like``'s dtype, for use as an op input in rules."""
    key = (value, type(value), like.dtype)
    c = _SCALARS.get(key)
    if c is None:
        c = np.asarray(value, dtype=like.dtype)
        c.flags.writeable = False
        # -0.0 == 0.0 as keys: float zeros stay uncached so the sign of zero is never swapped.
        if not (type(value) is float and value == 0.0):
            _SCALARS[key] = c
    return c


def ints(values: Sequence[int] | int) -> np.ndarray:
    """An int64 constant (axes, shapes, indices) for use as an op input in rules."""
    return np.asarray(values, dtype=np.int64)


class _OpNamespace:
    """``op.Add(x, y)``: registry ops by ONNX name, looked up when called."""

    def __getattr__(self, name: str) -> OpDef:
        opdef = get(name)
        setattr(self, name, opdef)  # later lookups skip __getattr__: vjp rules are hot
        return opdef


op = _OpNamespace()
