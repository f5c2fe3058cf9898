"""In-place tensor methods: values and dtypes against NumPy, gradients against torch.

Every method must write into the tensor's own memory (views see it), bump the version
counter, return the tensor itself and keep its dtype; under autograd, the result must
differentiate as the out-of-place program would.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tracer
from ir.errors import DTypeError, ShapeError

X = np.array([[0.5, -1.25, 2.0], [1.5, 0.25, -0.75]])
MASK = np.array([True, False, True])

# name -> (call on a tracer or torch tensor given the library, NumPy reference)
CASES: dict[str, tuple[Callable[[Any, Any], Any], Callable[[np.ndarray], np.ndarray]]] = {
    "add_": (lambda t, lib: t.add_(2.0), lambda x: x + 2.0),
    "add_alpha": (lambda t, lib: t.add_(lib.tensor(X[0]), alpha=-0.5), lambda x: x - 0.5 * X[0]),
    "sub_": (lambda t, lib: t.sub_(lib.tensor(X[1])), lambda x: x - X[1]),
    "sub_alpha": (lambda t, lib: t.sub_(3.0, alpha=2), lambda x: x - 6.0),
    "mul_": (lambda t, lib: t.mul_(-3.0), lambda x: x * -3.0),
    "mul_tensor": (lambda t, lib: t.mul_(lib.tensor(X[0])), lambda x: x * X[0]),
    "div_": (lambda t, lib: t.div_(4.0), lambda x: x / 4.0),
    "div_tensor": (lambda t, lib: t.div_(lib.tensor(X[1])), lambda x: x / X[1]),
    "pow_": (lambda t, lib: t.pow_(3), lambda x: x**3),
    "pow_float": (lambda t, lib: t.pow_(2.0), lambda x: x**2.0),
    "exp_": (lambda t, lib: t.exp_(), np.exp),
    "neg_": (lambda t, lib: t.neg_(), np.negative),
    "clamp_": (lambda t, lib: t.clamp_(-0.5, 1.0), lambda x: np.clip(x, -0.5, 1.0)),
    "clamp_min": (lambda t, lib: t.clamp_(min=0.3), lambda x: np.maximum(x, 0.3)),
    "clamp_max": (lambda t, lib: t.clamp_(max=0.3), lambda x: np.minimum(x, 0.3)),
    "fill_": (lambda t, lib: t.fill_(1.5), lambda x: np.full_like(x, 1.5)),
    "zero_": (lambda t, lib: t.zero_(), np.zeros_like),
    "masked_fill_": (
        lambda t, lib: t.masked_fill_(lib.tensor(MASK), -2.0),
        lambda x: np.where(MASK, -2.0, x),
    ),
    "copy_": (
        lambda t, lib: t.copy_(lib.tensor(X[1] * 3)),
        lambda x: np.broadcast_to(X[1] * 3, x.shape),
    ),
    "iadd": (lambda t, lib: t.__iadd__(1.0), lambda x: x + 1.0),
    "isub": (lambda t, lib: t.__isub__(lib.tensor(X)), lambda x: x - X),
    "imul": (lambda t, lib: t.__imul__(2.0), lambda x: x * 2.0),
    "itruediv": (lambda t, lib: t.__itruediv__(lib.tensor(X[0])), lambda x: x / X[0]),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_values_memory_and_version(name: str, dtype: Any) -> None:
    call, reference = CASES[name]
    x = tracer.tensor(X.astype(dtype))
    view = x[1]
    data, version = x._data, x._version[0]
    out = call(x, tracer)
    assert out is x and x._data is data and x.dtype == dtype
    assert x._version[0] == version + 1
    expected = reference(X.astype(dtype))
    np.testing.assert_allclose(x.numpy(), expected, rtol=1e-6)
    np.testing.assert_allclose(view.numpy(), expected[1], rtol=1e-6)  # views see the write


@pytest.mark.parametrize("name", list(CASES))
def test_gradients_against_torch(name: str) -> None:
    torch = pytest.importorskip("torch")
    call = CASES[name][0]
    results = []
    for lib in (tracer, torch):
        a = lib.tensor(X, requires_grad=True)
        h = a * 1.0
        saved = h * 2.0  # a consumer recorded before the in-place op
        out = call(h, lib)
        assert out is h
        (h * h + saved).sum().backward()
        results.append((h.detach().numpy(), a.grad.numpy()))
    for ours, theirs in zip(*results, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize(
    "call",
    [
        lambda h, w: h.add_(w),
        lambda h, w: h.mul_(w),
        lambda h, w: h.div_(w.exp()),
        lambda h, w: h.pow_(w),
        lambda h, w: h.fill_(w[0]),
        lambda h, w: h.masked_fill_(h > 0, w[1]),
        lambda h, w: h.copy_(w),
        lambda h, w: h.clamp_(w[0], w[2] + 2.0),
        lambda h, w: h.sub_(w * w, alpha=0.5),
    ],
)
def test_gradient_to_the_other_operand(call: Callable[[Any, Any], Any]) -> None:
    torch = pytest.importorskip("torch")
    results = []
    for lib in (tracer, torch):
        a = lib.tensor(np.abs(X) + 0.1, requires_grad=True)
        w = lib.tensor(X[0] * 0.5, requires_grad=True)
        h = a * 1.0
        call(h, w)
        (h * h).sum().backward()
        results.append((h.detach().numpy(), a.grad.numpy(), w.grad.numpy()))
    for ours, theirs in zip(*results, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-10)


# ---------------------------------------------------------------- dtypes


def test_integer_tensors_keep_their_dtype() -> None:
    x = tracer.tensor(np.array([1, 2, 3]))
    x.add_(2).mul_(3).sub_(tracer.tensor(np.array([1, 1, 1], dtype=np.int32)))
    x.pow_(2).clamp_(0, 200).neg_()
    x += 1
    x *= 2
    x -= 1
    assert x.dtype == np.int64
    expected = -np.clip(((np.array([1, 2, 3]) + 2) * 3 - 1) ** 2, 0, 200)
    np.testing.assert_array_equal(x.numpy(), (expected + 1) * 2 - 1)


def test_fills_and_copies_convert_to_the_dtype() -> None:
    x = tracer.zeros(3, dtype=tracer.int64)
    x.fill_(2.9)
    np.testing.assert_array_equal(x.numpy(), [2, 2, 2])
    x.copy_(tracer.tensor([1.7, -2.2, 3.0]))
    np.testing.assert_array_equal(x.numpy(), [1, -2, 3])
    x.masked_fill_(tracer.tensor(MASK), 9.5)
    np.testing.assert_array_equal(x.numpy(), [9, -2, 9])
    assert x.dtype == np.int64
    f = tracer.zeros(2, dtype=tracer.float32)
    f.copy_(tracer.tensor(np.array([1.0, 2.0])))
    assert f.dtype == np.float32


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.add_(1.5),
        lambda t: t.mul_(tracer.tensor([0.5, 1.0, 2.0])),
        lambda t: t.div_(2),
        lambda t: t.exp_(),
        lambda t: t.pow_(0.5),
        lambda t: t.clamp_(0.5, 2),
        lambda t: t.__iadd__(0.5),
        lambda t: t.__itruediv__(2),
    ],
)
def test_result_of_a_higher_kind_raises(call: Callable[[Any], Any]) -> None:
    t = tracer.tensor(np.array([1, 2, 3]))
    with pytest.raises(DTypeError, match="can't be cast to the desired output type int64"):
        call(t)
    np.testing.assert_array_equal(t.numpy(), [1, 2, 3])
    assert t._version is None  # nothing was written


def test_torch_agrees_on_what_raises() -> None:
    torch = pytest.importorskip("torch")
    for call in (lambda t: t.add_(1.5), lambda t: t.div_(2), lambda t: t.exp_()):
        with pytest.raises(RuntimeError, match="can't be cast"):
            call(torch.tensor([1, 2, 3]))


def test_bool_neg_and_bad_operands_raise() -> None:
    with pytest.raises(DTypeError, match="bool"):
        tracer.tensor(MASK).neg_()
    with pytest.raises(TypeError, match="expected a tensor or a Python number"):
        tracer.tensor(X).add_("one")
    with pytest.raises(DTypeError, match="boolean masks"):
        tracer.tensor(X).masked_fill_(tracer.tensor([1, 0, 1]), 0.0)


def test_shape_errors() -> None:
    x = tracer.tensor(X)
    with pytest.raises(ShapeError, match="does not broadcast"):
        x.masked_fill_(tracer.tensor(np.ones((3, 2, 3), dtype=bool)), 0.0)
    with pytest.raises(ShapeError, match="does not broadcast"):
        x.copy_(tracer.tensor(np.ones(4)))
    with pytest.raises(RuntimeError, match="0-dimension"):
        x.fill_(tracer.tensor(np.ones(3)))
    with pytest.raises(ShapeError):
        x.add_(tracer.tensor(np.ones((2, 2, 3))))
    np.testing.assert_array_equal(x.numpy(), X)


# ---------------------------------------------------------------- autograd rules


def test_leaf_requiring_grad_raises_outside_no_grad() -> None:
    w = tracer.tensor(X, requires_grad=True)
    for call in (lambda t: t.add_(1.0), lambda t: t.zero_(), lambda t: t.uniform_()):
        with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
            call(w)
    with pytest.raises(RuntimeError, match="a view of a leaf tensor"):
        w[0].mul_(2.0)
    np.testing.assert_array_equal(w.detach().numpy(), X)
    with tracer.no_grad():
        w.mul_(2.0)
        w[0].add_(1.0)
    assert w.is_leaf and w.requires_grad and w.grad_fn is None
    np.testing.assert_allclose(w.detach().numpy(), X * 2 + np.array([[1.0], [0.0]]))


def test_in_place_under_no_grad_is_not_recorded() -> None:
    a = tracer.tensor(X, requires_grad=True)
    h = a * 1.0
    with tracer.no_grad():
        h.mul_(5.0)
    h.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.ones_like(X))  # as in PyTorch


def test_in_place_on_views_updates_the_base_history() -> None:
    torch = pytest.importorskip("torch")
    results = []
    for lib in (tracer, torch):
        a = lib.tensor(X, requires_grad=True)
        w = lib.tensor(X[0], requires_grad=True)
        h = a * 1.0
        h[1].mul_(3.0)
        h[:, 1:].add_(w[1:])
        h.reshape(6)[::2].clamp_(max=2.5)
        h.t()[0].exp_()
        (h * h).sum().backward()
        results.append([t.detach().numpy() for t in (h, a.grad, w.grad)])
    for ours, theirs in zip(*results, strict=True):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)


def test_fill_gradient_goes_to_the_value() -> None:
    a = tracer.tensor(X, requires_grad=True)
    v = tracer.tensor(0.5, dtype=tracer.float64, requires_grad=True)
    h = a * 1.0
    h.fill_(v)
    (h * tracer.tensor(X)).sum().backward()
    np.testing.assert_allclose(v.grad.numpy(), X.sum())
    np.testing.assert_array_equal(a.grad.numpy(), np.zeros_like(X))


# ---------------------------------------------------------------- random fills


def test_uniform_and_normal_are_seeded_and_in_range() -> None:
    tracer.manual_seed(123)
    u1 = tracer.empty(2000).uniform_(-2.0, 3.0)
    n1 = tracer.empty(20000, dtype=tracer.float64).normal_(1.5, 0.5)
    tracer.manual_seed(123)
    u2 = tracer.empty(2000).uniform_(-2.0, 3.0)
    n2 = tracer.empty(20000, dtype=tracer.float64).normal_(1.5, 0.5)
    np.testing.assert_array_equal(u1.numpy(), u2.numpy())
    np.testing.assert_array_equal(n1.numpy(), n2.numpy())
    assert u1.dtype == np.float32 and n1.dtype == np.float64
    assert u1.numpy().min() >= -2.0 and u1.numpy().max() < 3.0
    assert abs(n1.numpy().mean() - 1.5) < 0.02 and abs(n1.numpy().std() - 0.5) < 0.02


def test_random_fills_need_floats_and_cut_the_gradient() -> None:
    with pytest.raises(DTypeError, match="floating-point"):
        tracer.zeros(3, dtype=tracer.int64).normal_()
    a = tracer.tensor(X, requires_grad=True)
    h = a * 2.0
    h.uniform_()
    assert h.requires_grad  # as in PyTorch: a zero gradient to the old values
    h.sum().backward()
    np.testing.assert_array_equal(a.grad.numpy(), np.zeros_like(X))


def test_parameter_initialisation_pattern() -> None:
    w = tracer.empty(4, 3, requires_grad=True)
    with tracer.no_grad():
        w.normal_(0.0, 0.02)
        w[0].zero_()
    assert w.is_leaf and w.requires_grad
    assert np.all(w.detach().numpy()[0] == 0) and np.any(w.detach().numpy()[1:] != 0)
