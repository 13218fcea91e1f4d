"""`python -m ptde.distill teacher=<run folder or .ckpt>`: stage 2 (teacher data, distillation,
centralized vs decentralized evaluation and PRR) for a finished GIU/GIP stage-1 run.

The new run folder holds the teacher dataset, the student, distill/metrics.csv and a
results.json with the teacher's stage-1 test metrics plus the stage-2 keys.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import hydra
import yaml
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ptde.cli import prepare_command_line
from ptde.config import register_configs, register_entry_configs
from ptde.config.resolved import to_container
from ptde.data.checkpoint import resolve_checkpoint, run_dir_of
from ptde.errors import ConfigError
from ptde.experiment.resume import plan_resume
from ptde.experiment.run_folder import RunFolderInUse, claim_run_folder, holds_a_run, update_results
from ptde.experiment.runner import run
from ptde.learners import load_learner

register_configs()
register_entry_configs()


def stage2_config(entry: dict, teacher_ckpt: Path, teacher_cfg: dict) -> dict:
    """The teacher's own config with this command's seed, test episodes and distill settings."""
    cfg = json.loads(json.dumps(teacher_cfg))
    cfg["variant"]["distill"] = entry["distill"]
    cfg["seed"] = entry["seed"]
    cfg["trainer"]["test_episodes"] = entry["test_episodes"]
    cfg["trainer"]["progress_bar"] = entry["progress_bar"]
    cfg["stage"] = "2"
    cfg["teacher"] = str(teacher_ckpt.resolve())
    cfg["resume"] = "auto"  # a re-run in the same folder (a re-run sweep, a requeued job) continues it
    return cfg


@hydra.main(config_path="../conf", config_name="distill", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    entry = to_container(cfg)
    existed = holds_a_run(run_dir)
    try:
        with claim_run_folder(run_dir):  # one process at a time in a run folder
            teacher_ckpt = resolve_checkpoint(entry["teacher"])
            teacher = load_learner(teacher_ckpt)  # the one read of the teacher checkpoint
            stage_cfg = stage2_config(entry, teacher_ckpt, teacher.hparams["cfg"])
            plan = plan_resume(stage_cfg, run_dir, [])  # the same command again: continue (or keep) this run
            teacher_results = run_dir_of(teacher_ckpt) / "results.json"
            if teacher_results.exists() and not plan.resuming:
                stage1 = json.loads(teacher_results.read_text())
                keep = {k: v for k, v in stage1.items() if k.startswith("test/") or k in ("env_steps", "episodes")}
                update_results(run_dir, **keep)
            results = run(stage_cfg, run_dir, plan, teacher)
    except ConfigError as exc:
        # nothing of a run was there before this command: leave no half-written folder (unless another
        # process holds it: then it is that process's run)
        if not existed and not isinstance(exc, RunFolderInUse):
            shutil.rmtree(run_dir, ignore_errors=True)
        print(f"ptde.distill: {exc}", file=sys.stderr)
        sys.exit(2)
    print(yaml.safe_dump({k: v for k, v in results.items() if k.startswith(("eval/", "distill/"))}))
    print(f"run folder: {run_dir}")


if __name__ == "__main__":
    prepare_command_line("distill")
    main()
