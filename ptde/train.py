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
import torch
import yaml
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ptde.cli import precheck
from ptde.config import register_configs
from ptde.pipeline import run_stage2, train_stage1
from ptde.results import update_results
from ptde.runtime import ConfigError, run_label, to_container, validate

register_configs()


def run(cfg: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Run the stages the config asks for in `run_dir`; results.json is updated after each."""
    validate(cfg)
    stage = str(cfg["stage"])
    distills = cfg["variant"]["name"] != "none"
    if stage == "2" and not cfg["teacher"]:
        raise ConfigError("stage=2 needs teacher=<run folder or checkpoint of a finished stage-1 run>")
    if stage == "2" and not distills:
        raise ConfigError(
            f"stage=2 distills a GIU/GIP teacher, but {cfg['teacher']} has variant=none: it has no global-"
            "information module to distill; train a teacher with variant=gip (algo=qmix_gip) or variant=giu"
        )
    if cfg["trainer"]["torch_threads"] > 0:
        torch.set_num_threads(cfg["trainer"]["torch_threads"])
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    update_results(
        run_dir,
        fresh=stage != "2",  # a stage-2 re-run keeps the stage-1 keys already in the folder
        status="running",
        reason=None,
        algo=run_label(cfg),
        env=cfg["env"]["name"],
        env_family=cfg["env"]["family"],
        seed=cfg["seed"],
        stage=stage,
    )
    try:
        if stage in ("1", "all"):
            update_results(run_dir, **train_stage1(cfg, run_dir))
        if stage == "2" or (stage == "all" and distills):
            teacher = cfg["teacher"] if stage == "2" else run_dir
            update_results(run_dir, **run_stage2(cfg, run_dir, teacher))
    except BaseException as exc:
        update_results(run_dir, status="failed", reason=f"{type(exc).__name__}: {exc}")
        raise
    return update_results(run_dir, status="finished")


def summary(results: dict[str, Any]) -> str:
    keys = [k for k in results if k.startswith(("test/", "eval/")) and not k.endswith(("std", "length"))]
    return "\n".join(f"  {k} = {results[k]:.4g}" for k in sorted(keys) if isinstance(results[k], float))


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    container = to_container(cfg)
    try:
        results = run(container, run_dir)  # validates the config before anything is written
    except ConfigError as exc:
        if not (run_dir / "results.json").exists() or container["stage"] == "2":
            # nothing of this run exists but Hydra's own folder: leave no half-written run behind
            shutil.rmtree(run_dir, ignore_errors=True)
        print(f"ptde.train: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"run folder: {run_dir}  ({results['algo']} on {results['env']}, {results.get('env_steps', 0)} env steps)")
    print(summary(results))


if __name__ == "__main__":
    precheck("config")
    main()
