"""``Tensor.register_post_accumulate_grad_hook`` (once per backward, when ``.grad`` is final)."""

from __future__ import annotations

import numpy as np
import pytest

import tracer
from tracer import _hooks


def _chain(seed: int = 0) -> tuple[tracer.Tensor, tracer.Tensor, tracer.Tensor]:
    """``loss = sum(tanh(x @ w1) @ w2)``; returns (x, w1, w2)."""
    rng = np.random.default_rng(seed)
    x = tracer.tensor(rng.standard_normal((3, 4)).astype(np.float32))
    w1 = tracer.tensor(rng.standard_normal((4, 5)).astype(np.float32), requires_grad=True)
    w2 = tracer.tensor(rng.standard_normal((5, 2)).astype(np.float32), requires_grad=True)
    return x, w1, w2


def _loss(x: tracer.Tensor, w1: tracer.Tensor, w2: tracer.Tensor) -> tracer.Tensor:
    return ((x @ w1).tanh() @ w2).sum()


def test_hooks_fire_during_the_walk_as_each_grad_becomes_final() -> None:
    x, w1, w2 = _chain()
    seen: list[tuple[str, np.ndarray, bool]] = []
    with (
        w2.register_post_accumulate_grad_hook(
            lambda t: seen.append(("w2", t.grad.numpy().copy(), w1.grad is None))
        ),
        w1.register_post_accumulate_grad_hook(
            lambda t: seen.append(("w1", t.grad.numpy().copy(), w2.grad is None))
        ),
    ):
        _loss(x, w1, w2).backward()
    # w2 is final first; at that point the engine has not reached w1 yet.
    assert [(name, early) for name, _, early in seen] == [("w2", True), ("w1", False)]
    x2, v1, v2 = _chain()
    _loss(x2, v1, v2).backward()  # no hooks: the reference values
    np.testing.assert_array_equal(seen[0][1], v2.grad.numpy())
    np.testing.assert_array_equal(seen[1][1], v1.grad.numpy())
    assert not _hooks.POST_ACCUMULATE  # the handles removed their hooks on exit


def test_a_leaf_used_at_two_depths_fires_once_with_the_full_gradient() -> None:
    x, w1, w2 = _chain()
    w = tracer.tensor(np.float32(1.5), requires_grad=True)
    calls: list[float] = []
    handle = w.register_post_accumulate_grad_hook(lambda t: calls.append(t.grad.item()))
    loss = (_loss(x * w, w1, w2) * w).sum()
    loss.backward()
    handle.remove()
    ref = tracer.tensor(np.float32(1.5), requires_grad=True)
    (_loss(x * ref, w1.detach(), w2.detach()) * ref).sum().backward()
    assert calls == [pytest.approx(ref.grad.item(), rel=1e-6)]
    assert w.grad.item() == pytest.approx(ref.grad.item(), rel=1e-6)


def test_hooks_follow_accumulation_across_backwards_and_removal() -> None:
    x, w1, w2 = _chain()
    calls: list[np.ndarray] = []
    handle = w1.register_post_accumulate_grad_hook(lambda t: calls.append(t.grad.numpy().copy()))
    loss = _loss(x, w1, w2)
    loss.backward(retain_graph=True)
    loss.backward()
    assert len(calls) == 2
    np.testing.assert_allclose(calls[1], 2 * calls[0], rtol=1e-6)  # .grad accumulates
    handle.remove()
    handle.remove()  # twice is harmless
    _loss(x, w1, w2).backward()
    assert len(calls) == 2


def test_only_leaves_that_accumulate_call_their_hooks() -> None:
    x, w1, w2 = _chain()
    calls: list[str] = []
    h1 = w1.register_post_accumulate_grad_hook(lambda t: calls.append("w1"))
    h2 = w2.register_post_accumulate_grad_hook(lambda t: calls.append("w2"))
    try:
        tracer.autograd.grad(_loss(x, w1, w2), [w1, w2])  # .grad untouched: no hook
        assert calls == []
        _loss(x, w1, w2).backward(inputs=[w1])
        assert calls == ["w1"] and w2.grad is None
        unused = tracer.tensor(np.ones(2, np.float32), requires_grad=True)
        with unused.register_post_accumulate_grad_hook(lambda t: calls.append("unused")):
            _loss(x, w1, w2).backward()
        assert calls == ["w1", "w2", "w1"] and unused.grad is None
    finally:
        h1.remove()
        h2.remove()


def test_a_hooked_root_leaf_gets_its_gradient_and_hook() -> None:
    w = tracer.tensor(np.float32(2.0), requires_grad=True)
    calls: list[float] = []
    with w.register_post_accumulate_grad_hook(lambda t: calls.append(t.grad.item())):
        w.backward()
    assert calls == [1.0]


def test_registering_on_the_wrong_tensor_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="doesn't require gradient"):
        tracer.ones(2).register_post_accumulate_grad_hook(lambda t: None)
    w = tracer.ones(2, requires_grad=True)
    with pytest.raises(RuntimeError, match="non-leaf"):
        (w * 2).register_post_accumulate_grad_hook(lambda t: None)
    with pytest.raises(TypeError, match="callable"):
        w.register_post_accumulate_grad_hook(3)  # type: ignore[arg-type]


def test_a_dead_tensor_leaves_the_hook_table() -> None:
    w = tracer.ones(2, requires_grad=True)
    w.register_post_accumulate_grad_hook(lambda t: None)
    assert len(_hooks.POST_ACCUMULATE) == 1
    del w
    assert not _hooks.POST_ACCUMULATE  # the engine is back on its usual path


def test_final_callbacks_run_once_after_every_grad_is_written() -> None:
    x, w1, w2 = _chain()
    seen: list[object] = []

    def last() -> None:  # both .grad are final here, including w1's, reached after w2's hook
        seen.append((w1.grad.numpy().copy(), w2.grad.numpy().copy()))
        _hooks.queue_callback(lambda: seen.append("queued by a callback"))

    with w2.register_post_accumulate_grad_hook(lambda t: _hooks.queue_callback(last)):
        _loss(x, w1, w2).backward()
    x2, v1, v2 = _chain()
    _loss(x2, v1, v2).backward()
    assert len(seen) == 2 and seen[1] == "queued by a callback"
    grads = seen[0]
    assert isinstance(grads, tuple)
    np.testing.assert_array_equal(grads[0], v1.grad.numpy())
    np.testing.assert_array_equal(grads[1], v2.grad.numpy())
    _loss(x, w1, w2).backward()  # callbacks belong to one backward: none run now
    assert len(seen) == 2
    with pytest.raises(RuntimeError, match="during backward pass"):
        _hooks.queue_callback(lambda: None)


def test_a_weight_branch_finishes_before_the_deeper_data_path() -> None:
    # logits = linear(tanh(embedding(ids))): the linear weight's gradient is final right after
    # the last op's backward, so its hook fires before the embedding table's (DDP starts
    # that bucket's all-reduce while the rest of backward runs).
    tracer.manual_seed(0)
    emb, fc = tracer.nn.Embedding(10, 4), tracer.nn.Linear(4, 3)
    ids = tracer.tensor(np.array([[1, 2], [3, 4]]))
    order: list[str] = []
    with emb.weight.register_post_accumulate_grad_hook(lambda t: order.append("embedding")), \
            fc.weight.register_post_accumulate_grad_hook(lambda t: order.append("fc")):  # fmt: skip
        fc(emb(ids).tanh()).sum().backward()
    assert order == ["fc", "embedding"]
