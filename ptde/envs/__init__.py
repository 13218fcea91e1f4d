"""Environment adapters behind one batched protocol (`ptde.envs.base`), chosen from `ENVS`."""

from __future__ import annotations

from typing import Any

from ptde.envs.base import EnvInfo, MultiAgentEnv, Step
from ptde.errors import ConfigError
from ptde.registry import choose

__all__ = ["EnvInfo", "MultiAgentEnv", "Step", "check_env_config", "make_env"]


def _smax(cfg: Any, batch_size: int, seed: int, split: str, auto_reset: bool) -> MultiAgentEnv:
    from ptde.envs.smax import SMAXEnv

    return SMAXEnv(cfg, batch_size=batch_size, seed=seed, auto_reset=auto_reset)


def _sc2(cfg: Any, batch_size: int, seed: int, split: str, auto_reset: bool) -> MultiAgentEnv:
    from ptde.envs.sc2 import SC2Env  # real StarCraft II through SMAC, when installed

    return SC2Env(cfg, batch_size=batch_size, seed=seed, auto_reset=auto_reset)


def _grf(cfg: Any, batch_size: int, seed: int, split: str, auto_reset: bool) -> MultiAgentEnv:
    from ptde.envs.football import GRFEnv

    return GRFEnv(cfg, batch_size=batch_size, seed=seed, auto_reset=auto_reset)


def _ltr(cfg: Any, batch_size: int, seed: int, split: str, auto_reset: bool) -> MultiAgentEnv:
    from ptde.envs.ranking import RankingEnv

    return RankingEnv(cfg, batch_size=batch_size, seed=seed, split=split, auto_reset=auto_reset)


# `env.family` (SMAC: `smac/<env.backend>`) -> builder(cfg, batch_size, seed, split, auto_reset); each
# imports its adapter when chosen (JAX, the football engine, SMAC)
ENVS = {"smac/smax": _smax, "smac/sc2": _sc2, "grf": _grf, "ltr": _ltr}


def _check_smax(env: dict[str, Any]) -> None:
    from ptde.envs.smax import available_maps

    if env["name"] not in available_maps():
        raise ConfigError(f"env.name={env['name']!r} is not a SMAX map; valid maps: {', '.join(available_maps())}")


def _check_sc2(env: dict[str, Any]) -> None:
    from ptde.envs.sc2 import smac_env_factory

    try:
        smac_env_factory()
    except ImportError as exc:
        raise ConfigError(str(exc)) from None


def _check_grf(env: dict[str, Any]) -> None:
    from ptde.envs.football import scenario_of

    try:
        scenario_of(env["name"])
    except ValueError as exc:
        raise ConfigError(f"env.name={env['name']!r}: {exc}") from None


def _check_ltr(env: dict[str, Any]) -> None:
    if env["name"] == "synthetic":
        return
    from ptde.config.resolved import ConfigView
    from ptde.envs.ranking import resolve_data_files

    try:
        resolve_data_files(ConfigView(env))  # a missing data file fails here, before any run folder
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


# the same keys -> a start-up check of what only the family knows (its map names, its install, its
# data files), so a bad env fails before any run folder is written
ENV_CHECKS = {"smac/smax": _check_smax, "smac/sc2": _check_sc2, "grf": _check_grf, "ltr": _check_ltr}


def family_key(family: Any, backend: Any = None) -> str:
    """The key of ENVS and ENV_CHECKS: `env.family`, and for SMAC `smac/<env.backend>`."""
    family = getattr(family, "value", family)
    return f"smac/{getattr(backend, 'value', backend)}" if family == "smac" else family


def check_env_config(env: dict[str, Any]) -> None:
    """Refuse, with a ConfigError naming the valid choices, an env config its family cannot build."""
    choose(ENV_CHECKS, family_key(env["family"], env.get("backend")), "env.family")(env)


def make_env(
    env_cfg: Any, batch_size: int, seed: int = 0, split: str = "train", auto_reset: bool = False
) -> MultiAgentEnv:
    """Build B parallel environments of the family the env config names.

    `split` matters where the data has one (ranking: train or held-out test queries).
    `auto_reset`: an env whose episode ends starts the next at once (see `MultiAgentEnv`), for
    step-based collection; off, finished envs freeze until the batch is over (episode collection).
    """
    family = family_key(env_cfg.family, getattr(env_cfg, "backend", None))
    return choose(ENVS, family, "env.family")(env_cfg, batch_size, seed, split, auto_reset)
