"""``Optimizer``: the base class of every optimizer, with PyTorch's param groups and state dicts.

An optimizer holds ``param_groups`` (dicts with a ``"params"`` list of tensors plus that
group's hyper-parameters) and ``state`` (per-parameter buffers, keyed by the parameter
tensor). ``state_dict()`` has PyTorch's structure: ``{"state": {index: {...}},
"param_groups": [{..., "params": [index, ...]}]}``, parameters numbered in group order, so a
checkpoint refers to no tensor identity and loads into a fresh optimizer over the same model.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from itertools import chain
from typing import Any

import numpy as np

from tracer.autograd import enable_grad, no_grad
from tracer.tensor import Tensor, tensor


class _Required:
    """Marks a default that each param group must give (PyTorch's ``optim.optimizer.required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base class of optimizers; subclasses implement :meth:`_update_group`.

    Args:
        params: an iterable of tensors, of ``(name, tensor)`` pairs, or of dicts each holding
            ``"params"`` and hyper-parameters that override ``defaults`` for that group.
        defaults: the default hyper-parameters of every group.

    Raises:
        TypeError: ``params`` is a single tensor, or holds something that is not a tensor.
        ValueError: ``params`` is empty, a parameter is not a leaf, or a parameter appears
            in more than one group.
    """

    def __init__(self, params: Iterable[Any], defaults: Mapping[str, Any]) -> None:
        if isinstance(params, Tensor):
            raise TypeError(
                "params argument given to the optimizer should be an iterable of Tensors or "
                f"dicts, but got {type(params).__name__}"
            )
        if isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs; use a list instead"
            )
        self.defaults: dict[str, Any] = dict(defaults)
        self.state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        self.param_groups: list[dict[str, Any]] = []
        groups = list(params)
        if not groups:
            raise ValueError("optimizer got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(dict(group))

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join([*lines, ")"])

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group of parameters (a dict with ``"params"``), filling in the defaults.

        Raises:
            TypeError: ``param_group`` is not a dict, its params are a set or hold a
                non-tensor.
            ValueError: a required hyper-parameter is missing, a parameter is not a leaf,
                or a parameter is already in another group.
        """
        if not isinstance(param_group, dict):
            raise TypeError(f"param_group must be a dict, but got {type(param_group).__name__}")
        params = param_group["params"]
        if isinstance(params, Tensor):
            params = [params]
        elif isinstance(params, set):
            raise TypeError(
                "optimizer parameters need to be organized in ordered collections, but the "
                "ordering of tensors in sets will change between runs; use a list instead"
            )
        params = list(params)
        names = [p[0] for p in params if isinstance(p, tuple)]
        params = [p[1] if isinstance(p, tuple) else p for p in params]
        if names and len(names) != len(params):
            raise ValueError("all optimizer params should be with/without names")
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"optimizer can only optimize Tensors, but got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError("can't optimize a non-leaf Tensor")
        param_group["params"] = params
        if names:
            param_group["param_names"] = names
        for name, default in self.defaults.items():
            if default is required and name not in param_group:
                raise ValueError(
                    f"parameter group didn't specify a value of required optimization "
                    f"parameter {name}"
                )
            param_group.setdefault(name, default)
        seen = {id(p) for group in self.param_groups for p in group["params"]}
        if any(id(p) in seen for p in params):
            raise ValueError("some parameters appear in more than one parameter group")
        self.param_groups.append(param_group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Reset the gradients of every parameter: to None (default), or to zeros in place."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad = p.grad.detach()
                    with no_grad():
                        p.grad.zero_()

    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Update every parameter that has a gradient, in place.

        Args:
            closure: re-evaluates the model and returns the loss; called with grad enabled
                before the update.

        Returns:
            The closure's loss, or None.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        with no_grad():
            for group in self.param_groups:
                self._update_group(group)
        return loss

    def _update_group(self, group: dict[str, Any]) -> None:
        raise NotImplementedError(f"{type(self).__name__} does not implement step")

    # ------------------------------------------------------------ state dicts

    def state_dict(self) -> dict[str, Any]:
        """The optimizer's state, in PyTorch's structure.

        Returns:
            ``{"state": {index: {name: value}}, "param_groups": [group, ...]}`` where each
            group holds its hyper-parameters and ``"params"``, the indices of its parameters
            (numbered across groups in order). State tensors are references, not copies.
        """
        index: dict[int, int] = {}
        groups = []
        for group in self.param_groups:
            packed = {k: v for k, v in group.items() if k != "params"}
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            packed["params"] = [index[id(p)] for p in group["params"]]
            groups.append(packed)
        state = {(index[id(k)] if isinstance(k, Tensor) else k): v for k, v in self.state.items()}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load a state from :meth:`state_dict` (this optimizer's or an identical one's).

        Hyper-parameters come from the saved groups; state tensors are copied and cast to
        their parameter's dtype. Parameter indices may be ints or their decimal strings.

        Raises:
            ValueError: the number of groups, or of parameters in a group, differs, or the
                state dict lacks ``"state"`` or ``"param_groups"``.
        """
        if not isinstance(state_dict, Mapping) or not {"state", "param_groups"} <= set(state_dict):
            raise ValueError("optimizer state dict must be a dict with 'state' and 'param_groups'")
        saved_groups = copy.deepcopy(list(state_dict["param_groups"]))
        if len(saved_groups) != len(self.param_groups):
            raise ValueError("loaded state dict has a different number of parameter groups")
        for group, saved in zip(self.param_groups, saved_groups, strict=True):
            if len(group["params"]) != len(saved["params"]):
                raise ValueError(
                    "loaded state dict contains a parameter group that doesn't match the size "
                    f"of optimizer's group ({len(saved['params'])} != {len(group['params'])})"
                )
        id_map = {
            _index(i): p
            for i, p in zip(
                chain.from_iterable(g["params"] for g in saved_groups),
                chain.from_iterable(g["params"] for g in self.param_groups),
                strict=True,
            )
        }
        state: defaultdict[Any, dict[str, Any]] = defaultdict(dict)
        for key, value in state_dict["state"].items():
            param = id_map.get(_index(key))
            if param is None:
                state[key] = copy.deepcopy(value)
            else:
                state[param] = {k: _cast(param, v, k) for k, v in value.items()}
        self.state = state
        for group, saved in zip(self.param_groups, saved_groups, strict=True):
            saved["params"] = group["params"]
            if "param_names" in group and "param_names" not in saved:
                saved["param_names"] = group["param_names"]
            group.clear()
            group.update(saved)


def _index(key: Any) -> Any:
    """A parameter index, accepting the decimal strings a JSON round trip may leave."""
    if isinstance(key, str) and key.isdigit():
        return int(key)
    return key


def _cast(param: Tensor, value: Any, key: str) -> Any:
    """A state value copied for ``param``: tensors cast to its dtype; ``step`` a number."""
    if key == "step":
        return _number(value)
    if isinstance(value, Tensor):
        return value.detach().to(param.dtype).clone()
    if isinstance(value, np.ndarray) or hasattr(value, "__array__"):
        return tensor(np.asarray(value), dtype=param.dtype)
    if isinstance(value, dict):
        return {k: _cast(param, v, k) for k, v in value.items()}
    return copy.deepcopy(value)


def _number(value: Any) -> Any:
    """A step count as a Python number (PyTorch keeps it in a 0-d tensor)."""
    if isinstance(value, int | float):
        return value
    as_float = float(np.asarray(value))
    return int(as_float) if as_float.is_integer() else as_float
