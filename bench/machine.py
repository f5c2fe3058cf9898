"""What the benchmark scripts record about the machine they ran on."""

from __future__ import annotations

import os
import platform
import sys
from datetime import UTC, datetime
from typing import Any


def cpu_name() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux), else what ``platform`` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> str:
    """``"<cpu>, <n> cpus, <os>"``: the machine line every benchmark's JSON carries."""
    return f"{cpu_name()}, {os.cpu_count()} cpus, {platform.system()}"


def environment() -> dict[str, Any]:
    """Date, machine line and versions every benchmark's JSON carries.

    Versions of Python and NumPy, and of onnxruntime and torch when the script imported
    them (None otherwise: torch is an optional peer).
    """

    def version(module: str) -> str | None:
        found = sys.modules.get(module)
        return None if found is None else str(found.__version__)

    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "machine": describe(),
        "python": platform.python_version(),
        "numpy": version("numpy"),
        "onnxruntime": version("onnxruntime"),
        "torch": version("torch"),
    }
