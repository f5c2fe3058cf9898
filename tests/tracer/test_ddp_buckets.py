"""DDP's bucket assignment (no MPI needed): reverse order, size caps, one dtype per bucket."""

from __future__ import annotations

import numpy as np

from tracer._tensor_base import wrap
from tracer.nn.parallel._reducer import assign_buckets


def _params(*specs: tuple[int, str]) -> list[object]:
    return [wrap(np.zeros(n, dtype)) for n, dtype in specs]


def test_buckets_fill_from_the_last_parameter_up_to_the_cap() -> None:
    params = _params((10, "f4"), (10, "f4"), (30, "f4"), (5, "f4"))  # 40, 40, 120, 20 bytes
    # First bucket capped at 50 bytes: the last parameter (20) then the third (120) close it;
    # the others fill buckets of 100 bytes.
    assert assign_buckets(params, cap_bytes=100, first_bytes=50) == [[3, 2], [1, 0]]
    assert assign_buckets(params, cap_bytes=10**6, first_bytes=10**6) == [[3, 2, 1, 0]]
    assert assign_buckets(params, cap_bytes=1, first_bytes=1) == [[3], [2], [1], [0]]


def test_each_bucket_holds_one_dtype() -> None:
    params = _params((4, "f4"), (4, "f8"), (4, "f4"))
    assert assign_buckets(params, cap_bytes=10**6, first_bytes=10**6) == [[2, 0], [1]]
