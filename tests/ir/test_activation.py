"""The vectorised erf that Erf and Gelu share, against Python's math.erf."""

import math

import numpy as np

from ir.ops.special import erf


def test_erf_matches_math_erf() -> None:
    xs = np.concatenate(
        [np.linspace(-7, 7, 20001), np.logspace(-300, 1, 2000), -np.logspace(-300, 1, 2000)]
    )
    np.testing.assert_allclose(erf(xs), [math.erf(v) for v in xs], rtol=2e-15, atol=0)


def test_erf_limits_and_nan() -> None:
    assert erf(np.array([np.inf, -np.inf])).tolist() == [1.0, -1.0]
    assert np.isnan(erf(np.array(np.nan)))


def _ulps(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """|got - want| in units of the float32 spacing at ``want`` (a float64 reference)."""
    return np.abs(got.astype(np.float64) - want) / np.spacing(np.abs(want).astype(np.float32))


_X32 = np.concatenate(
    [np.linspace(-14, 14, 40001), np.geomspace(1e-30, 14, 4001), -np.geomspace(1e-30, 14, 4001)]
).astype(np.float32)


def test_float32_erf_within_3_ulp_of_math_erf() -> None:
    from ir.ops.special import erf_float

    want = np.array([math.erf(v) for v in _X32.astype(np.float64)])
    got = erf_float(_X32)
    assert got.dtype == np.float32
    assert _ulps(got, want).max() <= 3
    half = erf_float(_X32.astype(np.float16))
    assert half.dtype == np.float16
    np.testing.assert_allclose(half, want, rtol=1e-3, atol=1e-7)
    assert erf_float(np.array([np.inf, -np.inf, np.nan], np.float32))[:2].tolist() == [1, -1]
    assert np.isnan(erf_float(np.array([np.nan], np.float32)))[0]


def test_float32_gelu_within_6_ulp() -> None:
    from ir.ops.special import gelu_float

    x64 = _X32.astype(np.float64)
    exact = np.array([0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x64])
    # (1 + tanh u) / 2 = 1 / (1 + exp(-2u)): the float64 reference must not cancel either.
    u = math.sqrt(2 / math.pi) * (x64 + 0.044715 * x64**3)
    with np.errstate(over="ignore"):
        tanh = x64 / (1 + np.exp(-2 * u))
    for approximate, want in (("none", exact), ("tanh", tanh)):
        got = gelu_float(_X32, approximate)
        assert got.dtype == np.float32
        normal = np.abs(want) >= 1e-30  # below, float32 results are subnormal
        # exp(-2u) turns u's float32 rounding into a relative error of a few |u| ulp.
        bound = 6 + 6 * np.abs(u) if approximate == "tanh" else 6.5
        assert (_ulps(got, want) <= bound)[normal].all(), approximate
        # Chunked evaluation (arrays above 64k elements) gives the same values.
        big = np.tile(_X32, 2)
        np.testing.assert_array_equal(gelu_float(big, approximate), np.tile(got, 2))
