"""Checkpoints of stage-1 training, and the safe stop when the machine is being taken away.

Every `trainer.checkpoint_interval` env steps (after the update, so a resumed run's next move is a
collection, as in the uninterrupted run) the full trainer state goes to `env_steps_<n>.ckpt` and
`last.ckpt`; at the end `last.ckpt` holds the finished network. A preemption signal
(`ptde.experiment.preemption`) raises a flag that is honoured here after the current update:
`last.ckpt` is written, then the run hands over. What a checkpoint holds of the interaction (RNGs,
replay buffer, timings) is the env-interaction callback's `state_dict`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from ptde.experiment.preemption import PreemptionHandler
from ptde.experiment.run_folder import atomic_write


def save_checkpoint_atomic(trainer: L.Trainer, path: Path) -> None:
    """Write to a temporary file and rename, so a kill never leaves a half-written checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        trainer.save_checkpoint(str(tmp), weights_only=False)  # full state: optimizer and loops too


class CheckpointCallback(L.Callback):
    """Placed before the env-interaction callback, so the signal handler is in place before the
    warm-up collection starts."""

    def __init__(self, run_dir: Path, checkpoint_interval: int) -> None:
        super().__init__()
        self.ckpt_dir = run_dir / "checkpoints"
        self.interval = checkpoint_interval
        self.preemption = PreemptionHandler()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.preemption.install()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        c = pl_module.counters
        if c.env_steps - c.last_checkpoint_step >= self.interval and not trainer.should_stop:
            c.last_checkpoint_step = c.env_steps
            save_checkpoint_atomic(trainer, self.ckpt_dir / f"env_steps_{c.env_steps}.ckpt")
            save_checkpoint_atomic(trainer, self.ckpt_dir / "last.ckpt")
        if self.preemption.requested is not None:  # SIGTERM / Slurm's warning: save now, then stop
            save_checkpoint_atomic(trainer, self.ckpt_dir / "last.ckpt")
            self.preemption.hand_over()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.preemption.uninstall()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the final training step has run: make last.ckpt hold the finished network
        self.preemption.uninstall()
        save_checkpoint_atomic(trainer, self.ckpt_dir / "last.ckpt")
