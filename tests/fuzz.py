"""A seeded mutator of ONNX models, and a bounded campaign over ``export.load`` and the interpreter.

Each case ``i`` of a campaign with seed ``s`` is fully determined by ``(s, i)``: it picks a
model from the seed corpus (``fixtures/fuzz_seeds.zip``, see ``make_fuzz_seeds.py``),
applies one to three mutations (wrong dims and data, missing or extra inputs and outputs,
attributes of the wrong type or length, huge kernels, opset versions out of range, non-UTF-8
strings, hostile external data, deeply nested metadata JSON, flipped bytes), writes it to a
folder, then reads it with ``export.load``, verifies the graph and runs it on the NumPy
interpreter with small random feeds.

Every case runs in a worker process under a memory limit (``RLIMIT_AS``) and a time limit
(an interval timer inside the worker, and a kill from the parent past that), so a hang, a
blow-up or a crash is counted rather than taking the test run down. The outcome of a case:

- ``success``: the model loaded (and verified, and ran where its inputs are small);
- ``clean``: a graphcap error (``ir.errors.GraphcapError``) was raised;
- ``raw``: any other exception (the defect this campaign looks for);
- ``memory``: a ``MemoryError`` (an allocation past the limit), raw or wrapped;
- ``hang``: the case ran past its time limit;
- ``crash``: the worker process died.

Run a campaign by hand: ``python -m tests.fuzz --cases 20000 --workers 2``.
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import random
import resource
import shutil
import signal
import tempfile
import time
import traceback
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto

SEEDS = Path(__file__).with_name("fixtures") / "fuzz_seeds.zip"
OUTCOMES = ("success", "clean", "raw", "memory", "hang", "crash")
TIME_LIMIT = 3.0  # seconds per case, inside the worker
MEMORY_LIMIT = 1 << 30  # bytes of address space a case may add to the worker's
_FEED_ELEMENTS = 1 << 16  # inputs larger than this are not run (the feeds are ours, not the file's)


# ---------------------------------------------------------------- the corpus


def seeds() -> list[tuple[str, bytes]]:
    """The seed models, ``(name, serialized ModelProto)``, in name order."""
    with zipfile.ZipFile(SEEDS) as z:
        return [(n, z.read(n)) for n in sorted(z.namelist())]


def _pick_seed(corpus: list[tuple[str, bytes]], rng: random.Random) -> tuple[str, bytes]:
    # Multi-node models (graphcap and torch exports) get a third of the cases.
    big = [s for s in corpus if not s[0].startswith("node/")]
    return rng.choice(big if big and rng.random() < 1 / 3 else corpus)


# ---------------------------------------------------------------- mutations

_TYPES = [t for t in TensorProto.DataType.values() if t] + [0, 99]
_HUGE = [0, -1, -(2**31), 2**31, 2**40, 2**62, 2**63 - 1, 10**5, 10**9]
_OPS = ["Add", "MatMul", "Conv", "MaxPool", "Reshape", "Gather", "Concat", "Slice", "Split",
        "Transpose", "Softmax", "LayerNormalization", "Expand", "Tile", "Pad", "STFT", "LSTM",
        "Attention", "ConstantOfShape", "Range", "TopK", "Resize", "NoSuchOp", ""]  # fmt: skip


@dataclass
class _Model:
    """A model being mutated, with the files that go beside it."""

    proto: onnx.ModelProto
    files: dict[str, bytes] = field(default_factory=dict)
    raw: bytes | None = None  # set by byte-level mutations: the file as written


def _graphs(g: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    yield g
    for n in g.node:
        for a in n.attribute:
            if a.type == AttributeProto.GRAPH:
                yield from _graphs(a.g)
            for sub in a.graphs:
                yield from _graphs(sub)


def _nodes(m: _Model) -> list[onnx.NodeProto]:
    return [n for g in _graphs(m.proto.graph) for n in g.node]


def _tensors(m: _Model) -> list[TensorProto]:
    out = [t for g in _graphs(m.proto.graph) for t in g.initializer]
    out += [a.t for n in _nodes(m) for a in n.attribute if a.type == AttributeProto.TENSOR]
    return out


def _names(m: _Model) -> list[str]:
    g = m.proto.graph
    return [*(i.name for i in g.input), *(t.name for t in g.initializer),
            *(o for n in g.node for o in n.output)]  # fmt: skip


def mut_dims(m: _Model, rng: random.Random) -> str:
    """An initializer's dims no longer match its data (or overflow)."""
    ts = _tensors(m)
    if not ts:
        return "dims: no tensor"
    t = rng.choice(ts)
    dims = list(t.dims)
    how = rng.randrange(3)
    if how == 0 and dims:
        dims.pop(rng.randrange(len(dims)))
    elif how == 1:
        dims.insert(rng.randrange(len(dims) + 1), rng.choice([2, 3, 7]))
    else:
        dims = [rng.choice([*_HUGE, 3]) for _ in dims or [0]]
    del t.dims[:]
    t.dims.extend(dims)
    return f"dims {t.name!r} -> {dims}"


def mut_data(m: _Model, rng: random.Random) -> str:
    """An initializer's data is cut short, or its element type changes."""
    ts = _tensors(m)
    if not ts:
        return "data: no tensor"
    t = rng.choice(ts)
    if t.raw_data and rng.random() < 0.5:
        t.raw_data = t.raw_data[: rng.randrange(len(t.raw_data))]
        return f"data {t.name!r} truncated"
    t.data_type = rng.choice(_TYPES)
    return f"data {t.name!r} type {t.data_type}"


def mut_inputs(m: _Model, rng: random.Random) -> str:
    """A node loses an input, gains one, or reads an empty or undefined name."""
    nodes = _nodes(m)
    if not nodes:
        return "inputs: no node"
    n = rng.choice(nodes)
    how = rng.randrange(4)
    if how == 0 and n.input:
        del n.input[-1]
    elif how == 1:
        n.input.append(rng.choice(_names(m) or ["x"]))
    elif how == 2 and n.input:
        n.input[rng.randrange(len(n.input))] = ""
    else:
        n.input.append("undefined_value")
    return f"inputs of {n.op_type} ({how}) -> {list(n.input)}"


def mut_outputs(m: _Model, rng: random.Random) -> str:
    """A node loses its outputs or gains one."""
    n = rng.choice(_nodes(m) or [None])
    if n is None:
        return "outputs: no node"
    how = rng.randrange(3)
    if how == 0:
        del n.output[:]
    elif how == 1 and n.output:
        del n.output[-1]
    else:
        n.output.append(f"extra_{rng.randrange(100)}")
    return f"outputs of {n.op_type} ({how}) -> {list(n.output)}"


def _set_attr(a: AttributeProto, kind: int, rng: random.Random) -> None:
    for f in ("f", "i", "s", "t", "g", "floats", "ints", "strings", "tensors", "graphs"):
        a.ClearField(f)
    a.type = kind
    if kind == AttributeProto.FLOAT:
        a.f = rng.choice([0.0, -1.0, 1e30, float("nan")])
    elif kind == AttributeProto.INT:
        a.i = rng.choice([*_HUGE, 1, 2])
    elif kind == AttributeProto.STRING:
        a.s = rng.choice([b"", b"abc", b"\xff\xfe", b"constant"])
    elif kind == AttributeProto.FLOATS:
        a.floats.extend([rng.random() for _ in range(rng.randrange(4))])
    elif kind == AttributeProto.INTS:
        a.ints.extend([rng.choice([*_HUGE, 1, 2]) for _ in range(rng.randrange(5))])
    elif kind == AttributeProto.STRINGS:
        a.strings.extend([b"\xff", b"a"][: rng.randrange(3)])
    elif kind == AttributeProto.TENSOR:
        a.t.CopyFrom(onnx.numpy_helper.from_array(np.zeros(rng.randrange(3), np.float32)))


def mut_attr_type(m: _Model, rng: random.Random) -> str:
    """An attribute gets another type (and a value of it)."""
    attrs = [(n, a) for n in _nodes(m) for a in n.attribute if a.type != AttributeProto.GRAPH]
    if not attrs:
        return "attr type: none"
    n, a = rng.choice(attrs)
    kind = rng.choice([1, 2, 3, 4, 6, 7, 8])
    _set_attr(a, kind, rng)
    return f"attr {n.op_type}.{a.name} -> type {kind}"


def mut_attr_value(m: _Model, rng: random.Random) -> str:
    """An int(s) attribute gets extreme values or another length (huge kernels, pads)."""
    attrs = [(n, a) for n in _nodes(m) for a in n.attribute if a.type in (2, 7)]
    if not attrs:
        return "attr value: none"
    n, a = rng.choice(attrs)
    if a.type == AttributeProto.INT:
        a.i = rng.choice(_HUGE)
    else:
        values = list(a.ints)
        how = rng.randrange(3)
        if how == 0 and values:
            values[rng.randrange(len(values))] = rng.choice(_HUGE)
        elif how == 1 and values:
            values.pop()
        else:
            values.append(rng.choice([*_HUGE, 1]))
        del a.ints[:]
        a.ints.extend(values)
    return f"attr {n.op_type}.{a.name} -> {a.i if a.type == 2 else list(a.ints)}"


def mut_attr_set(m: _Model, rng: random.Random) -> str:
    """An attribute is removed (required ones too), or an unknown or duplicate one added."""
    n = rng.choice(_nodes(m) or [None])
    if n is None:
        return "attr set: no node"
    if n.attribute and rng.random() < 0.5:
        name = n.attribute[rng.randrange(len(n.attribute))].name
        kept = [a for a in n.attribute if a.name != name]
        del n.attribute[:]
        n.attribute.extend(kept)
        return f"attr {n.op_type}.{name} removed"
    a = n.attribute.add()
    a.name = rng.choice(["axis", "kernel_shape", "pads", "to", "value", "bogus"])
    _set_attr(a, rng.choice([1, 2, 3, 4, 7]), rng)
    return f"attr {n.op_type}.{a.name} added (type {a.type})"


def mut_opset(m: _Model, rng: random.Random) -> str:
    """The default-domain opset goes out of range, away, or appears twice."""
    ops = m.proto.opset_import
    how = rng.randrange(3)
    if how == 0 and ops:
        ops[0].version = rng.choice([-1, 0, 1, 3, 6, 9, 12, 24, 99, 2**40])
        return f"opset -> {ops[0].version}"
    if how == 1:
        del ops[:]
        return "opset removed"
    ops.add(domain="", version=rng.choice([1, 13, 99]))
    return "opset twice"


def mut_op_type(m: _Model, rng: random.Random) -> str:
    """A node becomes another op (same inputs and attributes), or moves domain."""
    n = rng.choice(_nodes(m) or [None])
    if n is None:
        return "op type: no node"
    if rng.random() < 0.2:
        n.domain = rng.choice(["com.microsoft", "ai.onnx", "ai.graphcap", "x"])
        return f"{n.op_type} domain -> {n.domain}"
    n.op_type = rng.choice(_OPS)
    return f"op -> {n.op_type}"


def mut_constant(m: _Model, rng: random.Random) -> str:
    """A Constant node without outputs, without a value, or with two values."""
    n = onnx.NodeProto(op_type="Constant")
    how = rng.randrange(3)
    if how != 0:
        n.output.append(f"c_{rng.randrange(100)}")
    if how != 1:
        a = n.attribute.add()
        a.name = rng.choice(["value", "value_float", "value_ints", "value_string", "sparse_value"])
        _set_attr(a, rng.choice([1, 2, 3, 4, 7]), rng)
    if how == 2:
        n.attribute.add(name="value_int", type=AttributeProto.INT, i=1)
    m.proto.graph.node.insert(0, n)
    return f"constant ({how})"


def mut_value_info(m: _Model, rng: random.Random) -> str:
    """A graph input, output or value_info gets another element type or odd dims."""
    g = m.proto.graph
    infos = [*g.input, *g.output, *g.value_info]
    if not infos:
        return "value info: none"
    vi = rng.choice(infos)
    tt = vi.type.tensor_type
    how = rng.randrange(3)
    if how == 0:
        tt.elem_type = rng.choice(_TYPES)
    elif how == 1 and tt.shape.dim:
        d = tt.shape.dim[rng.randrange(len(tt.shape.dim))]
        if rng.random() < 0.5:
            d.dim_value = rng.choice([-1, 0, 2**40, 7])
        else:
            d.dim_param = rng.choice(["", "unk__0", "a b", "x"])
    else:
        vi.ClearField("type")
    return f"value info {vi.name!r} ({how})"


_LOCATIONS = ["w.data", "w.data", "../w.data", "/etc/passwd", "", "sub/../w.data", "nope.data"]
_NUMBERS = ["0", "0", "8", "-1", "-8", str(2**62), str(2**63), "1.5", "abc", "1e3", " 4"]


def mut_external(m: _Model, rng: random.Random) -> str:
    """A tensor moves to external data with a hostile location, offset, length or dims."""
    ts = _tensors(m)
    if not ts:
        return "external: no tensor"
    t = rng.choice(ts)
    t.ClearField("raw_data")
    for f in ("float_data", "int32_data", "int64_data", "double_data", "uint64_data"):
        t.ClearField(f)
    t.data_location = TensorProto.EXTERNAL
    del t.external_data[:]
    info = {"location": rng.choice(_LOCATIONS)}
    if rng.random() < 0.7:
        info["offset"] = rng.choice(_NUMBERS)
    if rng.random() < 0.5:
        info["length"] = rng.choice(_NUMBERS)
    for k, v in info.items():
        t.external_data.add(key=k, value=v)
    if rng.random() < 0.3:
        del t.dims[:]
        t.dims.extend(rng.choice([[2**40], [2**31, 2**31], [-4], [2**62, 4]]))
    m.files["w.data"] = bytes(range(256)) * rng.choice([0, 1, 4])
    return f"external {t.name!r} {info} dims {list(t.dims)}"


def mut_metadata(m: _Model, rng: random.Random) -> str:
    """``graphcap.*`` metadata that is deeply nested, invalid or odd JSON."""
    depth = rng.choice([10, 10**4, 10**5])
    value = rng.choice(["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth,
                        "{not json", "NaN", '"\\ud800"'])  # fmt: skip
    m.proto.metadata_props.add(key=rng.choice(["graphcap.baked", "graphcap.x"]), value=value)
    return f"metadata {value[:12]!r}... ({len(value)} chars)"


def mut_names(m: _Model, rng: random.Random) -> str:
    """A value is defined twice, or a graph output names nothing."""
    g = m.proto.graph
    nodes = [n for n in g.node if n.output]
    names = _names(m)
    if rng.random() < 0.5 and nodes and names:
        n = rng.choice(nodes)
        n.output[0] = rng.choice(names)
        return f"{n.op_type} output renamed to {n.output[0]!r}"
    if g.output:
        g.output[rng.randrange(len(g.output))].name = rng.choice(["", "nothing", *names[:3]])
        return "graph output renamed"
    return "names: nothing to rename"


MUTATIONS: list[Callable[[_Model, random.Random], str]] = [
    mut_dims, mut_data, mut_inputs, mut_outputs, mut_attr_type, mut_attr_value, mut_attr_set,
    mut_opset, mut_op_type, mut_constant, mut_value_info, mut_external, mut_metadata, mut_names,
]  # fmt: skip


def _strings(proto: onnx.ModelProto) -> list[str]:
    """Strings of the model worth breaking into non-UTF-8 bytes (names, op types)."""
    out = [n for n in _names(_Model(proto)) if len(n) >= 2]
    out += [n.op_type for n in proto.graph.node] + [n.name for n in proto.graph.node if n.name]
    out += [a.s.decode("utf-8", "replace") for n in proto.graph.node for a in n.attribute if a.s]
    return [s for s in out if s.isascii()]


def _byte_mutation(m: _Model, rng: random.Random) -> str:
    """Flip bytes of the serialized model, or make one of its strings invalid UTF-8."""
    data = bytearray(m.proto.SerializeToString())
    strings = _strings(m.proto)
    if strings and rng.random() < 0.5:
        s = rng.choice(strings).encode()
        at = data.find(s)
        if at >= 0:
            data[at : at + len(s)] = b"\xff" * len(s)  # same length: the framing stays valid
            m.raw = bytes(data)
            return f"invalid UTF-8 in {s[:20]!r}"
    for _ in range(rng.randrange(1, 4)):
        if data:
            data[rng.randrange(len(data))] = rng.randrange(256)
    m.raw = bytes(data)
    return "bytes flipped"


def mutate(corpus: list[tuple[str, bytes]], seed: int, index: int) -> tuple[str, _Model, list[str]]:
    """Case ``index`` of campaign ``seed``: the seed's name, the mutated model, what changed."""
    rng = random.Random(seed * 1_000_003 + index)
    name, data = _pick_seed(corpus, rng)
    m = _Model(onnx.load_from_string(data))
    done = [rng.choice(MUTATIONS)(m, rng) for _ in range(rng.choice([1, 1, 2, 3]))]
    if rng.random() < 0.12:
        done.append(_byte_mutation(m, rng))
    return name, m, done


# ---------------------------------------------------------------- one case


class _Timeout(BaseException):
    """The case ran past its time limit (a BaseException: no ``except Exception`` eats it)."""


def _feeds(graph: Any, rng: np.random.Generator) -> dict[str, np.ndarray] | None:
    """Small random feeds for the graph's inputs; None when an input is too big to run."""
    feeds = {}
    for v in graph.inputs:
        shape = v.type.shape
        if shape is None:
            return None
        dims = [d if isinstance(d, int) else 3 for d in shape]
        if any(d < 0 or d > 64 for d in dims) or int(np.prod(dims)) > _FEED_ELEMENTS:
            return None
        dtype = np.dtype(v.dtype)
        if dtype.kind == "f":
            feeds[v.name] = rng.standard_normal(dims).astype(dtype)
        elif dtype.kind in "iu":
            feeds[v.name] = rng.integers(0, 3, size=dims).astype(dtype)
        elif dtype.kind == "b":
            feeds[v.name] = rng.random(dims) < 0.5
        else:
            return None
    return feeds


def _memory(err: BaseException | None) -> bool:
    while err is not None:
        if isinstance(err, MemoryError):
            return True
        err = err.__cause__ or err.__context__
    return False


def _where(err: BaseException) -> str:
    """``file:line`` of the innermost frame in graphcap's own code, else the innermost."""
    frames = traceback.extract_tb(err.__traceback__)
    root = str(Path(__file__).resolve().parents[1])
    ours = [f for f in frames if f.filename.startswith(root) and "/tests/" not in f.filename]
    f = (ours or frames or [None])[-1]
    return "?" if f is None else f"{os.path.relpath(f.filename, root)}:{f.lineno}"


def run_case(m: _Model, folder: Path) -> tuple[str, str, str]:
    """Load, verify and run one mutated model: ``(outcome, stage, what was raised)``."""
    import export
    from ir.errors import GraphcapError
    from runtime.numpy_interpreter import Interpreter

    for name, data in m.files.items():
        (folder / name).write_bytes(data)
    path = folder / "model.onnx"
    path.write_bytes(m.raw if m.raw is not None else m.proto.SerializeToString())
    stage = "load"
    try:
        graph = export.load(path)
        stage = "verify"
        graph.verify()
        feeds = _feeds(graph, np.random.default_rng(0))
        if feeds is not None:
            stage = "run"
            Interpreter(graph).run(feeds)
    except _Timeout:
        return "hang", stage, f"over {TIME_LIMIT} s"
    except RecursionError as err:
        return "raw", stage, f"RecursionError at {_where(err)}"
    except Exception as err:
        text = f"{type(err).__name__} at {_where(err)}: {str(err)[:160]}"
        if _memory(err) and not _asked_for(err):
            return "memory", stage, text
        return ("clean" if isinstance(err, GraphcapError) else "raw"), stage, text
    return "success", stage, ""


def _asked_for(err: BaseException) -> bool:
    """Whether the allocation that failed is the failing node's own output.

    Such a model asks for that memory (``ConstantOfShape`` of a huge shape): the allocation
    is its meaning, not a kernel's blow-up, and it fails cleanly. A kernel that allocates a
    temporary larger than its output (padding for a huge pool window) is a blow-up.
    """
    node = getattr(err, "node", None)
    shape = getattr(err.__cause__, "shape", None)  # NumPy's _ArrayMemoryError says
    if node is None or shape is None:
        return False
    for v in node.outputs:
        dims = v.type.shape
        if (
            dims is not None
            and len(dims) == len(shape)
            and all(not isinstance(d, int) or d == n for d, n in zip(dims, shape, strict=True))
        ):
            return True
    return False


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Timeout


def _worker(conn: Connection, corpus: list[tuple[str, bytes]], seed: int) -> None:
    """Serve cases by index until the parent sends None."""
    folder = Path(tempfile.mkdtemp(prefix="graphcap-fuzz-"))
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    import export  # noqa: F401  (imported before the memory limit is set)
    import runtime.numpy_interpreter  # noqa: F401

    with open("/proc/self/statm") as f:
        used = int(f.read().split()[0]) * resource.getpagesize()
    resource.setrlimit(resource.RLIMIT_AS, (used + MEMORY_LIMIT, resource.RLIM_INFINITY))
    signal.signal(signal.SIGALRM, _on_alarm)
    try:
        while (index := conn.recv()) is not None:
            name, m, done = mutate(corpus, seed, index)
            for p in folder.iterdir():
                shutil.rmtree(p) if p.is_dir() else p.unlink()
            signal.setitimer(signal.ITIMER_REAL, TIME_LIMIT)
            try:
                outcome = run_case(m, folder)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
            conn.send((index, *outcome, name, done))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------- a campaign


@dataclass
class Report:
    """What a campaign found.

    Attributes:
        counts: cases per outcome (see ``OUTCOMES``).
        examples: per outcome but success and clean, up to a few ``(index, seed model,
            mutations, stage, what was raised)``.
        signatures: per outcome, how often each ``(stage, exception type and place)`` came.
        ran: cases that reached the interpreter (loaded, verified, small enough to run).
        seconds: wall time.
    """

    counts: Counter[str] = field(default_factory=Counter)
    ran: int = 0
    examples: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    signatures: dict[str, Counter[str]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def bad(self) -> int:
        """Cases that ended in anything but success or a clean graphcap error."""
        return sum(self.counts[k] for k in OUTCOMES[2:])

    def add(self, index: int, outcome: str, stage: str, text: str, name: str, done: Any) -> None:
        """Record one case."""
        self.counts[outcome] += 1
        if stage == "run":
            self.ran += 1
        if outcome in ("success", "clean"):
            return
        sig = f"{stage}: {text.split(':')[0]}" if outcome == "raw" else f"{stage}: {text[:80]}"
        self.signatures.setdefault(outcome, Counter())[sig] += 1
        examples = self.examples.setdefault(outcome, [])
        if len(examples) < 5:
            examples.append((index, name, done, stage, text))

    def summary(self) -> str:
        """Counts, then the most frequent signatures of each bad outcome, then examples."""
        total = sum(self.counts.values())
        lines = [f"{total} cases in {self.seconds:.1f} s: "
                 + ", ".join(f"{k} {self.counts[k]}" for k in OUTCOMES)
                 + f" ({self.ran} reached the interpreter)"]  # fmt: skip
        for outcome, sigs in self.signatures.items():
            lines.append(f"{outcome}:")
            lines += [f"  {c:>5}  {s}" for s, c in sigs.most_common(25)]
        for outcome, examples in self.examples.items():
            lines += [f"example {outcome}: {e}" for e in examples[:3]]
        return "\n".join(lines)


def campaign(cases: int, workers: int = 2, seed: int = 0) -> Report:
    """Run cases ``0 .. cases-1`` of campaign ``seed`` on ``workers`` processes."""
    corpus = seeds()
    ctx = multiprocessing.get_context("fork")
    report = Report()
    start = time.monotonic()
    pending = iter(range(cases))
    pool: dict[Connection, tuple[Any, int | None, float]] = {}

    def spawn() -> None:
        parent, child = ctx.Pipe()
        proc = ctx.Process(target=_worker, args=(child, corpus, seed), daemon=True)
        proc.start()
        child.close()
        pool[parent] = (proc, None, 0.0)
        feed(parent)

    def feed(conn: Connection) -> None:
        proc, _, _ = pool[conn]
        index = next(pending, None)
        if index is None:
            with contextlib.suppress(OSError):
                conn.send(None)
            proc.join(5)
            del pool[conn]
            return
        conn.send(index)
        pool[conn] = (proc, index, time.monotonic())

    def lost(conn: Connection, outcome: str) -> None:
        proc, index, _ = pool.pop(conn)
        proc.kill()
        proc.join()
        name, _, done = mutate(corpus, seed, index)
        report.add(index, outcome, "?", f"exit code {proc.exitcode}", name, done)
        spawn()

    for _ in range(min(workers, cases)):
        spawn()
    while pool:
        ready = wait(list(pool), timeout=1.0)
        for conn in ready:
            try:
                result = conn.recv()  # type: ignore[union-attr]
            except (EOFError, OSError):
                lost(conn, "crash")  # type: ignore[arg-type]
                continue
            report.add(*result)
            feed(conn)  # type: ignore[arg-type]
        now = time.monotonic()
        for conn, (_, index, began) in list(pool.items()):
            if index is not None and now - began > TIME_LIMIT + 10:
                lost(conn, "hang")  # the interval timer could not interrupt it
    report.seconds = time.monotonic() - start
    return report


def main() -> None:
    """``python -m tests.fuzz``: run a campaign and print its summary."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--cases", type=int, default=2000)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--case", type=int, help="run one case here, with its traceback")
    args = p.parse_args()
    if args.case is not None:
        name, m, done = mutate(seeds(), args.seed, args.case)
        print(name, done)
        with tempfile.TemporaryDirectory() as d:
            for fname, data in m.files.items():
                (Path(d) / fname).write_bytes(data)
            path = Path(d) / "model.onnx"
            path.write_bytes(m.raw if m.raw is not None else m.proto.SerializeToString())
            import export
            from runtime.numpy_interpreter import Interpreter

            graph = export.load(path)
            graph.verify()
            feeds = _feeds(graph, np.random.default_rng(0))
            if feeds is not None:
                Interpreter(graph).run(feeds)
        return
    print(campaign(args.cases, args.workers, args.seed).summary())


if __name__ == "__main__":
    main()
