"""Capturing real code: no silent wrong graphs, nested inputs and outputs, symbolic sizes.

Each test names the idiom it captures or refuses; numerics are checked against the eager
code on the registry's kernels (``run_graph``) or on onnxruntime.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
import pytest

import ir
import tracer as gc
from runtime import Session
from tests.tracer.test_trace import run_graph
from tracer import TraceError, nn
from tracer.nn import functional as F  # noqa: N812 - PyTorch's name

# ---------------------------------------------------------------- 1. values into NumPy


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (lambda x: gc.tensor(x.numpy() * 2), "numpy()"),
        (lambda x: gc.tensor(np.asarray(x) * 2), "numpy.asarray"),
        (lambda x: gc.tensor(np.array(x) + 1), "numpy.asarray"),
        (lambda x: gc.tensor(x.__array__()), "numpy.asarray"),
        (lambda x: gc.tensor(np.cbrt(x)), "numpy.cbrt"),  # no tensor method: NumPy's values
        (lambda x: gc.tensor(np.exp(x)), r"tracer.tensor\(tensor\)"),  # a copy: a constant
        (lambda x: gc.from_numpy(x.detach().numpy()), "numpy()"),
    ],
)
def test_reading_traced_values_into_numpy_raises_naming_the_line(body: Any, what: str) -> None:
    with pytest.raises(TraceError, match=what) as info:
        gc.trace(body, (gc.randn(2, 3),))
    assert "test_capture.py:" in str(info.value)


def test_numpy_ufuncs_with_a_tensor_method_are_captured() -> None:
    graph = gc.trace(lambda x: np.exp(x) + np.maximum(x, 0.0), (gc.randn(2, 3),))
    assert [n.op.op_type for n in graph.nodes][:1] == ["Exp"]
    x = gc.randn(4, 3)
    want = (x.exp() + x.maximum(gc.tensor(0.0))).numpy()
    np.testing.assert_allclose(run_graph(graph, {"x": x.numpy()})["output"], want, rtol=1e-6)


def test_numpy_reads_are_unchanged_outside_a_trace_and_of_weights() -> None:
    x = gc.randn(2, 3)
    a = np.ones((2, 3), np.float32)
    np.testing.assert_array_equal(np.asarray(x), x.numpy())
    np.testing.assert_array_equal((a * x).numpy(), x.numpy())  # ndarray operators: reflected
    np.testing.assert_array_equal((a < x).numpy(), x.numpy() > 1)
    np.testing.assert_array_equal(np.exp(x).numpy(), x.exp().numpy())
    w = gc.randn(3)
    graph = gc.trace(lambda x: x * gc.tensor(w.numpy() * 2), (gc.randn(2, 3),))
    x = gc.randn(2, 3)
    np.testing.assert_allclose(run_graph(graph, {"x": x.numpy()})["output"], (x * w * 2).numpy())


# ---------------------------------------------------------------- 2. the inference graph


def _embedder() -> nn.Module:
    gc.manual_seed(0)
    return nn.Sequential(nn.Embedding(50, 8, padding_idx=0), nn.Linear(8, 3)).eval()


def test_trace_captures_the_inference_graph_without_gradient_only_nodes() -> None:
    model = _embedder()
    ids = gc.tensor([[0, 3, 4], [5, 0, 1]])
    graph = gc.trace(model, (ids,), {"input": {0: "batch", 1: "seq"}})
    assert [n.op.op_type for n in graph.nodes].count("Gather") == 1
    assert not any(n.op.op_type == "Where" or n.meta.get("stop_gradient") for n in graph.nodes)
    (cut,) = [d for d in graph.meta["baked"] if d["kind"] == "grad-mode"]
    assert "padding_idx=0" in cut["what"]
    assert cut["source"].startswith("tests/tracer/test_capture.py")
    with pytest.raises(ValueError, match="differentiable=True"):
        ir.grad(graph, ["0.weight"], of="output", seed="g")
    for shape in [(2, 3), (1, 7)]:
        x = gc.randint(0, 50, shape)
        with gc.no_grad():
            want = model(x).numpy()
        np.testing.assert_allclose(run_graph(graph, {"input": x.numpy()})["output"], want)


class _Sum(nn.Module):
    def forward(self, x: gc.Tensor) -> gc.Tensor:
        return x.sum()


def test_a_differentiable_trace_keeps_the_padding_cut_for_ir_grad() -> None:
    model = _embedder()
    ids = gc.tensor([[0, 3, 4], [5, 0, 1]])
    loss = nn.Sequential(model, _Sum())
    graph = gc.trace(loss, (ids,), differentiable=True)
    assert not any(d["kind"] == "grad-mode" for d in graph.meta["baked"])
    grads = run_graph(ir.grad(graph, ["0.0.weight"]), {"input": ids.numpy()})
    model.zero_grad()
    model(ids).sum().backward()
    want = model[0].weight.grad
    assert want is not None and not want.numpy()[0].any()  # the padding row gets nothing
    np.testing.assert_allclose(grads["0.0.weight_grad"], want.numpy(), rtol=1e-6)


def test_optimize_does_not_grow_a_differentiable_trace() -> None:
    model = _embedder()
    graph = gc.trace(model, (gc.tensor([[0, 3]]),), differentiable=True)
    size = sum(v.const.nbytes for v in graph.initializers.values() if v.const is not None)
    folded = ir.passes.ConstantFoldingPass(size_limit=16).call(graph.copy()).graph
    assert sum(v.const.nbytes for v in folded.initializers.values() if v.const is not None) <= size


def test_a_forward_that_computes_gradients_needs_a_differentiable_trace() -> None:
    def penalty(x: gc.Tensor) -> gc.Tensor:
        x = x.detach().requires_grad_()
        (g,) = gc.autograd.grad([(x * x).sum()], [x], create_graph=True)
        return g

    with pytest.raises(RuntimeError) as info:
        gc.trace(penalty, (gc.randn(3),))
    assert any("differentiable=True" in note for note in info.value.__notes__)
    graph = gc.trace(penalty, (gc.randn(3),), differentiable=True)
    x = np.arange(3, dtype=np.float32)
    np.testing.assert_allclose(run_graph(graph, {"x": x})["output"], 2 * x)


# ---------------------------------------------------------------- 3. module state


class _Stateful(nn.Module):
    """Keeps its last output (a tensor) and a call count (a Python int) between calls."""

    def __init__(self) -> None:
        super().__init__()
        self.proj = nn.Linear(4, 4)
        self.hidden: gc.Tensor | None = None
        self.calls = 0

    def forward(self, x: gc.Tensor) -> gc.Tensor:
        h = self.proj(x) if self.hidden is None else self.proj(x) + self.hidden
        self.hidden = h
        self.calls += 1
        return h


def test_module_state_reads_and_writes_are_listed_with_their_lines() -> None:
    gc.manual_seed(0)
    model = _Stateful()
    model(gc.randn(2, 4))  # an earlier call leaves state behind
    graph = gc.trace(model, (gc.randn(2, 4),))
    state = {(d["what"], d["result"]) for d in graph.meta["baked"] if d["kind"] == "module-state"}
    assert state == {
        ("reads _Stateful.hidden set by an earlier call", "tensor float32[2, 4]"),
        ("writes _Stateful.hidden", "tensor float32[2, 4]"),
        ("reads _Stateful.calls set by an earlier call", 1),
        ("writes _Stateful.calls", 2),
    }
    assert all(
        d["source"].startswith("tests/tracer/test_capture.py:")
        for d in graph.meta["baked"]
        if d["kind"] == "module-state"
    )
    assert model.calls == 2 and "hidden" in dir(model)
    del model.hidden
    assert not hasattr(model, "hidden")


def test_state_a_forward_writes_and_reads_in_the_same_trace_is_not_listed() -> None:
    class Cache(nn.Module):
        def forward(self, x: gc.Tensor) -> gc.Tensor:
            self.last = x * 2
            return self.last + 1

    graph = gc.trace(Cache(), (gc.randn(3),))
    assert [d["what"] for d in graph.meta["baked"]] == ["writes Cache.last"]


# ---------------------------------------------------------------- 4. pytrees


@dataclass
class _Out:
    logits: gc.Tensor
    extra: gc.Tensor | None = None


class _Pair(NamedTuple):
    a: gc.Tensor
    b: gc.Tensor


def test_nested_arguments_and_results_become_named_inputs_and_outputs() -> None:
    def f(x: gc.Tensor, hidden: tuple[gc.Tensor, gc.Tensor], opts: dict[str, Any]) -> Any:
        h, c = hidden
        y = x * opts["scale"] + h
        return {"out": _Out(y.tanh()), "state": [c + y, None], "pair": _Pair(h, c * 2)}

    example = (gc.randn(2, 3), (gc.randn(2, 3), gc.randn(2, 3)), {"scale": 2.0, "bias": None})
    axes = {"x": {0: "batch"}, "hidden.0": {0: "batch"}, "hidden.1": {0: "batch"}}
    graph = gc.trace(f, example, axes)
    assert [v.name for v in graph.inputs] == ["x", "hidden.0", "hidden.1"]
    assert [str(v.type) for v in graph.inputs] == ["f32[batch, 3]"] * 3
    assert [v.name for v in graph.outputs] == ["out.logits", "state.0", "pair.a", "pair.b"]
    assert ("argument", "opts.scale", 2.0) in {
        (d["kind"], d["what"], d["result"]) for d in graph.meta["baked"]
    }
    x, h, c = (gc.randn(5, 3) for _ in range(3))
    got = run_graph(graph, {"x": x.numpy(), "hidden.0": h.numpy(), "hidden.1": c.numpy()})
    want = f(x, (h, c), {"scale": 2.0})
    np.testing.assert_allclose(got["out.logits"], want["out"].logits.numpy(), rtol=1e-6)
    np.testing.assert_allclose(got["state.0"], want["state"][0].numpy(), rtol=1e-6)
    np.testing.assert_allclose(got["pair.b"], want["pair"].b.numpy(), rtol=1e-6)
    with pytest.raises(ValueError, match=r"not tensor inputs \['x', 'hidden.0', 'hidden.1'\]"):
        gc.trace(f, example, {"hidden": [0]})


def test_output_names_name_each_result_or_each_tensor() -> None:
    def f(x: gc.Tensor) -> Any:
        return x, (x * 2, x * 3)

    graph = gc.trace(f, (gc.randn(2),), output_names=["y", "state"])
    assert [v.name for v in graph.outputs] == ["y", "state.0", "state.1"]
    graph = gc.trace(f, (gc.randn(2),), output_names=["y", "h", "c"])
    assert [v.name for v in graph.outputs] == ["y", "h", "c"]
    with pytest.raises(ValueError, match="2 output_names for 3 results"):
        gc.trace(lambda x: (x, x, x), (gc.randn(2),), output_names=["a", "b"])


def test_lstm_state_in_and_out_traces_and_runs_on_onnxruntime() -> None:
    gc.manual_seed(0)
    lstm = nn.LSTM(4, 5, batch_first=True).eval()
    state = (gc.randn(1, 2, 5), gc.randn(1, 2, 5))
    axes = {"input": {0: "b", 1: "t"}, "hx.0": {1: "b"}, "hx.1": {1: "b"}}
    graph = gc.trace(lstm, (gc.randn(2, 3, 4), state), axes)
    assert [v.name for v in graph.inputs] == ["input", "hx.0", "hx.1"]
    assert [v.name for v in graph.outputs] == ["output_0", "output_1.0", "output_1.1"]
    session = Session(graph, backend="onnxruntime")
    x, h, c = gc.randn(3, 6, 4), gc.randn(1, 3, 5), gc.randn(1, 3, 5)
    got = session.run({"input": x.numpy(), "hx.0": h.numpy(), "hx.1": c.numpy()})
    with gc.no_grad():
        y, (h_n, c_n) = lstm(x, (h, c))
    for name, want in zip(got, (y, h_n, c_n), strict=True):
        np.testing.assert_allclose(got[name], want.numpy(), rtol=1e-4, atol=1e-5)


def test_compile_takes_and_gives_lstm_state_as_a_pytree() -> None:
    gc.manual_seed(0)
    lstm = nn.LSTM(4, 5)
    compiled = gc.compile(lstm, backend="interpreter", dynamic_axes={"input": [0]})
    x, state = gc.randn(3, 2, 4), (gc.randn(1, 2, 5), gc.randn(1, 2, 5))
    with gc.no_grad():
        y, (h, c) = compiled(x, state)
        want_y, (want_h, want_c) = lstm(x, state)
        compiled(gc.randn(5, 2, 4), (gc.randn(1, 2, 5), gc.randn(1, 2, 5)))
    assert compiled.captures == 1  # the same structure and sizes: one graph
    for got, want in ((y, want_y), (h, want_h), (c, want_c)):
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- 5. symbolic sizes as bounds


def test_positional_tables_slice_to_a_dynamic_length() -> None:
    gc.manual_seed(0)
    pe = gc.randn(64, 8)

    def add_positions(x: gc.Tensor) -> gc.Tensor:  # the positional-encoding idiom
        return x + pe[: x.size(0)]

    cases = [
        (add_positions, (5, 8), {0: "seq"}, "f32[seq, 8]", 11),
        (nn.PositionalEmbedding(32, 8), (2, 5, 8), {1: "seq"}, "f32[2, seq, 8]", 9),
        (nn.SinusoidalPositionalEmbedding(32, 8), (2, 5, 8), {1: "seq"}, "f32[2, seq, 8]", 30),
    ]
    for fn, shape, axes, typ, longer in cases:
        graph = gc.trace(fn, (gc.randn(*shape),), {"x": axes})
        assert "Slice" in [n.op.op_type for n in graph.nodes]
        assert str(graph.outputs[0].type) == typ
        x = gc.randn(*[longer if i in axes else n for i, n in enumerate(shape)])
        got = run_graph(graph, {"x": x.numpy()})["output"]
        np.testing.assert_allclose(got, fn(x).detach().numpy(), rtol=1e-6)
    assumptions = [d["what"] for d in graph.meta["baked"] if d["kind"] == "shape-assumption"]
    assert assumptions == ["seq <= 32"]


def test_slices_with_symbolic_start_and_end() -> None:
    def f(x: gc.Tensor, y: gc.Tensor) -> Any:
        n = y.shape[0]
        return x[:n], x[n:], x[-n:], x[1 : n + 1]

    graph = gc.trace(f, (gc.randn(9, 2), gc.randn(3)), {"x": {0: "T"}, "y": {0: "n"}})
    assert [str(v.type) for v in graph.outputs] == [
        "f32[n, 2]",
        "f32[T-n, 2]",
        "f32[n, 2]",
        "f32[n, 2]",
    ]
    x, y = gc.randn(12, 2), gc.randn(5)
    got = run_graph(graph, {"x": x.numpy(), "y": y.numpy()})
    for name, want in zip(got, f(x, y), strict=True):
        np.testing.assert_array_equal(got[name], want.numpy())


def test_len_and_range_over_a_dynamic_dim_raise_with_a_way_out() -> None:
    with pytest.raises(TraceError, match=r"len\(\).*x\.shape\[0\] or x\.size\(0\)"):
        gc.trace(lambda x: x[: len(x)], (gc.randn(3, 2),), {"x": {0: "n"}})
    with pytest.raises(TraceError, match=r"nn\.LSTM, nn\.GRU\) or tracer\.while_loop") as info:
        gc.trace(
            lambda x: gc.stack([x[i] for i in range(x.shape[0])]), (gc.randn(3, 2),), {"x": [0]}
        )
    assert "declare the axis static" in str(info.value)
    graph = gc.trace(lambda x: x[: len(x)], (gc.randn(3, 2),))  # a static dim: len() is fine
    assert ("len", 3) in {(d["kind"], d["result"]) for d in graph.meta["baked"]}


def test_more_idioms_on_dynamic_sizes_stay_dynamic() -> None:
    def f(x: gc.Tensor, past: gc.Tensor) -> Any:
        t = x.shape[1]
        k = gc.cat([past, x], dim=1)
        head, tail = k.split([past.shape[1], t], dim=1)
        return (
            x.sum(1) / t,  # a mean by a dynamic count
            x / t**0.5,
            x[x > 0],  # a bool mask: a data-dependent count
            F.pad(x, (0, 0, 0, t)),  # padding by a dynamic amount
            x[:, :1].repeat(1, t, 1),
            gc.tensor([x.shape[0], t]),  # a tensor of sizes
            head * 2,
            tail,
        )

    axes = {"x": {0: "b", 1: "t"}, "past": {0: "b", 1: "past"}}
    graph = gc.trace(f, (gc.randn(2, 3, 4), gc.randn(2, 5, 4)), axes)
    assert graph.meta["baked"] == []
    assert [str(v.type) for v in graph.outputs[-2:]] == ["f32[b, past, 4]", "f32[b, t, 4]"]
    x, past = gc.randn(3, 7, 4), gc.randn(3, 2, 4)
    got = run_graph(graph, {"x": x.numpy(), "past": past.numpy()})
    for name, want in zip(got, f(x, past), strict=True):
        np.testing.assert_allclose(got[name], np.asarray(want.numpy()), rtol=1e-6, err_msg=name)


def test_last_token_by_lengths_with_two_dynamic_index_tensors() -> None:
    def last(x: gc.Tensor, lengths: gc.Tensor) -> gc.Tensor:
        return x[gc.arange(x.shape[0]), lengths - 1]

    axes = {"x": {0: "batch", 1: "t"}, "lengths": {0: "batch"}}
    graph = gc.trace(last, (gc.randn(2, 6, 4), gc.tensor([6, 3])), axes)
    assert str(graph.outputs[0].type) == "f32[batch, 4]" and graph.meta["baked"] == []
    x, lengths = gc.randn(3, 9, 4), gc.tensor([9, 1, 5])
    got = run_graph(graph, {"x": x.numpy(), "lengths": lengths.numpy()})["output"]
    np.testing.assert_array_equal(got, last(x, lengths).numpy())


@pytest.mark.parametrize(
    "body",
    [lambda x: x.chunk(2, dim=1)[0], lambda x: x.split(2, dim=1)[0], lambda x: x.unbind(1)[0]],
)
def test_splitting_a_dynamic_axis_into_example_sized_pieces_raises(body: Any) -> None:
    with pytest.raises(TraceError, match=r"Splitting \(split, chunk, unbind\).*'t'"):
        gc.trace(body, (gc.randn(2, 6),), {"x": {1: "t"}})


# ---------------------------------------------------------------- 6. sizes that simplify


def test_symbolic_sizes_simplify_and_name_the_users_dims() -> None:
    seen: dict[str, Any] = {}

    def f(past: gc.Tensor, new: gc.Tensor) -> gc.Tensor:
        k = gc.cat([past, new], dim=1)
        total, t = k.shape[1], new.shape[1]
        seen.update(zero=t - t, total=total, offset=total - t, double=(t + t) // 2)
        return k

    graph = gc.trace(
        f, (gc.randn(2, 4, 3), gc.randn(2, 2, 3)), {"past": {1: "past"}, "new": {1: "seq"}}
    )
    assert str(graph.outputs[0].type) == "f32[2, past+seq, 3]"
    assert seen["zero"] == 0 and isinstance(seen["zero"], int)
    assert (seen["total"].name, seen["offset"].name) == ("past+seq", "past")
    assert (seen["total"].value, seen["offset"].value, seen["double"].value) == (6, 4, 2)

    def bad(past: gc.Tensor, new: gc.Tensor) -> gc.Tensor:
        k = gc.cat([past, new], dim=1)
        return k.reshape(int(k.shape[1] - new.shape[1]), -1)

    with pytest.raises(TraceError, match="dynamic dimension 'past'") as info:
        gc.trace(
            bad, (gc.randn(2, 4, 3), gc.randn(2, 2, 3)), {"past": {1: "past"}, "new": {1: "seq"}}
        )
    assert ".shape[" not in str(info.value)


def test_negative_indices_on_a_dynamic_dim_bake_no_decision() -> None:
    graph = gc.trace(lambda y: y[:, -1] + y[:, 0], (gc.randn(2, 5, 3),), {"y": {1: "seq"}})
    assert graph.meta["baked"] == []
    y = gc.randn(2, 8, 3)
    want = (y[:, -1] + y[:, 0]).numpy()
    np.testing.assert_allclose(run_graph(graph, {"y": y.numpy()})["output"], want)
    graph = gc.trace(lambda y: y[:, 3], (gc.randn(2, 5, 3),), {"y": {1: "seq"}})
    assert [(d["what"], d["result"]) for d in graph.meta["baked"]] == [("seq > 3", True)]


# ---------------------------------------------------------------- done: a KV-cache decoder step


class _DecoderStep(nn.Module):
    """One greedy step of a causal decoder with a KV cache, written the obvious way."""

    def __init__(self, vocab: int = 17, d: int = 8, heads: int = 2) -> None:
        super().__init__()
        self.heads = heads
        self.embed = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(32, d)
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, vocab)

    def forward(self, ids: gc.Tensor, past_k: gc.Tensor, past_v: gc.Tensor) -> Any:
        b, t = ids.shape
        start = past_k.shape[2]
        x = self.embed(ids) + self.pos(gc.arange(start, start + t))
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q, k, v = (y.view(b, t, self.heads, -1).transpose(1, 2) for y in (q, k, v))
        k, v = gc.cat([past_k, k], dim=2), gc.cat([past_v, v], dim=2)
        T = k.shape[2]
        scores = q @ k.transpose(-1, -2) / (k.shape[-1] ** 0.5)
        causal = gc.ones(t, T).tril(T - t) == 0  # query i sees keys up to past + i
        att = scores.masked_fill(causal, float("-inf")).softmax(-1) @ v
        logits = self.out(att.transpose(1, 2).reshape(b, t, -1))[:, -1]
        return logits.argmax(-1), logits, (k, v)


def test_kv_cache_decoder_step_matches_eager_on_onnxruntime() -> None:
    gc.manual_seed(0)
    step = _DecoderStep().eval()
    example = (gc.randint(0, 17, (2, 3)), gc.randn(2, 2, 4, 4), gc.randn(2, 2, 4, 4))
    axes = {"ids": {0: "batch", 1: "seq"}, "past_k": {0: "batch", 2: "past"}}
    axes["past_v"] = axes["past_k"]
    graph = gc.trace(step, example, axes, output_names=["next", "logits", "cache"])
    assert [str(v.type) for v in graph.outputs[2:]] == ["f32[batch, 2, past+seq, 4]"] * 2
    assert not [d for d in graph.meta["baked"] if d["kind"] == "shape-branch"]
    session = Session(graph, backend="onnxruntime")
    for past, seq in [(0, 3), (7, 1), (7, 4)]:
        ids = gc.randint(0, 17, (2, seq))
        k, v = gc.randn(2, 2, past, 4), gc.randn(2, 2, past, 4)
        got = session.run({"ids": ids.numpy(), "past_k": k.numpy(), "past_v": v.numpy()})
        with gc.no_grad():
            nxt, logits, (k2, v2) = step(ids, k, v)
        np.testing.assert_array_equal(got["next"], nxt.numpy())
        np.testing.assert_allclose(got["logits"], logits.numpy(), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(got["cache.0"], k2.numpy(), rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(got["cache.1"], v2.numpy(), rtol=1e-6, atol=1e-6)
