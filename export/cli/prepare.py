"""``graphcap export``'s model: import a model factory, build its example inputs, trace it.

The pieces are usable in-process (tests and notebooks call them): :func:`parse_input_spec`
and :func:`parse_dynamic_spec` read the ``--input``/``--dynamic`` syntax, :func:`prepare`
imports ``MODULE:FACTORY`` and builds the example inputs, :meth:`Prepared.trace` captures
the graph and :meth:`Prepared.call` runs the model eagerly on any feeds (``--verify`` uses it).
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import math
import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import tracer
from export.cli.common import CommandError, UsageError, parse_dtype
from ir.graph import Graph
from tracer.pytree import LEAF, TreeSpec, leaf_names, tree_flatten, tree_leaves, tree_unflatten

EXAMPLE_LIMIT = 1 << 30
"""The most bytes one ``--input`` example may take (``graphcap export`` allocates it)."""
_NAME = r"[A-Za-z_][\w.]*"
_INPUT = re.compile(rf"^({_NAME}):(\w+)\[([^\]]*)\]$")
_DIM = re.compile(r"^(?:([A-Za-z_]\w*)=)?(\d+)$")
_DYNAMIC = re.compile(rf"^({_NAME}):(-?\d+)(?:=([A-Za-z_]\w*))?$")


@dataclass(frozen=True)
class InputSpec:
    """One ``--input NAME:DTYPE[dims]``: an example size per axis, symbols for dynamic axes."""

    name: str
    dtype: np.dtype
    shape: tuple[int, ...]
    dynamic: Mapping[int, str] = field(default_factory=dict)

    def __str__(self) -> str:
        dims = [
            f"{self.dynamic[i]}={n}" if i in self.dynamic else str(n)
            for i, n in enumerate(self.shape)
        ]
        return f"{self.name}:{self.dtype}[{','.join(dims)}]"


def parse_input_spec(text: str) -> InputSpec:
    """Parse ``ids:int64[2,16]`` or ``ids:int64[batch=2,seq=16]`` (named dims are dynamic).

    Raises:
        argparse.ArgumentTypeError: the text does not follow that form (argparse then exits
            with status 2, naming ``--input``).
    """
    match = _INPUT.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not NAME:DTYPE[dims], e.g. x:float32[4,8] or ids:int64[batch=2,seq=16]"
        )
    name, dtype_text, dims_text = match.groups()
    try:
        dtype = parse_dtype(dtype_text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: {err}") from None
    shape: list[int] = []
    dynamic: dict[int, str] = {}
    for axis, dim in enumerate(d.strip() for d in dims_text.split(",") if dims_text.strip()):
        dim_match = _DIM.match(dim)
        if dim_match is None:
            raise argparse.ArgumentTypeError(
                f"{text!r}: dim {dim!r} is not a size (16) or symbol=size (seq=16)"
            )
        if dim_match.group(1):
            dynamic[axis] = dim_match.group(1)
        shape.append(int(dim_match.group(2)))
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > EXAMPLE_LIMIT:
        raise argparse.ArgumentTypeError(
            f"{text!r} is {nbytes:,} bytes; an example input may hold at most "
            f"{EXAMPLE_LIMIT:,} bytes (tracing needs small examples: dynamic axes keep any size)"
        )
    return InputSpec(name, dtype, tuple(shape), dynamic)


def parse_dynamic_spec(text: str) -> tuple[str, int, str | None]:
    """Parse ``ids:1=seq`` (or ``ids:1``, symbol ``ids_1``) as ``(name, axis, symbol)``.

    Raises:
        argparse.ArgumentTypeError: the text does not follow that form.
    """
    match = _DYNAMIC.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not NAME:AXIS=SYMBOL, e.g. ids:1=seq or x:0=batch"
        )
    return match.group(1), int(match.group(2)), match.group(3)


# ---------------------------------------------------------------- the model and its inputs


@dataclass(frozen=True)
class Argument:
    """One argument of the model: a tensor, a constant, or a nested structure of them.

    Attributes:
        key: its position (int) or keyword (str).
        name: its name; its tensors' graph inputs are named after it and their path
            (``state.0``, ``state.1``: ``tracer.pytree.leaf_names``).
        spec: its structure (``tracer.pytree``).
        leaves: per leaf, ``(input name, None)`` for a tensor, ``(None, value)`` for a
            constant, which tracing bakes in.
    """

    key: int | str
    name: str
    spec: TreeSpec
    leaves: tuple[tuple[str | None, Any], ...]


@dataclass
class Prepared:
    """A model with its example inputs, ready to trace and to run eagerly.

    Attributes:
        model: the callable the factory returned.
        target: the ``MODULE:FACTORY`` it came from.
        layout: the model's arguments, in call order.
        examples: the example arrays by input name.
        dynamic_axes: per input name, ``{axis: symbol}``.
        symbols: each symbol's example size.
    """

    model: Callable[..., Any]
    target: str
    layout: list[Argument]
    examples: dict[str, np.ndarray]
    dynamic_axes: dict[str, dict[int, str]]
    symbols: dict[str, int]

    def _arguments(self, feeds: Mapping[str, np.ndarray]) -> tuple[list[Any], dict[str, Any]]:
        return self.arguments({n: tracer.tensor(a) for n, a in feeds.items()})

    def arguments(self, tensors: Mapping[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        """The model's ``(args, kwargs)``: ``tensors`` by input name, constants as given."""
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for arg in self.layout:
            leaves = [constant if name is None else tensors[name] for name, constant in arg.leaves]
            value = tree_unflatten(arg.spec, leaves)
            if isinstance(arg.key, int):
                args.append(value)
            else:
                kwargs[arg.key] = value
        return args, kwargs

    def trace(self) -> Graph:
        """Trace the model on the example inputs (``tracer.trace``).

        Raises:
            CommandError: the model could not be traced; the message says why and where.
        """
        args, kwargs = self._arguments(self.examples)
        names = [arg.name for arg in self.layout]
        try:
            return tracer.trace(
                self.model,
                kwargs if kwargs else tuple(args),
                self.dynamic_axes,
                input_names=names,
            )
        except tracer.TraceError as err:
            raise CommandError(f"tracing {self.target} failed: {err}") from err
        except Exception as err:
            raise CommandError(
                f"{self.target} raised {type(err).__name__} while being traced: {err}"
            ) from err

    def call(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Run the model eagerly on ``feeds`` (by input name); outputs in graph order."""
        args, kwargs = self._arguments(feeds)
        with tracer.no_grad():
            result = self.model(*args, **kwargs)
        items = tree_leaves(result)  # flattened as the trace flattens its outputs
        return [np.asarray(r.numpy() if hasattr(r, "numpy") else r) for r in items]


def prepare(
    target: str,
    inputs: Sequence[InputSpec] = (),
    dynamic: Sequence[tuple[str, int, str | None]] = (),
    seed: int = 0,
) -> Prepared:
    """Import ``MODULE:FACTORY``, call the factory and build the example inputs.

    ``FACTORY()`` returns a model (a function, or an object with ``forward``/``__call__``;
    its ``eval()``, if any, is called) or a tuple ``(model, example_inputs)``. Without
    example inputs, ``inputs`` declares them and they are drawn at random (floats standard
    normal, integers in [0, 100), seeded).

    Raises:
        UsageError: a bad target, missing or mismatched inputs, a bad dynamic axis.
        CommandError: importing the module or calling the factory raised.
    """
    made = call_factory(target, seed)
    model, given = made, None
    if isinstance(made, tuple) and len(made) == 2 and callable(made[0]):
        model, given = made
    if not callable(model):
        raise UsageError(
            f"{target}() returned a {type(model).__name__}; expected a callable model "
            "(a function or an object with forward/__call__), or (model, example_inputs)"
        )
    if callable(getattr(model, "eval", None)):
        model.eval()  # inference mode (dropout off), as torch.onnx.export does
    if given is None:
        if not inputs:
            raise UsageError(
                f"{target}() gives no example inputs: declare them with --input, "
                "e.g. --input x:float32[4,8]"
            )
        rng = np.random.default_rng(seed)
        layout = [Argument(i, s.name, LEAF, ((s.name, None),)) for i, s in enumerate(inputs)]
        examples = {s.name: random_array(rng, s.dtype, s.shape) for s in inputs}
    else:
        layout, examples = _from_factory(model, given, target)
        _check_specs(inputs, examples, target)
    axes = _dynamic_axes(inputs, dynamic, examples)
    return Prepared(model, target, layout, examples, axes, symbol_sizes(axes, examples))


def call_factory(target: str, seed: int) -> Any:
    """Import ``MODULE:FACTORY`` and return what ``FACTORY()`` returns, weights seeded.

    Raises:
        UsageError: a bad target.
        CommandError: importing the module or calling the factory raised.
    """
    factory = _load_factory(target)
    tracer.manual_seed(seed)
    try:
        return factory()
    except Exception as err:
        raise CommandError(f"{target}() raised {type(err).__name__}: {err}") from err


def _load_factory(target: str) -> Callable[[], Any]:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise UsageError(f"model {target!r} is not MODULE:FACTORY, e.g. models:make_mlp")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name and (module_name + ".").startswith(err.name + "."):
            raise UsageError(
                f"cannot import module {module_name!r} (from {target!r}); run graphcap in "
                "the folder that holds it, or put that folder on PYTHONPATH"
            ) from err
        raise CommandError(f"importing {module_name!r} failed: {err}") from err
    except Exception as err:
        raise CommandError(f"importing {module_name!r} raised {type(err).__name__}: {err}") from err
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            found = sorted(
                n
                for n, v in vars(module).items()
                if callable(v) and n[0] != "_" and getattr(v, "__module__", "") == module_name
            )
            raise UsageError(
                f"module {module_name!r} has no factory {attr!r}; its callables: "
                f"{', '.join(found) or 'none'}"
            )
        obj = getattr(obj, part)
    if not callable(obj):
        raise UsageError(f"{target} is a {type(obj).__name__}, not a factory function")
    return obj


def random_array(
    rng: np.random.Generator,
    dtype: np.dtype,
    shape: Sequence[int],
    like: np.ndarray | None = None,
) -> np.ndarray:
    """Random values of ``dtype`` and ``shape``.

    Floats are standard normal, booleans fair coins, integers in [0, 100), or, given
    ``like``, in ``[like.min(), like.max()]`` (so token ids stay valid ids).
    """
    shape = tuple(shape)
    if dtype.kind == "f":
        return rng.standard_normal(shape).astype(dtype)
    if dtype.kind == "b":
        return rng.random(shape) < 0.5
    low, high = 0, 100
    if like is not None and like.size:
        low, high = int(like.min()), int(like.max()) + 1
    return rng.integers(low, high, size=shape).astype(dtype)


def _from_factory(
    model: Any, given: Any, target: str
) -> tuple[list[Argument], dict[str, np.ndarray]]:
    if isinstance(given, Mapping):
        items: list[tuple[int | str, Any]] = [(str(k), v) for k, v in given.items()]
    elif isinstance(given, tuple | list):
        items = list(enumerate(given))
    else:
        items = [(0, given)]
    params = _parameter_names(model)
    layout: list[Argument] = []
    examples: dict[str, np.ndarray] = {}
    for key, value in items:
        name = _argument_name(key, params)
        flat, spec = tree_flatten(value)
        leaves: list[tuple[str | None, Any]] = []
        for leaf_name, leaf in zip(leaf_names(name, spec), flat, strict=True):
            if isinstance(leaf, np.ndarray) or tracer.is_tensor(leaf):
                examples[leaf_name] = (
                    leaf.copy() if isinstance(leaf, np.ndarray) else leaf.numpy().copy()
                )
                leaves.append((leaf_name, None))
            else:
                leaves.append((None, leaf))
        layout.append(Argument(key, name, spec, tuple(leaves)))
    if not examples:
        raise UsageError(f"{target}()'s example inputs hold no tensor or array")
    return layout, examples


def _argument_name(key: int | str, params: Sequence[str]) -> str:
    if isinstance(key, str):
        return key
    return params[key] if key < len(params) else f"input_{key}"


def _parameter_names(model: Any) -> list[str]:
    target = getattr(model, "forward", model)
    try:
        params = inspect.signature(target).parameters.values()
    except (TypeError, ValueError):
        return []
    return [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]


def _check_specs(
    specs: Sequence[InputSpec], examples: Mapping[str, np.ndarray], target: str
) -> None:
    """``--input`` next to a factory's own examples must describe them (it may add symbols)."""
    for spec in specs:
        array = examples.get(spec.name)
        if array is None:
            raise UsageError(
                f"--input {spec}: {target}() has no input {spec.name!r}; its inputs: "
                f"{', '.join(examples)}"
            )
        if array.dtype != spec.dtype or array.shape != spec.shape:
            raise UsageError(
                f"--input {spec}: {target}()'s example {spec.name!r} is "
                f"{array.dtype}{list(array.shape)}"
            )


def _dynamic_axes(
    specs: Sequence[InputSpec],
    dynamic: Sequence[tuple[str, int, str | None]],
    examples: Mapping[str, np.ndarray],
) -> dict[str, dict[int, str]]:
    axes: dict[str, dict[int, str]] = {s.name: dict(s.dynamic) for s in specs if s.dynamic}
    for name, axis, symbol in dynamic:
        text = f"{name}:{axis}" + (f"={symbol}" if symbol else "")
        if name not in examples:
            raise UsageError(
                f"--dynamic {text}: no input named {name!r}; inputs: {', '.join(examples)}"
            )
        rank = examples[name].ndim
        if not -rank <= axis < rank:
            raise UsageError(f"--dynamic {text}: input {name!r} has rank {rank}")
        axis %= rank
        axes.setdefault(name, {})[axis] = symbol or f"{name}_{axis}"
    return axes


def symbol_sizes(
    axes: Mapping[str, Mapping[int, str]], examples: Mapping[str, np.ndarray]
) -> dict[str, int]:
    """Each dynamic dim's example size, from ``axes`` (``{input: {axis: symbol}}``).

    Raises:
        UsageError: one symbol has two different sizes among the examples.
    """
    sizes: dict[str, int] = {}
    for name, per_axis in axes.items():
        for axis, symbol in per_axis.items():
            size = int(examples[name].shape[axis])
            if sizes.setdefault(symbol, size) != size:
                raise UsageError(
                    f"dynamic dim {symbol!r} has example size {sizes[symbol]} on one input "
                    f"and {size} on {name!r} axis {axis}; one symbol is one size"
                )
    return sizes
