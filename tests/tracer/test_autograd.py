"""The eager autograd engine: backward, grad, grad modes, higher order, in-place safety.

Analytic gradients are checked without torch; where torch is installed the same programs
are also run through ``torch.autograd`` and must agree.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import tracer
from ir.ops.registry import OpDef, op, scalar
from tracer import autograd

X = np.array([0.5, -1.25, 2.0], dtype=np.float64)
Y = np.array([1.5, 0.75, -0.5], dtype=np.float64)


def leaf(values: Any = X, dtype: Any = np.float64) -> tracer.Tensor:
    return tracer.tensor(np.asarray(values, dtype=dtype), requires_grad=True)


def close(a: Any, b: Any, rtol: float = 1e-10) -> bool:
    a = a.detach().numpy() if hasattr(a, "detach") else np.asarray(a)
    b = b.detach().numpy() if hasattr(b, "detach") else np.asarray(b)
    return a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=1e-12)


# ---------------------------------------------------------------- requires_grad


def test_requires_grad_propagates_through_ops() -> None:
    x, c = leaf(), tracer.tensor(Y)
    assert x.requires_grad and x.is_leaf and x.grad_fn is None
    assert not c.requires_grad
    y = x * c + 1.0
    assert y.requires_grad and not y.is_leaf and y.grad_fn is not None
    z = c * 2.0
    assert not z.requires_grad and z.grad_fn is None


def test_integer_outputs_do_not_require_grad() -> None:
    x = leaf()
    assert not (x > 0).requires_grad
    assert not x.argmax().requires_grad


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.bool_])
def test_requires_grad_on_non_float_raises(dtype: Any) -> None:
    with pytest.raises(RuntimeError, match="floating point"):
        tracer.tensor(np.zeros(3, dtype=dtype), requires_grad=True)
    t = tracer.tensor(np.zeros(3, dtype=dtype))
    with pytest.raises(RuntimeError, match="floating point"):
        t.requires_grad_()


def test_requires_grad_of_non_leaf_cannot_be_switched_off() -> None:
    y = leaf() * 2.0
    with pytest.raises(RuntimeError, match="leaf"):
        y.requires_grad = False


# ---------------------------------------------------------------- backward


def test_backward_on_scalar() -> None:
    x, y = leaf(X), leaf(Y)
    (x * y).sum().backward()
    assert close(x.grad, Y) and close(y.grad, X)


def test_backward_of_non_scalar_needs_a_gradient() -> None:
    x = leaf()
    y = x * x
    with pytest.raises(RuntimeError, match="scalar outputs"):
        y.backward()
    g = np.array([1.0, 2.0, 3.0])
    y.backward(tracer.tensor(g))
    assert close(x.grad, 2 * X * g)


def test_backward_gradient_of_wrong_shape_raises() -> None:
    y = leaf() * 2.0
    with pytest.raises(ValueError, match="shape"):
        y.backward(tracer.tensor(np.ones(4)))


def test_backward_on_tensor_without_grad_raises() -> None:
    with pytest.raises(RuntimeError, match="does not require grad"):
        tracer.tensor(X).sum().backward()


def test_grads_accumulate_across_backwards() -> None:
    x = leaf()
    (x * 3.0).sum().backward()
    first = x.grad
    (x * x).sum().backward()
    assert close(x.grad, 3.0 + 2 * X)
    assert x.grad is first  # accumulated in place, as PyTorch does


def test_leaf_grad_never_aliases_the_upstream_gradient() -> None:
    x = leaf()
    g = tracer.tensor(np.ones(3))
    (x * 1.0).backward(g)
    x.grad.numpy()[...] = 5.0
    assert np.all(g.numpy() == 1.0)


def test_second_backward_without_retain_graph_raises() -> None:
    x = leaf()
    y = (x.exp() * x).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward() -> None:
    x = leaf()
    y = (x.exp() * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    assert close(x.grad, 2 * (np.exp(X) * (1 + X)))


def test_backward_with_inputs_accumulates_only_there() -> None:
    x, y = leaf(X), leaf(Y)
    (x * y).sum().backward(inputs=[x])
    assert close(x.grad, Y) and y.grad is None


def test_diamond_graph_accumulates_both_paths() -> None:
    x = leaf()
    a = x * 2.0
    b = a.exp()
    c = a * a
    (b + c).sum().backward()
    assert close(x.grad, 2 * np.exp(2 * X) + 8 * X)


def test_tensor_used_many_times() -> None:
    x = leaf()
    y = x * x * x + x * x + x
    y.sum().backward()
    assert close(x.grad, 3 * X**2 + 2 * X + 1)


def test_multiple_roots() -> None:
    x = leaf()
    autograd.backward([(x * 2.0).sum(), (x * x).sum()])
    assert close(x.grad, 2.0 + 2 * X)


def test_deep_chain_has_no_recursion_limit() -> None:
    assert sys.getrecursionlimit() < 10_000  # the walk must be iterative to pass
    x = leaf(np.array([1.0]))
    y = x
    for _ in range(10_000):
        y = y * 1.0001
    y.sum().backward()
    assert close(x.grad, np.array([1.0001**10_000]), rtol=1e-8)
    del y  # freeing the 10,000-node chain must not overflow the C stack either


def test_deep_chain_grad_with_create_graph() -> None:
    x = leaf(np.array([0.5]))
    y = x
    for _ in range(10_000):
        y = y + x * 1e-4
    (g,) = autograd.grad(y.sum(), x, create_graph=True)
    assert close(g, np.array([2.0]))


# ---------------------------------------------------------------- autograd.grad


def test_grad_leaves_dot_grad_alone() -> None:
    x, y = leaf(X), leaf(Y)
    gx, gy = autograd.grad((x * y).sum(), [x, y])
    assert close(gx, Y) and close(gy, X)
    assert x.grad is None and y.grad is None


def test_grad_of_unused_input() -> None:
    x, unused = leaf(X), leaf(Y)
    out = (x * x).sum()
    with pytest.raises(RuntimeError, match="allow_unused"):
        autograd.grad(out, [x, unused], retain_graph=True)
    gx, gu = autograd.grad(out, [x, unused], allow_unused=True)
    assert close(gx, 2 * X) and gu is None


def test_grad_with_respect_to_non_leaf() -> None:
    x = leaf()
    h = x * 3.0
    out = (h * h).sum()
    gh, gx = autograd.grad(out, [h, x])
    assert close(gh, 2 * 3 * X) and close(gx, 18 * X)


def test_grad_with_grad_outputs() -> None:
    x = leaf()
    y = x * x
    v = np.array([1.0, -2.0, 0.5])
    (g,) = autograd.grad(y, x, grad_outputs=tracer.tensor(v))
    assert close(g, 2 * X * v)


# ---------------------------------------------------------------- pruning to the inputs


def _counted_ops(calls: list[Any]) -> tuple[OpDef, OpDef]:
    """Two unregistered ops whose vjp rules log their calls: ``2 * x`` and ``x * y``.

    The mixing op logs which inputs the engine asked it for (``ctx.needs_input_grad``).
    """

    def double_vjp(ctx: Any, g: Any, x: Any) -> list[Any]:
        calls.append("Double")
        return [op.Mul(g, scalar(2.0, g))]

    def mix_vjp(ctx: Any, g: Any, x: Any, y: Any) -> list[Any]:
        calls.append(tuple(ctx.needs_input_grad))
        need_x, need_y = ctx.needs_input_grad
        return [op.Mul(g, y) if need_x else None, op.Mul(g, x) if need_y else None]

    def same_type(ctx: Any, t: Any, *rest: Any) -> Any:
        return t

    double = OpDef("TestDouble", 1, lambda x: x * 2, same_type, double_vjp, domain="test")
    mix = OpDef("TestMix", 1, np.multiply, same_type, mix_vjp, domain="test")
    return double, mix


def test_grad_runs_only_the_vjps_that_reach_the_inputs() -> None:
    calls: list[Any] = []
    double, mix = _counted_ops(calls)
    x, w = leaf(X), leaf(Y)
    side = x
    for _ in range(20):  # a long branch the gradient with respect to w never needs
        side = double(side)
    out = (mix(w * w, side) + side).sum()
    (gw,) = autograd.grad(out, [w], retain_graph=True)
    assert close(gw, 2 * Y * X * 2**20)
    assert calls == [(True, False)]  # Mix ran for its first input only; no Double ran
    calls.clear()
    (gx,) = autograd.grad(out, [x], retain_graph=True)
    assert close(gx, (Y * Y + 1) * 2**20)
    assert calls.count("Double") == 20 and (False, True) in calls
    calls.clear()
    out.backward(inputs=[w])
    assert close(w.grad, gw) and x.grad is None
    assert calls == [(True, False)]


def test_grad_with_respect_to_a_non_leaf_skips_what_made_it() -> None:
    calls: list[Any] = []
    double, _ = _counted_ops(calls)
    x = leaf()
    h = double(double(x)) * 1.0
    (gh,) = autograd.grad((h * h).sum(), [h])
    assert close(gh, 2 * 4 * X) and calls == []


# ---------------------------------------------------------------- higher order


def test_second_derivative_of_cube() -> None:
    x = leaf()
    (g,) = autograd.grad((x * x * x).sum(), x, create_graph=True)
    assert close(g, 3 * X**2) and g.requires_grad
    (h,) = autograd.grad(g.sum(), x)
    assert close(h, 6 * X)


def test_third_derivative_of_sin() -> None:
    x = leaf()
    (g1,) = autograd.grad(x.sin().sum(), x, create_graph=True)
    (g2,) = autograd.grad(g1.sum(), x, create_graph=True)
    (g3,) = autograd.grad(g2.sum(), x)
    assert close(g1, np.cos(X)) and close(g2, -np.sin(X)) and close(g3, -np.cos(X))


def test_second_derivative_through_outputs_read_by_the_rule() -> None:
    x = leaf()  # Exp's vjp reads its output: the second order must flow through it
    (g,) = autograd.grad(x.exp().sum(), x, create_graph=True)
    (h,) = autograd.grad((g * g).sum(), x)
    assert close(h, 2 * np.exp(2 * X))


def test_mixed_partials() -> None:
    x, y = leaf(X), leaf(Y)
    f = (x * x * y * y * y).sum()
    gx, gy = autograd.grad(f, [x, y], create_graph=True)
    assert close(gx, 2 * X * Y**3) and close(gy, 3 * X**2 * Y**2)
    (gxy,) = autograd.grad(gx.sum(), y, retain_graph=True)
    (gyx,) = autograd.grad(gy.sum(), x)
    assert close(gxy, 6 * X * Y**2) and close(gyx, 6 * X * Y**2)


def test_backward_with_create_graph_gives_differentiable_grad() -> None:
    x = leaf()
    (x * x * x).sum().backward(create_graph=True)
    assert x.grad.requires_grad
    (h,) = autograd.grad(x.grad.sum(), x)
    assert close(h, 6 * X)


def test_gradient_without_create_graph_is_constant() -> None:
    x = leaf()
    (g,) = autograd.grad((x * x).sum(), x)
    assert not g.requires_grad and g.grad_fn is None


# ---------------------------------------------------------------- grad modes


def test_no_grad_context() -> None:
    x = leaf()
    with tracer.no_grad():
        assert not tracer.is_grad_enabled()
        y = x * 2.0
        with tracer.enable_grad():
            assert tracer.is_grad_enabled()
            z = x * 2.0
    assert tracer.is_grad_enabled()
    assert not y.requires_grad and z.requires_grad


@pytest.mark.parametrize("bare", [False, True])
def test_no_grad_and_enable_grad_decorators(bare: bool) -> None:
    def twice(t: tracer.Tensor) -> tracer.Tensor:
        return t * 2.0

    off = tracer.no_grad(twice) if bare else tracer.no_grad()(twice)
    on = tracer.enable_grad(twice) if bare else tracer.enable_grad()(twice)
    x = leaf()
    assert not off(x).requires_grad
    with tracer.no_grad():
        assert on(x).requires_grad
        assert not tracer.is_grad_enabled()
    assert tracer.is_grad_enabled()


def test_grad_mode_restored_after_exception() -> None:
    with pytest.raises(KeyError), tracer.no_grad():
        raise KeyError
    assert tracer.is_grad_enabled()


def test_set_grad_enabled_as_function_context_and_decorator() -> None:
    try:
        tracer.set_grad_enabled(False)
        assert not tracer.is_grad_enabled()
    finally:
        tracer.set_grad_enabled(True)
    assert tracer.is_grad_enabled()
    with tracer.set_grad_enabled(False):
        assert not tracer.is_grad_enabled()
        with tracer.set_grad_enabled(True):
            assert tracer.is_grad_enabled()
        assert not tracer.is_grad_enabled()
    assert tracer.is_grad_enabled()

    @tracer.set_grad_enabled(False)
    def off() -> bool:
        return tracer.is_grad_enabled()

    assert tracer.is_grad_enabled()  # decorating does not change the mode
    assert off() is False and off() is False
    assert tracer.is_grad_enabled()


def test_no_grad_reentrant_and_nested_decorator() -> None:
    @tracer.no_grad()
    def inner(depth: int) -> bool:
        return inner(depth - 1) if depth else tracer.is_grad_enabled()

    assert inner(3) is False
    assert tracer.is_grad_enabled()


# ---------------------------------------------------------------- detach


def test_detach_shares_data_and_cuts_the_graph() -> None:
    x = leaf()
    y = x * 2.0
    d = y.detach()
    assert not d.requires_grad and d.grad_fn is None and d.is_leaf
    assert np.shares_memory(d.numpy(), y.detach().numpy())
    (y * d).sum().backward()  # d is a constant: dy/dx * d only
    assert close(x.grad, 2 * (2 * X))


def test_detach_shares_the_version_counter() -> None:
    x = leaf()
    y = x.exp()
    d = y.detach()
    d.add_(1.0)  # modifies y's data, which Exp's vjp reads
    assert close(y, np.exp(X) + 1)
    with pytest.raises(RuntimeError, match="modified by an in-place operation"):
        y.sum().backward()


def test_detach_in_place() -> None:
    y = leaf() * 2.0
    y.detach_()
    assert not y.requires_grad and y.grad_fn is None


# ---------------------------------------------------------------- in-place safety


def test_in_place_on_leaf_requiring_grad_raises() -> None:
    x = leaf()
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        x.add_(1.0)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad"):
        x[0] = 2.0
    with tracer.no_grad():
        x.add_(1.0)  # allowed: how optimizers update parameters
    assert close(x, X + 1) and x.is_leaf and x.requires_grad


def test_saved_tensor_modified_in_place_raises_naming_the_op() -> None:
    x = leaf()
    h = x * 1.0
    y = h * h  # Mul saves h
    h.add_(1.0)
    with pytest.raises(RuntimeError, match=r"modified by an in-place operation: input \d of Mul"):
        y.sum().backward()


def test_saved_output_modified_in_place_raises() -> None:
    x = leaf()
    y = x.exp()  # Exp's vjp reads its output
    z = y.sum()
    y.mul_(2.0)
    with pytest.raises(RuntimeError, match="output 0 of Exp"):
        z.backward()


def test_in_place_on_unsaved_tensor_is_fine() -> None:
    x = leaf()
    h = x * 1.0
    y = h + 2.0  # Add saves nothing
    h.mul_(3.0)
    (y.sum() + h.sum()).backward()
    assert close(x.grad, np.full(3, 1.0 + 3.0))


def test_in_place_rebases_history() -> None:
    x = leaf()
    h = x * 2.0
    h.mul_(h.detach() + 1)  # h = 2x * (2x + 1), with the detached factor a constant
    h.exp_()
    h.sum().backward()
    expected = np.exp(2 * X * (2 * X + 1)) * 2 * (2 * X + 1)
    assert close(x.grad, expected)
    assert h.grad_fn is not None and h.grad_fn.name() == "Exp"


def test_consumers_recorded_before_an_in_place_keep_the_old_history() -> None:
    x = leaf()
    h = x * 1.0
    y = h * 2.0  # recorded against the old h
    h.mul_(3.0)  # h = 3x from here on
    (y + h).sum().backward()
    assert close(x.grad, np.full(3, 2.0 + 3.0))


def test_in_place_reading_its_own_input_keeps_the_old_value() -> None:
    x, w = leaf(X), leaf(Y)
    h = x * 1.0
    h.mul_(w)  # the gradient for w needs the old h
    h.pow_(2)  # the gradient needs the old h again
    h.sum().backward()
    assert close(w.grad, 2 * (X * Y) * X)
    assert close(x.grad, 2 * (X * Y) * Y)


def test_in_place_makes_a_plain_tensor_require_grad() -> None:
    w = leaf()
    buf = tracer.zeros(3, dtype=tracer.float64)
    before = buf * 5.0  # recorded while buf did not require grad
    buf.add_(w)
    assert buf.requires_grad and not before.requires_grad
    (buf * buf).sum().backward()
    assert close(w.grad, 2 * X)


# ---------------------------------------------------------------- against torch


def _torch_pair(fn: Callable[[Any, list[Any]], Any], arrays: list[np.ndarray]) -> None:
    torch = pytest.importorskip("torch")
    ours = [tracer.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    out_ours, out_theirs = fn(tracer, ours), fn(torch, theirs)
    assert close(out_ours, out_theirs.detach().numpy())
    weights = np.linspace(-1.0, 1.0, out_theirs.numel()).reshape(out_theirs.shape)
    (out_ours * tracer.tensor(weights)).sum().backward()
    (out_theirs * torch.tensor(weights)).sum().backward()
    for a, b in zip(ours, theirs, strict=True):
        assert close(a.grad, b.grad.numpy())


def _inplace_program(lib: Any, t: list[Any]) -> Any:
    x, w = t
    h = x * 1.0
    saved = h * 2.0
    h.mul_(w)
    h.add_(saved)
    h[0] = w[1] * 3.0
    h.exp_()
    return h * saved


def _diamond_program(lib: Any, t: list[Any]) -> Any:
    x, w = t
    a = x * w
    b = a.sin()
    c = a.exp() * b
    return c + b * a


@pytest.mark.parametrize("program", [_inplace_program, _diamond_program])
def test_against_torch(program: Callable[[Any, list[Any]], Any]) -> None:
    _torch_pair(program, [X * 0.3, Y * 0.3])


def test_higher_order_against_torch() -> None:
    torch = pytest.importorskip("torch")
    results = []
    for lib in (tracer, torch):
        x = lib.tensor(X, requires_grad=True)
        y = lib.tensor(Y, requires_grad=True)
        f = (x.sin() * y * y + x * x * x * y).sum()
        grad = autograd.grad if lib is tracer else torch.autograd.grad
        gx, gy = grad(f, [x, y], create_graph=True)
        (gxx, gxy) = grad((gx * gx).sum(), [x, y])
        results.append([t.detach().numpy() for t in (gx, gy, gxx, gxy)])
    for a, b in zip(*results, strict=True):
        assert close(a, b)
