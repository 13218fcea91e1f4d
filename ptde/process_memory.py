"""How a training process keeps the memory it frees (glibc's malloc), so each update reuses it.

Why: an update allocates tens of MB of tensors (the sampled batch, the agents' inputs, activations)
and frees them again. glibc serves blocks over its mmap threshold (adaptive, at most 32 MB) with
fresh mappings and returns them to the kernel on free, and trims the heap's free top, so the next
update's tensors land on new pages: a page fault and the kernel zeroing 4 KiB for every page
touched. Measured on this machine, stage 1 of QMIX on SMAX 3s_vs_5z for 60k env steps, one thread:
2.3M minor page faults and 6 s of the run's 49 CPU-seconds in the kernel; with malloc serving
everything from its heap and keeping what is freed, 0.47M faults, 2.7 s in the kernel and 43
CPU-seconds (-12%; wall time 72 s -> 61 s). The price: the process keeps the memory of its peak
until it exits instead of handing freed blocks back, which a training run reaches again at its next
update anyway.

`trainer.keep_freed_memory=false` leaves malloc as it is; so does any `MALLOC_*_` variable in the
environment (a user's own glibc tuning wins).
"""

from __future__ import annotations

import ctypes
import logging
import os
import platform

log = logging.getLogger(__name__)

# mallopt's parameters (glibc's malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_MAX = -4


def keep_freed_memory() -> bool:
    """Serve all allocations from malloc's heap and never trim it; True when set. Only on Linux with
    glibc and without the user's own `MALLOC_*_` settings; elsewhere nothing changes."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(name.startswith("MALLOC_") and name.endswith("_") for name in os.environ):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    settings = {
        M_MMAP_MAX: 0,  # no block gets its own mapping (a block beyond the heap still falls back to one)
        M_TRIM_THRESHOLD: 2**31 - 1,  # keep the heap's free top (mallopt takes an int: 2 GiB)
        M_TOP_PAD: 64 << 20,  # grow the heap 64 MiB at a time (untouched pages cost nothing)
    }
    ok = all(mallopt(param, value) == 1 for param, value in settings.items())
    if not ok:
        log.warning(
            "trainer.keep_freed_memory: glibc refused some mallopt settings; freed memory may go back to the kernel"
        )
    return ok
