"""What the ``graphcap`` subcommands share: error kinds, warnings, tables, array comparison.

A command raises :class:`UsageError` for what the user typed (exit status 2) and
:class:`CommandError` for what went wrong while doing it (exit status 1); ``export.cli.main``
prints either as one ``graphcap <command>: error: ...`` line, with no traceback unless
``--debug`` was given.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

USAGE = 2
FAILED = 1


class UsageError(Exception):
    """Bad arguments or input files: the command line has to change (exit status 2)."""


class CommandError(Exception):
    """The command ran but did not succeed (exit status 1).

    A model failed to import, trace, save or run, or verification found a mismatch.
    """


def warn(message: str) -> None:
    """Print ``graphcap: warning: <message>`` on stderr."""
    print(f"graphcap: warning: {message}", file=sys.stderr)


DTYPES: dict[str, np.dtype] = {
    name: np.dtype(dtype)
    for names, dtype in [
        (("float32", "f32", "float"), np.float32),
        (("float64", "f64", "double"), np.float64),
        (("float16", "f16", "half"), np.float16),
        (("int64", "i64", "long"), np.int64),
        (("int32", "i32", "int"), np.int32),
        (("int16", "i16"), np.int16),
        (("int8", "i8"), np.int8),
        (("uint8", "u8"), np.uint8),
        (("bool",), np.bool_),
    ]
    for name in names
}


def parse_dtype(text: str) -> np.dtype:
    """A dtype name (``float32``, ``f32``, ``int64``, ``bool``, ...) as a NumPy dtype.

    Raises:
        ValueError: an unknown name; the message lists the known ones.
    """
    try:
        return DTYPES[text.lower()]
    except KeyError:
        known = ", ".join(n for n in DTYPES if len(n) > 3 or n == "int")
        raise ValueError(f"unknown dtype {text!r}; expected one of {known}") from None


def text_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """Left-aligned columns, a dashed rule under the header, no trailing spaces."""
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(line.rstrip() for line in lines)


def human_bytes(n: int) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{int(size)} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def one_line(err: BaseException) -> str:
    """``Type: message`` on one line (at most three lines of the message, joined)."""
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {' | '.join(t.strip() for t in text[:3])}"


@dataclass(frozen=True)
class Diff:
    """How far one array is from a reference.

    Attributes:
        max_abs: ``max |got - want|`` (inf for a shape or dtype mismatch).
        max_rel: ``max |got - want| / max |want|``.
        ok: every element within ``atol + rtol * |want|`` (NaN only where ``want`` is NaN).
        note: why it failed when the comparison could not be made (shape, dtype, error).
    """

    max_abs: float
    max_rel: float
    ok: bool
    note: str = ""


def compare(got: np.ndarray, want: np.ndarray, atol: float, rtol: float) -> Diff:
    """Compare ``got`` with the reference ``want`` (see :class:`Diff`)."""
    got, want = np.asarray(got), np.asarray(want)
    inf = float("inf")
    if got.shape != want.shape:
        return Diff(inf, inf, False, f"shape {list(got.shape)}, expected {list(want.shape)}")
    if got.dtype != want.dtype:
        return Diff(inf, inf, False, f"dtype {got.dtype}, expected {want.dtype}")
    if got.size == 0:
        return Diff(0.0, 0.0, True)
    a, b = got.astype(np.float64), want.astype(np.float64)
    with np.errstate(invalid="ignore"):
        diff = np.where(a == b, 0.0, np.abs(a - b))  # equal infinities are no error
    both_nan = np.isnan(a) & np.isnan(b)
    diff = np.where(both_nan, 0.0, diff)
    diff = np.where(np.isnan(diff), inf, diff)
    finite = np.abs(b[np.isfinite(b)])
    scale = float(finite.max()) if finite.size else 0.0
    max_abs = float(diff.max())
    max_rel = max_abs / scale if scale > 0 else (0.0 if max_abs == 0 else inf)
    ok = bool(np.all(diff <= atol + rtol * np.abs(np.where(np.isfinite(b), b, 0.0))))
    return Diff(max_abs, max_rel, ok)
