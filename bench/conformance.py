"""Pass rates on ONNX's node conformance cases: graphcap's interpreter against onnxruntime CPU.

Prints ONE JSON line. Both runtimes see every case of
``onnx.backend.test.case.node.collect_testcases(None)``, in the same run, and are judged by
the same rule as ``tests/export/test_conformance.py`` (``onnx.backend.test.runner``'s: shape, dtype,
then ``assert_allclose`` with the case's rtol/atol, default 1e-3/1e-7):

- ``interpreter``: the model read by ``export.onnx.reader.from_model`` and run by
  ``runtime.numpy_interpreter.Interpreter``. ``unsupported``: graphcap cannot hold the model
  (non-tensor values, a dtype, an op missing from the registry) or refuses it with an
  explicit ``UnsupportedOpError``/``DTypeError``. ``failed``: a wrong output or any other
  error. The skip list is ignored here: known bugs count as failures.
- ``onnxruntime``: the case's own model (``ir_version`` lowered to 10 when higher, because
  onnxruntime 1.31 reads at most 13) on ``CPUExecutionProvider``. ``unsupported``: the
  session could not be created (op, opset or type not implemented); ``failed``: ``run``
  raised or an output differs.

``pass_rate`` is passed / total (all collected cases); ``pass_rate_of_run`` is passed / run,
where run = total - unsupported.

Usage: ``python bench/conformance.py [--failures]`` (``--failures`` lists every failure on
stderr). Reports numbers; gates nothing.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a source checkout

from tests.export.test_conformance import (
    as_array,
    assert_outputs_match,
    feed_names,
    is_ml_dtype,
    node_cases,
    outcome,
    tolerances,
)

ORT_IR_VERSION = 10


def ort_outcome(case: Any) -> tuple[str, str]:
    """``("passed" | "failed" | "unsupported", detail)`` of one case on onnxruntime CPU."""
    import onnxruntime as ort

    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    model.ir_version = min(model.ir_version, ORT_IR_VERSION)
    options = ort.SessionOptions()
    options.log_severity_level = 4
    options.intra_op_num_threads = 1
    try:
        session = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    except Exception as err:
        return "unsupported", f"{type(err).__name__}: {_first_line(err)}"
    rtol, atol = tolerances(case)
    try:
        for inputs, expected in case.data_sets:
            actual = _ort_run(session, model, [as_array(x) for x in inputs], expected)
            assert_outputs_match(expected, actual, rtol, atol)
    except _BindingLimitError as err:
        return "unsupported", str(err)
    except Exception as err:
        return "failed", f"{type(err).__name__}: {_first_line(err)}"
    return "passed", ""


# ml_dtypes names of types onnxruntime packs several to a byte.
_SUB_BYTE = ("int4", "uint4", "int2", "uint2", "float4", "float6")


class _BindingLimitError(Exception):
    """onnxruntime's Python binding cannot exchange a dtype with NumPy (not a runtime bug)."""


def _is_ml_dtype(x: Any) -> bool:
    return isinstance(x, np.ndarray) and is_ml_dtype(x.dtype)


def _ort_run(session: Any, model: onnx.ModelProto, inputs: list[Any], expected: Any) -> list[Any]:
    """Run one data set. ml_dtypes arrays (bfloat16, float8, int4) go through ``OrtValue``s.

    One- and two-byte types are passed by reinterpreting their bytes; sub-byte types (packed
    by onnxruntime) and outputs NumPy cannot receive raise :class:`_BindingLimitError`.
    """
    import onnxruntime as ort

    names = feed_names(model)
    expected = [as_array(x) for x in expected]
    if not any(_is_ml_dtype(x) for x in [*inputs, *expected]):
        feeds = {n: x for n, x in zip(names, inputs, strict=True) if x is not None}
        return list(session.run(None, feeds))
    types = {v.name: v.type.tensor_type.elem_type for v in model.graph.input}
    values = {}
    for name, x in zip(names, inputs, strict=True):
        if _is_ml_dtype(x):
            if x.dtype.name.startswith(_SUB_BYTE):
                raise _BindingLimitError(f"onnxruntime's Python binding cannot feed {x.dtype}")
            raw = x.view(np.uint8 if x.dtype.itemsize == 1 else np.uint16)
            values[name] = ort.OrtValue.ortvalue_from_numpy_with_onnx_type(raw, types[name])
        else:
            values[name] = ort.OrtValue.ortvalue_from_numpy(x)
    results = []
    for value, want in zip(session.run_with_ort_values(None, values), expected, strict=False):
        try:
            array = value.numpy()
        except Exception as err:
            raise _BindingLimitError(f"onnxruntime's Python binding: {_first_line(err)}") from err
        if _is_ml_dtype(want) and array.dtype.itemsize == want.dtype.itemsize:
            array = array.view(want.dtype)  # float8 comes back as its uint8 bytes
        results.append(array)
    return results


def _first_line(err: Exception) -> str:
    lines = [line for line in str(err).splitlines() if line.strip()]
    return lines[0][:300] if lines else ""


def _summary(results: dict[str, tuple[str, str]], seconds: float) -> dict[str, Any]:
    counts = Counter(kind for kind, _ in results.values())
    total = len(results)
    run = total - counts["unsupported"]
    return {
        "total": total,
        "run": run,
        "passed": counts["passed"],
        "failed": counts["failed"],
        "unsupported": counts["unsupported"],
        "pass_rate": round(counts["passed"] / total, 4),
        "pass_rate_of_run": round(counts["passed"] / run, 4) if run else None,
        "seconds": round(seconds, 1),
    }


def _sweep(fn: Callable[[Any], tuple[str, str]]) -> tuple[dict[str, tuple[str, str]], float]:
    start = time.perf_counter()
    results = {}
    for name, case in sorted(node_cases().items()):
        with np.errstate(all="ignore"):
            results[name] = fn(case)
    return results, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--failures", action="store_true", help="list failures on stderr")
    args = parser.parse_args()
    import onnxruntime as ort

    node_cases()  # collect once, outside the timings
    ours, our_s = _sweep(outcome)
    theirs, their_s = _sweep(ort_outcome)
    if args.failures:
        for who, results in (("interpreter", ours), ("onnxruntime", theirs)):
            for name, (kind, detail) in results.items():
                if kind == "failed":
                    print(f"{who} FAILED {name}: {detail.splitlines()[0][:300]}", file=sys.stderr)
    both = Counter((ours[n][0], theirs[n][0]) for n in ours)
    report = {
        "bench": "conformance",
        "cases": "onnx.backend.test.case.node.collect_testcases(None)",
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "python": platform.python_version(),
        "onnx": onnx.__version__,
        "onnxruntime": ort.__version__,
        "interpreter": _summary(ours, our_s),
        "onnxruntime_cpu": _summary(theirs, their_s),
        "interpreter_passed_onnxruntime_not": sum(
            v for (a, b), v in both.items() if a == "passed" and b != "passed"
        ),
        "onnxruntime_passed_interpreter_not": sum(
            v for (a, b), v in both.items() if b == "passed" and a != "passed"
        ),
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
