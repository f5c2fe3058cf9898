"""The graph editing API: linked node order, insertion points, counter-based fresh names.

Order and contents are checked against a plain Python list driven through the same edits,
values against NumPy, and the cost of naming against a bound that the old quadratic search
(one restart per name: 40-107 s for 16,000 unnamed nodes) cannot meet.
"""

from __future__ import annotations

import copy
import random
import time
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

import export
from ir.errors import GraphInvariantError
from ir.graph import Graph, Node
from ir.node_list import NodeList
from ir.ops.registry import op
from runtime import Session

F32 = np.float32


def chain(n: int) -> tuple[Graph, list[Node]]:
    """``x -> Neg -> Neg -> ...`` (``n`` nodes) and its nodes in order."""
    g = Graph("g")
    y = g.add_input("x", F32, ["n"])
    for _ in range(n):
        y = op.Neg(y)
    g.set_outputs([y])
    return g, list(g.nodes)


def test_node_list_follows_a_python_list_through_random_edits() -> None:
    rng = random.Random(0)
    items: list[object] = [object() for _ in range(50)]
    linked: NodeList[object] = NodeList(items)
    plain = list(items)
    for _ in range(500):
        kind = rng.choice(["before", "after", "append", "remove"])
        new = object()
        if kind == "append" or not plain:
            linked.append(new)
            plain.append(new)
        elif kind == "remove":
            gone = rng.choice(plain)
            linked.remove(gone)
            plain.remove(gone)
        else:
            anchor = rng.choice(plain)
            at = plain.index(anchor) + (kind == "after")
            getattr(linked, f"insert_{kind}")(anchor, new)
            plain.insert(at, new)
        assert len(linked) == len(plain)
    assert list(linked) == plain and list(reversed(linked)) == plain[::-1]
    assert [linked[i] for i in (0, 7, -1, -3)] == [plain[i] for i in (0, 7, -1, -3)]
    assert linked[2:5] == plain[2:5] and all(x in linked for x in plain)
    copied = copy.deepcopy(linked)  # new objects: the boxes are rebuilt for them
    assert len(copied) == len(plain) and all(x in copied for x in copied)
    copied.remove(copied[0])
    assert len(copied) == len(plain) - 1 and len(linked) == len(plain)


def test_node_list_rejects_bad_edits_and_iterates_while_changing() -> None:
    a, b, c, d = (object() for _ in range(4))
    linked: NodeList[object] = NodeList([a, b, c])
    with pytest.raises(ValueError, match="already in the list"):
        linked.append(a)
    with pytest.raises(ValueError, match="not in the list"):
        linked.insert_before(d, object())
    with pytest.raises(IndexError, match="node index 3 out of range"):
        linked[3]
    seen = []
    for x in linked:  # removing the current element and adding ahead of it
        seen.append(x)
        if x is a:
            linked.remove(a)
            linked.append(d)
    assert seen == [a, b, c, d] and list(linked) == [b, c, d]
    assert a not in linked


def test_graph_edits_keep_order_uses_and_values() -> None:
    g, (n0, n1, n2) = chain(3)
    x = g.inputs[0]
    with g.inserting_before(n1) as point:  # emitted between n0 and n1, in the order made
        doubled = op.Add(n0.outputs[0], n0.outputs[0])
        scaled = op.Mul(doubled, np.asarray(3.0, F32))
    g.set_input(n1, 0, scaled)
    with g.inserting_after(n2):  # after n2, each next node after the one before
        absolute = op.Abs(n2.outputs[0])
        last = op.Relu(absolute)
    g.set_outputs([last])
    g.verify()
    names = [n.op.op_type for n in g.nodes]
    assert names == ["Neg", "Add", "Mul", "Neg", "Neg", "Abs", "Relu"]
    assert [n.op.op_type for n in point.nodes] == ["Add", "Mul"]
    assert [u for u, _ in scaled.uses] == [n1] and x.uses == [(n0, 0)]
    feed = np.array([1.5, -2.0], F32)
    (got,) = Session(g, backend="interpreter").run({"x": feed}).values()
    np.testing.assert_allclose(got, np.abs(-(-(-feed * 2) * 3)))


def test_insertion_points_nest_and_are_restored_after_an_error() -> None:
    g, (n0, n1) = chain(2)
    with g.inserting_before(n1):
        with g.inserting_after(n0):
            op.Abs(n0.outputs[0])
        op.Relu(n0.outputs[0])  # the outer point again
    with pytest.raises(RuntimeError, match="boom"), g.inserting_before(n0):
        raise RuntimeError("boom")
    op.Sigmoid(n1.outputs[0])  # no point: appended
    assert [n.op.op_type for n in g.nodes] == ["Neg", "Abs", "Relu", "Neg", "Sigmoid"]
    _, (stranger,) = chain(1)
    with pytest.raises(GraphInvariantError, match="it is not in graph"):
        g.insert_before(stranger, stranger)


def test_fresh_node_names_count_per_hint_and_skip_taken_names() -> None:
    g = Graph("g")
    x = g.add_input("x", F32, [2])
    first = op.Add(x, x).producer
    g.apply(op.Add, [x, x], {}, name="add_2")  # a name a file gave
    made = [op.Add(x, x).producer.name for _ in range(3)]
    assert first.name == "add" and made == ["add_1", "add_3", "add_4"]
    g.remove(first)
    assert op.Add(x, x).producer.name == "add"  # the bare hint is free again


def test_sixteen_thousand_unnamed_nodes_load_quickly(tmp_path: Path) -> None:
    # Naming each unnamed node by a search from 1 took 48 s here; counters take under 1 s.
    # CPU time of this process, not wall time: other processes on a busy machine don't count.
    n = 16_000
    nodes = [
        helper.make_node(
            "Add" if i % 2 else "Mul", ["x" if i == 0 else f"v{i - 1}", "x"], [f"v{i}"]
        )
        for i in range(n)
    ]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    y = helper.make_tensor_value_info(f"v{n - 1}", TensorProto.FLOAT, [2])
    model = helper.make_model(
        helper.make_graph(nodes, "long", [x], [y]), opset_imports=[helper.make_opsetid("", 17)]
    )
    path = tmp_path / "long.onnx"
    path.write_bytes(model.SerializeToString())
    start = time.process_time()
    g = export.load(str(path))
    seconds = time.process_time() - start
    assert len(g.nodes) == n and seconds < 10, f"{seconds:.1f} s to load {n} unnamed nodes"
    loaded = list(g.nodes)
    names = {node.name for node in g.nodes}
    assert len(names) == n and {"add", "mul", "add_7999", "mul_7999"} <= names
    start = time.process_time()
    added = []
    for node in list(g.nodes):  # an Identity before every node, then every one removed again
        with g.inserting_before(node):
            added.append(op.Identity(node.inputs[0]).producer)
    assert list(g.nodes)[:3] == [added[0], loaded[0], added[1]]
    for node in added:
        g.remove(node)
    assert list(g.nodes) == loaded and time.process_time() - start < 10
