"""The stage-1 Lightning Trainer: the loop is the env-interaction callback's (it owns the env-step
budget, checkpoints and logging), so the Trainer runs unbounded with Lightning's own extras off.
`quiet_lightning` keeps Lightning's notices that no user can act on off the console, for every
Trainer ptde builds (this one and stage 2's)."""

from __future__ import annotations

import logging
import re
import warnings
from typing import Any

import lightning as L
from lightning.pytorch.plugins.environments import SLURMEnvironment
from lightning.pytorch.utilities.warnings import PossibleUserWarning

# Lightning's notices that say nothing a ptde user can act on, each matched by its text and the
# Lightning module that issues it (`quiet_lightning`):
# - the stage-1 learners' `training_step(dataloader_iter)` is deliberate (a step samples the replay
#   itself), so "experimental ... Here be dragons" and "Found `dataloader_iter` argument" are not news;
# - Lightning's own pytree helper builds a `LeafSpec`, which recent torch deprecates (Lightning's to
#   change, not ours);
# - the distillation Trainer's loader is often one batch an epoch; Lightning then warns that its
#   log_every_n_steps (50) exceeds the epoch, but it counts log steps across epochs, so the curves in
#   distill/metrics.csv are logged every 50 steps all the same.
LIGHTNING_WARNINGS: tuple[tuple[str, type[Warning], str], ...] = (
    (r"You are using the `dataloader_iter` step flavor", PossibleUserWarning, "trainer.configuration_validator"),
    (r"Found `dataloader_iter` argument in the `training_step`", UserWarning, "loops.utilities"),
    (r"`isinstance\(treespec, LeafSpec\)` is deprecated", FutureWarning, "utilities._pytree"),
    (
        r"The number of training batches \(\d+\) is smaller than the logging interval",
        PossibleUserWarning,
        "loops.fit_loop",
    ),
)
# the advertisements Lightning logs at INFO on every Trainer (litlogger; litmodels when checkpointing)
LIGHTNING_TIP = "💡 Tip: For seamless cloud"


class _DropLightningTip(logging.Filter):
    """Drops Lightning's cloud-service tips from its rank-zero logger (it has no switch for them)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(LIGHTNING_TIP)


def quiet_lightning() -> None:
    """Silence Lightning's notices that no ptde user can act on, by message and issuing module only
    (every other warning still shows), and print each of its log lines once. Idempotent; called
    before every Trainer is built (stage 1's here, the distillation's in `ptde.experiment.stage2`).

    Why the second: the `lightning` package logs through a console handler of its own and also
    passes every record on to the root logger, whose handlers under `ptde.train` are Hydra's
    (console and train.log), so each "GPU available" line came twice. Where the root has handlers,
    the package's own one goes, as `lightning.pytorch` itself does when it is imported after them.
    """
    for message, category, module in LIGHTNING_WARNINGS:
        where = re.escape(f"lightning.pytorch.{module}") + r"\Z"
        warnings.filterwarnings("ignore", message=message, category=category, module=where)
    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropLightningTip) for f in logger.filters):
            logger.addFilter(_DropLightningTip())
    package = logging.getLogger("lightning")
    if logging.getLogger().hasHandlers() and package.propagate:
        for handler in [h for h in package.handlers if type(h) is logging.StreamHandler]:
            package.removeHandler(handler)


def make_trainer(cfg: dict[str, Any], callbacks: list[L.Callback]) -> L.Trainer:
    quiet_lightning()
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
