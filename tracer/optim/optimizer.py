"""``Optimizer``: the base class of every optimizer, with PyTorch's param groups and state dicts.

An optimizer holds ``param_groups`` (dicts with a ``"params"`` list of tensors plus that
group's hyper-parameters) and ``state`` (per-parameter buffers, keyed by the parameter
tensor). ``state_dict()`` has PyTorch's structure: ``{"state": {index: {...}},
"param_groups": [{..., "params": [index, ...]}]}``, parameters numbered in group order, so a
checkpoint refers to no tensor identity and loads into a fresh optimizer over the same model.

Each optimizer's update rule is written once, as a pure function over registry ops
(:meth:`Optimizer.functional_update`): on NumPy arrays it runs at once (the eager ``step``
uses it on the parameters' raw arrays), on ``ir.Value`` objects it emits graph nodes, so a whole
training step compiles into one graph. :meth:`Optimizer.functional_state` and
:meth:`Optimizer.load_functional_state` move a parameter's state between ``self.state`` and
that functional form.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from itertools import chain
from typing import Any, ClassVar

import numpy as np

from ir import dtypes
from ir.errors import ShapeError
from ir.ops.registry import op, scalar
from tracer.autograd import enable_grad, no_grad
from tracer.tensor import Tensor, tensor


class _Required:
    """Marks a default that each param group must give (PyTorch's ``optim.optimizer.required``)."""

    def __repr__(self) -> str:
        return "<required parameter>"


required = _Required()


class Optimizer:
    """Base class of optimizers.

    A subclass implements its update rule once, in :meth:`_functional_update` (registry ops
    only, see :meth:`functional_update`), and names its per-parameter buffers in
    :meth:`_functional_keys`; the eager :meth:`step` runs that rule on NumPy arrays.

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
        """Apply :meth:`functional_update` to the raw arrays of ``group``, written in place."""
        lr = np.asarray(float(group["lr"]), dtype=np.float64)
        for p in group["params"]:
            if p.grad is None:
                continue
            state = self._functional_state(group, p)
            new_p, new_state = self.functional_update(group, p._data, p.grad._data, state, lr)
            np.copyto(p._data, new_p)
            p._bump_version()
            self._load_functional_state(group, p, new_state)

    # ------------------------------------------------------------ functional form

    # Whether ``self.state[p]`` records "step" (Adam). SGD's does not, as in PyTorch: its
    # functional "step" is then 1 once the buffers exist and 0 before.
    _stores_step: ClassVar[bool] = True

    def functional_state(self, p: Tensor) -> dict[str, np.ndarray]:
        """The state of parameter ``p`` as plain arrays, the input of :meth:`functional_update`.

        Keys in a fixed order: ``"step"`` (0-d int64, updates so far), then the buffers
        (Adam: ``"exp_avg"``, ``"exp_avg_sq"``, with AMSGrad ``"max_exp_avg_sq"``; SGD with
        momentum: ``"momentum_buffer"``) shaped and typed like ``p``; zeros where none exist
        yet. SGD keeps no step count (as PyTorch), so its step reads 1 once it has a
        momentum buffer and 0 before, all its rule needs.

        Args:
            p: a parameter of this optimizer.

        Returns:
            ``{name: array}``; buffers are read-only views of the live state (copy them to
            keep them past the next :meth:`step`).

        Raises:
            ValueError: ``p`` is in none of this optimizer's param groups.
        """
        return self._functional_state(self._group_of(p), p)

    def _functional_state(self, group: Mapping[str, Any], p: Tensor) -> dict[str, np.ndarray]:
        keys = self._functional_keys(group)
        saved = self.state.get(p) or {}
        if self._stores_step:
            step = int(_number(saved.get("step", 0)))
        else:
            step = int(bool(keys) and all(saved.get(k) is not None for k in keys))
        state = {"step": np.asarray(step, dtype=np.int64)}
        for key in keys:
            value = saved.get(key)
            state[key] = np.zeros_like(p._data) if value is None else _read_only(value, p)
        return state

    def functional_update(
        self, group: Mapping[str, Any], p: Any, grad: Any, state: Mapping[str, Any], lr: Any
    ) -> tuple[Any, dict[str, Any]]:
        """One update of one parameter as a pure function, written with registry ops only.

        Values may be NumPy arrays (the rule runs at once) or ``ir.Value`` objects of one
        graph (it emits nodes). Hyper-parameters but the learning rate come from ``group``
        as constants; Python decides on them only, never on values. Factors PyTorch computes
        in Python double (Adam's bias corrections) are computed in float64 from ``lr`` and
        the step, then cast to the parameter's dtype.

        Args:
            group: the param group whose hyper-parameters apply (its ``"lr"`` is ignored).
            p: the parameter's value before the update.
            grad: its gradient; cast to ``p``'s dtype when it differs.
            state: the parameter's state, keyed as :meth:`functional_state` gives it.
            lr: the learning rate, a 0-d float64 value (or a Python number), so a
                scheduler can change it without rebuilding a graph.

        Returns:
            ``(new_p, new_state)``: the updated parameter, and the state with the same keys
            in the same order, ``"step"`` incremented.

        Raises:
            ValueError: ``state`` lacks a key the rule needs or has one it does not know.
        """
        expected = ("step", *self._functional_keys(group))
        if set(state) != set(expected):
            raise ValueError(
                f"{type(self).__name__}.functional_update got state keys {sorted(state)}; "
                f"expected {list(expected)} (see functional_state)"
            )
        if isinstance(lr, int | float):
            lr = np.asarray(lr, dtype=np.float64)
        if lr.dtype != np.float64:
            lr = op.Cast(lr, to=dtypes.to_onnx(np.dtype(np.float64)))
        if grad.dtype != p.dtype:
            grad = op.Cast(grad, to=dtypes.to_onnx(p.dtype))
        new_p, new_state = self._functional_update(group, p, grad, dict(state), lr)
        return new_p, {k: new_state[k] for k in expected}

    def load_functional_state(self, p: Tensor, state: Mapping[str, Any]) -> None:
        """Write a state in :meth:`functional_state`'s form back into ``self.state[p]``.

        Existing buffer tensors are overwritten in place, missing ones created in ``p``'s
        dtype; the step is kept as a Python int, so :meth:`state_dict` keeps PyTorch's
        structure. An SGD state whose step is 0 (never updated) stores nothing.

        Args:
            p: a parameter of this optimizer.
            state: ``{"step": ..., name: array, ...}``, e.g. a compiled step's outputs.

        Raises:
            ValueError: ``p`` is in no param group, or ``state``'s keys are not the ones
                :meth:`functional_state` gives.
            ShapeError: a buffer's shape differs from ``p``'s.
        """
        self._load_functional_state(self._group_of(p), p, state)

    def _load_functional_state(
        self, group: Mapping[str, Any], p: Tensor, state: Mapping[str, Any]
    ) -> None:
        keys = self._functional_keys(group)
        if set(state) != {"step", *keys}:
            raise ValueError(
                f"load_functional_state got state keys {sorted(state)}; expected "
                f"{['step', *keys]} (see functional_state)"
            )
        step = int(np.asarray(state["step"]))
        if not self._stores_step and (step == 0 or not keys):
            return
        target = self.state[p]
        if self._stores_step:
            target["step"] = step
        for key in keys:
            _store(target, key, np.asarray(state[key]), p)

    def _functional_keys(self, group: Mapping[str, Any]) -> tuple[str, ...]:
        """The names of the per-parameter buffers the rule reads and writes, in order."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step")

    def _functional_update(
        self, group: Mapping[str, Any], p: Any, grad: Any, state: dict[str, Any], lr: Any
    ) -> tuple[Any, dict[str, Any]]:
        """The rule itself; :meth:`functional_update` has checked and normalised its inputs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement step")

    def _group_of(self, p: Tensor) -> dict[str, Any]:
        """The param group holding ``p`` (by identity)."""
        for group in self.param_groups:
            if any(q is p for q in group["params"]):
                return group
        raise ValueError(
            f"the tensor of shape {p._data.shape} is in none of this {type(self).__name__}'s "
            "param groups; pass one of the parameters the optimizer was built with"
        )

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


def as_dtype_of(value: Any, like: Any) -> Any:
    """A float64 scalar factor cast to ``like``'s dtype, where a rule's factor meets it."""
    if like.dtype == np.float64:
        return value
    return op.Cast(value, to=dtypes.to_onnx(like.dtype))


def increment(step: Any) -> Any:
    """``step + 1`` on a step counter of any interpreter."""
    return op.Add(step, scalar(1, step))


def _read_only(value: Any, p: Tensor) -> np.ndarray:
    """A read-only view of a state buffer's array (a tensor's memory, or an array)."""
    array = value._data if isinstance(value, Tensor) else np.asarray(value, dtype=p.dtype)
    view = array.view()
    view.flags.writeable = False
    return view


def _store(target: dict[str, Any], key: str, value: np.ndarray, p: Tensor) -> None:
    """Write ``value`` into ``target[key]``: in place into an existing tensor, else a new one."""
    if value.shape != p._data.shape:
        raise ShapeError(
            f"state buffer {key!r} has shape {value.shape}; expected the parameter's "
            f"shape {p._data.shape}"
        )
    current = target.get(key)
    if isinstance(current, Tensor) and current.dtype == p.dtype:
        np.copyto(current._data, value, casting="same_kind")
        current._bump_version()
    else:
        target[key] = tensor(value, dtype=p.dtype)
