"""``x[key]`` and ``x[key] = value``: values, shapes and gradients against NumPy and torch.

NumPy is the reference wherever its rules and PyTorch's agree (everything but ints mixed
with advanced indices, where PyTorch applies ints first); torch, when installed, checks
those too, plus gradients. Gradients are also checked without torch: the gradient of
``sum(w * x[key])`` is ``w`` scattered-and-added into the positions ``key`` picks.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import tracer
from ir.errors import ShapeError

SHAPE = (3, 4, 5)
DATA = np.arange(60, dtype=np.float64).reshape(SHAPE) / 7.0
MASK_2D = (np.arange(20).reshape(4, 5) % 3) == 0
MASK_3D = (np.arange(60).reshape(SHAPE) % 7) < 2


class Arr:
    """An index array in a key, given to each library as its own tensor type."""

    def __init__(self, value: Any) -> None:
        self.value = np.asarray(value)

    def __repr__(self) -> str:
        return f"Arr({self.value.tolist()})"


def convert(key: Any, make: Any) -> Any:
    if isinstance(key, tuple):
        return tuple(convert(k, make) for k in key)
    return make(key.value) if isinstance(key, Arr) else key


# Keys on which NumPy and PyTorch agree.
KEYS = [
    0,
    -1,
    2,
    (1, -2),
    (0, 1, 2),
    slice(1, None),
    (slice(None), slice(1, 3)),
    (slice(None, None, 2), slice(None), slice(1, None, 3)),
    (slice(-2, None), slice(None, -1)),
    slice(10, 20),
    (slice(3, 1),),
    (Ellipsis, 1),
    (1, Ellipsis),
    (Ellipsis, slice(1, 3), 0),
    (None,),
    (None, 0),
    (slice(None), None, slice(None), None),
    (Ellipsis, None),
    (0, None, slice(1, 3)),
    True,
    False,
    [0, 2],
    [-1, 0, 0],
    ([[0, 1], [2, 0]],),  # a bare nested list: torch still reads it as a tuple (deprecated)
    ([],),
    Arr([2, 0]),
    Arr(np.array([1, 0], dtype=np.int32)),
    (slice(None), Arr([3, -1])),
    (Ellipsis, [4, 0, 1]),
    ([0, 1], slice(None), 0),
    (slice(None), 0, [1, 2]),
    ([0, 2], [1, 3]),
    ([0, 2], [1, 3], [4, 0]),
    ([[0, 1], [2, 0]], slice(None), [1, 3]),
    (slice(None), [[1], [2]], [0, 4]),
    (None, [0, 1], slice(None), [1, 2]),
    ([0, 1], None, [1, 2]),
    (slice(None), [0], None, [1]),
    ([0, 1], 1, [1, 2]),
    (1, [0, 1], [1, 2]),
    (slice(1, 3), [0, 3], slice(None, 2)),
    Arr(MASK_3D),
    Arr(MASK_3D & False),
    (slice(None), Arr(MASK_2D)),
    (Arr(np.array([True, False, True])),),
    (Arr(np.array([True, False, True])), slice(None), [1, 3]),
    (1, Arr(MASK_2D)),
    (Arr(np.array([True, False, True])), [0, 3]),
    (Arr(np.array([False, True, True])), slice(None), Arr(np.array([1, 4]))),
]

# Keys where PyTorch (ints first) and NumPy (ints are advanced) differ: checked vs torch.
TORCH_ONLY_KEYS = [
    (0, slice(None), [1, 2]),
    (0, None, [1, 2]),
    ([0, 1], slice(1, 3), 2),
]


def _positions(key: Any) -> np.ndarray:
    return np.arange(DATA.size).reshape(SHAPE)[convert(key, np.asarray)]


@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_getitem_matches_numpy(key: Any) -> None:
    got = tracer.tensor(DATA)[convert(key, tracer.tensor)]
    expected = DATA[convert(key, np.asarray)]
    assert got.shape == expected.shape
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got.numpy(), expected)


@pytest.mark.parametrize("key", KEYS, ids=repr)
def test_getitem_gradient(key: Any) -> None:
    x = tracer.tensor(DATA, requires_grad=True)
    out = x[convert(key, tracer.tensor)]
    w = np.linspace(-1.0, 2.0, out.numel()).reshape(out.shape)
    (out * tracer.tensor(w)).sum().backward()
    expected = np.zeros(DATA.size)
    np.add.at(expected, _positions(key).reshape(-1), w.reshape(-1))
    np.testing.assert_allclose(x.grad.numpy(), expected.reshape(SHAPE))


@pytest.mark.parametrize("key", KEYS + TORCH_ONLY_KEYS, ids=repr)
def test_getitem_against_torch(key: Any) -> None:
    torch = pytest.importorskip("torch")
    x = tracer.tensor(DATA, requires_grad=True)
    tx = torch.tensor(DATA, requires_grad=True)
    out, tout = x[convert(key, tracer.tensor)], tx[convert(key, torch.tensor)]
    assert out.shape == tuple(tout.shape)
    np.testing.assert_array_equal(out.detach().numpy(), tout.detach().numpy())
    w = np.linspace(-1.0, 2.0, out.numel()).reshape(out.shape)
    (out * tracer.tensor(w)).sum().backward()
    (tout * torch.tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), tx.grad.numpy())


def test_ints_apply_before_advanced_indices() -> None:
    x = tracer.tensor(DATA)
    assert x[0, :, [1, 2]].shape == (4, 2)  # NumPy would give (2, 4)
    assert x[0, None, [1, 2]].shape == (1, 2, 5)


def test_zero_dim_integer_tensor_acts_as_an_int() -> None:
    x = tracer.tensor(DATA)
    one = tracer.tensor(1)
    np.testing.assert_array_equal(x[one].numpy(), DATA[1])
    assert x[one, :, [1, 2]].shape == (4, 2)
    np.testing.assert_array_equal(x[0, one, one].numpy(), DATA[0, 1, 1])


def test_zero_dim_bool_tensor_acts_as_none() -> None:
    x = tracer.tensor(DATA)
    assert x[tracer.tensor(True)].shape == (1, *SHAPE)
    assert x[tracer.tensor(False)].shape == (0, *SHAPE)


def test_uint8_tensor_is_a_mask() -> None:
    x = tracer.tensor(DATA)
    got = x[tracer.tensor(np.array([1, 0, 1], dtype=np.uint8))]
    np.testing.assert_array_equal(got.numpy(), DATA[[0, 2]])


def test_int_dtypes_kept_and_int_tensors_indexable() -> None:
    x = tracer.arange(12).reshape(3, 4)
    got = x[1:, [0, 3]]
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got.numpy(), np.arange(12).reshape(3, 4)[1:, [0, 3]])
    b = tracer.tensor(np.array([True, False, True]))
    np.testing.assert_array_equal(b[[2, 1]].numpy(), [True, False])


def test_zero_dim_tensor_indexing() -> None:
    s = tracer.tensor(3.5)
    assert s[None].shape == (1,) and s[...].shape == ()
    with pytest.raises(IndexError, match="too many indices"):
        s[0]


# ---------------------------------------------------------------- views and copies


def test_basic_indexing_returns_a_view() -> None:
    x = tracer.tensor(np.zeros((3, 4)))
    row = x[1]
    row[2] = 5.0
    cols = x[:, 1:3]
    cols[0] = 7.0
    whole = x[...]
    whole[2, 0] = 1.0
    expected = np.zeros((3, 4))
    expected[1, 2], expected[0, 1:3], expected[2, 0] = 5.0, 7.0, 1.0
    np.testing.assert_array_equal(x.numpy(), expected)
    assert x._version == row._version  # one version counter per memory


def test_advanced_indexing_returns_a_copy() -> None:
    x = tracer.tensor(np.zeros((3, 4)))
    picked = x[[0, 1]]
    picked[0] = 5.0
    masked = x[x.numpy() == 0]
    masked[0] = 5.0
    assert np.all(x.numpy() == 0)


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("key", "message"),
    [
        (5, "index 5 is out of bounds for dimension 0 with size 3"),
        (-4, "index -4 is out of bounds for dimension 0 with size 3"),
        ((slice(None), 7), "index 7 is out of bounds for dimension 1 with size 4"),
        ([0, 5], "index 5 is out of bounds for dimension 0 with size 3"),
        ((0, 0, [9]), "index 9 is out of bounds for dimension 2 with size 5"),
        ((0, 0, 0, 0), "too many indices for tensor of dimension 3"),
        ((..., 0, ...), "single ellipsis"),
        (1.5, "only integers, slices"),
        (Arr(np.array([True, False])), r"mask \[2\] at index 0 does not match"),
        ((slice(None), Arr(np.ones((4, 4), bool))), r"mask \[4, 4\] at index 1 does not match"),
        (([0, 1], [0, 1, 2]), "could not be broadcast together with shapes"),
    ],
    ids=repr,
)
def test_index_errors(key: Any, message: str) -> None:
    with pytest.raises(IndexError, match=message):
        tracer.tensor(DATA)[convert(key, tracer.tensor)]


def test_float_index_tensor_raises() -> None:
    with pytest.raises(IndexError, match="long, int, byte or bool"):
        tracer.tensor(DATA)[tracer.tensor([1.0])]


@pytest.mark.parametrize(
    ("key", "message"), [(slice(None, None, -1), "greater than zero"), (slice(0, 2, 0), "zero")]
)
def test_non_positive_steps_raise(key: slice, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        tracer.tensor(DATA)[key]


def test_index_errors_match_torch() -> None:
    torch = pytest.importorskip("torch")
    for key in (5, (slice(None), 7), [0, 5]):
        with pytest.raises(IndexError) as theirs:
            torch.tensor(DATA)[key]
        with pytest.raises(IndexError) as ours:
            tracer.tensor(DATA)[key]
        assert str(ours.value) == str(theirs.value)
    with pytest.raises(ValueError, match="step must be greater than zero"):
        torch.tensor(DATA)[::-1]


# ---------------------------------------------------------------- __setitem__

SET_CASES = [
    (0, 5.0),
    (-1, np.arange(20.0).reshape(4, 5)),
    ((slice(None), 1), np.arange(5.0)),
    ((slice(None), 1), np.arange(5.0)[None, None]),  # leading 1-axes are dropped
    ((Ellipsis, 2), np.arange(4.0)),
    ((slice(1, 3), slice(None, None, 2)), -2.0),
    (([0, 2], slice(None), [1, 4]), np.arange(8.0).reshape(2, 4)),
    ((slice(None), [0, 3]), np.arange(10.0).reshape(1, 2, 5)[0]),
    (Arr(MASK_3D), -1.0),
    ((slice(None), Arr(MASK_2D)), np.arange(3.0)[:, None]),
    ((None, 1, 2), np.arange(5.0)),
    (([],), 3.0),
]


def _strip(value: np.ndarray, ndim: int) -> np.ndarray:
    """``value`` without the leading 1-axes beyond ``ndim`` (PyTorch drops them)."""
    while value.ndim > ndim and value.shape[0] == 1:
        value = value[0]
    return value


# Numbers are assigned both as numbers and as 0-d tensors; arrays as tensors.
SET_VALUE_CASES = [(k, v, True) for k, v in SET_CASES] + [
    (k, v, False) for k, v in SET_CASES if not isinstance(v, np.ndarray)
]


@pytest.mark.parametrize(("key", "value", "as_tensor"), SET_VALUE_CASES, ids=repr)
def test_setitem_matches_numpy(key: Any, value: Any, as_tensor: bool) -> None:
    if as_tensor:
        value = tracer.tensor(np.asarray(value))
    x = tracer.tensor(DATA)
    data_before = x._data
    x[convert(key, tracer.tensor)] = value
    expected = DATA.copy()
    expected[convert(key, np.asarray)] = _strip(np.asarray(value), _positions(key).ndim)
    np.testing.assert_array_equal(x.numpy(), expected)
    assert x._data is data_before and x._version == [1]


@pytest.mark.parametrize(("key", "value"), SET_CASES, ids=repr)
def test_setitem_gradients(key: Any, value: Any) -> None:
    x = tracer.tensor(DATA, requires_grad=True)
    v = tracer.tensor(np.asarray(value, dtype=np.float64) + 0.5, requires_grad=True)
    h = x * 1.0
    h[convert(key, tracer.tensor)] = v * 2.0
    w = np.linspace(-1.0, 1.0, h.numel()).reshape(h.shape)
    (h * h * tracer.tensor(w)).sum().backward()
    # Expected: the forward's own values; d/dx is zero where overwritten, d/dv sums w * 2h.
    final = h.detach().numpy()
    dh = 2 * final * w
    picked = _positions(key)
    gx = dh.copy().reshape(-1)
    gx[picked.reshape(-1)] = 0.0
    np.testing.assert_allclose(x.grad.numpy(), gx.reshape(SHAPE))
    g_picked = 2.0 * dh.reshape(-1)[picked]
    vshape = _strip(np.zeros(v.shape), g_picked.ndim).shape
    lead = g_picked.ndim - len(vshape)
    axes = tuple(range(lead)) + tuple(
        lead + i for i, d in enumerate(vshape) if d == 1 and g_picked.shape[lead + i] != 1
    )
    gv = g_picked.sum(axis=axes, keepdims=True).reshape(v.shape)
    np.testing.assert_allclose(v.grad.numpy(), gv)


@pytest.mark.parametrize(("key", "value"), SET_CASES, ids=repr)
def test_setitem_against_torch(key: Any, value: Any) -> None:
    torch = pytest.importorskip("torch")
    results = []
    for lib in (tracer, torch):
        x = lib.tensor(DATA, requires_grad=True)
        v = lib.tensor(np.asarray(value, dtype=np.float64) + 0.5, requires_grad=True)
        h = x * 1.0
        h[convert(key, lib.tensor)] = v.exp()
        w = lib.tensor(np.linspace(-1.0, 1.0, 60).reshape(SHAPE))
        (h * h * w).sum().backward()
        results.append([t.detach().numpy() for t in (h, x.grad, v.grad)])
    for ours, theirs in zip(*results, strict=True):
        np.testing.assert_allclose(ours, theirs)


def test_setitem_converts_the_value_to_the_dtype() -> None:
    x = tracer.zeros(3, dtype=tracer.int64)
    x[0] = 2.7
    x[1:] = tracer.tensor([4.9, -1.2])
    assert x.dtype == np.int64
    np.testing.assert_array_equal(x.numpy(), [2, 4, -1])


def test_setitem_on_leaf_requiring_grad() -> None:
    x = tracer.tensor(DATA, requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        x[0] = 1.0
    with tracer.no_grad():
        x[0] = 1.0
    assert np.all(x.detach().numpy()[0] == 1.0) and x.requires_grad and x.is_leaf


def test_setitem_value_shape_mismatch() -> None:
    x = tracer.tensor(DATA)
    with pytest.raises(ShapeError, match=r"value tensor of shape \[3\] cannot be broadcast"):
        x[0, 0] = tracer.tensor(np.ones(3))


def test_setitem_makes_a_plain_tensor_require_grad() -> None:
    v = tracer.tensor(np.array([1.0, 2.0]), requires_grad=True)
    buf = tracer.zeros(3, 2, dtype=tracer.float64)
    buf[1] = v
    assert buf.requires_grad and buf.grad_fn is not None
    (buf * buf).sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), 2 * np.array([1.0, 2.0]))


def test_setitem_from_a_view_of_itself() -> None:
    x = tracer.tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    h = x * 1.0
    h[0] = h[1]
    (h * h).sum().backward()
    np.testing.assert_allclose(h.detach().numpy(), [[3.0, 4.0], [3.0, 4.0]])
    np.testing.assert_allclose(x.grad.numpy(), [[0.0, 0.0], [12.0, 16.0]])


def test_setitem_keeps_earlier_consumers_on_the_old_values() -> None:
    x = tracer.tensor(DATA, requires_grad=True)
    h = x * 1.0
    before = h * 3.0  # recorded before the write
    h[0] = 0.0
    (before + h).sum().backward()
    expected = np.full(SHAPE, 4.0)
    expected[0] = 3.0
    np.testing.assert_allclose(x.grad.numpy(), expected)


def test_augmented_assignment_on_an_index() -> None:
    x = tracer.tensor(DATA, requires_grad=True)
    h = x * 1.0
    h[:, 0] += tracer.tensor(np.ones(5))
    h[1] *= 2.0
    expected = DATA.copy()
    expected[:, 0] += 1
    expected[1] *= 2
    np.testing.assert_allclose(h.detach().numpy(), expected)
    h.sum().backward()
    grad = np.ones(SHAPE)
    grad[1] = 2.0
    np.testing.assert_allclose(x.grad.numpy(), grad)
