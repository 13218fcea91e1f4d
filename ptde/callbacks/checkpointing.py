"""Checkpoints of stage-1 training, and the safe stop when the machine is being taken away.

Every `trainer.checkpoint_interval` env steps (after the update, so a resumed run's next move is a
collection, as in the uninterrupted run) the full trainer state goes to `env_steps_<n>.ckpt` and
`last.ckpt`; at the end `last.ckpt` holds the finished network. A preemption signal
(`ptde.experiment.preemption`) raises a flag that is honoured here after the current update:
`last.ckpt` is written, then the run hands over. What a checkpoint holds of the interaction (RNGs,
timings) is the env-interaction callback's `state_dict`; the replay buffer is kept beside the
checkpoints in the incremental episode store (`ptde.data.replay_store`, `trainer.save_buffer`),
written before the `.ckpt` files that name its generation, so either is complete when the other is.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import lightning as L

from ptde.callbacks.env_interaction import EnvInteractionCallback
from ptde.data.buffer import EpisodeReplayBuffer
from ptde.data.replay_store import ReplayStore, store_folder
from ptde.experiment.preemption import PreemptionHandler
from ptde.files import atomic_write


def save_checkpoint_atomic(trainer: L.Trainer, path: Path) -> None:
    """Write to a temporary file and rename, so a kill never leaves a half-written checkpoint."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        trainer.save_checkpoint(str(tmp), weights_only=False)  # full state: optimizer and loops too


class CheckpointCallback(L.Callback):
    """Placed before the env-interaction callback, so the signal handler is in place and the replay
    restored before the warm-up collection starts."""

    def __init__(self, run_dir: Path, checkpoint_interval: int) -> None:
        super().__init__()
        self.ckpt_dir = run_dir / "checkpoints"
        self.interval = checkpoint_interval
        self.preemption = PreemptionHandler()
        self.store = ReplayStore(store_folder(run_dir))
        self.loaded_replay: dict[str, Any] | None = None  # `ptde_replay` of the checkpoint resumed from
        self.saved_replay: dict[str, Any] | None = None  # `ptde_replay` of the checkpoint being written

    @staticmethod
    def kept_replay(trainer: L.Trainer) -> EpisodeReplayBuffer | None:
        """The replay the checkpoints keep: the episode replay of the env-interaction callback, when
        `trainer.save_buffer` is on (an on-policy run's rollout store is refilled by every update)."""
        for cb in trainer.callbacks:
            if isinstance(cb, EnvInteractionCallback) and cb.save_buffer and isinstance(cb.buffer, EpisodeReplayBuffer):
                return cb.buffer
        return None

    def save(self, trainer: L.Trainer, *names: str) -> None:
        """The replay's new episodes and its index first, then the `.ckpt` files naming that index,
        then the store's files that no kept generation needs any more (see `ptde.data.replay_store`)."""
        replay = self.kept_replay(trainer)
        env_steps = trainer.lightning_module.counters.env_steps
        self.saved_replay = None if replay is None else self.store.write(replay, env_steps)
        for name in names:
            save_checkpoint_atomic(trainer, self.ckpt_dir / name)
        if replay is not None:
            self.store.prune()

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        if self.saved_replay is not None:
            checkpoint["ptde_replay"] = dict(self.saved_replay)

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        self.loaded_replay = checkpoint.get("ptde_replay")

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.preemption.install()
        replay = self.kept_replay(trainer)
        resumed = pl_module.counters.env_steps > 0
        if replay is None:
            if self.loaded_replay is not None:
                print("ptde.train: trainer.save_buffer=false: the replay buffer is refilled", file=sys.stderr)
            return
        if self.loaded_replay is not None:
            self.store.restore(replay, self.loaded_replay)
        elif resumed and len(replay) == 0:
            print(
                "ptde.train: the checkpoint keeps no replay (written with trainer.save_buffer=false): "
                "the replay buffer is refilled",
                file=sys.stderr,
            )
        # a fresh start keeps nothing of an earlier run in this folder; a resume drops what the killed
        # run wrote after its checkpoint (the resumed run writes those generations again)
        self.store.prune()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        c = pl_module.counters
        if c.env_steps - c.last_checkpoint_step >= self.interval and not trainer.should_stop:
            c.last_checkpoint_step = c.env_steps
            self.save(trainer, f"env_steps_{c.env_steps}.ckpt", "last.ckpt")
        if self.preemption.requested is not None:  # SIGTERM / Slurm's warning: save now, then stop
            self.save(trainer, "last.ckpt")
            self.preemption.hand_over()

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self.preemption.uninstall()

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # the final training step has run: make last.ckpt hold the finished network
        self.preemption.uninstall()
        self.save(trainer, "last.ckpt")
