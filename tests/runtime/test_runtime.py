"""The runtime: NumPy interpreter, onnxruntime backend and ``Session``.

Each model is one Python function over registry ops (``op.X``): applied to ``ir.Value``s it
builds the graph, applied to NumPy arrays it runs the registry kernels directly, which is the
first oracle. onnxruntime on the exported model is the second.
"""

from __future__ import annotations

import functools
import gc
import re
import threading
import warnings
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest

import runtime
from ir.errors import ShapeError
from ir.graph import Graph
from ir.ops.registry import OpDef, ints, op
from ir.types import TensorType
from runtime.errors import (
    BackendUnavailableError,
    DeviceFallbackWarning,
    FeedError,
    NodeExecutionError,
)
from runtime.numpy_interpreter import Interpreter
from runtime.ort_backend import OrtBackend
from runtime.session import Session

RNG = np.random.default_rng(0)
F32 = np.float32

# ---------------------------------------------------------------- models: graph and oracle


def _mlp_params() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {
        "w1": rng.standard_normal((8, 16)).astype(F32),
        "b1": rng.standard_normal(16).astype(F32),
        "w2": rng.standard_normal((16, 4)).astype(F32),
        "b2": rng.standard_normal(4).astype(F32),
    }


def mlp(x: Any) -> Any:
    p = _mlp_params()
    h = op.Relu(op.Add(op.MatMul(x, p["w1"]), p["b1"]))
    return op.Softmax(op.Add(op.MatMul(h, p["w2"]), p["b2"]), axis=-1)


def heads(x: Any) -> tuple[Any, Any]:
    """[batch, seq, 8] -> [batch, 2, seq, 4]: a reshape whose target comes from Shape."""
    s = op.Shape(x)
    target = op.Concat(op.Gather(s, ints([0])), op.Gather(s, ints([1])), ints([2, 4]), axis=0)
    y = op.Transpose(op.Reshape(x, target), perm=[0, 2, 1, 3])
    return y, op.ReduceMean(y, ints([-1]), keepdims=0)


def multi(x: Any) -> tuple[Any, ...]:
    """Multi-output ops; some outputs (Split's middle part, TopK's values) are never read."""
    a, _, c = op.Split(x, axis=1, num_outputs=3)
    _, idx = op.TopK(x, ints([2]), axis=-1)
    scale, bias = np.linspace(0.5, 1.5, 6).astype(F32), np.full(6, 0.1, F32)
    y, _, _ = op.LayerNormalization(x, scale, bias, axis=-1)
    return op.Mul(a, c), idx, y


def trace(fn: Callable[..., Any], **inputs: tuple[Any, tuple[Any, ...]]) -> Graph:
    """The graph of ``fn`` applied to graph inputs of the given (dtype, shape)."""
    g = Graph()
    args = [g.add_input(name, dtype, shape) for name, (dtype, shape) in inputs.items()]
    out = fn(*args)
    outs = out if isinstance(out, tuple) else (out,)
    g.set_outputs(
        g.apply(op.Identity, [v], {}, out_names=[f"out{i}"])[0] for i, v in enumerate(outs)
    )
    g.verify()
    return g


def direct(fn: Callable[..., Any], *arrays: np.ndarray) -> dict[str, np.ndarray]:
    """``fn`` run on the registry kernels directly, keyed like the traced graph's outputs."""
    out = fn(*arrays)
    outs = out if isinstance(out, tuple) else (out,)
    return {f"out{i}": np.asarray(o) for i, o in enumerate(outs)}


def assert_same(got: dict[str, np.ndarray], want: dict[str, np.ndarray]) -> None:
    assert list(got) == list(want)
    for name in want:
        assert got[name].dtype == want[name].dtype, name
        assert got[name].shape == want[name].shape, name
        np.testing.assert_allclose(got[name], want[name], rtol=1e-5, atol=1e-6, err_msg=name)


CASES: dict[str, tuple[Callable[..., Any], dict[str, Any], list[tuple[int, ...]]]] = {
    "mlp": (mlp, {"x": (F32, ("batch", 8))}, [(3, 8), (7, 8)]),
    "heads": (heads, {"x": (F32, ("batch", "seq", 8))}, [(2, 3, 8), (5, 1, 8)]),
    "multi": (multi, {"x": (F32, ("batch", 6))}, [(4, 6), (1, 6)]),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("backend", ["interpreter", "onnxruntime"])
def test_backends_match_kernels_at_two_sizes(case: str, backend: str) -> None:
    fn, inputs, shapes = CASES[case]
    session = Session(trace(fn, **inputs), backend=backend)
    assert session.backend == backend
    for shape in shapes:
        x = RNG.standard_normal(shape).astype(F32)
        assert_same(session.run({"x": x}), direct(fn, x))


def test_dynamic_reshape_stays_symbolic() -> None:
    g = trace(heads, x=(F32, ("batch", "seq", 8)))
    assert [v.type for v in g.outputs] == [
        TensorType(np.dtype(F32), ("batch", 2, "seq", 4)),
        TensorType(np.dtype(F32), ("batch", 2, "seq")),
    ]
    assert "Shape" in str(g) and "Concat" in str(g)


def test_interpreter_matches_onnx_reference_evaluator() -> None:
    from onnx.reference import ReferenceEvaluator

    from export.onnx.writer import to_model

    g = trace(multi, x=(F32, ("batch", 6)))
    x = RNG.standard_normal((3, 6)).astype(F32)
    want = ReferenceEvaluator(to_model(g)).run(None, {"x": x})
    got = Interpreter(g).run({"x": x})
    assert_same(got, {f"out{i}": np.asarray(w) for i, w in enumerate(want)})


def _spec_params() -> list[Any]:
    from tests.op_specs import ALL_SPECS

    return [pytest.param(spec, id=spec.op_type) for spec in ALL_SPECS]


@pytest.mark.parametrize("spec", _spec_params())
def test_every_op_spec_through_interpreter_and_auto_session(spec: Any) -> None:
    """Each registry op's spec samples as one-node graphs, against the kernel applied directly.

    The interpreter runs with type checks on, so a kernel disagreeing with its shape rule
    fails here; ``auto`` must run each on onnxruntime with the same dtypes, shapes and values,
    or fall back to the interpreter with a reason (an op or dtype onnxruntime lacks).
    """
    from ir.ops.registry import get

    opdef = get(spec.op_type, spec.domain)
    for dtype in spec.dtypes:
        for sample in spec.samples(np.random.default_rng(0), dtype):
            g = Graph()
            args = [
                None if x is None else g.add_input(f"in{i}", x.dtype, x.shape)
                for i, x in enumerate(sample.inputs)
            ]
            g.set_outputs(g.apply(opdef, args, sample.attrs))
            feeds = {f"in{i}": x for i, x in enumerate(sample.inputs) if x is not None}
            out = opdef.kernel(*sample.inputs, **sample.attrs)
            want = [np.asarray(o) for o in (out if isinstance(out, tuple) else (out,))]
            got = [Interpreter(g).run(feeds)]
            # Where the spec records an onnxruntime gap for this dtype, "auto" may run into it
            # (e.g. Attention's float64 NaN rows); the interpreter half still runs.
            if not {"onnxruntime", f"onnxruntime/{dtype}"} & set(spec.oracle_skip):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # a run-time fallback
                    session = Session(g)
                    got.append(session.run(feeds))
                assert session.backend == "onnxruntime" or session.reason
            for result in got:
                for w, v in zip(want, result.values(), strict=True):
                    assert (v.dtype, v.shape) == (w.dtype, w.shape), (dtype, sample.attrs)
                    if not spec.random:
                        np.testing.assert_allclose(
                            v, w, rtol=spec.rtol, atol=spec.atol, err_msg=str(dtype)
                        )


# ---------------------------------------------------------------- interpreter: plans and memory


def _chain_graph() -> Graph:
    return trace(mlp, x=(F32, ("batch", 8)))


def test_each_value_dies_once_at_its_last_use() -> None:
    g = trace(multi, x=(F32, ("batch", 6)))
    plan = Interpreter(g).plan()
    runtime_values = {"x"} | {name for step in plan.steps for name in step.outputs}
    freed = [name for step in plan.steps for name in step.frees]
    assert len(freed) == len(set(freed)), "a value is freed twice"
    assert set(freed) == runtime_values - {"out0", "out1", "out2"}
    for i, step in enumerate(plan.steps):
        later = {n for s in plan.steps[i + 1 :] for n, _ in s.args if n is not None}
        for name in step.frees:
            assert name not in later, f"%{name} freed at step {i} but read later"
    # Outputs nobody reads (Split's middle part, TopK's values, LayerNorm's stats) die at once.
    for step in plan.steps:
        if step.node.op.op_type in ("Split", "TopK", "LayerNormalization"):
            unread = [v.name for v in step.node.outputs if not v.uses]
            assert unread and set(unread) <= set(step.frees)


def test_env_holds_only_live_values_and_ends_with_outputs() -> None:
    g = _chain_graph()
    live: list[list[str]] = []
    out = Interpreter(g).run(
        {"x": np.ones((2, 8), F32)}, hook=lambda step, env: live.append(list(env))
    )
    assert live[-1] == ["out0"] and list(out) == ["out0"]
    assert max(len(names) for names in live) == 1, "a chain keeps one value alive at a time"


def test_freed_arrays_are_released_right_away() -> None:
    g = _chain_graph()
    refs: dict[str, weakref.ref[np.ndarray]] = {}
    leaked: list[str] = []

    def hook(step: Any, env: Any) -> None:
        gc.collect()
        leaked.extend(n for n, r in refs.items() if n not in env and r() is not None)
        refs.update({n: weakref.ref(env[n]) for n in step.outputs if n in env})

    Interpreter(g).run({"x": np.ones((2, 8), F32)}, hook=hook)
    assert len(refs) == len(g.nodes) and leaked == []


def test_requested_intermediates_stay_alive_and_unneeded_nodes_do_not_run() -> None:
    g = trace(heads, x=(F32, ("batch", "seq", 8)))
    interp = Interpreter(g)
    reshape = next(n for n in g.nodes if n.op.op_type == "Reshape").outputs[0].name
    x = RNG.standard_normal((2, 3, 8)).astype(F32)
    got = interp.run({"x": x}, outputs=[reshape, "x"])
    np.testing.assert_array_equal(got[reshape], x.reshape(2, 3, 2, 4))
    assert got["x"] is x
    assert [s.node.op.op_type for s in interp.plan([reshape]).steps] == [
        "Shape", "Gather", "Gather", "Concat", "Reshape"
    ]  # fmt: skip


def test_constants_are_returned_as_copies() -> None:
    g = Graph()
    x = g.add_input("x", F32, (2,))
    w = g.add_initializer("w", np.arange(6, dtype=F32).reshape(2, 3))
    (flat,) = g.apply(op.Reshape, [w, ints([-1])], {})
    g.set_outputs([flat, x])
    out = Interpreter(g).run({"x": np.zeros(2, F32)}, outputs=[flat.name, "w"])
    out[flat.name][:] = -1
    out["w"][:] = -1
    np.testing.assert_array_equal(w.const, np.arange(6, dtype=F32).reshape(2, 3))


def test_interpreter_feed_and_output_errors() -> None:
    interp = Interpreter(_chain_graph())
    with pytest.raises(FeedError, match="missing input 'x'"):
        interp.run({})
    with pytest.raises(FeedError, match="unexpected feed 'y'"):
        interp.run({"x": np.ones((1, 8), F32), "y": np.ones(1)})
    with pytest.raises(FeedError, match=r"'nope'.*not values of graph"):
        interp.run({"x": np.ones((1, 8), F32)}, outputs=["nope"])


# ---------------------------------------------------------------- errors at run time


def _runtime_reshape_graph() -> Graph:
    g = Graph()
    x = g.add_input("x", F32, ("batch", 6))
    s = g.add_input("s", np.int64, (2,))
    (r,) = g.apply(op.Reshape, [x, s], {}, meta={"source": "model.py:42"})
    g.set_outputs([r])
    return g


def test_failing_node_names_node_inputs_and_source_line() -> None:
    g = _runtime_reshape_graph()
    node = g.nodes[0]
    session = Session(g, backend="interpreter")
    x = np.ones((2, 6), F32)
    np.testing.assert_array_equal(session.run({"x": x, "s": ints([3, 4])})[node.outputs[0].name],
                                  x.reshape(3, 4))  # fmt: skip
    with pytest.raises(NodeExecutionError) as info:
        session.run({"x": x, "s": ints([4, 4])})
    message = str(info.value)
    assert node.format() in message
    assert "traced at model.py:42" in message
    assert "%x: float32[2, 6], %s: int64[2] = [4, 4]" in message
    assert "cannot reshape array of size 12" in message
    assert info.value.node is node and info.value.source == "model.py:42"
    assert isinstance(info.value.__cause__, ValueError)


def test_a_kernels_graphcap_error_keeps_its_type() -> None:
    session = Session(_runtime_reshape_graph(), backend="interpreter")
    with pytest.raises(
        ShapeError, match=r"(?s)model\.py:42.*cannot reshape \[2, 6\] into \[5, -1\]"
    ):
        session.run({"x": np.ones((2, 6), F32), "s": ints([5, -1])})


def test_onnxruntime_failure_names_the_source_line() -> None:
    session = Session(_runtime_reshape_graph(), backend="onnxruntime")
    with pytest.raises(NodeExecutionError, match=r"traced at model\.py:42.*Reshape") as info:
        session.run({"x": np.ones((2, 6), F32), "s": ints([4, 4])})
    assert info.value.source == "model.py:42"


def _bad_op() -> OpDef:
    """An unregistered op whose kernel returns float64 while its rule promises float32."""
    return OpDef(
        "Doubled",
        1,
        lambda x: x.astype(np.float64) * 2,
        lambda ctx, x: x,
        vjp=None,
        no_vjp="test op",
        domain="graphcap.test",
    )


def test_kernel_that_breaks_its_shape_rule_is_caught_at_the_node() -> None:
    g = Graph()
    x = g.add_input("x", F32, (3,))
    (y,) = g.apply(_bad_op(), [x], {}, meta={"source": "ops.py:7"})
    g.set_outputs([y])
    with pytest.raises(NodeExecutionError, match=r"(?s)ops\.py:7.*float64\[3\].*declares f32\[3\]"):
        Interpreter(g).run({"x": np.ones(3, F32)})
    out = Interpreter(g, check_types=False).run({"x": np.ones(3, F32)})
    np.testing.assert_array_equal(out[y.name], np.full(3, 2.0))


# ---------------------------------------------------------------- Session: backends and sources


def _gelu64(x: Any) -> Any:
    """Erf on float64: onnxruntime 1.31 has no CPU kernel for it."""
    half = np.asarray(0.5)
    return op.Mul(op.Mul(x, half), op.Add(op.Erf(op.Mul(x, np.asarray(2**-0.5))), np.asarray(1.0)))


def test_auto_prefers_onnxruntime() -> None:
    session = Session(_chain_graph())
    assert session.backend == "onnxruntime"
    assert session.providers == ["CPUExecutionProvider"]
    assert "backend='onnxruntime'" in repr(session)


def test_auto_falls_back_to_the_interpreter_for_an_op_onnxruntime_lacks() -> None:
    g = trace(_gelu64, x=(np.float64, ("n",)))
    session = Session(g)
    assert session.backend == "interpreter" and session.providers == ["numpy"]
    assert "Erf" in session.reason and "backend='interpreter'" in repr(session)
    x = np.linspace(-3, 3, 7)
    assert_same(session.run({"x": x}), direct(_gelu64, x))
    with pytest.raises(BackendUnavailableError, match="Erf"):
        Session(g, backend="onnxruntime")


def test_auto_falls_back_for_an_op_outside_onnx() -> None:
    g = Graph()
    x = g.add_input("x", F32, (3,))
    (y,) = g.apply(_bad_op(), [x], {})
    g.set_outputs([y])
    session = Session(g)
    assert session.backend == "interpreter" and session.reason


def test_session_from_model_proto_and_path(tmp_path: Path) -> None:
    from export.onnx.writer import to_model

    g = _chain_graph()
    x = RNG.standard_normal((5, 8)).astype(F32)
    want = direct(mlp, x)
    proto = to_model(g)
    path = tmp_path / "mlp.onnx"
    onnx.save(proto, str(path))
    sessions = [
        Session(proto),
        Session(proto, backend="interpreter"),
        runtime.load(path),
        runtime.load(str(path), backend="interpreter"),
    ]
    for session in sessions:
        assert str(session.input_signature) == "x: f32[batch, 8]"
        assert session.output_names == ("out0",)
        assert_same(session.run({"x": x}), want)
    assert [s.backend for s in sessions] == ["onnxruntime", "interpreter"] * 2


def test_session_outputs_argument() -> None:
    g = trace(heads, x=(F32, ("batch", "seq", 8)))
    x = RNG.standard_normal((2, 3, 8)).astype(F32)
    want = direct(heads, x)
    reshape = next(n for n in g.nodes if n.op.op_type == "Reshape").outputs[0].name
    for backend in ("interpreter", "onnxruntime"):
        session = Session(g, backend=backend)
        assert_same(session.run({"x": x}, outputs=["out1"]), {"out1": want["out1"]})
    inner = Session(g, backend="interpreter").run({"x": x}, outputs=[reshape])
    np.testing.assert_array_equal(inner[reshape], x.reshape(2, 3, 2, 4))
    with pytest.raises(FeedError, match=r"onnxruntime returns only \['out0', 'out1'\]"):
        Session(g, backend="onnxruntime").run({"x": x}, outputs=[reshape])


def test_onnxruntime_keeps_0d_and_accepts_strided_feeds() -> None:
    from export.onnx.writer import to_model

    g = Graph()
    s = g.add_input("s", F32, ())
    m = g.add_input("m", F32, (3, 2))
    g.set_outputs([*g.apply(op.Neg, [s], {}), *g.apply(op.Neg, [m], {})])
    feeds = {"s": np.asarray(2.0, F32), "m": np.arange(6, dtype=F32).reshape(2, 3).T}
    want = Session(g, backend="interpreter").run(feeds)
    for io_binding in (False, True):
        got = OrtBackend(to_model(g), io_binding=io_binding).run(feeds)
        assert_same(got, want)
        assert got[g.outputs[0].name].shape == ()


def test_large_graph_goes_to_onnxruntime_through_external_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import runtime.session
    from export.onnx import writer

    w = RNG.standard_normal((64, 64)).astype(F32)  # 16 KiB: stored externally
    g = trace(lambda x: op.MatMul(x, w), x=(F32, ("batch", 64)))
    written: list[list[str]] = []
    save = writer.save

    def spy(graph: Graph, path: Path, **kwargs: Any) -> None:
        save(graph, path, **kwargs)
        written.append(sorted(p.name for p in Path(path).parent.iterdir()))

    monkeypatch.setattr(writer, "save", spy)
    monkeypatch.setattr(runtime.session, "_INLINE_LIMIT", 1024)  # lowered from 2 GiB
    session = Session(g, backend="onnxruntime")
    # A fixed name in the spill folder (never the graph's name, which a file may choose),
    # and its data file beside it.
    assert len(written) == 1 and len(written[0]) == 2 and written[0][0] == "model.onnx"
    assert re.fullmatch(r"model\.onnx\.[0-9a-f]{16}\.data", written[0][1])
    spill = session._source.spill
    assert spill is not None and not Path(spill.name).exists(), "the temporary files are gone"
    x = RNG.standard_normal((3, 64)).astype(F32)
    assert_same(session.run({"x": x}), {"out0": x @ w})


def test_session_rejects_bad_arguments(tmp_path: Path) -> None:
    g = _chain_graph()
    with pytest.raises(ValueError, match="backend='tvm'"):
        Session(g, backend="tvm")
    with pytest.raises(ValueError, match="device='tpu'"):
        Session(g, device="tpu")
    with pytest.raises(ValueError, match="interpreter runs on the CPU"):
        Session(g, device="cuda", backend="interpreter")
    with pytest.raises(FileNotFoundError, match="no ONNX model"):
        Session(tmp_path / "missing.onnx")
    with pytest.raises(TypeError, match="not int"):
        Session(3)  # type: ignore[arg-type]


def test_session_options_are_passed_to_onnxruntime() -> None:
    session = Session(_chain_graph(), intra_op_threads=1, optimization="basic")
    assert session._ort is not None
    options = session._ort.session.get_session_options()
    assert options.intra_op_num_threads == 1
    assert str(options.graph_optimization_level).endswith("ORT_ENABLE_BASIC")
    with pytest.raises(ValueError, match="optimization='max'"):
        Session(_chain_graph(), backend="onnxruntime", optimization="max")


# ---------------------------------------------------------------- feed validation


def _embed(x: Any, ids: Any) -> Any:
    table = np.arange(40, dtype=F32).reshape(5, 8)
    return op.Add(op.Gather(table, ids), op.Unsqueeze(x, ints([1])))


SIGNATURE = "x: f32[batch, 8], ids: i64[batch, seq]"
GOOD: dict[str, np.ndarray] = {"x": np.ones((2, 8), F32), "ids": np.zeros((2, 3), np.int64)}
PROBLEMS: dict[str, tuple[dict[str, Any], str]] = {
    "missing": ({"x": GOOD["x"]}, "missing input 'ids' (i64[batch, seq])"),
    "extra": ({**GOOD, "idz": 1}, "unexpected input 'idz': the model has no such input; "
              "did you mean 'ids'?"),
    "dtype": ({**GOOD, "x": np.ones((2, 8))}, "input 'x' has dtype float64, expected float32 "
              "(f32[batch, 8]); convert it with .astype(np.float32)"),
    "rank": ({**GOOD, "ids": np.zeros(3, np.int64)}, "input 'ids' has rank 1 (shape [3]), "
             "expected rank 2 (i64[batch, seq])"),
    "static": ({**GOOD, "x": np.ones((2, 7), F32)}, "input 'x' has size 7 in dim 1, expected 8"),
    "symbol": ({**GOOD, "ids": np.zeros((3, 4), np.int64)}, "symbol 'batch' is 2 in input 'x' "
               "(dim 0) but 3 in input 'ids' (dim 0)"),
}  # fmt: skip


@pytest.fixture(scope="module", params=["interpreter", "onnxruntime"])
def embed_session(request: pytest.FixtureRequest) -> Session:
    g = trace(_embed, x=(F32, ("batch", 8)), ids=(np.int64, ("batch", "seq")))
    return Session(g, backend=request.param)


def test_signature_and_good_feeds(embed_session: Session) -> None:
    assert str(embed_session.input_signature) == SIGNATURE
    assert embed_session.input_signature["ids"] == TensorType(np.dtype(np.int64), ("batch", "seq"))
    ids = np.array([[0, 4, 2], [1, 1, 3]])
    out = embed_session.run({"x": GOOD["x"], "ids": ids.tolist()})  # lists are converted
    assert_same(out, direct(_embed, GOOD["x"], ids))


@pytest.mark.parametrize("kind", PROBLEMS)
def test_each_feed_problem_is_named(embed_session: Session, kind: str) -> None:
    feeds, expected = PROBLEMS[kind]
    with pytest.raises(FeedError) as info:
        embed_session.run(feeds)
    message = str(info.value)
    assert message.startswith("1 problem with the feeds:")
    assert expected in message
    assert message.endswith(f"expected inputs: {SIGNATURE}")
    assert isinstance(info.value, ValueError)


def test_every_problem_is_listed_in_one_error(embed_session: Session) -> None:
    feeds = {"x": np.ones((2, 7, 1)), "idz": 0}
    with pytest.raises(FeedError) as info:
        embed_session.run(feeds)
    message = str(info.value)
    assert message.startswith("4 problems with the feeds:")
    for expected in ("missing input 'ids'", "unexpected input 'idz'", "dtype float64",
                     "rank 3 (shape [2, 7, 1])"):  # fmt: skip
        assert expected in message


# ---------------------------------------------------------------- threads


@pytest.mark.parametrize("backend", ["interpreter", "onnxruntime"])
def test_threads_share_a_session(backend: str) -> None:
    session = Session(trace(heads, x=(F32, ("batch", "seq", 8))), backend=backend)
    rng = np.random.default_rng(2)
    feeds = [{"x": rng.standard_normal((1 + i % 4, 1 + i % 3, 8)).astype(F32)} for i in range(400)]
    serial = [session.run(f) for f in feeds]
    barrier = threading.Barrier(8)

    def work(chunk: int) -> list[dict[str, np.ndarray]]:
        barrier.wait()
        return [session.run(feeds[i]) for i in range(chunk, len(feeds), 8)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(8)))
    for chunk, outs in enumerate(results):
        for i, out in zip(range(chunk, len(feeds), 8), outs, strict=True):
            for name in serial[i]:
                np.testing.assert_array_equal(out[name], serial[i][name])


# ---------------------------------------------------------------- IOBinding and CUDA


@functools.cache
def cuda_usable() -> bool:
    """Whether onnxruntime really runs on CUDA here (listing the provider is not enough)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return Session(_chain_graph(), device="cuda").device == "cuda"
    except Exception:
        return False


def _ort_model() -> onnx.ModelProto:
    from export.onnx.writer import to_model

    return to_model(trace(heads, x=(F32, ("batch", "seq", 8))))


def test_io_binding_on_cpu_with_numpy_and_ort_values() -> None:
    import onnxruntime as ort

    backend = OrtBackend(_ort_model(), io_binding=True)
    x = RNG.standard_normal((2, 3, 8)).astype(F32)
    want = direct(heads, x)
    assert_same(backend.run({"x": x}), want)
    values = backend.run({"x": ort.OrtValue.ortvalue_from_numpy(x)}, as_numpy=False)
    assert all(isinstance(v, ort.OrtValue) for v in values.values())
    assert_same({k: v.numpy() for k, v in values.items()}, want)
    assert_same(backend.run({"x": x}, outputs=["out1"]), {"out1": want["out1"]})


def test_cuda_request_without_gpu_warns_and_runs_on_cpu() -> None:
    if cuda_usable():
        pytest.skip("CUDA is usable here; the fallback cannot happen")
    with pytest.warns(
        DeviceFallbackWarning, match=r"device='cuda' was requested.*runs on CPU"
    ) as record:
        session = Session(_chain_graph(), device="cuda")
    assert record[0].filename == __file__, "the warning points at the caller's line"
    assert session.device == "cpu" and "CUDAExecutionProvider" not in session.providers
    assert "device='cpu'" in repr(session)
    x = RNG.standard_normal((3, 8)).astype(F32)
    assert_same(session.run({"x": x}), direct(mlp, x))


@pytest.mark.cuda
def test_cuda_matches_cpu() -> None:
    if not cuda_usable():
        pytest.skip("onnxruntime's CUDA provider is not usable on this machine")
    import onnxruntime as ort

    session = Session(trace(heads, x=(F32, ("batch", "seq", 8))), device="cuda")
    assert session.device == "cuda" and session.providers[0] == "CUDAExecutionProvider"
    for shape in [(2, 3, 8), (4, 5, 8)]:
        x = RNG.standard_normal(shape).astype(F32)
        assert_same(session.run({"x": x}), direct(heads, x))
    backend = OrtBackend(_ort_model(), device="cuda")
    x = RNG.standard_normal((2, 3, 8)).astype(F32)
    on_gpu = ort.OrtValue.ortvalue_from_numpy(x, "cuda", 0)
    values = backend.run({"x": on_gpu}, as_numpy=False)
    assert all(v.device_name().lower() == "cuda" for v in values.values())
    assert_same({k: v.numpy() for k, v in values.items()}, direct(heads, x))


def test_auto_falls_back_when_onnxruntime_lacks_a_kernel_at_run_time() -> None:
    """Onnxruntime loads a float64 LSTM but has no double kernel: auto switches, and says so."""
    from ir.ops.registry import get

    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 4))
    w = rng.standard_normal((1, 16, 4))  # four gates of hidden size 4
    r = rng.standard_normal((1, 16, 4))
    g = Graph()
    args = [g.add_input(n, np.float64, a.shape) for n, a in (("x", x), ("w", w), ("r", r))]
    g.set_outputs(g.apply(get("LSTM"), args, {"hidden_size": 4})[:1])
    session = Session(g)
    assert session.backend == "onnxruntime"
    with pytest.warns(RuntimeWarning, match="now runs on the NumPy interpreter"):
        got = session.run({"x": x, "w": w, "r": r})
    assert session.backend == "interpreter" and "run time" in session.reason
    want = Interpreter(g).run({"x": x, "w": w, "r": r})
    np.testing.assert_array_equal(next(iter(got.values())), next(iter(want.values())))
