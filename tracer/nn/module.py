"""``Module`` and ``Parameter``: PyTorch's building blocks, on eager ``tracer`` tensors.

A ``Module`` registers the ``Parameter``s, buffers and sub-modules assigned to its
attributes, so ``state_dict`` keys (``encoder.layers.0.linear1.weight``), traversal order
and ``repr`` are PyTorch's and weights move between the two by name.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any, NamedTuple

import numpy as np

from tracer import _device
from tracer._tensor_base import TensorBase, to_array
from tracer.autograd import no_grad
from tracer.tensor import Tensor
from tracer.trace import note_state_read, note_state_write, trace_serial

__all__ = ["Module", "Parameter"]

# How many Module.__call__s are running: attributes assigned meanwhile are state that a
# forward keeps between calls, which a trace lists among its baked decisions.
_forward_depth = 0


class Parameter(Tensor):
    """A tensor that a ``Module`` registers as a learnable parameter.

    ``Parameter(data)`` shares ``data``'s memory (as PyTorch does) and is a leaf that
    requires grad unless ``requires_grad=False``.

    Raises:
        RuntimeError: ``requires_grad`` on a non-floating tensor.
    """

    __slots__ = ()

    def __init__(self, data: Any = None, requires_grad: bool = True) -> None:
        if data is None:
            data = np.zeros((0,), np.float32)
        src = data.detach() if isinstance(data, TensorBase) else None
        self._data = src._data if src is not None else to_array(data)
        self._version = src._version if src is not None else None
        self._node, self._index, self.grad = None, 0, None
        self._requires_grad = False
        if requires_grad:
            self.requires_grad = True

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class _IncompatibleKeys(NamedTuple):
    missing_keys: list[str]
    unexpected_keys: list[str]


def _addindent(text: str, spaces: int) -> str:
    first, *rest = text.split("\n")
    if not rest:
        return text
    return "\n".join([first, *(" " * spaces + line for line in rest)])


def _check_name(owner: Module, kind: str, name: Any) -> None:
    if not isinstance(name, str):
        raise TypeError(f"{kind} name should be a string, got {type(name).__name__}")
    if not name:
        raise KeyError(f'{kind} name can\'t be empty string ""')
    if "." in name:
        raise KeyError(f'{kind} name can\'t contain ".", got: {name}')
    if hasattr(owner, name) and name not in owner._member_names():
        raise KeyError(f"attribute '{name}' already exists")


class Module:
    """Base class of every layer and model.

    Assigning a ``Parameter`` or a ``Module`` to an attribute registers it;
    ``register_buffer`` registers a tensor that is state but not learnable. Subclasses
    call ``super().__init__()`` first and define ``forward``; call the module, not
    ``forward``.

    Attributes:
        training: whether the module is in training mode (``train()`` / ``eval()``).
    """

    training: bool
    _parameters: dict[str, Parameter | None]
    _buffers: dict[str, Tensor | None]
    _non_persistent_buffers: set[str]
    _modules: dict[str, Module | None]

    def __init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "training", True)
        set_(self, "_parameters", {})
        set_(self, "_buffers", {})
        set_(self, "_non_persistent_buffers", set())
        set_(self, "_modules", {})

    forward: Callable[..., Any]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Run ``forward`` on the arguments."""
        global _forward_depth
        _forward_depth += 1
        try:
            return self.forward(*args, **kwargs)
        finally:
            _forward_depth -= 1

    # ------------------------------------------------------------ registration

    def _member_names(self) -> set[str]:
        return {*self._parameters, *self._buffers, *self._modules}

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or None, a declared but absent parameter) as ``name``.

        Raises:
            TypeError: ``param`` is not a ``Parameter`` or None.
            KeyError: a bad name, or one taken by another attribute.
        """
        if "_parameters" not in self.__dict__:
            raise AttributeError("cannot assign parameter before Module.__init__() call")
        _check_name(self, "parameter", name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(
                f"cannot assign '{type(param).__name__}' object to parameter '{name}' "
                "(tracer.nn.Parameter or None required)"
            )
        self._buffers.pop(name, None)
        self._modules.pop(name, None)
        self._parameters[name] = param

    def register_buffer(self, name: str, tensor: Tensor | None, persistent: bool = True) -> None:
        """Register ``tensor`` as buffer ``name``: state that is not learnable.

        Non-persistent buffers are left out of ``state_dict``.

        Raises:
            TypeError: ``tensor`` is not a tensor or None.
            KeyError: a bad name, or one taken by another attribute.
        """
        if "_buffers" not in self.__dict__:
            raise AttributeError("cannot assign buffer before Module.__init__() call")
        _check_name(self, "buffer", name)
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(
                f"cannot assign '{type(tensor).__name__}' object to buffer '{name}' "
                "(tracer.Tensor or None required)"
            )
        self._parameters.pop(name, None)
        self._modules.pop(name, None)
        self._buffers[name] = tensor
        if persistent:
            self._non_persistent_buffers.discard(name)
        else:
            self._non_persistent_buffers.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` (or None) as sub-module ``name``.

        Raises:
            TypeError: ``module`` is not a ``Module`` or None.
            KeyError: a bad name, or one taken by another attribute.
        """
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(module).__name__} is not a Module subclass")
        _check_name(self, "module", name)
        self._parameters.pop(name, None)
        self._buffers.pop(name, None)
        self._modules[name] = module

    register_module = add_module

    def __setattr__(self, name: str, value: Any) -> None:
        params = self.__dict__.get("_parameters")
        if isinstance(value, Parameter):
            if params is None:
                raise AttributeError("cannot assign parameters before Module.__init__() call")
            self.__dict__.pop(name, None)
            self.register_parameter(name, value)
        elif params is not None and name in params:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as parameter '{name}' "
                    "(tracer.nn.Parameter or None expected)"
                )
            params[name] = None
        elif isinstance(value, Module):
            if params is None:
                raise AttributeError("cannot assign module before Module.__init__() call")
            self.__dict__.pop(name, None)
            self.add_module(name, value)
        elif params is not None and name in self._modules:
            if value is not None:
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as child module '{name}' "
                    "(tracer.nn.Module or None expected)"
                )
            self._modules[name] = None
        elif params is not None and name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(
                    f"cannot assign '{type(value).__name__}' as buffer '{name}' "
                    "(tracer.Tensor or None expected)"
                )
            self._buffers[name] = value
            if _forward_depth:
                note_state_write(self, name, value)
        elif _forward_depth and params is not None:
            self._set_forward_state(name, value)
        else:
            object.__setattr__(self, name, value)

    def _set_forward_state(self, name: str, value: Any) -> None:
        """An attribute a forward assigns (``self.hidden = h``): state kept between calls.

        It lives in ``_forward_state`` rather than ``__dict__``, so reading it goes through
        ``__getattr__``, where a trace records reads of values an earlier call left.
        """
        self.__dict__.pop(name, None)
        state = self.__dict__.setdefault("_forward_state", {})
        state[name] = (value, trace_serial())
        note_state_write(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Called only when normal lookup fails: look in the registries.
        d = self.__dict__
        for registry in ("_parameters", "_buffers", "_modules"):
            if registry in d and name in d[registry]:
                return d[registry][name]
        state = d.get("_forward_state")
        if state is not None and name in state:
            value, written = state[name]
            if written != trace_serial():  # left by an earlier call: a trace bakes it in
                note_state_read(self, name, value)
            return value
        raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self._non_persistent_buffers.discard(name)
                return
        if name in self.__dict__.get("_forward_state", {}):
            del self.__dict__["_forward_state"][name]
            return
        object.__delattr__(self, name)

    def __dir__(self) -> list[str]:
        state = self.__dict__.get("_forward_state", {})
        return sorted({*super().__dir__(), *self._member_names(), *state})

    # ------------------------------------------------------------ traversal

    def named_modules(
        self, memo: set[int] | None = None, prefix: str = "", remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Module]]:
        """``(name, module)`` for this module and every descendant, depth first."""
        if memo is None:
            memo = set()
        if remove_duplicate:
            if id(self) in memo:
                return
            memo.add(id(self))
        yield prefix, self
        for name, module in self._modules.items():
            if module is None:
                continue
            sub = f"{prefix}.{name}" if prefix else name
            yield from module.named_modules(memo, sub, remove_duplicate)

    def modules(self) -> Iterator[Module]:
        """This module and every descendant, depth first."""
        for _, m in self.named_modules():
            yield m

    def named_children(self) -> Iterator[tuple[str, Module]]:
        """``(name, module)`` for each direct sub-module."""
        seen: set[int] = set()
        for name, m in self._modules.items():
            if m is not None and id(m) not in seen:
                seen.add(id(m))
                yield name, m

    def children(self) -> Iterator[Module]:
        """Each direct sub-module."""
        for _, m in self.named_children():
            yield m

    def _named_members(
        self, registry: str, prefix: str, recurse: bool, remove_duplicate: bool
    ) -> Iterator[tuple[str, Any]]:
        seen: set[int] = set()
        mods = self.named_modules(prefix=prefix) if recurse else [(prefix, self)]
        for mod_prefix, module in mods:
            for name, t in getattr(module, registry).items():
                if t is None or (remove_duplicate and id(t) in seen):
                    continue
                seen.add(id(t))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), t

    def named_parameters(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, parameter)`` pairs; a shared parameter comes once by default."""
        yield from self._named_members("_parameters", prefix, recurse, remove_duplicate)

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        """Every parameter of this module (and its descendants when ``recurse``)."""
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(
        self, prefix: str = "", recurse: bool = True, remove_duplicate: bool = True
    ) -> Iterator[tuple[str, Tensor]]:
        """``(dotted name, buffer)`` pairs, persistent or not."""
        yield from self._named_members("_buffers", prefix, recurse, remove_duplicate)

    def buffers(self, recurse: bool = True) -> Iterator[Tensor]:
        """Every buffer of this module (and its descendants when ``recurse``)."""
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def get_submodule(self, target: str) -> Module:
        """The sub-module at dotted path ``target`` ("" is this module).

        Raises:
            AttributeError: no sub-module has that path.
        """
        module = self
        for item in target.split(".") if target else []:
            child = module._modules.get(item)
            if child is None:
                raise AttributeError(f"{module._get_name()} has no attribute `{item}`")
            module = child
        return module

    # ------------------------------------------------------------ modes and updates

    def train(self, mode: bool = True) -> Module:
        """Set training mode on this module and its descendants; returns self.

        Raises:
            ValueError: ``mode`` is not a bool.
        """
        if not isinstance(mode, bool):
            raise ValueError("training mode is expected to be boolean")
        for m in self.modules():
            m.training = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode (``train(False)``): dropout off; returns self."""
        return self.train(False)

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        """Set ``requires_grad`` on every parameter; returns self."""
        for p in self.parameters():
            p.requires_grad_(requires_grad)
        return self

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter, to None or (in place) to zeros."""
        for p in self.parameters():
            if p.grad is None:
                continue
            if set_to_none:
                p.grad = None
            else:
                with no_grad():
                    p.grad = p.grad.detach()
                    p.grad.zero_()

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn`` on every descendant, then on this module; returns self."""
        for m in self.children():
            m.apply(fn)
        fn(self)
        return self

    def to(self, *args: Any, **kwargs: Any) -> Module:
        """Cast floating parameters and buffers to a dtype, in place; returns self.

        Accepts ``to(dtype)``, ``to(device)``, ``to(device, dtype)``, ``to(tensor)`` and the
        keywords ``dtype=``, ``device=`` and ``non_blocking=``; parameters keep their
        identity (optimizers keep working). The only eager device is the CPU.

        Raises:
            DeviceError: a device other than the CPU (the message says where CUDA runs).
            TypeError: a non-floating dtype.
        """
        dtype, device = kwargs.get("dtype"), kwargs.get("device")
        for a in args:
            if isinstance(a, str | _device.device):
                device = a
            elif isinstance(a, TensorBase):
                dtype = a.dtype
            else:
                dtype = a
        _device.check_device(device, "Module.to")
        if dtype is None:
            return self
        dt = np.dtype(dtype)
        if dt.kind != "f":
            raise TypeError(f"Module.to only accepts floating point dtypes, but got {dt}")
        for t in [*self.parameters(), *self.buffers()]:
            if t._data.dtype.kind == "f" and t._data.dtype != dt:
                t._data = t._data.astype(dt)
                if t.grad is not None:
                    t.grad = t.grad.to(dt)
        return self

    def float(self) -> Module:
        """Cast floating parameters and buffers to float32."""
        return self.to(np.float32)

    def double(self) -> Module:
        """Cast floating parameters and buffers to float64."""
        return self.to(np.float64)

    def half(self) -> Module:
        """Cast floating parameters and buffers to float16."""
        return self.to(np.float16)

    def cpu(self) -> Module:
        """Returns self: tensors always live on the CPU."""
        return self

    def cuda(self, device: Any = None) -> Module:
        """Raises: eager modules live on the CPU (the error says where CUDA runs instead).

        Raises:
            DeviceError: always.
        """
        raise _device.device_error("cuda" if device is None else device, "Module.cuda()")

    # ------------------------------------------------------------ state

    def state_dict(
        self, destination: Any = None, prefix: str = "", keep_vars: bool = False
    ) -> OrderedDict[str, Tensor]:
        """Parameters and persistent buffers by dotted name, in PyTorch's order.

        Values share memory with the module's tensors but are detached (unless
        ``keep_vars``).
        """
        out: OrderedDict[str, Tensor] = OrderedDict() if destination is None else destination
        for name, p in self._parameters.items():
            if p is not None:
                out[prefix + name] = p if keep_vars else p.detach()
        for name, b in self._buffers.items():
            if b is not None and name not in self._non_persistent_buffers:
                out[prefix + name] = b if keep_vars else b.detach()
        for name, m in self._modules.items():
            if m is not None:
                m.state_dict(out, prefix + name + ".", keep_vars)
        return out

    def _state_entries(self) -> dict[str, Tensor]:
        return dict(self.state_dict(keep_vars=True))

    def load_state_dict(
        self, state_dict: Mapping[str, Any], strict: bool = True
    ) -> _IncompatibleKeys:
        """Copy values from ``state_dict`` into the parameters and buffers, in place.

        Values may be tensors or NumPy arrays; they are converted to each target's dtype.
        Parameters keep their identity, so optimizers holding them keep working.

        Returns:
            ``(missing_keys, unexpected_keys)``, a named tuple.

        Raises:
            RuntimeError: a shape mismatch; with ``strict``, also missing or unexpected
                keys. The message lists them all, as PyTorch's does.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"Expected state_dict to be dict-like, got {type(state_dict)}.")
        own = self._state_entries()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        errors = []
        if strict and missing:
            errors.append(f"Missing key(s) in state_dict: {', '.join(map(_q, missing))}. ")
        if strict and unexpected:
            errors.append(f"Unexpected key(s) in state_dict: {', '.join(map(_q, unexpected))}. ")
        pairs = []
        for key, target in own.items():
            if key not in state_dict:
                continue
            value = state_dict[key]
            shape = tuple(np.shape(value._data if isinstance(value, TensorBase) else value))
            if shape != target._data.shape:
                errors.append(
                    f"size mismatch for {key}: copying a param with shape {list(shape)} from "
                    f"checkpoint, the shape in current model is {list(target._data.shape)}."
                )
            else:
                pairs.append((target, value))
        if errors:
            raise RuntimeError(
                f"Error(s) in loading state_dict for {self._get_name()}:\n\t" + "\n\t".join(errors)
            )
        with no_grad():
            for target, value in pairs:
                target.copy_(value if isinstance(value, TensorBase) else np.asarray(value))
        return _IncompatibleKeys(missing, unexpected)

    # ------------------------------------------------------------ repr

    def _get_name(self) -> str:
        return type(self).__name__

    def extra_repr(self) -> str:
        """The module's own settings for ``repr``; subclasses override it."""
        return ""

    def __repr__(self) -> str:
        extra = self.extra_repr()
        extra_lines = extra.split("\n") if extra else []
        child_lines = [f"({key}): " + _addindent(repr(m), 2) for key, m in self._modules.items()]
        lines = extra_lines + child_lines
        body = ""
        if lines:
            if len(extra_lines) == 1 and not child_lines:
                body = extra_lines[0]
            else:
                body = "\n  " + "\n  ".join(lines) + "\n"
        return f"{self._get_name()}({body})"


def _q(key: str) -> str:
    return f'"{key}"'
