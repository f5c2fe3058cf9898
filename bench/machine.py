"""What the benchmark scripts record about the machine they ran on."""

from __future__ import annotations

import os
import platform


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
