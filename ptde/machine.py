"""What this machine's CPU is: the one place that reads /proc/cpuinfo."""

from __future__ import annotations

import platform
from functools import cache
from pathlib import Path


def _cpuinfo_line(key: str) -> str | None:
    """The first /proc/cpuinfo line for `key` (`flags`, `model name`), or None where there is none."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line
    except OSError:
        pass
    return None


@cache
def cpu_flags() -> str:
    """This CPU's feature flags, the line /proc/cpuinfo gives them on (what code compiled for this
    CPU, `-march=native` or XLA's host target, may use), else the processor's name."""
    return _cpuinfo_line("flags") or platform.processor()


@cache
def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 natively (AVX512-BF16 or AMX); without it bf16 is
    emulated and slower than float32."""
    flags = cpu_flags().split()
    return "avx512_bf16" in flags or "amx_bf16" in flags


@cache
def cpu_description() -> str:
    """The CPU's name, its widest vector unit and whether it has native bf16, e.g.
    `AMD EPYC; avx2; no native bf16`: float32 kernels round differently from one instruction set to
    the next, so a run resumed on another kind of CPU continues from the same state but not on the
    same float rounding, and results.json says which kinds a run trained on."""
    line = _cpuinfo_line("model name")
    name = line.split(":", 1)[1].strip() if line and ":" in line else platform.processor() or "unknown CPU"
    flags = set(cpu_flags().split())
    widest = next((isa for isa in ("avx512f", "avx2", "avx", "sse4_2") if isa in flags), "other")
    isa = {"avx512f": "avx512"}.get(widest, widest) + ("+amx" if "amx_tile" in flags else "")
    return f"{name}; {isa}; {'native bf16' if cpu_has_bf16() else 'no native bf16'}"
