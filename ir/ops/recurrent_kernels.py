"""NumPy kernels of ONNX's RNN, GRU and LSTM: the cells, the loop over time, and its backward.

``forward`` computes a layer's outputs; ``backward`` recomputes the forward, keeping what
each step's backward needs, and backpropagates through time. Both are vectorised over the
batch and loop over time in Python. Semantics are documented in ``ir.ops.recurrent``, which
registers the ops. The attributes the three ops share are declared once, in
:class:`RecurrentAttrs`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from ir.dtypes import int32
from ir.errors import DTypeError, ShapeError, UnsupportedOpError

# ---------------------------------------------------------------- activations


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1)  # no overflow for large |x|


def _act(name: str, x: np.ndarray, a: float, b: float) -> Any:
    match name:
        case "relu":
            return np.maximum(x, 0)
        case "tanh":
            return np.tanh(x)
        case "sigmoid":
            return _sigmoid(x)
        case "affine":
            return a * x + b
        case "leakyrelu":
            return np.where(x >= 0, x, a * x)
        case "thresholdedrelu":
            return x * (x >= a)
        case "scaledtanh":
            return a * np.tanh(b * x)
        case "hardsigmoid":
            return np.clip(a * x + b, 0, 1)
        case "elu":
            return np.where(x >= 0, x, a * np.expm1(np.minimum(x, 0)))
        case "softsign":
            return x / (1 + np.abs(x))
    return np.logaddexp(0, x)  # softplus


def _act_grad(name: str, x: np.ndarray, y: np.ndarray, a: float, b: float) -> Any:
    """The derivative at ``x``, given ``y = f(x)``."""
    match name:
        case "relu":
            return x > 0
        case "tanh":
            return 1 - y * y
        case "sigmoid":
            return y * (1 - y)
        case "affine":
            return np.full_like(x, a)
        case "leakyrelu":
            return np.where(x >= 0, 1, a)
        case "thresholdedrelu":
            return x >= a
        case "scaledtanh":
            return a * b * (1 - np.tanh(b * x) ** 2)
        case "hardsigmoid":
            return a * ((a * x + b > 0) & (a * x + b < 1))
        case "elu":
            return np.where(x >= 0, 1, a * np.exp(np.minimum(x, 0)))
        case "softsign":
            return 1 / (1 + np.abs(x)) ** 2
    return _sigmoid(x)  # softplus


# ONNX's activation functions (lower-cased): (uses alpha, uses beta, default alpha and beta),
# the defaults being onnxruntime's.
_ACTIVATIONS: dict[str, tuple[bool, bool, float, float]] = {
    "relu": (False, False, 0, 0),
    "tanh": (False, False, 0, 0),
    "sigmoid": (False, False, 0, 0),
    "affine": (True, True, 0, 0),
    "leakyrelu": (True, False, 0.01, 0),
    "thresholdedrelu": (True, False, 0, 0),
    "scaledtanh": (True, True, 0, 0),
    "hardsigmoid": (True, True, 0.2, 0.5),
    "elu": (True, False, 1.0, 0),
    "softsign": (False, False, 0, 0),
    "softplus": (False, False, 0, 0),
}
_NAMES = (
    "Relu, Tanh, Sigmoid, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, "
    "Softsign, Softplus"
)


@dataclass(frozen=True)
class _Act:
    name: str
    alpha: float
    beta: float

    def apply(self, x: np.ndarray, clip: float | None, grad: bool) -> tuple[Any, Any]:
        """``f(x)`` and, when ``grad``, ``f'(x)`` (zero where ``clip`` cut ``x``)."""
        if clip is not None:
            inside = np.abs(x) <= clip
            x = np.clip(x, -clip, clip)
        y = _act(self.name, x, self.alpha, self.beta).astype(x.dtype, copy=False)
        if not grad:
            return y, None
        d = np.asarray(_act_grad(self.name, x, y, self.alpha, self.beta)).astype(x.dtype)
        return y, d * inside if clip is not None else d


def _activations(
    op_type: str,
    per_direction: Sequence[str],
    num_dir: int,
    names: Sequence[str | bytes] | None,
    alphas: Sequence[float] | None,
    betas: Sequence[float] | None,
) -> list[list[_Act]]:
    """The activation functions of each direction, alphas and betas consumed in order."""
    given = list(per_direction) * num_dir if names is None else list(names)
    n = len(per_direction)
    if len(given) != n * num_dir:
        raise ShapeError(
            f"{op_type}: activations lists {len(given)} functions; expected {n * num_dir} "
            f"({n} per direction: {', '.join(per_direction)})"
        )
    alpha_it, beta_it = iter(alphas or ()), iter(betas or ())
    acts = []
    for name in given:
        text = name.decode() if isinstance(name, bytes) else str(name)
        key = text.lower()
        if key not in _ACTIVATIONS:
            raise UnsupportedOpError(
                f"{op_type}: activation {text!r} is not supported; ONNX's are {_NAMES}"
            )
        uses_a, uses_b, a, b = _ACTIVATIONS[key]
        a = float(next(alpha_it, a)) if uses_a else 0.0
        b = float(next(beta_it, b)) if uses_b else 0.0
        acts.append(_Act(key, a, b))
    return [acts[d * n : (d + 1) * n] for d in range(num_dir)]


# ---------------------------------------------------------------- cells
#
# A cell step maps ``xw`` (x @ W^T + Wb for this step, [batch, gates * n]) and the state to
# the new state, plus what its backward needs. The backward maps the state's gradient to the
# gradient of ``xw`` and of the previous state, adding R's, Rb's (and P's) into ``acc``.

Params = dict[str, np.ndarray]


def _lstm_step(
    xw: np.ndarray, state: tuple[np.ndarray, ...], p: Params, acts: list[_Act], cfg: _Config
) -> tuple[tuple[np.ndarray, ...], tuple[Any, ...]]:
    h, c = state
    n, grad = h.shape[-1], cfg.grad
    f_act, g_act, h_act = acts
    a = xw + h @ p["R"].T + p["Rb"]
    pi, po, pf = p["P"][:n], p["P"][n : 2 * n], p["P"][2 * n :]
    i, di = f_act.apply(a[:, :n] + pi * c, cfg.clip, grad)
    if cfg.option:  # input_forget: the forget gate is 1 - i
        f, df = 1 - i, None
    else:
        f, df = f_act.apply(a[:, 2 * n : 3 * n] + pf * c, cfg.clip, grad)
    g, dg = g_act.apply(a[:, 3 * n :], cfg.clip, grad)
    c_new = f * c + i * g
    o, do = f_act.apply(a[:, n : 2 * n] + po * c_new, cfg.clip, grad)
    hc, dhc = h_act.apply(c_new, None, grad)
    return (o * hc, c_new), (h, c, i, f, g, o, c_new, hc, di, df, dg, do, dhc)


def _lstm_back(
    d_state: list[np.ndarray], cache: tuple[Any, ...], p: Params, acc: Params, cfg: _Config
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    dh, dc = d_state
    h, c, i, f, g, o, c_new, hc, di, df, dg, do, dhc = cache
    n = h.shape[-1]
    pi, po, pf = p["P"][:n], p["P"][n : 2 * n], p["P"][2 * n :]
    da_o = dh * hc * do
    dc = dc + dh * o * dhc + da_o * po
    d_i, d_f = dc * g, dc * c
    if cfg.option:
        d_i, da_f = d_i - d_f, np.zeros_like(d_f)
    else:
        da_f = d_f * df
    da_i = d_i * di
    dc_prev = dc * f + da_i * pi + da_f * pf
    da = np.concatenate([da_i, da_o, da_f, dc * i * dg], axis=1)
    acc["R"] += da.T @ h
    acc["Rb"] += da.sum(0)
    acc["P"] += np.concatenate([(da_i * c).sum(0), (da_o * c_new).sum(0), (da_f * c).sum(0)])
    return da, (da @ p["R"], dc_prev)


def _gru_step(
    xw: np.ndarray, state: tuple[np.ndarray, ...], p: Params, acts: list[_Act], cfg: _Config
) -> tuple[tuple[np.ndarray, ...], tuple[Any, ...]]:
    (h,) = state
    n, grad = h.shape[-1], cfg.grad
    f_act, g_act = acts
    r_w, r_b = p["R"], p["Rb"]
    zr = xw[:, : 2 * n] + h @ r_w[: 2 * n].T + r_b[: 2 * n]
    z, dz = f_act.apply(zr[:, :n], cfg.clip, grad)
    r, dr = f_act.apply(zr[:, n:], cfg.clip, grad)
    if cfg.option:  # linear_before_reset: r scales the recurrent term, bias included
        u = h @ r_w[2 * n :].T + r_b[2 * n :]
        ah = xw[:, 2 * n :] + r * u
    else:
        u = r * h
        ah = xw[:, 2 * n :] + u @ r_w[2 * n :].T + r_b[2 * n :]
    ht, dht = g_act.apply(ah, cfg.clip, grad)
    return ((1 - z) * ht + z * h,), (h, z, r, u, ht, dz, dr, dht)


def _gru_back(
    d_state: list[np.ndarray], cache: tuple[Any, ...], p: Params, acc: Params, cfg: _Config
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    (dh,) = d_state
    h, z, r, u, ht, dz, dr, dht = cache
    n = h.shape[-1]
    r_h = p["R"][2 * n :]
    da_z = dh * (h - ht) * dz
    da_h = dh * (1 - z) * dht
    dh_prev = dh * z
    if cfg.option:
        da_r = da_h * u * dr
        du = da_h * r
        dh_prev += du @ r_h
        acc["R"][2 * n :] += du.T @ h
        acc["Rb"][2 * n :] += du.sum(0)
    else:
        dv = da_h @ r_h  # the gradient of r * h
        da_r = dv * h * dr
        dh_prev += dv * r
        acc["R"][2 * n :] += da_h.T @ u
        acc["Rb"][2 * n :] += da_h.sum(0)
    dzr = np.concatenate([da_z, da_r], axis=1)
    dh_prev += dzr @ p["R"][: 2 * n]
    acc["R"][: 2 * n] += dzr.T @ h
    acc["Rb"][: 2 * n] += dzr.sum(0)
    return np.concatenate([dzr, da_h], axis=1), (dh_prev,)


def _rnn_step(
    xw: np.ndarray, state: tuple[np.ndarray, ...], p: Params, acts: list[_Act], cfg: _Config
) -> tuple[tuple[np.ndarray, ...], tuple[Any, ...]]:
    (h,) = state
    y, dy = acts[0].apply(xw + h @ p["R"].T + p["Rb"], cfg.clip, cfg.grad)
    return (y,), (h, dy)


def _rnn_back(
    d_state: list[np.ndarray], cache: tuple[Any, ...], p: Params, acc: Params, cfg: _Config
) -> tuple[np.ndarray, tuple[np.ndarray, ...]]:
    h, dy = cache
    da = d_state[0] * dy
    acc["R"] += da.T @ h
    acc["Rb"] += da.sum(0)
    return da, (da @ p["R"],)


# ---------------------------------------------------------------- attributes


@dataclass(frozen=True)
class RecurrentAttrs:
    """The attributes RNN, GRU and LSTM (and their ``*Grad`` ops) share, with ONNX's defaults.

    The ops' kernels take them through ``registry.with_attrs``; each op's subclass adds its
    own (LSTM's ``input_forget``, GRU's ``linear_before_reset``) and names the op in errors.

    Raises:
        ShapeError: a direction other than forward, reverse or bidirectional, or a layout
            other than 0 or 1.
    """

    op_type: ClassVar[str] = "RNN"
    activation_alpha: Sequence[float] | None = None
    activation_beta: Sequence[float] | None = None
    activations: Sequence[str] | None = None
    clip: float | None = None
    direction: str = "forward"
    hidden_size: int | None = None
    layout: int = 0

    def __post_init__(self) -> None:
        num_directions(self.op_type, self.direction)
        if self.layout not in (0, 1):
            raise ShapeError(f"{self.op_type}: layout must be 0 or 1, got {self.layout!r}")

    @property
    def reverse(self) -> tuple[bool, ...]:
        """Whether each direction runs backwards in time: one entry, two when bidirectional."""
        return num_directions(self.op_type, self.direction)

    @property
    def option(self) -> int:
        """The cell's own switch: LSTM's input_forget, GRU's linear_before_reset (RNN: 0)."""
        return 0


@dataclass(frozen=True)
class LSTMAttrs(RecurrentAttrs):
    """LSTM's attributes: the shared ones and ``input_forget``."""

    op_type: ClassVar[str] = "LSTM"
    input_forget: int = 0

    @property
    def option(self) -> int:  # noqa: D102 - documented on the base class
        return self.input_forget


@dataclass(frozen=True)
class GRUAttrs(RecurrentAttrs):
    """GRU's attributes: the shared ones and ``linear_before_reset``."""

    op_type: ClassVar[str] = "GRU"
    linear_before_reset: int = 0

    @property
    def option(self) -> int:  # noqa: D102 - documented on the base class
        return self.linear_before_reset


@dataclass(frozen=True)
class RNNAttrs(RecurrentAttrs):
    """RNN's attributes: the shared ones; ONNX's RNN lists default activations."""

    op_type: ClassVar[str] = "RNN"
    activations: Sequence[str] | None = ("Tanh", "Tanh")


@dataclass(frozen=True)
class Kind:
    """What differs between RNN, GRU and LSTM."""

    attrs: type[RecurrentAttrs]
    gates: int
    states: int  # 1 (h) or 2 (h, c)
    activations: tuple[str, ...]  # the default function of each slot
    step: Callable[..., Any]
    back: Callable[..., Any]

    @property
    def op_type(self) -> str:
        """The forward op's type: ``"LSTM"``, ``"GRU"`` or ``"RNN"``."""
        return self.attrs.op_type


LSTM = Kind(LSTMAttrs, 4, 2, ("Sigmoid", "Tanh", "Tanh"), _lstm_step, _lstm_back)
GRU = Kind(GRUAttrs, 3, 1, ("Sigmoid", "Tanh"), _gru_step, _gru_back)
RNN = Kind(RNNAttrs, 1, 1, ("Tanh",), _rnn_step, _rnn_back)


# ---------------------------------------------------------------- the layer over time


@dataclass(frozen=True)
class _Config:
    kind: Kind
    reverse: tuple[bool, ...]  # per direction
    acts: list[list[_Act]]
    clip: float | None
    option: int  # input_forget (LSTM), linear_before_reset (GRU)
    grad: bool  # steps also compute what the backward needs


def num_directions(op_type: str, direction: str | bytes) -> tuple[bool, ...]:
    """Whether each direction runs backwards in time: one entry, or two when bidirectional.

    Raises:
        ShapeError: ``direction`` is not forward, reverse or bidirectional.
    """
    text = direction.decode() if isinstance(direction, bytes) else direction
    table = {"forward": (False,), "reverse": (True,), "bidirectional": (False, True)}
    if text not in table:
        raise ShapeError(
            f"{op_type}: direction must be forward, reverse or bidirectional, got {text!r}"
        )
    return table[text]


@dataclass
class _Inputs:
    """A layer's inputs, time-major, with absent optional ones made explicit (zeros)."""

    x: np.ndarray  # [seq, batch, input]
    w: np.ndarray
    r: np.ndarray
    b: np.ndarray
    lens: np.ndarray  # int64 [batch]
    init: list[np.ndarray]  # each [num_dir, batch, n]
    p: np.ndarray


def _prepare(
    kind: Kind, args: Sequence[np.ndarray | None], attrs: RecurrentAttrs, grad: bool
) -> tuple[_Inputs, _Config]:
    x, w, r, b, lens, *rest = args
    init = list(rest[: kind.states])
    p = rest[kind.states] if len(rest) > kind.states else None
    assert x is not None and w is not None and r is not None
    name = kind.op_type
    reverse = attrs.reverse
    nd, g = len(reverse), kind.gates
    if x.ndim != 3 or w.ndim != 3 or r.ndim != 3:
        raise ShapeError(f"{name}: X, W and R must be 3-D, got {x.shape}, {w.shape}, {r.shape}")
    if attrs.layout:
        x = x.swapaxes(0, 1)
        init = [None if s is None else s.swapaxes(0, 1) for s in init]
    seq, batch, size = x.shape
    n = r.shape[-1]
    hidden = attrs.hidden_size
    _expect(name, "W", w, (nd, g * n, size))
    _expect(name, "R", r, (nd, g * n, n))
    if hidden is not None and hidden != n:
        raise ShapeError(f"{name}: hidden_size={hidden} but R has shape {r.shape}")
    zeros = np.zeros((nd, batch, n), x.dtype)
    states = [zeros if s is None else _expect(name, "initial state", s, zeros.shape) for s in init]
    b = np.zeros((nd, 2 * g * n), x.dtype) if b is None else _expect(name, "B", b, (nd, 2 * g * n))
    p = np.zeros((nd, 3 * n), x.dtype) if p is None else _expect(name, "P", p, (nd, 3 * n))
    if lens is None:
        lens = np.full(batch, seq, np.int64)
    else:
        if lens.dtype != int32:
            raise DTypeError(f"{name}: sequence_lens must be int32, got {lens.dtype}")
        _expect(name, "sequence_lens", lens, (batch,))
        if np.any(lens < 0) or np.any(lens > seq):
            raise ShapeError(f"{name}: sequence_lens {lens.tolist()} must be in [0, {seq}]")
        lens = lens.astype(np.int64)
    names = attrs.activations
    if name == "RNN" and names is not None and len(names) == 2 and nd == 1:
        names = names[:1]  # ONNX's default lists two functions, even for one direction
    acts = _activations(
        name, kind.activations, nd, names, attrs.activation_alpha, attrs.activation_beta
    )
    cfg = _Config(kind, reverse, acts, attrs.clip, int(attrs.option), grad)
    return _Inputs(x, w, r, b, lens, states, p), cfg


def _expect(op_type: str, what: str, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    if x.shape != shape:
        raise ShapeError(f"{op_type}: {what} must have shape {list(shape)}, got {list(x.shape)}")
    return x


def _steps(seq: int, lens: np.ndarray, reverse: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Per step, each sequence's position in X and whether the step is within its length."""
    for s in range(seq):
        valid = s < lens
        yield (np.where(valid, lens - 1 - s, 0) if reverse else np.full_like(lens, s)), valid


def _direction(
    inp: _Inputs, cfg: _Config, d: int
) -> tuple[np.ndarray, list[np.ndarray], list[Any], Params]:
    """One direction: Y [seq, batch, n], the final states and, per step, the caches."""
    x, n = inp.x, inp.r.shape[-1]
    gn = cfg.kind.gates * n
    params = {"R": inp.r[d], "Rb": inp.b[d, gn:], "P": inp.p[d]}
    xw = x @ inp.w[d].T + inp.b[d, :gn]
    rows = np.arange(x.shape[1])
    state = tuple(s[d] for s in inp.init)
    y = np.zeros((*x.shape[:2], n), x.dtype)
    caches = []
    for pos, valid in _steps(x.shape[0], inp.lens, cfg.reverse[d]):
        new, cache = cfg.kind.step(xw[pos, rows], state, params, cfg.acts[d], cfg)
        state = tuple(np.where(valid[:, None], a, b) for a, b in zip(new, state, strict=True))
        y[pos[valid], rows[valid]] = new[0][valid]
        if cfg.grad:
            caches.append((pos, valid, cache))
    started = (inp.lens > 0)[:, None]  # an empty sequence has zero final states
    return y, [np.where(started, s, 0).astype(x.dtype) for s in state], caches, params


@contextlib.contextmanager
def _serial_blas() -> Iterator[None]:
    """One BLAS thread for the time loops.

    Their per-step matmuls are small, and BLAS threads only contend there: on a busy 2-core
    machine a step ran 100x slower with them. ``threadpoolctl`` is optional here.
    """
    global _CONTROLLER
    try:
        from threadpoolctl import ThreadpoolController  # optional; ir needs only NumPy
    except ImportError:
        yield
        return
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    with _CONTROLLER.limit(limits=1, user_api="blas"):
        yield


_CONTROLLER: Any = None


def forward(kind: Kind, args: Sequence[Any], attrs: RecurrentAttrs) -> tuple[np.ndarray, ...]:
    """``Y`` and the final states of one layer, in the layout ``attrs`` asks for.

    Args:
        kind: the cell.
        args: the op's inputs, absent optional ones as None.
        attrs: the op's attributes.

    Raises:
        ShapeError, DTypeError, UnsupportedOpError: inputs or attributes ONNX does not allow,
            or an activation function that is not ONNX's.
    """
    inp, cfg = _prepare(kind, args, attrs, grad=False)
    with _serial_blas():
        runs = [_direction(inp, cfg, d) for d in range(len(cfg.reverse))]
    y = np.stack([run[0] for run in runs], axis=1)  # [seq, num_dir, batch, n]
    finals = [np.stack([run[1][k] for run in runs]) for k in range(kind.states)]
    if attrs.layout:
        return (y.transpose(2, 0, 1, 3), *(f.swapaxes(0, 1) for f in finals))
    return (y, *finals)


def backward(
    kind: Kind, args: Sequence[Any], grads: Sequence[Any], attrs: RecurrentAttrs
) -> tuple[np.ndarray, ...]:
    """Gradients of X, W, R, B, the initial states (and P) by backpropagation through time.

    ``grads`` holds the gradients of ``Y`` and the final states (None: zero); absent optional
    inputs get the gradient they would have as zeros.
    """
    with _serial_blas():
        return _backward(kind, args, grads, attrs)


def _backward(
    kind: Kind, args: Sequence[Any], grads: Sequence[Any], attrs: RecurrentAttrs
) -> tuple[np.ndarray, ...]:
    inp, cfg = _prepare(kind, args, attrs, grad=True)
    layout, dtype = attrs.layout, inp.x.dtype
    dy, *d_finals = (None if g is None else np.asarray(g, dtype) for g in grads)
    if layout:
        dy = None if dy is None else dy.transpose(1, 2, 0, 3)
        d_finals = [None if g is None else g.swapaxes(0, 1) for g in d_finals]
    out = {k: np.zeros_like(v) for k, v in (("x", inp.x), ("w", inp.w), ("r", inp.r))}
    out |= {"b": np.zeros_like(inp.b), "p": np.zeros_like(inp.p)}
    d_init = [np.zeros_like(s) for s in inp.init]
    rows, started = np.arange(inp.x.shape[1]), (inp.lens > 0)[:, None]
    for d in range(len(cfg.reverse)):
        _, _, caches, params = _direction(inp, cfg, d)
        acc = {k: np.zeros_like(v) for k, v in params.items()}
        d_state = [
            np.zeros_like(d_init[k][d]) if g is None else g[d] * started
            for k, g in enumerate(d_finals)
        ]
        dxw = np.zeros((*inp.x.shape[:2], kind.gates * inp.r.shape[-1]), dtype)
        for pos, valid, cache in reversed(caches):
            keep = valid[:, None]
            d_new = [g * keep for g in d_state]
            if dy is not None:
                d_new[0] = d_new[0] + dy[pos, d, rows] * keep
            da, d_prev = kind.back(d_new, cache, params, acc, cfg)
            d_state = [a + g * ~keep for a, g in zip(d_prev, d_state, strict=True)]
            dxw[pos, rows] += da  # zero for sequences past their length
        out["x"] += dxw @ inp.w[d]
        out["w"][d] = np.tensordot(dxw, inp.x, axes=([0, 1], [0, 1]))
        out["r"][d], out["p"][d] = acc["R"], acc["P"]
        out["b"][d] = np.concatenate([dxw.sum((0, 1)), acc["Rb"]])
        for k, g in enumerate(d_state):
            d_init[k][d] = g
    if layout:
        out["x"] = out["x"].swapaxes(0, 1)
        d_init = [g.swapaxes(0, 1) for g in d_init]
    peepholes = [out["p"]] if kind.op_type == "LSTM" else []
    return (out["x"], out["w"], out["r"], out["b"], *d_init, *peepholes)
