"""Atomic file writes that survive a process killed at any point.

Every file graphcap writes (models, external data, checkpoints, bundles) is written to a
temporary name beside its target (:func:`temp_beside`: ``.<name>.<12 hex>.tmp``), fsynced,
and moved into place with one ``os.replace`` (:func:`commit`), so a reader sees the old file
or the new one. A process killed before its rename leaves its temporary file behind; the
next save to the same target removes it (:func:`sweep`), under an exclusive lock on the
folder (:func:`folder_lock`) so that it never removes the file of a save still running.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import re
import secrets
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

try:
    import fcntl
except ImportError:  # not POSIX: saves into one folder are not serialised
    fcntl = None  # type: ignore[assignment]

_TOKEN = 12  # hex digits of a temporary name's random part


def temp_beside(path: Path) -> Path:
    """Create an empty, unique temporary file in ``path``'s folder (mode from the umask)."""
    while True:
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(_TOKEN // 2)}.tmp")
        try:
            os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
        except FileExistsError:
            continue
        return tmp


def sync(path: Path) -> None:
    """Flush ``path``'s data to the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def commit(tmp: Path, final: Path) -> None:
    """Move the finished ``tmp`` onto ``final`` (one rename) and make the rename durable."""
    os.replace(tmp, final)
    sync_folder(final.parent)


def sync_folder(folder: Path) -> None:
    """Make renames in ``folder`` durable (where a folder can be opened; not on Windows)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (``flock``) while saving into it.

    Saves into one folder then run one at a time, so :func:`sweep` removes only what a
    killed save left. Without ``fcntl`` (Windows) or where the folder cannot be locked, the
    lock is skipped.
    """
    fd = None
    if fcntl is not None:
        with contextlib.suppress(OSError):
            fd = os.open(folder, os.O_RDONLY)
            fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # closing releases the lock


def sweep(path: Path, extra: str = "") -> list[Path]:
    """Remove temporary files a killed save of ``path`` left: ``.<name><extra>.<hex>.tmp``.

    Call it under :func:`folder_lock`. Folders are removed with their contents (a training
    bundle is built in a temporary folder).

    Returns:
        What was removed.
    """
    pattern = re.compile(
        rf"\.{re.escape(path.name)}(?:{extra})?\.[0-9a-f]{{{_TOKEN}}}\.(?:tmp|old)"
    )
    removed = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(path.parent):
            if pattern.fullmatch(entry.name):
                _remove(Path(entry.path), entry.is_dir(follow_symlinks=False))
                removed.append(Path(entry.path))
    return removed


def _remove(path: Path, is_dir: bool) -> None:
    with contextlib.suppress(OSError):
        if is_dir:
            shutil.rmtree(path)
        else:
            path.unlink()


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], None]) -> None:
    """Create or replace ``path`` with what ``write(tmp)`` puts in a temporary file beside it.

    The temporary file is fsynced and renamed onto ``path`` under the folder's lock, after
    a sweep of what killed saves left; it is removed if ``write`` raises.
    """
    target = Path(path)
    with folder_lock(target.parent):
        sweep(target)
        tmp = temp_beside(target)
        try:
            write(tmp)
            sync(tmp)
            commit(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise


def commit_folder(tmp: Path, target: Path) -> None:
    """Move the finished folder ``tmp`` onto ``target``; an old version goes only after.

    Where the system can swap two paths in one step (Linux ``renameat2`` with
    ``RENAME_EXCHANGE``), ``target`` is the old folder or the new one at every instant;
    elsewhere the old folder is renamed aside first, and a process killed between the two
    renames leaves nothing at ``target`` (the old one is then ``.<name>.<hex>.old``).
    """
    if not target.exists():
        os.rename(tmp, target)
        sync_folder(target.parent)
        return
    if not any(target.iterdir()):
        target.rmdir()
        os.rename(tmp, target)
        sync_folder(target.parent)
        return
    if _exchange(tmp, target):  # tmp now holds the old folder
        sync_folder(target.parent)
        shutil.rmtree(tmp, ignore_errors=True)
        return
    old = target.with_name(f".{target.name}.{secrets.token_hex(6)}.old")
    os.rename(target, old)
    try:
        os.rename(tmp, target)
    except OSError:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def _exchange(a: Path, b: Path) -> bool:
    """Swap the paths ``a`` and ``b`` atomically; False where the system cannot."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):  # not Linux, or a C library without renameat2
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p]
    renameat2.argtypes += [ctypes.c_uint]
    at_cwd, exchange = -100, 2  # AT_FDCWD, RENAME_EXCHANGE
    return renameat2(at_cwd, os.fsencode(a), at_cwd, os.fsencode(b), exchange) == 0
