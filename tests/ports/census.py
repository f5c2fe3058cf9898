"""Count the ports that run on graphcap with only their imports changed, and compare with torch.

Run ``python -m tests.ports.census`` from the repository root. For each port it prints
whether the graphcap run finished (or the first error it met) and, when torch is installed,
the largest relative difference from the torch run over the compared values (first loss,
parameters after one step, and the values a port records), then ``K/N``.
"""

from __future__ import annotations

import contextlib
import io
import sys
import traceback

from tests.ports import harness


def _quiet(fn, *args):  # the ports print a lot
    with contextlib.redirect_stdout(io.StringIO()):
        return fn(*args)


def main() -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        have_torch = False
    else:
        have_torch = True
    ok = 0
    for port in harness.CORPUS:
        try:
            if have_torch:
                errors, _ = _quiet(harness.compare, port.name)
                worst = max(errors.values(), default=0.0)
                note = f"max relative difference from torch {worst:.1e} over {len(errors)} values"
            else:
                _quiet(harness.run, port.name, "graphcap")
                note = "ran (torch not installed: not compared)"
        except Exception as err:
            where = traceback.extract_tb(err.__traceback__)[-1]
            note = (
                f"FAILS: {type(err).__name__}: {str(err)[:160]} ({where.filename}:{where.lineno})"
            )
        else:
            ok += 1
        print(f"{port.name:45s} {note}")
    print(f"{ok}/{len(harness.CORPUS)} scripts run with only imports changed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
