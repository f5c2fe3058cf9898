"""ONNX's own node conformance cases, run through ``export.onnx.reader`` and the NumPy interpreter.

Every case of ``onnx.backend.test.case.node.collect_testcases(None)`` (about 1,900 one-node
or expanded-function models with inputs and expected outputs) is one test. A case passes
when each output has the expected shape and dtype and matches with the case's tolerances,
the rule of ``onnx.backend.test.runner`` (``np.testing.assert_allclose``, rtol 1e-3, atol
1e-7 by default). Cases listed in ``tests/conformance_skips.py`` are handled as listed:

- ``UNSUPPORTED`` (generated): skipped, but only while they are still unsupported for the
  same reason; a case that became supported fails until the list is regenerated.
- ``KNOWN_BUGS`` (hand-written): expected to fail; a case that passes fails the test
  (strict xfail), so a fix is noticed and its entry removed.

A case not listed must pass. After adding ops to the registry, rebuild the generated part::

    .venv/bin/python -m tests.export.test_conformance --regenerate
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import tempfile
import warnings
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

import ir.ops
from ir import dtypes
from ir.errors import DTypeError, ExportError, UnsupportedOpError
from tests.conformance_skips import KNOWN_BUGS, RANDOM, UNSUPPORTED

DEFAULT_RTOL = 1e-3  # onnx.backend.test.case.test_case.TestCase defaults
DEFAULT_ATOL = 1e-7
SKIPS_FILE = Path(__file__).parents[1] / "conformance_skips.py"
BEGIN, END = "# BEGIN GENERATED", "# END GENERATED"

# Values that are not plain tensors are out of graphcap's scope (its IR has tensors only).
_NON_TENSOR = ("sequence_type", "optional_type", "map_type", "sparse_tensor_type", "opaque_type")
_NON_TENSOR_OPS = {"SplitToSequence", "ConcatFromSequence", "Optional"}
OUT_OF_SCOPE = "sequences/optional/maps out of scope (graphcap's IR holds tensors only)"
STRINGS = "string tensors unsupported"
TRAINING = "training ops (ai.onnx.preview.training domain) unsupported"
ML = "ai.onnx.ml domain unsupported"
# Ops the reader turns into something else (Constant becomes an initializer).
READER_OPS = {("", "Constant")}


# ------------------------------------------------------------------ collecting cases


@functools.cache
def node_cases() -> dict[str, Any]:
    """The ONNX node test cases by name (collecting them takes a few seconds)."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # the generators overflow casts on purpose
        return {case.name: case for case in collect_testcases(None)}


def _graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """``graph`` and every subgraph (If/Loop/Scan bodies) inside it."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _graphs(attr.g)
            for sub in attr.graphs:
                yield from _graphs(sub)


def _op_keys(model: onnx.ModelProto) -> set[tuple[str, str]]:
    return {
        ("" if n.domain == "ai.onnx" else n.domain, n.op_type)
        for g in _graphs(model.graph)
        for n in g.node
    }


def _elem_types(model: onnx.ModelProto) -> set[int]:
    """Element types of every typed value, initializer, tensor attribute and dtype attribute."""
    types: set[int] = set()
    for g in _graphs(model.graph):
        for v in [*g.input, *g.output, *g.value_info]:
            if v.type.WhichOneof("value") == "tensor_type":
                types.add(v.type.tensor_type.elem_type)
        types.update(t.data_type for t in g.initializer)
        for n in g.node:
            for a in n.attribute:
                if a.type == onnx.AttributeProto.TENSOR:
                    types.add(a.t.data_type)
                types.update(t.data_type for t in a.tensors)
                if a.name in ("to", "dtype", "output_dtype") and a.type == a.INT:
                    types.add(a.i)
    types.discard(onnx.TensorProto.UNDEFINED)
    return types


def _supported_ops() -> set[tuple[str, str]]:
    return {op.key for op in ir.ops.all_ops()} | READER_OPS


def static_reason(model: onnx.ModelProto) -> str | None:
    """Why the model cannot run on graphcap, judged from the model alone; None if it may.

    Checked in order: non-tensor values, string and other unsupported dtypes, ops of the
    training and ai.onnx.ml domains, then ops missing from the registry.
    """
    ops = _op_keys(model)
    kinds = {
        v.type.WhichOneof("value")
        for g in _graphs(model.graph)
        for v in [*g.input, *g.output, *g.value_info]
    }
    if kinds & set(_NON_TENSOR) or any(
        op.startswith(("Sequence", "Optional")) or op in _NON_TENSOR_OPS for _, op in ops
    ):
        return OUT_OF_SCOPE
    bad_types = set()
    for code in _elem_types(model):
        try:
            dtypes.from_onnx(code)
        except DTypeError:
            bad_types.add(onnx.TensorProto.DataType.Name(code).lower())
    if "string" in bad_types:
        return STRINGS
    if bad_types:
        return "dtypes unsupported: " + ", ".join(sorted(bad_types))
    missing = ops - _supported_ops()
    if any(domain == "ai.onnx.preview.training" for domain, _ in missing):
        return TRAINING
    if any(domain == "ai.onnx.ml" for domain, _ in missing):
        return ML
    names = missing_ops(model)
    if names:
        return f"op{'s' if len(names) > 1 else ''} not in the registry: " + ", ".join(names)
    return None


def missing_ops(model: onnx.ModelProto) -> list[str]:
    """Sorted names (``domain.op`` outside the default domain) of ops graphcap lacks."""
    missing = _op_keys(model) - _supported_ops()
    return sorted(f"{d}.{op}" if d else op for d, op in missing)


# ------------------------------------------------------------------ running and comparing


def as_array(x: Any) -> Any:
    """A data-set entry as NumPy (TensorProto and NumPy scalars included); lists recurse."""
    if isinstance(x, onnx.TensorProto):
        return numpy_helper.to_array(x)
    if isinstance(x, list | tuple):
        return [as_array(v) for v in x]
    return None if x is None else np.asarray(x)


def feed_names(model: onnx.ModelProto) -> list[str]:
    """The model's graph inputs that data sets feed, in order (initializers excluded)."""
    inits = {t.name for t in model.graph.initializer}
    return [v.name for v in model.graph.input if v.name not in inits]


def assert_outputs_match(
    expected: Sequence[Any], actual: Sequence[Any], rtol: float, atol: float, values: bool = True
) -> None:
    """``onnx.backend.test.runner``'s comparison: count, shape, dtype, then allclose.

    With ``values=False`` only counts, shapes and dtypes are compared (random outputs).

    Raises:
        AssertionError: naming the first output that differs and how.
    """
    assert len(actual) == len(expected), f"{len(actual)} outputs, expected {len(expected)}"
    for i, (exp, act) in enumerate(zip(expected, actual, strict=True)):
        exp, act = as_array(exp), as_array(act)
        if isinstance(exp, list):
            assert isinstance(act, list), f"output {i}: {type(act).__name__}, expected a list"
            assert_outputs_match(exp, act, rtol, atol, values)
            continue
        if exp is None or act is None:
            assert exp is None and act is None, f"output {i}: {act!r}, expected {exp!r}"
            continue
        assert act.shape == exp.shape, f"output {i}: shape {act.shape}, expected {exp.shape}"
        if not values:
            assert act.dtype == exp.dtype, f"output {i}: dtype {act.dtype}, expected {exp.dtype}"
            continue
        if exp.dtype == object:
            np.testing.assert_array_equal(act, exp, err_msg=f"output {i}")
            continue
        assert act.dtype == exp.dtype, f"output {i}: dtype {act.dtype}, expected {exp.dtype}"
        if is_ml_dtype(exp.dtype):  # bfloat16, float8, int4: compared as float32
            rtol = max(rtol, 2**-6) if exp.dtype.name == "bfloat16" else rtol
            act, exp = act.astype(np.float32), exp.astype(np.float32)
        np.testing.assert_allclose(act, exp, rtol=rtol, atol=atol, err_msg=f"output {i}")


def is_ml_dtype(dtype: np.dtype) -> bool:
    """Whether ``dtype`` is one of ml_dtypes' (bfloat16, float8, int4, ...), not NumPy's."""
    return dtype.type.__module__.startswith("ml_dtypes")


def tolerances(case: Any) -> tuple[float, float]:
    """The case's (rtol, atol), or onnx's defaults."""
    rtol = getattr(case, "rtol", None)
    atol = getattr(case, "atol", None)
    return (DEFAULT_RTOL if rtol is None else rtol, DEFAULT_ATOL if atol is None else atol)


def run_case(case: Any, values: bool = True) -> None:
    """Run ``case`` through ``export.onnx.reader`` and the NumPy interpreter and compare.

    With ``values=False`` only output counts, shapes and dtypes are compared.

    Raises:
        UnsupportedOpError, DTypeError: graphcap says it cannot run the case.
        AssertionError: an output differs; anything else: a crash.
    """
    from export.onnx.reader import from_model
    from runtime.numpy_interpreter import Interpreter

    graph = from_model(case.model)
    interpreter = Interpreter(graph)
    names = feed_names(case.model)
    rtol, atol = tolerances(case)
    for inputs, expected in case.data_sets:
        feeds = dict(zip(names, (as_array(x) for x in inputs), strict=True))
        with np.errstate(all="ignore"):
            result = interpreter.run(feeds)
        actual = [result[v.name] for v in graph.outputs]
        assert_outputs_match(expected, actual, rtol, atol, values)


def dynamic_reason(err: Exception) -> str:
    """The skip reason for an explicit refusal raised while reading or running a case."""
    line = str(err).strip().splitlines()[-1] if str(err).strip() else ""
    line = re.sub(r"\s+", " ", line)
    text = f"rejected: {type(err).__name__}: {line}"
    return text if len(text) <= 160 else text[:157] + "..."


def outcome(case: Any) -> tuple[str, str]:
    """``("passed" | "failed" | "unsupported", detail)`` of running one case."""
    reason = static_reason(case.model)
    if reason is not None:
        return "unsupported", reason
    try:
        run_case(case)
    except (UnsupportedOpError, DTypeError) as err:
        return "unsupported", dynamic_reason(err)
    except Exception as err:  # a wrong result or a crash: both are failures
        return "failed", f"{type(err).__name__}: {err}"
    return "passed", ""


# ------------------------------------------------------------------ tests

_REGEN = "run `.venv/bin/python -m tests.export.test_conformance --regenerate`"


@pytest.mark.parametrize("name", sorted(node_cases()))
def test_node_case(name: str) -> None:
    case = node_cases()[name]
    if name in RANDOM:
        run_case(case, values=False)
        pytest.skip(f"shapes and dtypes match; values not comparable: {RANDOM[name]}")
    if name in KNOWN_BUGS:
        if outcome(case)[0] == "passed":
            pytest.fail(f"{name} passes now: remove it from KNOWN_BUGS in {SKIPS_FILE.name}")
        pytest.xfail(KNOWN_BUGS[name])
    if name in UNSUPPORTED:
        kind, detail = outcome(case)
        if kind == "unsupported" and detail == UNSUPPORTED[name]:
            pytest.skip(detail)
        pytest.fail(
            f"{name} is listed as {UNSUPPORTED[name]!r} but is now {kind}"
            f"{': ' + detail if detail else ''}; {_REGEN}"
        )
    reason = static_reason(case.model)
    if reason is not None:
        pytest.fail(f"{name} is unsupported ({reason}) but not listed; {_REGEN}")
    try:
        run_case(case)
    except (UnsupportedOpError, DTypeError) as err:
        pytest.fail(f"{name} is unsupported but not listed; {_REGEN}\n{err}")


def test_skip_list_names_real_cases() -> None:
    parts = (UNSUPPORTED, KNOWN_BUGS, RANDOM)
    listed = set().union(*parts)
    assert len(listed) == sum(map(len, parts)), "a case is listed twice (unsupported, bug, random)"
    assert listed <= set(node_cases()), f"unknown cases: {sorted(listed - set(node_cases()))}"
    for name, reason in KNOWN_BUGS.items():
        assert reason.startswith("KNOWN BUG: "), f"{name}: bug reasons start with 'KNOWN BUG: '"


def test_reader_refuses_unsupported_cases() -> None:
    """Every case judged unsupported from its model is refused with a clear graphcap error.

    Never a crash or a silent load; a missing top-level op is named in the message.
    """
    from export.onnx.reader import from_model

    problems = []
    for name, case in sorted(node_cases().items()):
        reason = static_reason(case.model)
        if reason is None:
            continue
        try:
            from_model(case.model)
        except (UnsupportedOpError, DTypeError, ExportError) as err:
            top = {n.op_type for n in case.model.graph.node}
            unnamed = [op for op in missing_ops(case.model) if op in top and op not in str(err)]
            if reason.startswith("op") and unnamed:
                problems.append(f"{name}: {unnamed} not named in {err}")
        except Exception as err:
            problems.append(f"{name} ({reason}): {type(err).__name__}: {err}")
        else:
            problems.append(f"{name} ({reason}): loaded without error")
    assert not problems, "\n".join(problems)


def test_static_reasons() -> None:
    """The classifier on hand-made models, so a regenerated list is grounded."""
    x = onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [2])
    s = onnx.helper.make_tensor_value_info("s", onnx.TensorProto.STRING, [2])
    b = onnx.helper.make_tensor_value_info("b", onnx.TensorProto.BFLOAT16, [2])

    def model(op: str, inp: Any, out: Any, domain: str = "") -> onnx.ModelProto:
        node = onnx.helper.make_node(op, ["x"], ["y"], domain=domain)
        out = onnx.ValueInfoProto(name="y", type=out.type)
        graph = onnx.helper.make_graph([node], "g", [inp], [out])
        return onnx.helper.make_model(graph)

    assert static_reason(model("Relu", x, x)) is None
    assert static_reason(model("Identity", s, s)) == STRINGS
    assert static_reason(model("Relu", b, b)) == "dtypes unsupported: bfloat16"
    assert static_reason(model("NoSuchOp", x, x)) == "op not in the registry: NoSuchOp"
    assert static_reason(model("Adam", x, x, "ai.onnx.preview.training")) == TRAINING
    assert static_reason(model("SequenceEmpty", x, x)) == OUT_OF_SCOPE


def test_comparison_rule() -> None:
    f32 = np.array([1.0, 2.0], np.float32)
    assert_outputs_match([f32], [f32 * (1 + 1e-4)], DEFAULT_RTOL, DEFAULT_ATOL)
    for bad in (f32 * 1.01, f32.astype(np.float64), f32[:1], np.array([1.0, np.nan], np.float32)):
        with pytest.raises(AssertionError):
            assert_outputs_match([f32], [bad], DEFAULT_RTOL, DEFAULT_ATOL)
    with pytest.raises(AssertionError):
        assert_outputs_match([f32, f32], [f32], DEFAULT_RTOL, DEFAULT_ATOL)


# ------------------------------------------------------------------ regenerating the list


def _format_unsupported(groups: dict[str, list[str]]) -> str:
    lines = [BEGIN + ": `.venv/bin/python -m tests.export.test_conformance --regenerate`.", ""]
    lines.append("_GROUPS: dict[str, list[str]] = {")
    for reason in sorted(groups, key=_group_order):
        names = sorted(groups[reason])
        lines.append(f"    # {len(names)} case{'s' if len(names) > 1 else ''}")
        key = f"    {json.dumps(reason)}: ["
        lines.append(key if len(key) <= 100 else key + "  # noqa: E501")
        lines.extend(f"        {json.dumps(n)}," for n in names)
        lines.append("    ],")
    lines.append("}")
    return "\n".join(lines) + "\n" + END


def _group_order(reason: str) -> tuple[int, str]:
    order = [OUT_OF_SCOPE, STRINGS, "dtypes", TRAINING, ML, "op", "rejected"]
    rank = next((i for i, p in enumerate(order) if reason.startswith(p)), len(order))
    return (rank, reason)


def regenerate(path: Path = SKIPS_FILE) -> Counter[str]:
    """Rewrite the generated ``UNSUPPORTED`` part of ``path``; return the outcome counts.

    Cases that pass stay unlisted; cases that fail are printed (they are bugs: list them in
    ``KNOWN_BUGS`` by hand with their reason).
    """
    groups: dict[str, list[str]] = {}
    counts: Counter[str] = Counter()
    for name, case in sorted(node_cases().items()):
        kind, detail = outcome(case)
        counts[kind] += 1
        hand = name in KNOWN_BUGS or name in RANDOM
        if kind == "unsupported":
            groups.setdefault(detail, []).append(name)
            if hand:
                print(f"NOW UNSUPPORTED {name}: remove it from KNOWN_BUGS/RANDOM ({detail})")
        elif kind == "failed" and not hand:
            print(f"FAILED (not in KNOWN_BUGS) {name}: {detail.splitlines()[0][:300]}")
    text = path.read_text()
    start, stop = text.index(BEGIN), text.index(END) + len(END)
    new = text[:start] + _format_unsupported(groups) + text[stop:]
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        f.write(new)
    os.replace(tmp, path)
    return counts


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regenerate", action="store_true", help="rewrite UNSUPPORTED")
    if parser.parse_args().regenerate:
        print(dict(regenerate()))
    else:
        parser.print_help()
