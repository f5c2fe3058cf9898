"""How many threads graphcap's kernels use: NumPy's BLAS and every onnxruntime session.

``set_num_threads(n)`` limits the BLAS libraries NumPy loaded (through ``threadpoolctl``)
and becomes the ``intra_op_num_threads`` of each onnxruntime session opened afterwards
(``runtime.Session``, ``OrtBackend``, and so ``tracer.compile`` and ``tracer.compile_step``,
which a session's own ``intra_op_threads`` argument overrides). ``tracer`` re-exports both
functions, as PyTorch's ``torch.set_num_threads`` / ``torch.get_num_threads``.

Until it is called, :func:`default_num_threads` applies: the CPUs this process may run on,
at most 4, and 1 when the machine is already busy (a 1-minute load average at or above that
number). Multi-threaded BLAS and onnxruntime's spinning workers stall on each other's hand-
offs when the cores are taken: on a shared 2-core machine NumPy matmuls ran 2-12x slower
with OpenBLAS's default threads than with one (issue 13; ``bench/README.md``).
"""

from __future__ import annotations

import os

_MAX_DEFAULT = 4
_num_threads: int | None = None  # None until set_num_threads or the first get


def _cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_num_threads() -> int:
    """The CPUs this process may use, at most 4; 1 if the 1-minute load is already there.

    ``OMP_NUM_THREADS`` or ``OPENBLAS_NUM_THREADS``, when set to a positive int, wins.
    """
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        value = os.environ.get(var, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    cpus = _cpus()
    try:
        busy = os.getloadavg()[0] >= cpus
    except OSError:  # no load average on this platform
        busy = False
    return 1 if busy else max(1, min(cpus, _MAX_DEFAULT))


def _limit_blas(n: int) -> None:
    try:
        from threadpoolctl import ThreadpoolController
    except ImportError:  # a dependency; without it BLAS keeps its own setting
        return
    # A new controller each time: it finds the BLAS libraries loaded since (torch's, say).
    ThreadpoolController().limit(limits=n, user_api="blas")


def check_num_threads(n: int | None, what: str = "num_threads") -> None:
    """Refuse anything but None or a positive int.

    Raises:
        ValueError: naming ``what`` and the value.
    """
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 1):
        raise ValueError(f"{what}: expected a positive int (or None), got {n!r}")


def set_num_threads(n: int) -> None:
    """Use ``n`` threads for NumPy's BLAS and for onnxruntime sessions opened from now on.

    Raises:
        ValueError: ``n`` is not a positive int.
    """
    global _num_threads
    if n is None:
        raise ValueError("set_num_threads: expected a positive int, got None")
    check_num_threads(n, "set_num_threads")
    _limit_blas(n)
    _num_threads = n


def get_num_threads() -> int:
    """The thread count in force: the last :func:`set_num_threads`, else the default.

    The first call without an earlier ``set_num_threads`` fixes the default (BLAS included).
    """
    if _num_threads is None:
        set_num_threads(default_num_threads())
    assert _num_threads is not None
    return _num_threads
