"""The process group and its collectives (``torch.distributed``'s names), on MPI.

One default group spans every process that ``mpirun -n N`` started: its rank and size are
MPI's ``COMM_WORLD``'s. Collectives work in place on a tensor's array (``all_reduce``,
``broadcast``) or fill given tensors (``all_gather``); with ``async_op=True`` they return a
:class:`Work` whose ``wait()`` completes them, so communication can overlap computation.
MPI runs them in the order each process issues them, so every rank must issue the same
collectives in the same order, as with any torch.distributed backend.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable
from typing import Any

import numpy as np

from tracer._tensor_base import TensorBase
from tracer.distributed import _mpi


class ReduceOp(enum.Enum):
    """How ``all_reduce`` combines the ranks' values (``torch.distributed.ReduceOp``).

    ``AVG`` sums, then divides by the world size (floating dtypes only).
    """

    SUM = "SUM"
    PRODUCT = "PRODUCT"
    MIN = "MIN"
    MAX = "MAX"
    BAND = "BAND"
    BOR = "BOR"
    BXOR = "BXOR"
    AVG = "AVG"


class Backend:
    """Backend names (``torch.distributed.Backend``); graphcap has one, ``"mpi"``."""

    MPI = "mpi"


class ProcessGroup:
    """A group of processes: the default one wraps MPI's ``COMM_WORLD``.

    Attributes:
        comm: the ``mpi4py`` communicator.
    """

    def __init__(self, comm: Any) -> None:
        self.comm = comm

    def rank(self) -> int:
        """This process' rank in the group."""
        return int(self.comm.Get_rank())

    def size(self) -> int:
        """Number of processes in the group."""
        return int(self.comm.Get_size())

    def name(self) -> str:
        """The backend's name."""
        return Backend.MPI


class Work:
    """A collective in flight (``torch.distributed.Work``): ``wait()`` completes it.

    Args:
        request: the MPI request, or None for a collective already complete.
        then: run once, after the request completes (copy back, divide for AVG).
    """

    def __init__(self, request: Any, then: Callable[[], None] | None = None) -> None:
        self._request = request
        self._then = then
        self._done = request is None
        if self._done and then is not None:
            then()

    def is_completed(self) -> bool:
        """Whether it finished (also drives MPI's progress, as ``MPI_Test`` does)."""
        if not self._done and self._request.Test():
            self._finish()
        return self._done

    def wait(self, timeout: Any = None) -> bool:
        """Block until the collective completes on this rank; returns True.

        ``timeout`` is accepted for torch's signature; MPI collectives have none.
        """
        if not self._done:
            self._request.Wait()
            self._finish()
        return True

    def _finish(self) -> None:
        self._done = True
        if self._then is not None:
            self._then()


_WORLD: ProcessGroup | None = None


class _Groups:
    """``group.WORLD``: the default process group once initialised (None before)."""

    WORLD: ProcessGroup | None = None


group = _Groups  # torch.distributed.group


def is_available() -> bool:
    """True: the package exists; whether MPI is installed is ``is_mpi_available()``."""
    return True


def is_mpi_available() -> bool:
    """Whether the MPI backend's library (mpi4py) is installed."""
    return _mpi.available()


def is_initialized() -> bool:
    """Whether ``init_process_group`` ran (and ``destroy_process_group`` has not since)."""
    return _WORLD is not None


def init_process_group(
    backend: str | None = None,
    init_method: str | None = None,
    timeout: Any = None,
    world_size: int = -1,
    rank: int = -1,
    store: Any = None,
    group_name: str = "",
    pg_options: Any = None,
    device_id: Any = None,
) -> None:
    """Start the default process group on MPI; launch the script with ``mpirun -n N``.

    Every process ``mpirun`` started joins; rank and world size are MPI's. The
    torchrun-style variables ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK`` and
    ``LOCAL_WORLD_SIZE`` are then set (where unset) for code that reads them.

    Args:
        backend: ``"mpi"`` or None (the same).
        init_method: only None or ``"env://"``: MPI's launcher wires the processes.
        timeout: accepted for torch's signature; MPI collectives have no timeout.
        world_size: if given, must equal MPI's world size.
        rank: if given, must equal MPI's rank.
        store: accepted for torch's signature; unused.
        group_name: accepted for torch's signature; unused.
        pg_options: accepted for torch's signature; unused.
        device_id: accepted for torch's signature; unused.

    Raises:
        RuntimeError: the default group already exists.
        ValueError: another backend or init method; a ``world_size``/``rank`` (or
            ``WORLD_SIZE``/``RANK`` in the environment) that differs from MPI's, which is
            what a ``torchrun`` launch gives.
        ImportError: mpi4py is missing (the message names the extra to install).
    """
    global _WORLD
    if _WORLD is not None:
        raise RuntimeError("trying to initialize the default process group twice!")
    if backend not in (None, Backend.MPI):
        raise ValueError(
            f"backend {backend!r} is not available: graphcap's distributed backend is 'mpi'; "
            "launch the script with mpirun -n N and call init_process_group('mpi')"
        )
    if init_method not in (None, "env://"):
        raise ValueError(
            f"init_method {init_method!r}: the MPI backend takes its processes from mpirun; "
            "leave init_method out"
        )
    comm = _mpi.load().COMM_WORLD
    mpi_rank, mpi_size = int(comm.Get_rank()), int(comm.Get_size())
    _check_agrees("world_size", world_size, "WORLD_SIZE", mpi_size)
    _check_agrees("rank", rank, "RANK", mpi_rank)
    _WORLD = _Groups.WORLD = ProcessGroup(comm)
    local = comm.Split_type(_mpi.load().COMM_TYPE_SHARED, key=mpi_rank)
    for name, value in [
        ("RANK", mpi_rank),
        ("WORLD_SIZE", mpi_size),
        ("LOCAL_RANK", local.Get_rank()),
        ("LOCAL_WORLD_SIZE", local.Get_size()),
    ]:
        os.environ.setdefault(name, str(value))
    local.Free()


def _check_agrees(arg: str, given: int, env: str, actual: int) -> None:
    if given not in (-1, None) and int(given) != actual:
        raise ValueError(
            f"init_process_group({arg}={given}) but MPI says {actual}: with the MPI backend "
            f"the {arg} comes from mpirun (-n N); leave {arg} out"
        )
    value = os.environ.get(env)
    if value is not None and value.strip() and int(value) != actual:
        raise ValueError(
            f"the environment says {env}={value} but MPI says {actual}: was this launched "
            "with torchrun? graphcap's backend is MPI: launch with  mpirun -n N python "
            "script.py"
        )


def destroy_process_group(group: ProcessGroup | None = None) -> None:
    """Forget the default group; a later ``init_process_group`` starts it again.

    MPI itself stays initialised until the process exits (MPI cannot restart).
    """
    global _WORLD
    _WORLD = None
    _Groups.WORLD = None


def _default(group: ProcessGroup | None = None) -> ProcessGroup:
    if group is not None:
        return group
    if _WORLD is None:
        raise ValueError(
            "Default process group has not been initialized, please make sure to call "
            "init_process_group."
        )
    return _WORLD


def get_rank(group: ProcessGroup | None = None) -> int:
    """This process' rank (0 .. world size - 1).

    Raises:
        ValueError: no process group was initialised.
    """
    return _default(group).rank()


def get_world_size(group: ProcessGroup | None = None) -> int:
    """Number of processes.

    Raises:
        ValueError: no process group was initialised.
    """
    return _default(group).size()


def get_backend(group: ProcessGroup | None = None) -> str:
    """``"mpi"``."""
    return _default(group).name()


def _array(tensor: Any, what: str) -> np.ndarray:
    if not isinstance(tensor, TensorBase):
        raise TypeError(f"{what} takes a tracer tensor, got {type(tensor).__name__}")
    return tensor._data


def _in_place(tensor: Any, what: str) -> tuple[np.ndarray, Callable[[], None]]:
    """A contiguous buffer for ``tensor``'s values, and how to write it back when done."""
    data = _array(tensor, what)
    if data.flags.c_contiguous and data.flags.writeable:
        return data, tensor._bump_version
    buf = np.ascontiguousarray(data)

    def copy_back() -> None:
        np.copyto(data, buf)
        tensor._bump_version()

    return buf, copy_back


def _mpi_op(op: ReduceOp) -> Any:
    MPI = _mpi.load()  # noqa: N806 - the module's own name
    ops = {
        ReduceOp.SUM: MPI.SUM,
        ReduceOp.AVG: MPI.SUM,
        ReduceOp.PRODUCT: MPI.PROD,
        ReduceOp.MIN: MPI.MIN,
        ReduceOp.MAX: MPI.MAX,
        ReduceOp.BAND: MPI.BAND,
        ReduceOp.BOR: MPI.BOR,
        ReduceOp.BXOR: MPI.BXOR,
    }
    if not isinstance(op, ReduceOp):
        raise TypeError(f"op must be a tracer.distributed.ReduceOp, got {op!r}")
    return ops[op]


def all_reduce(
    tensor: Any,
    op: ReduceOp = ReduceOp.SUM,
    group: ProcessGroup | None = None,
    async_op: bool = False,
) -> Work | None:
    """Combine ``tensor`` across ranks with ``op``; every rank gets the result, in place.

    Returns:
        A :class:`Work` with ``async_op=True`` (the tensor holds the result after
        ``wait()``), else None.

    Raises:
        TypeError: not a tensor, or ``AVG`` on a non-floating dtype.
    """
    pg = _default(group)
    buf, done = _in_place(tensor, "all_reduce")
    if op is ReduceOp.AVG:
        if buf.dtype.kind != "f":
            raise TypeError(f"ReduceOp.AVG needs a floating tensor, got {buf.dtype}")
        size, write = pg.size(), done

        def done() -> None:
            np.divide(buf, buf.dtype.type(size), out=buf)
            write()

    MPI = _mpi.load()  # noqa: N806
    if async_op:
        return Work(pg.comm.Iallreduce(MPI.IN_PLACE, buf, op=_mpi_op(op)), done)
    pg.comm.Allreduce(MPI.IN_PLACE, buf, op=_mpi_op(op))
    done()
    return None


def broadcast(
    tensor: Any, src: int, group: ProcessGroup | None = None, async_op: bool = False
) -> Work | None:
    """Copy ``tensor`` of rank ``src`` into ``tensor`` on every rank (same shape and dtype).

    Raises:
        ValueError: ``src`` is not a rank of the group.
    """
    pg = _default(group)
    if not 0 <= src < pg.size():
        raise ValueError(f"broadcast src={src} is not a rank (world size {pg.size()})")
    buf, done = _in_place(tensor, "broadcast")
    if async_op:
        return Work(pg.comm.Ibcast(buf, root=src), done)
    pg.comm.Bcast(buf, root=src)
    done()
    return None


def all_gather(
    tensor_list: list[Any], tensor: Any, group: ProcessGroup | None = None, async_op: bool = False
) -> Work | None:
    """Fill ``tensor_list[r]`` with rank ``r``'s ``tensor`` (same shape and dtype on all).

    Raises:
        ValueError: ``tensor_list`` does not hold one tensor per rank of ``tensor``'s shape.
    """
    pg = _default(group)
    mine = np.ascontiguousarray(_array(tensor, "all_gather"))
    if len(tensor_list) != pg.size() or any(
        _array(t, "all_gather").shape != mine.shape for t in tensor_list
    ):
        raise ValueError(
            f"all_gather needs a list of {pg.size()} tensors of shape {list(mine.shape)}"
        )
    out = np.empty((pg.size(), *mine.shape), mine.dtype)

    def scatter() -> None:
        for t, part in zip(tensor_list, out, strict=True):
            np.copyto(t._data, part)
            t._bump_version()

    if async_op:
        return Work(pg.comm.Iallgather(mine, out), scatter)
    pg.comm.Allgather(mine, out)
    scatter()
    return None


def all_gather_object(object_list: list[Any], obj: Any, group: ProcessGroup | None = None) -> None:
    """Fill ``object_list[r]`` with rank ``r``'s picklable ``obj`` (peers are trusted)."""
    pg = _default(group)
    gathered = pg.comm.allgather(obj)
    object_list[: len(gathered)] = gathered


def broadcast_object_list(
    object_list: list[Any], src: int = 0, group: ProcessGroup | None = None
) -> None:
    """Replace ``object_list``'s items on every rank with rank ``src``'s (pickled)."""
    pg = _default(group)
    object_list[:] = pg.comm.bcast(list(object_list), root=src)


def barrier(group: ProcessGroup | None = None, async_op: bool = False) -> Work | None:
    """Wait until every rank reached this call."""
    pg = _default(group)
    if async_op:
        return Work(pg.comm.Ibarrier())
    pg.comm.Barrier()
    return None
