"""Stage 1: train the learner to the env-step budget, then its final greedy test (and, for a learner
that trains its own student, the PRR comparison), plus the env's reference metrics."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import lightning as L

from ptde.callbacks import CheckpointCallback, EnvInteractionCallback, StepInteractionCallback
from ptde.config.resolved import run_label
from ptde.envs.build import build_envs
from ptde.experiment.evaluation import compare_policies
from ptde.experiment.prr import prr_undefined
from ptde.experiment.run_folder import update_results
from ptde.experiment.trainer import make_trainer
from ptde.learners import build_learner, learner_class
from ptde.loggers.run_logger import RunLogger, build_run_logger
from ptde.rollout import test_policy


def open_run_logger(
    cfg: dict[str, Any], run_dir: Path, stage1: bool, resume_step: int | None, wandb_run_id: str | None
) -> RunLogger:
    """The run's loggers for the stages still to run, recorded in results.json by wandb run id.

    `stage1`: stage 1 still runs (its CSV continues from `resume_step`, or starts at None); else only
    stage 2 runs and metrics.csv is left as it is. `wandb_run_id`: the wandb run to continue.
    """
    name = f"{run_label(cfg)}_{cfg['env']['name']}_seed{cfg['seed']}"
    run_logger = build_run_logger(cfg["logger"], run_dir, name, cfg, resume_step, wandb_run_id, csv=stage1)
    if (run_id := run_logger.wandb_run_id) is not None:
        update_results(run_dir, wandb_run_id=run_id)
    return run_logger


def train_stage1(
    cfg: dict[str, Any], run_dir: Path, run_logger: RunLogger, resume_from: Path | None = None
) -> dict[str, Any]:
    """Train the stage-1 learner to the env-step budget; returns the final test metrics.

    `resume_from`: a checkpoint of this run to continue from. Lightning restores the networks,
    target networks, optimiser and counters; the env-interaction callback restores the RNGs (and
    the replay buffer when it was saved); `run_logger` (`open_run_logger`) continues the CSV and
    wandb logs from the checkpoint's env step.
    """
    seed = cfg["seed"]
    L.seed_everything(seed, workers=False, verbose=False)
    steps = getattr(learner_class(cfg), "collects_steps", False)  # on-policy: step-based, auto-reset envs
    train_env, test_env, info = build_envs(cfg, seed, auto_reset=steps)
    learner = build_learner(cfg, info.__dict__)
    buffer, datamodule = learner.build_data(cfg, info, seed)
    interaction = (StepInteractionCallback if steps else EnvInteractionCallback)(
        train_env,
        test_env,
        buffer,
        cfg["algo"],
        cfg["trainer"],
        run_logger,
        seed,
        save_buffer=cfg["trainer"]["save_buffer"],
    )
    checkpointing = CheckpointCallback(run_dir, cfg["trainer"]["checkpoint_interval"])
    trainer = make_trainer(cfg, [checkpointing, interaction])  # the signal handler is in before the warm-up
    t0 = time.time()
    trainer.fit(learner, datamodule=datamodule, ckpt_path=str(resume_from) if resume_from else None)
    wall = time.time() - t0 + interaction.seconds_before_resume  # training, over every session of a resumed run
    final = test_policy(test_env, learner, info.n_actions, cfg["trainer"]["test_episodes"])
    if (student := learner.own_student()) is not None:
        # a learner that distils during stage 1 (CTDS): its teacher and student play the PRR comparison now
        final |= compare_policies(cfg, learner, student, info.n_actions, cfg["trainer"]["test_episodes"], seed + 30_000)
    c = learner.counters
    run_logger.log(final, c.env_steps)
    refs = train_env.reference_metrics(seed)  # the env's own extras (ranking: LambdaMART and random)
    train_env.close()
    test_env.close()
    return {
        **final,
        **prr_undefined(final),
        **refs,
        "success_metric": info.success_metric,  # what ptde.report tabulates for this env
        "env_steps": c.env_steps,
        "episodes": c.episodes,
        "updates": c.updates,
        "stage1_wall_time_s": wall,  # the run's `wall_time_s` adds stage 2's (`ptde.experiment.runner`)
        "collect_time_s": interaction.collect_seconds,
    }
