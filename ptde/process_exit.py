"""Ending a finished command's process without the interpreter's teardown."""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
from typing import NoReturn


def exit_now(code: int = 0) -> NoReturn:
    """Flush the console and the log files, then end the process at once (`os._exit`).

    Why: after a run has written everything, the interpreter's own teardown still took 2-4 s of a
    200k-step SMAX run (py-spy of `ptde.train`, issue 29): jax's exit hook (its backends torn down,
    four garbage-collector passes over a heap full of torch and Lightning objects), then module and
    C++ static destructors. Nothing a run leaves needs them: its files are closed by then (`with`
    blocks and atomic writes), wandb's run is finished by the run logger. A process with child
    processes still alive exits the usual way, so multiprocessing's own exit hook stops them.
    """
    if multiprocessing.active_children():
        sys.exit(code)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken pipe: nothing left to flush into
            pass
    logging.shutdown()
    os._exit(code)
