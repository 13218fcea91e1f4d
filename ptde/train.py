"""`python -m ptde.train`: stage 1, and for GIU/GIP also stage 2 and the PRR evaluation.

    python -m ptde.train algo=qmix env=smac/3m
    python -m ptde.train algo=qmix_gip env=smac/5m_vs_6m -m seed=0,1,2
    python -m ptde.train algo=qmix_gip env=smac/5m_vs_6m stage=2 teacher=outputs/<stage-1 run>

Every run gets a folder under outputs/ holding config.yaml, metrics.csv, checkpoints/ and
results.json (`status` tells a finished run from a running or failed one).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ptde.cli import prepare_command_line
from ptde.config import register_configs
from ptde.config.resolved import to_container
from ptde.errors import ConfigError
from ptde.experiment.preemption import Preempted
from ptde.experiment.resume import plan_resume, resume_argv
from ptde.experiment.run_folder import RunFolderInUse, claim_run_folder, holds_a_run
from ptde.process_exit import exit_now

register_configs()


def summary(results: dict[str, Any]) -> str:
    keys = [k for k in results if k.startswith(("test/", "eval/")) and not k.endswith(("std", "length"))]
    return "\n".join(f"  {k} = {results[k]:.4g}" for k in sorted(keys) if isinstance(results[k], float))


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    container = to_container(cfg)
    existed = holds_a_run(run_dir)
    # imported here, not at the top: the runner pulls in Lightning (seconds), and a typo on the
    # command line is reported by prepare_command_line before any of it is needed
    from ptde.experiment.runner import run

    try:
        with claim_run_folder(run_dir):  # one process at a time in a run folder
            plan = plan_resume(container, run_dir, [o for o in hydra_cfg.overrides.task if not o.startswith("hydra")])
            results = run(container, run_dir, plan)  # validates the config before anything is written
    except ConfigError as exc:
        if not existed and not (run_dir / "checkpoints").exists() and not isinstance(exc, RunFolderInUse):
            # nothing of this run exists but Hydra's own folder: leave no half-written run behind
            shutil.rmtree(run_dir, ignore_errors=True)
        print(f"ptde.train: {exc}", file=sys.stderr)
        sys.exit(2)
    except Preempted as exc:
        print(f"ptde.train: {exc}; run it again (resume=auto) to continue", file=sys.stderr)
        sys.exit(143)
    print(f"run folder: {run_dir}  ({results['algo']} on {results['env']}, {results.get('env_steps', 0)} env steps)")
    print(summary(results))


if __name__ == "__main__":
    prepare_command_line("config")
    sys.argv = resume_argv(sys.argv)  # resume=true|<folder>: Hydra's run folder becomes that run's
    main()
    exit_now(0)  # every run of the command has finished and written its files
