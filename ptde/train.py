"""`python -m ptde.train`: stage 1 (and, for GIU/GIP, stage 2 and the PRR evaluation).

    python -m ptde.train algo=qmix env=smac/3m
    python -m ptde.train algo=qmix_gip env=smac/5m_vs_6m -m seed=0,1,2

Every run gets a folder under outputs/ holding config.yaml, metrics.csv, checkpoints/ and
results.json (written last; `status` tells a finished run from a failed one).
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
import yaml
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from ptde.callbacks import EnvInteractionCallback
from ptde.callbacks.env_interaction import test_policy
from ptde.cli import precheck
from ptde.config import register_configs
from ptde.data.buffer import EpisodeReplayBuffer
from ptde.data.datamodule import ReplayDataModule
from ptde.learners.value_decomposition import ValueDecompositionLearner
from ptde.logging import build_run_logger
from ptde.results import update_results
from ptde.runtime import ConfigError, build_envs, run_label, to_container, validate

register_configs()


def make_trainer(cfg: dict[str, Any], callbacks: list[L.Callback]) -> L.Trainer:
    return L.Trainer(
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


def train_stage1(cfg: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    """Train the stage-1 learner to the env-step budget; returns the final test metrics."""
    seed = cfg["seed"]
    L.seed_everything(seed, workers=False, verbose=False)
    if cfg["trainer"]["torch_threads"] > 0:
        torch.set_num_threads(cfg["trainer"]["torch_threads"])
    train_env, test_env, info = build_envs(cfg, seed)
    learner = ValueDecompositionLearner(cfg, info.__dict__)
    buffer = EpisodeReplayBuffer(cfg["algo"]["buffer_size"], info)
    datamodule = ReplayDataModule(buffer, cfg["algo"]["batch_size"], seed=seed)
    run_logger = build_run_logger(cfg["logger"], run_dir, f"{run_label(cfg)}_{cfg['env']['name']}_seed{seed}", cfg)
    interaction = EnvInteractionCallback(
        train_env, test_env, buffer, cfg["algo"], cfg["trainer"], run_logger, run_dir, seed
    )
    trainer = make_trainer(cfg, [interaction])
    t0 = time.time()
    trainer.fit(learner, datamodule=datamodule)
    wall = time.time() - t0
    final = test_policy(test_env, learner.act, info.n_actions, cfg["trainer"]["test_episodes"])
    c = learner.counters
    run_logger.log(final, c.env_steps)
    run_logger.finish()
    train_env.close()
    test_env.close()
    return {
        **final,
        "env_steps": c.env_steps,
        "episodes": c.episodes,
        "updates": c.updates,
        "wall_time_s": wall,
        "collect_time_s": interaction.collect_seconds,
    }


def run(cfg: dict[str, Any], run_dir: Path) -> dict[str, Any]:
    validate(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    header = {
        "status": "running",
        "algo": run_label(cfg),
        "env": cfg["env"]["name"],
        "env_family": cfg["env"]["family"],
        "seed": cfg["seed"],
    }
    update_results(run_dir, **header)
    try:
        stage1 = train_stage1(cfg, run_dir)
    except BaseException as exc:
        update_results(run_dir, status="failed", reason=f"{type(exc).__name__}: {exc}")
        raise
    return update_results(run_dir, status="finished", **stage1)


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    run_dir = Path(HydraConfig.get().runtime.output_dir)
    container = to_container(cfg)
    try:
        validate(container)
    except ConfigError as exc:
        # nothing of this run exists yet but Hydra's own folder: leave no half-written run behind
        shutil.rmtree(run_dir, ignore_errors=True)
        print(f"ptde.train: {exc}", file=sys.stderr)
        sys.exit(2)
    results = run(container, run_dir)
    metric = next((k for k in results if k.startswith("test/") and not k.endswith(("return", "std", "length"))), None)
    print(f"run folder: {run_dir}\n{metric} = {results.get(metric)}  env_steps = {results['env_steps']}")


if __name__ == "__main__":
    precheck("config")
    main()
