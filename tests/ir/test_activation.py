"""The vectorised erf that Erf and Gelu share, against Python's math.erf."""

import math

import numpy as np

from ir.ops.activation import erf


def test_erf_matches_math_erf() -> None:
    xs = np.concatenate(
        [np.linspace(-7, 7, 20001), np.logspace(-300, 1, 2000), -np.logspace(-300, 1, 2000)]
    )
    np.testing.assert_allclose(erf(xs), [math.erf(v) for v in xs], rtol=2e-15, atol=0)


def test_erf_limits_and_nan() -> None:
    assert erf(np.array([np.inf, -np.inf])).tolist() == [1.0, -1.0]
    assert np.isnan(erf(np.array(np.nan)))
