"""Building a run's pieces from its config: the one place train, evaluate and distill share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from ptde.envs import make_env
from ptde.envs.base import EnvInfo, MultiAgentEnv
from ptde.errors import ConfigError  # raised and caught as ptde.runtime.ConfigError too


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
    env = cfg["env"]
    if env["family"] == "smac" and env.get("backend") == "smax":
        from ptde.envs.smax import available_maps

        if env["name"] not in available_maps():
            raise ConfigError(f"env.name={env['name']!r} is not a SMAX map; valid maps: {', '.join(available_maps())}")
    if env["family"] == "grf":
        from ptde.envs.football import scenario_of

        try:
            scenario_of(env["name"])
        except ValueError as exc:
            raise ConfigError(f"env.name={env['name']!r}: {exc}") from None
    if env["family"] == "smac" and env.get("backend") == "sc2":
        from ptde.envs.sc2 import smac_env_factory

        try:
            smac_env_factory()
        except ImportError as exc:
            raise ConfigError(str(exc)) from None
    if env["family"] == "ltr" and env["name"] != "synthetic":
        from ptde.envs.ranking import resolve_data_files

        try:
            resolve_data_files(ConfigView(env))  # a missing data file fails here, before any run folder
        except (FileNotFoundError, ValueError) as exc:
            raise ConfigError(str(exc)) from None
    for key in ("max_env_steps", "test_interval", "test_episodes", "log_interval", "checkpoint_interval"):
        if cfg["trainer"][key] <= 0:
            raise ConfigError(f"trainer.{key} must be positive, got {cfg['trainer'][key]}")
    if str(cfg["stage"]) != "2" and "buffer_size" in cfg["algo"]:  # an off-policy stage 1 (MAPPO keeps one rollout)
        from ptde.data.memory import replay_fit_error

        problem = replay_fit_error(cfg["algo"], probe_env_info(env), cfg["trainer"]["save_buffer"])
        if problem is not None:
            raise ConfigError(problem)


def build_envs(
    cfg: dict[str, Any], seed: int, auto_reset: bool = False
) -> tuple[MultiAgentEnv, MultiAgentEnv, EnvInfo]:
    """The training env (B = env.batch_size_run) and the test env (B = trainer.test_episodes).

    `auto_reset` builds the training env for step-based collection (test episodes stay whole episodes).
    """
    env_ns = ConfigView(cfg["env"])
    train_env = make_env(env_ns, batch_size=cfg["env"]["batch_size_run"], seed=seed, auto_reset=auto_reset)
    test_b = test_batch_size(cfg["env"], cfg["trainer"]["test_episodes"])
    test_env = make_env(env_ns, batch_size=test_b, seed=seed + 10_000, split="test")
    return train_env, test_env, train_env.get_env_info()


def probe_env_info(env_cfg: dict[str, Any]) -> EnvInfo:
    """An env's dimensions without running it: a GRF scenario's from its spec (its engine workers
    would take seconds to start), any other env's from one instance built and closed again (SMAX
    compiles nothing before its first step, SMAC starts no game before its first reset)."""
    if env_cfg["family"] == "grf":
        from ptde.envs.football import N_ACTIONS, obs_dim_of, scenario_of, state_dim_of

        spec = scenario_of(env_cfg["name"])
        return EnvInfo(env_cfg["n_agents"], obs_dim_of(spec), state_dim_of(spec), N_ACTIONS, env_cfg["episode_limit"])
    env = make_env(ConfigView(env_cfg), batch_size=1)
    try:
        return env.get_env_info()
    finally:
        env.close()


def test_batch_size(env_cfg: dict[str, Any], episodes: int) -> int:
    """Parallel envs for test episodes: all at once (SMAX vmaps them), unless the env caps it
    (`test_batch_size`, e.g. GRF's engine processes)."""
    return min(episodes, env_cfg.get("test_batch_size") or episodes)


class ConfigView:
    """Attribute access over a plain config dict (env adapters read `cfg.name`, `cfg.family`...)."""

    def __init__(self, d: dict[str, Any]) -> None:
        for k, v in d.items():
            setattr(self, k, ConfigView(v) if isinstance(v, dict) else v)


def resolve_checkpoint(path: str | Path) -> Path:
    """A run folder means its checkpoints/last.ckpt; a file is taken as it is."""
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoints" / "last.ckpt"
    if not p.is_file():
        raise ConfigError(
            f"no checkpoint at {str(path)!r} (expected a run folder with checkpoints/last.ckpt or a .ckpt file)"
        )
    return p


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Checkpoints hold only tensors and plain containers, so they load with weights_only=True."""
    return torch.load(resolve_checkpoint(path), map_location="cpu", weights_only=True)


def run_dir_of(checkpoint: Path) -> Path:
    """The run folder a checkpoint belongs to (`<run>/checkpoints/x.ckpt`, or a .ckpt moved beside it)."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
