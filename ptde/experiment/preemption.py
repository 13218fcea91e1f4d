"""Stopping at a safe point when the machine is being taken away.

A cluster warns a job before it kills it: Slurm (with submitit) sends SIGUSR2 (or the signal named
by $SUBMITIT_PREEMPT_SIGNAL) about 90 s ahead; a user or a scheduler sends SIGTERM. During stage-1
training these signals only raise a flag; the checkpoint callback (`ptde.callbacks.checkpointing`) sees it after the current
update, writes `last.ckpt`, and then hands over: to the handler that was installed before ours
(submitit's, which requeues the job; the requeued job resumes from that checkpoint with resume=auto)
or, when there is none, by raising `Preempted`, which marks the run `status: preempted`.
Stage 2 has nothing to save (a resumed run repeats it from the stage-1 checkpoint), so there a signal
stops the run at once (`preempt_at_once`), the same way. Elsewhere the signals keep their usual meaning.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any


class Preempted(BaseException):
    """The run stopped on a signal after saving its checkpoint (not an error of the run)."""


def preemption_signals() -> list[signal.Signals]:
    sigs = [signal.SIGTERM]
    name = os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2")
    extra = getattr(signal, f"SIG{name}", None) or getattr(signal, name, None)
    if extra is not None and extra not in sigs:
        sigs.append(extra)
    return sigs


class PreemptionHandler:
    def __init__(self) -> None:
        self.requested: int | None = None
        self._previous: dict[int, Any] = {}

    def install(self, on_signal: Callable[[int, FrameType | None], Any] | None = None) -> None:
        """`on_signal`: what a signal does (default: raise the flag the checkpoint callback reads)."""
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in preemption_signals():
            self._previous[sig] = signal.getsignal(sig)
            signal.signal(sig, on_signal or self._on_signal)

    def uninstall(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.requested = signum

    def hand_over(self, message: str | None = None) -> None:
        """Called once the checkpoint is written: let the previous handler act, or stop the run."""
        signum = self.requested
        previous = self._previous.get(signum)
        self.uninstall()
        message = message or f"stopped by {signal.Signals(signum).name} after saving checkpoints/last.ckpt"
        if callable(previous):
            try:
                previous(signum, None)  # e.g. submitit's: pickle the job, requeue it, exit
            except SystemExit:
                raise Preempted(message + " (the job was requeued)") from None
        raise Preempted(message)


@contextlib.contextmanager
def preempt_at_once(message: str) -> Iterator[None]:
    """While the block runs, a preemption signal stops the run where it is: the handler that was there
    before (submitit's requeue) has its turn, then `Preempted(message)`. For a stage with nothing to save."""
    handler = PreemptionHandler()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        handler.requested = signum
        handler.hand_over(message)

    handler.install(on_signal)
    try:
        yield
    finally:
        handler.uninstall()
