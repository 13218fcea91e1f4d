"""What this machine's CPU is: the one place that reads /proc/cpuinfo."""

from __future__ import annotations

import platform
from functools import cache
from pathlib import Path


@cache
def cpu_flags() -> str:
    """This CPU's feature flags, the line /proc/cpuinfo gives them on (what code compiled for this
    CPU, `-march=native` or XLA's host target, may use), else the processor's name."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return line
    except OSError:
        pass
    return platform.processor()
