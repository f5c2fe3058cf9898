"""Lower ``LSTMGrad``/``GRUGrad``/``RNNGrad`` (domain ``ai.graphcap``) to standard ONNX ops.

The vjp of ``LSTM``/``GRU``/``RNN`` is one node of a custom ``*Grad`` op (see
``ir.ops.recurrent``), which onnxruntime does not know. :func:`lower_recurrent_grads`
rewrites each such node, in place, into default-domain ops that compute the same outputs, so
a backward graph runs on any ONNX runtime. The recurrence stays a loop, an ONNX ``Scan``, so
a symbolic sequence length stays symbolic. Per direction:

1. the input projection ``X @ W^T + Wb (+ Rb)`` for every step at once (one MatMul);
2. a ``Scan`` in the direction's time order recomputing the states; it emits, per step, the
   state it started from and the gate activations the backward needs. Past a sequence's
   length (``sequence_lens``) the state is frozen: a reverse direction scanning the padded
   positions from the end thus starts at ``len - 1``, as the op defines. For an LSTM without
   ``sequence_lens`` whose forward node is in the graph, this Scan is placed before that
   node and also gives its outputs (``Y``, ``Y_h``, ``Y_c``), so the forward node goes: the
   states are computed once, not by the node and again by the Scan;
3. a ``Scan`` in the opposite time order carrying ``dh`` (and ``dc``) and emitting each
   step's pre-activation gate gradients (zero past the length, where ``dY`` is ignored);
4. ``dX``, ``dW``, ``dR``, ``dB`` from those with MatMul and ReduceSum over all steps, and
   the initial states' gradients from the final carries.

Covered: default activations (listing them explicitly is fine), all three directions,
``layout`` 0 and 1, ``sequence_lens`` and initial states present or absent, GRU's
``linear_before_reset`` 0 and 1, a static hidden size. Refused with
:class:`UnsupportedOpError`: ``clip``, other ``activations``, LSTM's ``input_forget=1``, and
peepholes ``P`` (present and not a constant zero, or their gradient used).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ir.dtypes import to_onnx
from ir.errors import UnsupportedOpError
from ir.graph import Graph, Node, Value
from ir.ops.recurrent import DOMAIN
from ir.ops.recurrent_kernels import GRU, LSTM, RNN, Kind, num_directions
from ir.ops.registry import get, ints, op, scalar

_KINDS = {"LSTMGrad": LSTM, "GRUGrad": GRU, "RNNGrad": RNN}


def lower_recurrent_grads(graph: Graph) -> int:
    """Replace every ``*Grad`` node of ``graph`` by standard ONNX ops computing its outputs.

    Outputs keep their names; outputs nobody uses are not computed.

    Returns:
        The number of nodes rewritten.

    Raises:
        UnsupportedOpError: a node uses an attribute or input the lowering does not cover
            (named in the message); the graph is left unchanged up to that node.
    """
    nodes = [n for n in graph.nodes if n.op.domain == DOMAIN and n.op.op_type in _KINDS]
    for node in nodes:
        _lower(graph, node)
    return len(nodes)


def _lower(graph: Graph, node: Node) -> None:
    kind = _KINDS[node.op.op_type]
    attrs = node.full_attrs
    wanted = [bool(v.uses) or any(v is o for o in graph.outputs) for v in node.outputs]
    _check_supported(kind, node, attrs, wanted)
    forward = _forward_node(graph, node, kind, attrs)
    with graph.inserting_before(node):  # the lowering computes what the *Grad node did
        lowering = _Lowering(graph, kind, node, attrs, forward)
        results = lowering.outputs(wanted)
    for old, new in zip(node.outputs, results, strict=True):
        if new is None:
            continue
        name = old.name
        graph.replace_all_uses_with(old, new)
        graph.rename(old, graph.fresh_name(f"{name}_lowered"))
        graph.rename(new, name)
    graph.remove(node)
    if forward is not None and lowering.forward_outputs:
        for old, new in zip(forward.outputs, lowering.forward_outputs, strict=False):
            graph.replace_all_uses_with(old, new)
        graph.remove(forward)


def _forward_node(graph: Graph, node: Node, kind: Kind, attrs: dict[str, Any]) -> Node | None:
    """The forward ``LSTM`` node that ``node`` differentiates, if the lowering may replace it.

    Only without ``sequence_lens`` (past a length ``Y`` is zero while the recomputed states
    freeze), and only when none of its outputs is a graph output.
    """
    ins = [*node.inputs[:7], *[None] * (7 - len(node.inputs[:7]))]
    if kind is not LSTM or ins[4] is not None or ins[0] is None:
        return None
    for user, _ in ins[0].uses:
        if user.op.op_type != "LSTM" or user.op.domain != "" or user.full_attrs != attrs:
            continue
        theirs = [*user.inputs[:7], *[None] * (7 - len(user.inputs[:7]))]
        if len(user.inputs) > 7 and user.inputs[7] is not None:
            continue  # peepholes: the lowering refuses their gradient, not their use
        if all(a is b for a, b in zip(theirs, ins, strict=True)):
            outs = {id(v) for v in graph.outputs}
            return None if any(id(v) in outs for v in user.outputs) else user
    return None


def _check_supported(kind: Kind, node: Node, attrs: dict[str, Any], wanted: list[bool]) -> None:
    where = f"lowering node {node.name} ({node.op.op_type})"
    if attrs["clip"] is not None:
        raise UnsupportedOpError(f"{where}: attribute clip={attrs['clip']} is not supported")
    nd = len(num_directions(kind.op_type, attrs["direction"]))
    given = [str(a).lower() for a in attrs["activations"] or ()]
    default = [a.lower() for a in kind.activations]
    if given and given not in (default * nd, default * 2):  # RNN's default lists two
        raise UnsupportedOpError(
            f"{where}: attribute activations={attrs['activations']} is not supported; only "
            f"the default {list(kind.activations)} per direction is"
        )
    if attrs.get("input_forget", 0):
        raise UnsupportedOpError(f"{where}: attribute input_forget=1 is not supported")
    if kind is LSTM:
        p = node.inputs[7] if len(node.inputs) > 7 else None
        zero = p is None or (p.const is not None and not np.any(p.const))
        if not zero or wanted[6]:
            raise UnsupportedOpError(
                f"{where}: peepholes (input P) are not supported, except absent or a constant "
                "zero whose gradient is not used"
            )
    r = node.inputs[2]
    assert r is not None
    if r.type.shape is None or not isinstance(r.type.shape[-1], int):
        raise UnsupportedOpError(f"{where}: R has type {r.type}; a static hidden size is needed")


class _Body:
    """A Scan body under construction; its value names start with the body's name."""

    def __init__(self, name: str) -> None:
        self.graph = Graph(name)

    def input(self, name: str, like: Value, slice_: bool = False) -> Value:
        shape = like.shape[1:] if slice_ else like.shape
        return self.graph.add_input(f"{self.graph.name}/{name}", like.dtype, shape)

    def finish(self, outputs: list[Value]) -> Graph:
        g = self.graph
        outs: list[Value] = []
        for v in outputs:  # body outputs are node outputs, each once
            outs.append(op.Identity(v) if v.producer is None or v in outs else v)
        g.set_outputs(outs)
        for v in g.values():
            if not v.name.startswith(f"{g.name}/"):
                g.rename(v, f"{g.name}/{v.name}")
        return g


def _sig_grad(s: Value) -> Value:
    return op.Mul(s, op.Sub(scalar(1.0, s), s))


def _tanh_grad(t: Value) -> Value:
    return op.Sub(scalar(1.0, t), op.Mul(t, t))


def _masked(m: Value | None, new: Value, old: Any) -> Value:
    return new if m is None else op.Where(m, new, old)


def _flat(x: Value) -> Value:
    return op.Flatten(x, axis=2)  # [T, B, k] -> [T*B, k]


def _outer(a: Value, b: Value) -> Value:
    """``sum_t a[t]^T @ b[t]`` over steps and batch: [T, B, i], [T, B, j] -> [i, j]."""
    return op.MatMul(op.Transpose(_flat(a)), _flat(b))


def _sum_steps(x: Value) -> Value:
    return op.ReduceSum(x, ints([0, 1]), keepdims=0)


class _Lowering:
    """The replacement of one ``*Grad`` node, time-major inside."""

    def __init__(
        self, graph: Graph, kind: Kind, node: Node, attrs: dict[str, Any], forward: Node | None
    ) -> None:
        self.graph, self.kind, self.name = graph, kind, node.name
        # Where the states are recomputed: in place of the forward node, or before `node`.
        self.forward = forward
        self.anchor = node if forward is None else forward
        self.forward_outputs: list[Value] = []
        n_in = 8 if kind is LSTM else 6
        ins = [*node.inputs, *[None] * (n_in + 1 + kind.states - len(node.inputs))]
        x, self.w, self.r, self.b, lens = ins[:5]
        assert x is not None and self.r is not None
        self.layout = attrs["layout"]
        self.reverse = num_directions(kind.op_type, attrs["direction"])
        self.lbr = int(attrs.get("linear_before_reset", 0))
        n = self.r.shape[-1]
        assert isinstance(n, int)  # _check_supported refuses a symbolic hidden size
        self.n = n
        with graph.inserting_before(self.anchor):
            self.x = op.Transpose(x, perm=[1, 0, 2]) if self.layout else x
            self.init = [self._time_major(s) for s in ins[5 : 5 + kind.states]]
        dy = ins[n_in]
        self.dy = op.Transpose(dy, perm=[1, 2, 0, 3]) if self.layout and dy is not None else dy
        self.dfinal = [self._time_major(g) for g in ins[n_in + 1 : n_in + 1 + kind.states]]
        self.mask: Value | None = None
        self.started: Value | None = None
        self.zeros: Value | None = None
        if lens is not None:
            self.mask, self.started = self._masks(lens)
        self.steps: list[tuple[Value, list[Value]]] = []  # per direction: h per step, finals

    def _time_major(self, s: Value | None) -> Value | None:
        return op.Transpose(s, perm=[1, 0, 2]) if self.layout and s is not None else s

    def _masks(self, lens: Value) -> tuple[Value, Value]:
        """[T, B, 1] bool: step within the length; [B, 1] float: length > 0."""
        lens64 = op.Cast(lens, to=to_onnx(np.dtype(np.int64)))
        steps = op.Squeeze(op.Shape(self.x, start=0, end=1), ints([0]))
        t = op.Range(ints(0), steps, ints(1))
        valid = op.Less(op.Unsqueeze(t, ints([1])), op.Unsqueeze(lens64, ints([0])))
        started = op.Cast(op.Less(ints(0), lens64), to=to_onnx(self.x.dtype))
        return op.Unsqueeze(valid, ints([2])), op.Unsqueeze(started, ints([1]))

    def _zeros(self) -> Value:
        """A [B, n] zero state (one node for all its uses)."""
        if self.zeros is None:
            shape = op.Concat(op.Shape(self.x, start=1, end=2), ints([self.n]), axis=0)
            self.zeros = op.Expand(scalar(0.0, self.x), shape)
        return self.zeros

    def _take(self, v: Value | None, d: int, axis: int = 0) -> Value | None:
        return None if v is None else op.Gather(v, ints(d), axis=axis)

    # ------------------------------------------------------------ the node's outputs

    def outputs(self, wanted: list[bool]) -> list[Value | None]:
        """One value per output of the node (None where not wanted)."""
        keys = ["x", "w", "r", "b", *(f"init{k}" for k in range(self.kind.states))]
        need = {k for k, keep in zip(keys, wanted, strict=False) if keep}
        if not need:
            return [None] * len(wanted)
        runs = [self._direction(d, need) for d in range(len(self.reverse))]
        if self.forward is not None:
            with self.graph.inserting_before(self.anchor):
                self.forward_outputs = self._forward_outputs()
        results: list[Value | None] = []
        for key in keys:
            if key not in need:
                results.append(None)
            elif key == "x":
                dx = runs[0]["x"]
                for run in runs[1:]:
                    dx = op.Add(dx, run["x"])
                results.append(op.Transpose(dx, perm=[1, 0, 2]) if self.layout else dx)
            else:
                s = self._stack([run[key] for run in runs])
                transpose = self.layout and key.startswith("init")
                results.append(op.Transpose(s, perm=[1, 0, 2]) if transpose else s)
        return results + [None] * (len(wanted) - len(results))  # P's: refused when wanted

    def _forward_outputs(self) -> list[Value]:
        """The forward node's ``Y``, ``Y_h``, ``Y_c`` from the recomputing Scans."""
        y = self._stack([h for h, _ in self.steps], axis=1)  # [T, D, B, n]
        finals = [self._stack([f[k] for _, f in self.steps]) for k in range(2)]
        if self.layout:
            return [op.Transpose(y, perm=[2, 0, 1, 3])] + [
                op.Transpose(f, perm=[1, 0, 2]) for f in finals
            ]
        return [y, *finals]

    def _stack(self, per_direction: list[Value], axis: int = 0) -> Value:
        parts = [op.Unsqueeze(v, ints([axis])) for v in per_direction]
        return parts[0] if len(parts) == 1 else op.Concat(*parts, axis=axis)

    def _weights(self, r: Value, rb: Value | None) -> tuple[list[Value], list[Value]]:
        """The recurrent weights the forward and the backward bodies carry (unchanged)."""
        if self.kind is GRU and not self.lbr:  # r multiplies h before R_h does
            n = self.n
            parts = op.Split(r, ints([2 * n, n]), axis=0)
            return [op.Transpose(p) for p in parts], list(parts)
        return [op.Transpose(r), *([] if rb is None else [rb])], [r]

    def _direction(self, d: int, need: set[str]) -> dict[str, Any]:
        kind, n = self.kind, self.n
        with self.graph.inserting_before(self.anchor):
            w, r = self._take(self.w, d), self._take(self.r, d)
            assert w is not None and r is not None
            wb = rb = None
            if self.b is not None:
                wb, rb = op.Split(self._take(self.b, d), axis=0, num_outputs=2)
            xw = op.MatMul(self.x, op.Transpose(w))
            fold_rb = rb is not None and not (kind is GRU and self.lbr)
            if wb is not None:
                xw = op.Add(xw, op.Add(wb, rb) if fold_rb else wb)
            init = [
                self._zeros() if s is None else op.Gather(s, ints(d), axis=0) for s in self.init
            ]
            fwd_w, bwd_w = self._weights(r, None if fold_rb else rb)
            fwd = self._forward_scan(d, xw, init, fwd_w)
        dinit = []
        for g in self.dfinal:  # an empty sequence's final state is zero, whatever it was
            g = self._take(g, d)
            if g is None:
                dinit.append(self._zeros())
            else:
                dinit.append(g if self.started is None else op.Mul(g, self.started))
        dxw, drec, dstates = self._backward_scan(d, fwd, dinit, bwd_w)
        out: dict[str, Any] = {f"init{k}": g for k, g in enumerate(dstates)}
        h_prev, gates = fwd[0], fwd[1]
        if "x" in need:
            out["x"] = op.MatMul(dxw, w)
        if "w" in need:
            out["w"] = _outer(dxw, self.x)
        if "r" in need and kind is GRU and not self.lbr:  # R_h's input is r * h
            r_gate = op.Slice(gates, ints([n]), ints([2 * n]), ints([2]))
            dzr, dh_gate = op.Split(dxw, ints([2 * n, n]), axis=2)
            h_gate = _outer(dh_gate, op.Mul(r_gate, h_prev))
            out["r"] = op.Concat(_outer(dzr, h_prev), h_gate, axis=0)
        elif "r" in need:
            out["r"] = _outer(drec, h_prev)
        if "b" in need:
            db = _sum_steps(dxw)
            out["b"] = op.Concat(db, db if drec is dxw else _sum_steps(drec), axis=0)
        return out

    def _scan(self, body: Graph, states: list[Value], scans: list[Value], back: bool) -> Any:
        attrs: dict[str, Any] = {"body": body, "num_scan_inputs": len(scans)}
        if back:
            attrs["scan_input_directions"] = [1] * len(scans)
            attrs["scan_output_directions"] = [1] * (len(body.outputs) - len(states))
        return self.graph.apply(get("Scan"), [*states, *scans], attrs, name=body.name)

    # ------------------------------------------------------------ forward in time

    def _forward_scan(
        self, d: int, xw: Value, init: list[Value], weights: list[Value]
    ) -> list[Value]:
        """Per step: the state it starts from, gate activations (and GRU's ``u``)."""
        b = _Body(f"{self.name}_forward{d}")
        states = [b.input(s, v) for s, v in zip(("h", "c"), init, strict=False)]
        w_in = [b.input(f"weight{i}", v) for i, v in enumerate(weights)]
        xw_t = b.input("xw", xw, slice_=True)
        m = None if self.mask is None else b.input("valid", self.mask, slice_=True)
        new, outs = _CELLS[self.kind.op_type](self, states, w_in, xw_t)
        new = [_masked(m, a, s) for a, s in zip(new, states, strict=True)]
        keep_h = [new[0]] if self.forward is not None else []  # Y, for the forward's users
        body = b.finish([*new, *w_in, states[0], *outs, *keep_h])
        carried = [*init, *weights]
        scans = [xw, *([] if self.mask is None else [self.mask])]
        result = list(self._scan(body, carried, scans, self.reverse[d]))
        if keep_h:
            self.steps.append((result.pop(), result[: len(init)]))
        return result[len(carried) :]

    def _lstm_cell(
        self, states: list[Value], weights: list[Value], xw: Value
    ) -> tuple[list[Value], list[Value]]:
        h, c = states
        a = op.Add(xw, op.MatMul(h, weights[0]))
        a_i, a_o, a_f, a_g = op.Split(a, axis=1, num_outputs=4)
        i, o, f, g = op.Sigmoid(a_i), op.Sigmoid(a_o), op.Sigmoid(a_f), op.Tanh(a_g)
        c_new = op.Add(op.Mul(f, c), op.Mul(i, g))
        hc = op.Tanh(c_new)
        return [op.Mul(o, hc), c_new], [op.Concat(i, o, f, g, axis=1), c, hc]

    def _gru_cell(
        self, states: list[Value], weights: list[Value], xw: Value
    ) -> tuple[list[Value], list[Value]]:
        (h,) = states
        x_z, x_r, x_h = op.Split(xw, axis=1, num_outputs=3)
        hr = op.MatMul(h, weights[0])
        if self.lbr:  # weights: R^T (and Rb): r scales h @ R_h^T + Rb_h
            hr = hr if len(weights) == 1 else op.Add(hr, weights[1])
            h_z, h_r, u = op.Split(hr, axis=1, num_outputs=3)
        else:  # weights: R_zr^T, R_h^T
            h_z, h_r = op.Split(hr, axis=1, num_outputs=2)
        z, r = op.Sigmoid(op.Add(x_z, h_z)), op.Sigmoid(op.Add(x_r, h_r))
        if self.lbr:
            ht = op.Tanh(op.Add(x_h, op.Mul(r, u)))
        else:
            ht = op.Tanh(op.Add(x_h, op.MatMul(op.Mul(r, h), weights[1])))
        h_new = op.Add(ht, op.Mul(z, op.Sub(h, ht)))
        return [h_new], [op.Concat(z, r, ht, axis=1), *([u] if self.lbr else [])]

    def _rnn_cell(
        self, states: list[Value], weights: list[Value], xw: Value
    ) -> tuple[list[Value], list[Value]]:
        ht = op.Tanh(op.Add(xw, op.MatMul(states[0], weights[0])))
        return [ht], [ht]

    # ------------------------------------------------------------ backward in time

    def _backward_scan(
        self, d: int, fwd: list[Value], dinit: list[Value], weights: list[Value]
    ) -> tuple[Value, Value, list[Value]]:
        """(dxw, the recurrent pre-activations' gradient, the initial states' gradients)."""
        b = _Body(f"{self.name}_backward{d}")
        dstates = [b.input(s, v) for s, v in zip(("dh", "dc"), dinit, strict=False)]
        w_in = [b.input(f"weight{i}", v) for i, v in enumerate(weights)]
        saved = [b.input(f"saved{i}", v, slice_=True) for i, v in enumerate(fwd[1:])]
        dy = self._take(self.dy, d, axis=1)
        dy_t = None if dy is None else b.input("dy", dy, slice_=True)
        m = None if self.mask is None else b.input("valid", self.mask, slice_=True)
        h_prev = b.input("h_prev", fwd[0], slice_=True)
        dh = dstates[0] if dy_t is None else op.Add(dstates[0], dy_t)
        zero = scalar(0.0, dh)
        d_in = [_masked(m, dh, zero), *(_masked(m, s, zero) for s in dstates[1:])]
        prev, outs = _GRADS[self.kind.op_type](self, d_in, saved, h_prev, w_in)
        prev = [_masked(m, a, s) for a, s in zip(prev, dstates, strict=True)]
        body = b.finish([*prev, *w_in, *outs])
        scans = [*fwd[1:], *([] if dy is None else [dy])]
        scans += [*([] if self.mask is None else [self.mask]), fwd[0]]
        result = self._scan(body, [*dinit, *weights], scans, not self.reverse[d])
        k = len(dinit) + len(weights)
        return result[k], result[-1], list(result[: len(dinit)])

    def _lstm_grad(
        self, d_in: list[Value], saved: list[Value], h: Value, weights: list[Value]
    ) -> tuple[list[Value], list[Value]]:
        dh, dc = d_in
        gates, c, hc = saved
        i, o, f, g = op.Split(gates, axis=1, num_outputs=4)
        da_o = op.Mul(op.Mul(dh, hc), _sig_grad(o))
        dc = op.Add(dc, op.Mul(op.Mul(dh, o), _tanh_grad(hc)))
        da_i = op.Mul(op.Mul(dc, g), _sig_grad(i))
        da_f = op.Mul(op.Mul(dc, c), _sig_grad(f))
        da_g = op.Mul(op.Mul(dc, i), _tanh_grad(g))
        da = op.Concat(da_i, da_o, da_f, da_g, axis=1)
        return [op.MatMul(da, weights[0]), op.Mul(dc, f)], [da]

    def _gru_grad(
        self, d_in: list[Value], saved: list[Value], h: Value, weights: list[Value]
    ) -> tuple[list[Value], list[Value]]:
        (dh,) = d_in
        z, r, ht = op.Split(saved[0], axis=1, num_outputs=3)
        da_z = op.Mul(op.Mul(dh, op.Sub(h, ht)), _sig_grad(z))
        da_h = op.Mul(op.Mul(dh, op.Sub(scalar(1.0, z), z)), _tanh_grad(ht))
        dh_prev = op.Mul(dh, z)
        if self.lbr:  # weights: R
            da_r = op.Mul(op.Mul(da_h, saved[1]), _sig_grad(r))
            drec = op.Concat(da_z, da_r, op.Mul(da_h, r), axis=1)
            dh_prev = op.Add(dh_prev, op.MatMul(drec, weights[0]))
            return [dh_prev], [op.Concat(da_z, da_r, da_h, axis=1), drec]
        dv = op.MatMul(da_h, weights[1])  # weights: R_zr, R_h; dv is r * h's gradient
        da_r = op.Mul(op.Mul(dv, h), _sig_grad(r))
        dzr = op.Concat(da_z, da_r, axis=1)
        dh_prev = op.Add(op.Add(dh_prev, op.Mul(dv, r)), op.MatMul(dzr, weights[0]))
        return [dh_prev], [op.Concat(dzr, da_h, axis=1)]

    def _rnn_grad(
        self, d_in: list[Value], saved: list[Value], h: Value, weights: list[Value]
    ) -> tuple[list[Value], list[Value]]:
        da = op.Mul(d_in[0], _tanh_grad(saved[0]))
        return [op.MatMul(da, weights[0])], [da]


_CELLS = {"LSTM": _Lowering._lstm_cell, "GRU": _Lowering._gru_cell, "RNN": _Lowering._rnn_cell}
_GRADS = {"LSTM": _Lowering._lstm_grad, "GRU": _Lowering._gru_grad, "RNN": _Lowering._rnn_grad}
