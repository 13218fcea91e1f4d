"""One run in one folder: the stages the config asks for, in order, with results.json updated after
each and the run's status (running, finished, preempted, failed) kept there; resume plans decide
what is left to run. `ptde.train` and `ptde.distill` are command-line shells around `run`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.utilities.exceptions import SIGTERMException

from ptde.config.resolved import run_label, validate
from ptde.data.teacher_dataset import FILE_NAME as TEACHER_DATA
from ptde.errors import ConfigError
from ptde.experiment.preemption import Preempted, preempt_at_once
from ptde.experiment.resume import ResumePlan
from ptde.experiment.run_folder import source_version, update_results, write_config
from ptde.experiment.stage1 import open_run_logger, train_stage1
from ptde.experiment.stage2 import refuse_plain_teacher, run_stage2
from ptde.loggers.run_logger import RunLogger
from ptde.machine import cpu_description
from ptde.nn.ragged_gru import use_fused_kernel
from ptde.process_memory import keep_freed_memory

STAGE2_STOP = "stopped by SIGTERM during stage 2 (stage 2 runs again from the stage-1 checkpoint on resume)"


def run(
    cfg: dict[str, Any], run_dir: Path, plan: ResumePlan | None = None, teacher: L.LightningModule | None = None
) -> dict[str, Any]:
    """Run the stages the config asks for in `run_dir`; results.json is updated after each.

    `plan` (from `ptde.experiment.resume.plan_resume`) continues a killed run: stage 1 from its
    checkpoint, a stage already in `stages_done` is skipped, and a finished run is returned as it is.
    `teacher`: stage=2's teacher learner when the caller has already loaded it from `cfg["teacher"]`.
    """
    plan = plan or ResumePlan(cfg)
    cfg = plan.cfg
    validate(cfg)
    stage = str(cfg["stage"])
    distills = cfg["variant"]["name"] != "none"
    if stage == "2" and not cfg["teacher"]:
        raise ConfigError("stage=2 needs teacher=<run folder or checkpoint of a finished stage-1 run>")
    if stage == "2":
        refuse_plain_teacher(cfg, cfg["teacher"])
    if plan.finished and not extends_budget(plan):
        print(f"ptde.train: {run_dir} has already finished; nothing to resume", file=sys.stderr)
        return plan.previous
    if cfg["trainer"]["torch_threads"] > 0:
        torch.set_num_threads(cfg["trainer"]["torch_threads"])
    if cfg["trainer"].get("keep_freed_memory", False):
        keep_freed_memory()
    use_fused_kernel(cfg["trainer"].get("fused_gru", False))
    done = open_run_folder(cfg, run_dir, plan, stage)
    stage1 = stage in ("1", "all") and "1" not in done
    stage2 = (stage == "2" or (stage == "all" and distills)) and "2" not in done
    run_logger = None
    try:
        if stage1 or stage2:  # one logger (one wandb run) for both stages
            resume_step = plan.checkpoint_env_steps if plan.checkpoint is not None and stage1 else None
            run_logger = open_run_logger(cfg, run_dir, stage1, resume_step, plan.previous.get("wandb_run_id"))
        if stage1:
            results = update_results(run_dir, **train_stage1(cfg, run_dir, run_logger, plan.checkpoint))
            done.append("1")
            # a stage 2 of an earlier stage 1 (a finished run trained on) is run again: its time goes
            update_results(run_dir, stages_done=done, **wall_times(results, drop_stage2=True))
        if stage2:
            source, learner = (cfg["teacher"], teacher) if stage == "2" else (run_dir, None)
            with preempt_at_once(STAGE2_STOP):  # a signal anywhere in stage 2 (not only while distilling)
                results = update_results(run_dir, **run_stage2(cfg, run_dir, source, run_logger, learner))
            done.append("2")
            update_results(run_dir, stages_done=done, **wall_times(results))
    except (Preempted, SIGTERMException) as exc:
        # in stage 2 a signal raises Preempted at once (or Lightning's SIGTERMException, in the distillation trainer)
        stop = exc if isinstance(exc, Preempted) else Preempted(STAGE2_STOP)
        update_results(run_dir, status="preempted", reason=str(stop))
        _finish(run_logger, exit_code=143)
        raise stop from None
    except BaseException as exc:
        update_results(run_dir, status="failed", reason=f"{type(exc).__name__}: {exc}")
        _finish(run_logger, exit_code=1)
        raise
    results = update_results(run_dir, status="finished")
    if run_logger is not None:
        run_logger.summarize(results)
    _finish(run_logger, exit_code=0)
    return results


def open_run_folder(cfg: dict[str, Any], run_dir: Path, plan: ResumePlan, stage: str) -> list[str]:
    """Write the config snapshot and mark the run `running` in results.json (what runs, the code's
    commit, where a resume continues from); returns the stages already done."""
    run_dir.mkdir(parents=True, exist_ok=True)
    write_config(run_dir, cfg)
    done = [] if extends_budget(plan) else plan.stages_done
    if extends_budget(plan):
        (run_dir / TEACHER_DATA).unlink(missing_ok=True)  # the longer-trained teacher makes new data
    version = {**source_version(), "cpu": cpu_description()}
    if plan.resuming:  # the first start's commit and CPU stay; each resume adds its own
        version = {
            "resumed_git_commits": [*plan.previous.get("resumed_git_commits", []), version["git_commit"]],
            "resumed_cpus": [*plan.previous.get("resumed_cpus", []), version["cpu"]],
        }
    update_results(
        run_dir,
        fresh=stage != "2" and not plan.resuming,  # a stage-2 re-run keeps the stage-1 keys in the folder
        status="running",
        reason=None,
        algo=run_label(cfg),
        env=cfg["env"]["name"],
        env_family=cfg["env"]["family"],
        seed=cfg["seed"],
        stage=stage,
        stages_done=done,
        **version,
    )
    if plan.checkpoint is not None and "1" not in done:
        steps = plan.checkpoint_env_steps
        print(f"ptde.train: resuming {run_dir} from {plan.checkpoint} (env step {steps})", file=sys.stderr)
        update_results(run_dir, resumed_from_env_steps=[*plan.previous.get("resumed_from_env_steps", []), steps])
    return done


def wall_times(results: dict[str, Any], drop_stage2: bool = False) -> dict[str, Any]:
    """results.json's wall times: `stage1_wall_time_s` (stage 1's training, summed over the sessions of
    a resumed run), `stage2_wall_time_s` (teacher data, distillation and evaluation) and their sum,
    `wall_time_s`, the run folder's whole time; a stage this folder has not run adds nothing.

    `drop_stage2`: stage 1 has just trained (again), so a stage-2 time in the folder is of a stage 2
    that runs again. A folder of an earlier ptde holds stage 1's time in `wall_time_s` alone; it
    becomes `stage1_wall_time_s` here.
    """
    stage1 = results.get("stage1_wall_time_s")
    if stage1 is None and "1" in results.get("stages_done", ()):
        stage1 = results.get("wall_time_s")
    stage2 = None if drop_stage2 else results.get("stage2_wall_time_s")
    total = sum(part for part in (stage1, stage2) if part is not None)
    return {"stage1_wall_time_s": stage1, "stage2_wall_time_s": stage2, "wall_time_s": total}


def _finish(run_logger: RunLogger | None, exit_code: int) -> None:
    if run_logger is not None:
        run_logger.finish(exit_code)


def extends_budget(plan: ResumePlan) -> bool:
    """A finished run resumed with a larger trainer.max_env_steps trains on (and re-distills)."""
    before = plan.previous.get("env_steps")
    return plan.finished and before is not None and plan.cfg["trainer"]["max_env_steps"] > before
