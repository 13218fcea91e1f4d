"""Environment adapters behind one batched protocol (`ptde.envs.base`), chosen from `ENVS`."""

from __future__ import annotations

from typing import Any

from ptde.envs.base import EnvInfo, MultiAgentEnv, Step
from ptde.registry import choose

__all__ = ["EnvInfo", "MultiAgentEnv", "Step", "make_env"]


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


def make_env(
    env_cfg: Any, batch_size: int, seed: int = 0, split: str = "train", auto_reset: bool = False
) -> MultiAgentEnv:
    """Build B parallel environments of the family the env config names.

    `split` matters where the data has one (ranking: train or held-out test queries).
    `auto_reset`: an env whose episode ends starts the next at once (see `MultiAgentEnv`), for
    step-based collection; off, finished envs freeze until the batch is over (episode collection).
    """
    family = env_cfg.family
    if family == "smac":
        family = f"smac/{getattr(env_cfg.backend, 'value', env_cfg.backend)}"
    return choose(ENVS, family, "env.family")(env_cfg, batch_size, seed, split, auto_reset)
