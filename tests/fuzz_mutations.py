"""The seeded mutator behind ``tests/fuzz.py``: small valid ONNX models, broken one to three ways.

Case ``index`` of campaign ``seed`` is fully determined by the two numbers
(:func:`mutate`): it picks a model from the seed corpus (``fixtures/fuzz_seeds.zip``, made
by ``fixtures/make_fuzz_seeds.py``) and applies mutations that each mimic a malformed or
hostile file: dims that do not match the data (or overflow), element types changed, inputs
and outputs missing or added, attributes of another type or length or missing, huge
kernels and counts, opset versions out of range, other op types and domains, Constant nodes
without outputs, odd declared types, external data with hostile locations, offsets and
lengths, deeply nested metadata JSON, values defined twice; and, for some cases, flipped
bytes or strings made invalid UTF-8 in the serialized file.
"""

from __future__ import annotations

import random
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto

SEEDS = Path(__file__).with_name("fixtures") / "fuzz_seeds.zip"


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
class Mutant:
    """A model being mutated, with the files that go beside it (external data)."""

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


def _nodes(m: Mutant) -> list[onnx.NodeProto]:
    return [n for g in _graphs(m.proto.graph) for n in g.node]


def _tensors(m: Mutant) -> list[TensorProto]:
    out = [t for g in _graphs(m.proto.graph) for t in g.initializer]
    out += [a.t for n in _nodes(m) for a in n.attribute if a.type == AttributeProto.TENSOR]
    return out


def _names(m: Mutant) -> list[str]:
    g = m.proto.graph
    return [*(i.name for i in g.input), *(t.name for t in g.initializer),
            *(o for n in g.node for o in n.output)]  # fmt: skip


def mut_dims(m: Mutant, rng: random.Random) -> str:
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


def mut_data(m: Mutant, rng: random.Random) -> str:
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


def mut_inputs(m: Mutant, rng: random.Random) -> str:
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


def mut_outputs(m: Mutant, rng: random.Random) -> str:
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


def mut_attr_type(m: Mutant, rng: random.Random) -> str:
    """An attribute gets another type (and a value of it)."""
    attrs = [(n, a) for n in _nodes(m) for a in n.attribute if a.type != AttributeProto.GRAPH]
    if not attrs:
        return "attr type: none"
    n, a = rng.choice(attrs)
    kind = rng.choice([1, 2, 3, 4, 6, 7, 8])
    _set_attr(a, kind, rng)
    return f"attr {n.op_type}.{a.name} -> type {kind}"


def mut_attr_value(m: Mutant, rng: random.Random) -> str:
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


def mut_attr_set(m: Mutant, rng: random.Random) -> str:
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


def mut_opset(m: Mutant, rng: random.Random) -> str:
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


def mut_op_type(m: Mutant, rng: random.Random) -> str:
    """A node becomes another op (same inputs and attributes), or moves domain."""
    n = rng.choice(_nodes(m) or [None])
    if n is None:
        return "op type: no node"
    if rng.random() < 0.2:
        n.domain = rng.choice(["com.microsoft", "ai.onnx", "ai.graphcap", "x"])
        return f"{n.op_type} domain -> {n.domain}"
    n.op_type = rng.choice(_OPS)
    return f"op -> {n.op_type}"


def mut_constant(m: Mutant, rng: random.Random) -> str:
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


def mut_value_info(m: Mutant, rng: random.Random) -> str:
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


def mut_external(m: Mutant, rng: random.Random) -> str:
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


def mut_metadata(m: Mutant, rng: random.Random) -> str:
    """``graphcap.*`` metadata that is deeply nested, invalid or odd JSON."""
    depth = rng.choice([10, 10**4, 10**5])
    value = rng.choice(["[" * depth + "]" * depth, '{"a":' * depth + "1" + "}" * depth,
                        "{not json", "NaN", '"\\ud800"'])  # fmt: skip
    m.proto.metadata_props.add(key=rng.choice(["graphcap.baked", "graphcap.x"]), value=value)
    return f"metadata {value[:12]!r}... ({len(value)} chars)"


def mut_names(m: Mutant, rng: random.Random) -> str:
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


MUTATIONS: list[Callable[[Mutant, random.Random], str]] = [
    mut_dims, mut_data, mut_inputs, mut_outputs, mut_attr_type, mut_attr_value, mut_attr_set,
    mut_opset, mut_op_type, mut_constant, mut_value_info, mut_external, mut_metadata, mut_names,
]  # fmt: skip


def _strings(proto: onnx.ModelProto) -> list[str]:
    """Strings of the model worth breaking into non-UTF-8 bytes (names, op types)."""
    out = [n for n in _names(Mutant(proto)) if len(n) >= 2]
    out += [n.op_type for n in proto.graph.node] + [n.name for n in proto.graph.node if n.name]
    out += [a.s.decode("utf-8", "replace") for n in proto.graph.node for a in n.attribute if a.s]
    return [s for s in out if s.isascii()]


def _byte_mutation(m: Mutant, rng: random.Random) -> str:
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


def mutate(corpus: list[tuple[str, bytes]], seed: int, index: int) -> tuple[str, Mutant, list[str]]:
    """Case ``index`` of campaign ``seed``: the seed's name, the mutated model, what changed."""
    rng = random.Random(seed * 1_000_003 + index)
    name, data = _pick_seed(corpus, rng)
    m = Mutant(onnx.load_from_string(data))
    done = [rng.choice(MUTATIONS)(m, rng) for _ in range(rng.choice([1, 1, 2, 3]))]
    if rng.random() < 0.12:
        done.append(_byte_mutation(m, rng))
    return name, m, done
