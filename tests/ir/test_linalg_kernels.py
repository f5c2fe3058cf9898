"""MatMul's fast paths: 2-D right operands as one GEMM, its weight gradient, float16."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

import ir
import tracer
from ir.ops.registry import get
from runtime import Session


def test_batched_input_times_matrix_matches_torch_and_runs_float16_in_float32() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, 3, 5, 64)), rng.standard_normal((64, 7))
    kernel = get("MatMul").kernel
    want = torch.from_numpy(a) @ torch.from_numpy(b)
    np.testing.assert_allclose(kernel(a, b), want.numpy(), rtol=1e-12, atol=1e-12)
    assert kernel(a[:, :, :0], b).shape == (2, 3, 0, 7)
    a16, b16 = a.astype(np.float16), b.astype(np.float16)
    got = kernel(a16, b16)
    assert got.dtype == np.float16
    # One float32 product rounded once: what torch's float16 CPU matmul gives too.
    exact = (a16.astype(np.float32) @ b16.astype(np.float32)).astype(np.float16)
    np.testing.assert_array_equal(got, exact)
    torch16 = (torch.from_numpy(a16) @ torch.from_numpy(b16)).numpy()
    np.testing.assert_allclose(got, torch16, rtol=2e-3, atol=2e-3)


def _loss(x: Any, w: Any) -> Any:
    return (tracer.tanh(x @ w) ** 2).sum()


def test_weight_gradient_of_a_batched_matmul_is_one_2d_product() -> None:
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((3, 4, 6)), rng.standard_normal((6, 5))
    graph = tracer.trace(
        _loss, (tracer.tensor(x), tracer.tensor(w)), dynamic_axes={"x": {0: "batch", 1: "seq"}}
    )
    grads = ir.grad(graph, ["w"])
    producer = {o.name: n for n in grads.nodes for o in n.outputs}
    # No batched [B, K, N] product summed over the batch afterwards: one [K, rows] @ [rows, N].
    matmul_sums = [
        n
        for n in grads.nodes
        if n.op.op_type == "ReduceSum" and producer[n.inputs[0].name].op.op_type == "MatMul"
    ]
    assert not matmul_sums
    w_grad = producer[grads.outputs[-1].name]
    assert w_grad.op.op_type == "MatMul"
    assert [len(v.shape) for v in w_grad.inputs] == [2, 2]
    for shape in ((3, 4, 6), (2, 7, 6)):  # the graph's batch and seq stay symbolic
        xs = rng.standard_normal(shape)
        xt = torch.tensor(xs)
        wt = torch.tensor(w, requires_grad=True)
        (torch.tanh(xt @ wt) ** 2).sum().backward()
        assert wt.grad is not None
        for backend in ("interpreter", "onnxruntime"):
            out = Session(grads, backend=backend).run({"x": xs, "w": w})
            np.testing.assert_allclose(out[grads.outputs[-1].name], wt.grad.numpy(), rtol=1e-10)
    # Eager autograd runs the same vjp rule.
    xe, we = tracer.tensor(x, requires_grad=True), tracer.tensor(w, requires_grad=True)
    _loss(xe, we).backward()
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    (torch.tanh(xt @ wt) ** 2).sum().backward()
    assert we.grad is not None and xe.grad is not None
    assert wt.grad is not None and xt.grad is not None
    np.testing.assert_allclose(we.grad.numpy(), wt.grad.numpy(), rtol=1e-10)
    np.testing.assert_allclose(xe.grad.numpy(), xt.grad.numpy(), rtol=1e-10)
