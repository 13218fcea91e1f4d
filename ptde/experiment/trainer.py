"""The stage-1 Lightning Trainer: the loop is the env-interaction callback's (it owns the env-step
budget, checkpoints and logging), so the Trainer runs unbounded with Lightning's own extras off."""

from __future__ import annotations

from typing import Any

import lightning as L
from lightning.pytorch.plugins.environments import SLURMEnvironment


def make_trainer(cfg: dict[str, Any], callbacks: list[L.Callback]) -> L.Trainer:
    # on Slurm, requeueing is submitit's and ours (ptde.experiment.preemption), not Lightning's auto-requeue,
    # which would write its own checkpoint outside the run folder
    plugins = [SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else None
    return L.Trainer(
        plugins=plugins,
        accelerator=cfg["trainer"]["accelerator"],
        devices=1,
        max_epochs=-1,
        max_steps=-1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        callbacks=callbacks,
    )
