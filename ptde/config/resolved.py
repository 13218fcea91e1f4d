"""The composed config as the code reads it: a plain dict (`to_container`), the algorithm's table
name (`run_label`), the checks that need more than one field or the machine (`validate`, before any
run folder is written; each env family checks its own part through `ptde.envs.check_env_config`)
and attribute access for env adapters (`ConfigView`)."""

from __future__ import annotations

from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from ptde.config.choices import PRECISIONS
from ptde.envs import check_env_config
from ptde.errors import ConfigError


def to_container(cfg: DictConfig) -> dict[str, Any]:
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)  # type: ignore[return-value]


def run_label(cfg: dict[str, Any]) -> str:
    """qmix, qmix_giu, qmix_gip: the algorithm as the paper's tables name it."""
    variant = cfg["variant"]["name"]
    return cfg["algo"]["name"] if variant == "none" else f"{cfg['algo']['name']}_{variant}"


def validate(cfg: dict[str, Any]) -> None:
    if str(cfg["stage"]) not in {"1", "2", "all"}:
        raise ConfigError(f"stage={cfg['stage']} is not valid; valid choices: 1, 2, all")
    if cfg["trainer"]["accelerator"] not in {"cpu", "cuda"}:
        raise ConfigError(f"trainer.accelerator={cfg['trainer']['accelerator']!r}; valid choices: cpu, cuda")
    if cfg["trainer"]["accelerator"] == "cuda" and not torch.cuda.is_available():
        raise ConfigError("trainer.accelerator=cuda but no CUDA device is visible; use trainer.accelerator=cpu")
    if cfg["trainer"].get("precision", "32-true") not in PRECISIONS:
        raise ConfigError(f"trainer.precision={cfg['trainer']['precision']!r}; valid choices: {', '.join(PRECISIONS)}")
    env = cfg["env"]
    check_env_config(env)
    for key in ("max_env_steps", "test_interval", "test_episodes", "log_interval", "checkpoint_interval"):
        if cfg["trainer"][key] <= 0:
            raise ConfigError(f"trainer.{key} must be positive, got {cfg['trainer'][key]}")
    ceiling, floor = cfg["variant"].get("var_ceiling"), cfg["variant"]["var_floor"]
    if ceiling is not None and not ceiling > floor:
        raise ConfigError(
            f"variant.var_ceiling={ceiling} must be above variant.var_floor={floor} (or null: no ceiling)"
        )
    tau = cfg["algo"].get("target_update_tau", 0.0)
    if not 0.0 <= tau <= 1.0:
        raise ConfigError(
            f"algo.target_update_tau={tau} must be in [0, 1] (0: hard updates every target_update_interval)"
        )
    if str(cfg["stage"]) != "2" and "buffer_size" in cfg["algo"]:  # an off-policy stage 1 (MAPPO keeps one rollout)
        from ptde.data.memory import replay_fit_error
        from ptde.envs.build import probe_env_info

        problem = replay_fit_error(cfg["algo"], probe_env_info(env), cfg["trainer"]["save_buffer"])
        if problem is not None:
            raise ConfigError(problem)
