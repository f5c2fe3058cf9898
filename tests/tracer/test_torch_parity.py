"""PyTorch's everyday tensor API in graphcap, each against torch where torch is installed.

Legacy constructors and types, ``autograd.Variable``, ``.data``, ``type()``, devices,
``backward()`` on one-element tensors, the deprecated "scalar first" overloads, in-place
variants, ``bmm`` and friends, ``masked_select``, sampling, NumPy ufuncs, ``inference_mode``,
pickling and ``Generator``.
"""

from __future__ import annotations

import copy
import pickle
import warnings

import numpy as np
import pytest

import tracer
import tracer.nn as nn
from ir.errors import DTypeError, ShapeError
from tracer import autograd

torch = pytest.importorskip("torch")


def _same(t: tracer.Tensor, ref: object, rtol: float = 1e-6) -> None:
    want = ref.detach().numpy()  # type: ignore[attr-defined]
    assert t.dtype == want.dtype and tuple(t.shape) == want.shape
    np.testing.assert_allclose(t.detach().numpy(), want, rtol=rtol, atol=1e-7)


# ---------------------------------------------------------------- constructors and types


def test_tensor_constructor_has_torchs_legacy_meaning() -> None:
    for args in [(2, 3), (), ([1.0, 2.0],), ([[1, 2], [3, 4]],), (np.array([1, 2]),), (4,)]:
        got, want = tracer.Tensor(*args), torch.Tensor(*args)
        assert tuple(got.shape) == tuple(want.shape) and got.dtype == np.float32
        if args and not isinstance(args[0], int):
            _same(got, want)
    assert not tracer.Tensor(2, 3).requires_grad  # once a scalar with requires_grad
    base = tracer.tensor([1, 2])
    alias = tracer.Tensor(base)
    alias[0] = 7
    assert base.tolist() == [7, 2] and alias.dtype == np.int64  # torch.Tensor(t) aliases t
    for bad, kind in [((2.5,), TypeError), (([1], [2]), TypeError), ((-1, 2), RuntimeError)]:
        with pytest.raises(kind):
            tracer.Tensor(*bad)
        with pytest.raises((TypeError, RuntimeError)):
            torch.Tensor(*bad)
    with pytest.raises(TypeError, match="requires_grad"):
        tracer.Tensor(2, requires_grad=True)
    assert tuple(tracer.Tensor(2, device="cpu").shape) == (2,)


@pytest.mark.parametrize(
    "name", ["FloatTensor", "DoubleTensor", "LongTensor", "IntTensor", "BoolTensor", "ByteTensor"]
)
def test_legacy_tensor_types(name: str) -> None:
    ours, theirs = getattr(tracer, name), getattr(torch, name)
    _same(ours([1.7, 3.0, 0.0]), theirs([1.7, 3.0, 0.0]))
    assert tuple(ours(2, 3).shape) == (2, 3) and ours(2, 3).dtype == theirs(2, 3).numpy().dtype
    assert isinstance(ours([1]), ours) is isinstance(theirs([1]), theirs) is True
    assert isinstance(tracer.zeros(1), ours) == isinstance(torch.zeros(1), theirs)
    t = tracer.tensor([1.5, 2.5])
    assert t.type() == torch.tensor([1.5, 2.5]).type() == "torch.FloatTensor"
    _same(t.type(ours), torch.tensor([1.5, 2.5]).type(theirs))
    _same(t.type(f"torch.{name}"), torch.tensor([1.5, 2.5]).type(f"torch.{name}"))
    with pytest.raises(TypeError):
        ours(tracer.tensor([1, 2], dtype=tracer.int16))


def test_type_with_a_dtype_and_errors() -> None:
    _same(tracer.tensor([1, 2]).type(tracer.float64), torch.tensor([1, 2]).type(torch.float64))
    x = tracer.tensor([1.0])
    assert x.type(tracer.float32) is x
    with pytest.raises(RuntimeError, match="CUDA runs compiled"):
        x.type("torch.cuda.FloatTensor")
    with pytest.raises(TypeError, match="invalid type"):
        x.type("torch.Nonsense")


# ---------------------------------------------------------------- Variable and .data


def test_variable_is_a_tensor_sharing_memory_and_cut_from_history() -> None:
    x = tracer.randn(3)
    v = autograd.Variable(x, requires_grad=True)
    assert v is not x and v.requires_grad and not x.requires_grad and v.is_leaf
    assert np.shares_memory(v.detach().numpy(), x.numpy())
    z = v * 2
    w = autograd.Variable(z)
    assert w.grad_fn is None and not w.requires_grad and z.grad_fn is not None
    assert isinstance(tracer.zeros(1), autograd.Variable) and isinstance(w, autograd.Variable)
    assert tuple(autograd.Variable().shape) == tuple(torch.autograd.Variable().shape) == (0,)
    with pytest.raises(TypeError, match="has to be a tensor"):
        autograd.Variable([1, 2])
    with pytest.warns(UserWarning, match="volatile"):
        autograd.Variable(x, volatile=True)


def test_data_writes_through_without_recording() -> None:
    p = nn.Parameter(tracer.ones(2, 3))
    d = p.data
    assert not d.requires_grad and d.is_leaf and np.shares_memory(d.numpy(), p.detach().numpy())
    p.data[0, :] = -5
    p.data.add_(tracer.ones(2, 3), alpha=2)
    assert p.detach().numpy().tolist() == [[-3.0] * 3, [3.0] * 3]
    assert p.requires_grad and p.grad_fn is None
    q = tracer.ones(2)
    q.data = tracer.zeros(3)
    assert q.tolist() == [0.0, 0.0, 0.0]


# ---------------------------------------------------------------- devices


def test_devices_describe_anything_and_place_only_on_the_cpu() -> None:
    cpu = tracer.device("cpu")
    assert str(cpu) == "cpu" and repr(cpu) == repr(torch.device("cpu"))
    assert str(tracer.device("cuda", 1)) == str(torch.device("cuda", 1)) == "cuda:1"
    assert tracer.device("cuda:1").index == 1 and tracer.device(cpu) == cpu
    assert (cpu == "cpu") == (torch.device("cpu") == "cpu")  # False in both
    with pytest.raises(RuntimeError):
        tracer.device("gpu")
    t = tracer.zeros(2, device="cpu")
    assert t.device == cpu and not t.is_cuda and t.cpu() is t and t.to(cpu) is t
    assert t.to("cpu", non_blocking=True) is t and t.to(tracer.device("cpu:0")) is t
    assert t.pin_memory() is t and t.get_device() == -1
    assert not tracer.cuda.is_available() and tracer.cuda.device_count() == 0
    assert not tracer.accelerator.is_available()
    tracer.cuda.manual_seed(0)  # nothing to seed, as in a CPU-only PyTorch
    m = nn.Linear(2, 2).to(cpu)
    assert m.cpu() is m


@pytest.mark.parametrize(
    "make",
    [
        lambda: tracer.zeros(2, device="cuda"),
        lambda: tracer.ones(2, device="cuda:0"),
        lambda: tracer.full((2,), 1.0, device="cuda"),
        lambda: tracer.arange(3, device="cuda"),
        lambda: tracer.randn(2, device=tracer.device("cuda")),
        lambda: tracer.randint(3, (2,), device="cuda"),
        lambda: tracer.randperm(3, device="cuda"),
        lambda: tracer.eye(2, device="cuda"),
        lambda: tracer.linspace(0, 1, 3, device="cuda"),
        lambda: tracer.zeros_like(tracer.zeros(2), device="cuda"),
        lambda: tracer.tensor([1.0], device="cuda"),
        lambda: tracer.as_tensor([1.0], device="cuda"),
        lambda: tracer.Tensor(2, device="cuda"),
        lambda: tracer.LongTensor(2, device="cuda"),
        lambda: tracer.zeros(2).new_zeros(3, device="cuda"),
        lambda: tracer.zeros(2).to("cuda"),
        lambda: tracer.zeros(2).cuda(),
        lambda: nn.Linear(3, 4, device="cuda"),
        lambda: nn.Embedding(3, 4, device="cuda"),
        lambda: nn.LSTM(3, 4, device="cuda"),
        lambda: nn.Linear(3, 4).to("cuda"),
        lambda: nn.Linear(3, 4).cuda(),
        lambda: tracer.Generator(device="cuda"),
        lambda: tracer.load("x.safetensors", map_location="cuda"),
    ],
)
def test_asking_for_cuda_says_where_cuda_runs(make: object) -> None:
    with pytest.raises(tracer.DeviceError, match=r"tracer.compile\(model, device='cuda'\)"):
        make()  # type: ignore[operator]


def test_torch_cuda_names_beyond_the_basics_point_at_compiled_graphs() -> None:
    with pytest.raises(AttributeError, match="CUDA runs compiled and exported graphs"):
        tracer.cuda.synchronize()


# ---------------------------------------------------------------- autograd corners


def test_backward_on_a_one_element_tensor() -> None:
    for shape in [(1,), (1, 1)]:
        w = tracer.ones(*shape, requires_grad=True)
        (w * 3).backward()
        tw = torch.ones(*shape, requires_grad=True)
        (tw * 3).backward()
        _same(w.grad, tw.grad)
    with pytest.raises(RuntimeError, match="scalar outputs"):
        (tracer.ones(2, requires_grad=True) * 3).backward()


def test_inference_mode_records_nothing() -> None:
    w = tracer.ones(2, requires_grad=True)
    with tracer.inference_mode():
        assert tracer.is_inference_mode_enabled() and not (w * 2).requires_grad
    assert not tracer.is_inference_mode_enabled() and (w * 2).requires_grad
    with tracer.inference_mode(False):
        assert (w * 2).requires_grad

    @tracer.inference_mode
    def bare(x: tracer.Tensor) -> tracer.Tensor:
        return x * 2

    @tracer.inference_mode()
    def called(x: tracer.Tensor) -> tracer.Tensor:
        return x * 2

    assert not bare(w).requires_grad and not called(w).requires_grad and tracer.is_grad_enabled()


# ---------------------------------------------------------------- legacy overloads, in-place


def test_scalar_first_overloads_torch_still_accepts() -> None:
    x, y = np.ones(3, np.float32), np.arange(3, dtype=np.float32)
    cases = [
        lambda lib, a, b: a.clone().add_(2, b),
        lambda lib, a, b: a.add(2, b),
        lambda lib, a, b: a.clone().sub_(2, b),
        lambda lib, a, b: a.sub(2, b),
        lambda lib, a, b: lib.add(a, 2, b),
        lambda lib, a, b: a.clone().add_(2, 3),
        lambda lib, a, b: a.clone().addcmul_(2, b, b),
        lambda lib, a, b: a.addcdiv(2, b, b + 1),
        lambda lib, a, b: a.clone().add_(b, alpha=2),
    ]
    for case in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            want = case(torch, torch.tensor(x), torch.tensor(y))
        with warnings.catch_warnings(record=True):
            warnings.simplefilter("always")
            got = case(tracer, tracer.tensor(x), tracer.tensor(y))
        _same(got, want)
    with pytest.warns(UserWarning, match="deprecated"):
        tracer.ones(2).add_(2, tracer.ones(2))
    with pytest.raises(TypeError):
        tracer.ones(2).add_(tracer.ones(2), tracer.ones(2))


@pytest.mark.parametrize(
    "name, args",
    [
        ("abs_", ()),
        ("sqrt_", ()),
        ("log_", ()),
        ("tanh_", ()),
        ("sigmoid_", ()),
        ("relu_", ()),
        ("floor_", ()),
        ("round_", ()),
        ("reciprocal_", ()),
        ("clamp_min_", (0.3,)),
        ("clamp_max_", (0.3,)),
        ("lerp_", ("other", 0.25)),
        ("addcmul_", ("other", "other")),
        ("addcdiv_", ("other", "other")),
        ("fmod_", (0.4,)),
        ("remainder_", (0.4,)),
        ("tril_", ()),
        ("triu_", (1,)),
        ("cumsum_", (1,)),
        ("lt_", (0.5,)),
        ("square_", ()),
    ],
)
def test_inplace_variants_match_torch(name: str, args: tuple[object, ...]) -> None:
    base = np.random.default_rng(0).uniform(0.1, 1.0, (3, 4)).astype(np.float32)
    other = np.random.default_rng(1).uniform(0.5, 1.5, (3, 4)).astype(np.float32)
    ours, theirs = tracer.tensor(base), torch.tensor(base)
    a = [tracer.tensor(other) if x == "other" else x for x in args]
    b = [torch.tensor(other) if x == "other" else x for x in args]
    out = getattr(ours, name)(*a)
    getattr(theirs, name)(*b)
    assert out is ours
    _same(ours, theirs)


def test_inplace_variant_gradients_and_dtype_rule() -> None:
    x = tracer.tensor([0.5, 2.0], requires_grad=True)
    y = x * 1
    y.tanh_()
    y.sum().backward()
    tx = torch.tensor([0.5, 2.0], requires_grad=True)
    ty = tx * 1
    ty.tanh_()
    ty.sum().backward()
    _same(x.grad, tx.grad)
    with pytest.raises(DTypeError):
        tracer.tensor([1, 2]).sqrt_()  # a float result cannot go into an int tensor
    with pytest.raises(RuntimeError, match="leaf"):
        tracer.ones(2, requires_grad=True).exp_()


def test_shape_inplace_variants() -> None:
    for name, args in [("unsqueeze_", (-1,)), ("squeeze_", ()), ("t_", ()), ("transpose_", (0, 1))]:
        data = np.arange(6, dtype=np.int64).reshape(1, 6) if name != "t_" else np.ones((2, 3))
        ours, theirs = tracer.tensor(data), torch.tensor(data)
        assert getattr(ours, name)(*args) is ours
        getattr(theirs, name)(*args)
        _same(ours, theirs)
    x = tracer.tensor([1.0, 2.0], requires_grad=True)
    y = x * 3
    y.unsqueeze_(0)
    assert tuple(y.shape) == (1, 2) and y.grad_fn is not None
    (y * tracer.tensor([[1.0, 10.0]])).sum().backward()
    assert x.grad.tolist() == [3.0, 30.0]


# ---------------------------------------------------------------- products and selection


def test_bmm_baddbmm_mm_addmm_mv_match_torch() -> None:
    rng = np.random.default_rng(0)
    a, b, c = (rng.standard_normal(s).astype(np.float32) for s in [(2, 3, 4), (2, 4, 5), (2, 3, 5)])
    m, n, v = (rng.standard_normal(s).astype(np.float32) for s in [(3, 4), (4, 5), (4,)])
    T, t = tracer.tensor, torch.tensor
    _same(tracer.bmm(T(a), T(b)), torch.bmm(t(a), t(b)), 1e-5)
    _same(
        tracer.baddbmm(T(c), T(a), T(b), beta=0.5, alpha=2),
        torch.baddbmm(t(c), t(a), t(b), beta=0.5, alpha=2),
        1e-5,
    )
    _same(T(c).baddbmm(T(a), T(b), beta=0), t(c).baddbmm(t(a), t(b), beta=0), 1e-5)
    _same(tracer.mm(T(m), T(n)), torch.mm(t(m), t(n)), 1e-5)
    _same(
        tracer.addmm(T(n[0]), T(m), T(n), alpha=3), torch.addmm(t(n[0]), t(m), t(n), alpha=3), 1e-5
    )
    _same(tracer.mv(T(m), T(v)), torch.mv(t(m), t(v)), 1e-5)
    with pytest.raises(RuntimeError, match="3D"):
        tracer.bmm(T(m), T(n))
    with pytest.raises(RuntimeError, match="first two dimensions"):
        tracer.bmm(T(a), T(a))
    x = T(a, requires_grad=True)
    tracer.bmm(x, T(b)).sum().backward()
    tx = t(a, requires_grad=True)
    torch.bmm(tx, t(b)).sum().backward()
    _same(x.grad, tx.grad, 1e-5)


def test_masked_select_broadcasts_like_torch() -> None:
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    mask = np.array([True, False, True])
    _same(
        tracer.tensor(x).masked_select(tracer.tensor(mask)),
        torch.tensor(x).masked_select(torch.tensor(mask)),
    )
    _same(
        tracer.masked_select(tracer.tensor(x), tracer.tensor(x > 2)),
        torch.masked_select(torch.tensor(x), torch.tensor(x > 2)),
    )
    with pytest.raises(DTypeError):
        tracer.tensor(x).masked_select(tracer.tensor([1, 0, 1]))
    with pytest.raises(ShapeError):
        tracer.tensor(x).masked_select(tracer.tensor([True, False]))


# ---------------------------------------------------------------- sampling


def test_multinomial_follows_the_weights() -> None:
    tracer.manual_seed(0)
    w = tracer.tensor([1.0, 0.0, 3.0])
    draws = tracer.multinomial(w, 4000, replacement=True)
    assert draws.dtype == np.int64 and tuple(draws.shape) == (4000,)
    counts = np.bincount(draws.numpy(), minlength=3) / 4000
    np.testing.assert_allclose(counts, [0.25, 0.0, 0.75], atol=0.03)
    rows = tracer.multinomial(tracer.tensor([[1.0, 1.0, 1.0], [0.0, 5.0, 1.0]]), 3)
    assert tuple(rows.shape) == (2, 3)
    assert all(sorted(r) == [0, 1, 2] for r in rows.tolist())  # without replacement
    firsts = [tracer.multinomial(tracer.tensor([0.0, 9.0, 1.0]), 2).tolist()[0] for _ in range(300)]
    assert 0.8 < firsts.count(1) / 300 < 0.97
    assert tuple(tracer.multinomial(w, 1).shape) == tuple(
        torch.multinomial(torch.tensor([1.0, 0.0, 3.0]), 1).shape
    )
    for bad in [
        lambda: tracer.multinomial(w, 4),
        lambda: tracer.multinomial(tracer.tensor([-1.0, 1.0]), 1),
        lambda: tracer.multinomial(tracer.zeros(2), 1),
        lambda: tracer.multinomial(tracer.zeros(2, 2, 2) + 1, 1),
    ]:
        with pytest.raises(RuntimeError):
            bad()
    g1, g2 = tracer.Generator().manual_seed(5), tracer.Generator().manual_seed(5)
    assert (
        tracer.multinomial(w, 3, True, generator=g1).tolist()
        == tracer.multinomial(w, 3, True, generator=g2).tolist()
    )


def test_bernoulli_draws_with_the_given_probabilities() -> None:
    tracer.manual_seed(1)
    p = tracer.full((20000,), 0.3)
    draws = tracer.bernoulli(p)
    assert draws.dtype == np.float32 and set(np.unique(draws.numpy())) <= {0.0, 1.0}
    assert abs(float(draws.mean()) - 0.3) < 0.02
    assert tracer.bernoulli(tracer.tensor([0.0, 1.0])).tolist() == [0.0, 1.0]
    assert tracer.zeros(4).bernoulli_(1.0).tolist() == [1.0] * 4
    assert tracer.zeros(2).bernoulli_(tracer.tensor([0.0, 1.0])).tolist() == [0.0, 1.0]
    assert tracer.bernoulli(tracer.zeros(3), p=1.0).tolist() == [1.0] * 3
    with pytest.raises(RuntimeError, match="\\[0, 1\\]"):
        tracer.bernoulli(tracer.tensor([1.5]))


def test_generator_gives_reproducible_streams_of_its_own() -> None:
    g = tracer.Generator()
    assert g.manual_seed(3) is g and g.initial_seed() == 3 and g.device == tracer.device("cpu")
    a = tracer.randn(4, generator=g).tolist()
    b = tracer.randn(4, generator=tracer.Generator().manual_seed(3)).tolist()
    assert a == b
    assert (
        tracer.randperm(5, generator=tracer.Generator().manual_seed(1)).tolist()
        == tracer.randperm(5, generator=tracer.Generator().manual_seed(1)).tolist()
    )
    with pytest.raises(TypeError, match="Generator"):
        tracer.randn(2, generator=3)


# ---------------------------------------------------------------- NumPy interop, pickling


def test_numpy_ufuncs_on_tensors() -> None:
    t = tracer.tensor([1.0, 2.0])
    r = np.exp(t)
    assert isinstance(r, tracer.Tensor) and r.dtype == np.float32
    _same(r, np.exp(torch.tensor([1.0, 2.0])))
    _same(np.maximum(t, 1.5), np.maximum(torch.tensor([1.0, 2.0]), 1.5))
    assert isinstance(np.log1p(t), tracer.Tensor)  # not a tensor method: runs in NumPy
    np.testing.assert_allclose(np.log1p(t).numpy(), np.log1p([1.0, 2.0]), rtol=1e-6)
    assert float(np.add.reduce(t)) == 3.0
    w = tracer.tensor([1.0, 2.0], requires_grad=True)
    out = np.exp(w) * np.float32(2.0)  # mapped onto tensor methods: autograd follows
    out.sum().backward()
    np.testing.assert_allclose(w.grad.numpy(), 2 * np.exp([1.0, 2.0]), rtol=1e-6)
    with pytest.raises(RuntimeError, match="requires grad"):
        np.log1p(w)
    arr = np.ones(2, np.float32) * t  # an array on the left still gives a tensor
    assert isinstance(arr, tracer.Tensor) and arr.tolist() == [1.0, 2.0]
    with pytest.raises(TypeError, match="out="):
        np.exp(t, out=(tracer.zeros(2),))


def test_pickle_and_deepcopy_keep_data_and_requires_grad() -> None:
    p = nn.Parameter(tracer.tensor([1.0, 2.0]))
    back = pickle.loads(pickle.dumps(p))
    assert type(back) is nn.Parameter and back.requires_grad and back.tolist() == [1.0, 2.0]
    t = pickle.loads(pickle.dumps(tracer.tensor([1, 2])))
    assert t.dtype == np.int64 and not t.requires_grad
    p.grad = tracer.tensor([0.5, 0.5])
    q = copy.deepcopy(p)
    assert (
        q is not p
        and q.grad.tolist() == [0.5, 0.5]
        and not np.shares_memory(q.detach().numpy(), p.detach().numpy())
    )
    m = copy.deepcopy(nn.Linear(2, 2))
    assert all(isinstance(x, nn.Parameter) for x in m.parameters())


def test_layout_questions_answer_as_a_dense_cpu_tensor() -> None:
    t = tracer.zeros(2, 3).t()
    assert not t.is_sparse and not t.is_quantized and not t.is_complex() and t.is_contiguous()
    assert t.nelement() == 6 and t.ndimension() == 2
