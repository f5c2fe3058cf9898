"""Property tests: broadcasting and dtype promotion against NumPy (and torch when present)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tracer
from ir.errors import ShapeError
from ir.ops.infer import broadcast_shapes
from ir.ops.registry import InferContext, get
from ir.types import TensorType
from tracer._promote import result_type

shapes = st.lists(st.integers(1, 4), max_size=4).map(tuple)
DTYPES = [np.dtype(d) for d in (np.bool_, np.int32, np.int64, np.float32, np.float64)]
dtypes = st.sampled_from(DTYPES)


@st.composite
def broadcastable_pair(draw: st.DrawFn) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Two shapes that broadcast: drop leading axes and set some dims to 1."""
    base = draw(shapes)

    def derive() -> tuple[int, ...]:
        cut = draw(st.integers(0, len(base)))
        return tuple(1 if draw(st.booleans()) else d for d in base[cut:])

    return derive(), derive()


@given(st.tuples(shapes, shapes))
def test_broadcast_shapes_agrees_with_numpy(pair: tuple[tuple[int, ...], tuple[int, ...]]) -> None:
    a, b = pair
    try:
        expected = np.broadcast_shapes(a, b)
    except ValueError:
        with pytest.raises(ShapeError):
            broadcast_shapes(a, b)
        return
    assert broadcast_shapes(a, b) == expected


@given(broadcastable_pair(), st.data())
def test_symbolic_broadcast_substitutes_back(
    pair: tuple[tuple[int, ...], tuple[int, ...]], data: st.DataObject
) -> None:
    """Naming some dims by symbols and substituting their sizes back gives NumPy's shape."""
    a, b = pair
    names = {}

    def symbolize(shape: tuple[int, ...], side: str) -> tuple[int | str, ...]:
        out: list[int | str] = []
        for i, d in enumerate(shape):
            if d != 1 and data.draw(st.booleans()):
                names[f"{side}{i}"] = d
                out.append(f"{side}{i}")
            else:
                out.append(d)
        return tuple(out)

    sym = broadcast_shapes(symbolize(a, "a"), symbolize(b, "b"))
    expected = np.broadcast_shapes(a, b)
    assert len(sym) == len(expected)
    for got, want in zip(sym, expected, strict=True):
        assert got is None or names.get(got, got) == want  # type: ignore[arg-type]


@given(broadcastable_pair(), dtypes)
@settings(max_examples=60)
def test_elementwise_rule_matches_eager(
    pair: tuple[tuple[int, ...], tuple[int, ...]], dtype: np.dtype
) -> None:
    a, b = pair
    x, y = np.ones(a, dtype), np.ones(b, dtype)
    add = get("Add")
    rule = add.infer(InferContext(), TensorType(dtype, a), TensorType(dtype, b))
    out = add(tracer.tensor(x), tracer.tensor(y))
    assert (rule.dtype, rule.shape) == (out.dtype, out.shape)


def _operand(kind: str, dtype: np.dtype) -> object:
    if kind == "tensor":
        return tracer.tensor(np.ones(3, dtype))
    if kind == "zero-dim":
        return tracer.tensor(np.ones((), dtype))
    return {"b": True, "i": 2, "u": 2, "f": 2.5}[dtype.kind]


operand_kinds = st.sampled_from(["tensor", "zero-dim", "number"])


@given(operand_kinds, dtypes, operand_kinds, dtypes)
def test_promotion_is_commutative_and_eager_uses_it(
    k1: str, d1: np.dtype, k2: str, d2: np.dtype
) -> None:
    a, b = _operand(k1, d1), _operand(k2, d2)
    if k1 == "number" and k2 == "number":
        return
    assert result_type(a, b) == result_type(b, a)
    expected = result_type(a, b)
    if expected == np.bool_:
        return  # bool + bool has no arithmetic meaning to compare here
    out = a * b  # type: ignore[operator]
    assert out.dtype == expected


@given(operand_kinds, dtypes, operand_kinds, dtypes)
def test_promotion_matches_torch(k1: str, d1: np.dtype, k2: str, d2: np.dtype) -> None:
    torch = pytest.importorskip("torch")
    if k1 == "number" and k2 == "number":
        return
    to_torch = {
        np.dtype(np.bool_): torch.bool,
        np.dtype(np.int32): torch.int32,
        np.dtype(np.int64): torch.int64,
        np.dtype(np.float32): torch.float32,
        np.dtype(np.float64): torch.float64,
    }

    def as_torch(kind: str, dtype: np.dtype) -> object:
        if kind == "number":
            return _operand(kind, dtype)
        return torch.ones(3 if kind == "tensor" else (), dtype=to_torch[dtype])

    ours = result_type(_operand(k1, d1), _operand(k2, d2))
    theirs = torch.result_type(as_torch(k1, d1), as_torch(k2, d2))  # type: ignore[arg-type]
    assert to_torch[ours] == theirs
