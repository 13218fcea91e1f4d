"""Fault injection for the kill tests, loaded by Python at start-up when this folder is on
PYTHONPATH. `PTDE_KILL_ON_CHECKPOINT_SAVE=N`: on the N-th rename of a finished `last.ckpt.tmp`
into place, cut the temp file in half (a write in progress) and SIGKILL this process before the
rename: exactly what a kill in the middle of a checkpoint save leaves on disk."""

import os
import signal

_N = int(os.environ.get("PTDE_KILL_ON_CHECKPOINT_SAVE", "0"))
if _N > 0:
    _replace = os.replace
    _seen = [0]

    def _replace_or_die(src, dst, *args, **kwargs):
        if str(src).endswith("last.ckpt.tmp"):
            _seen[0] += 1
            if _seen[0] == _N:
                size = os.path.getsize(src)
                with open(src, "r+b") as f:
                    f.truncate(size // 2)
                os.kill(os.getpid(), signal.SIGKILL)
        return _replace(src, dst, *args, **kwargs)

    os.replace = _replace_or_die
