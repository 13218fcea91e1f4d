"""Environment adapters behind one batched protocol (`ptde.envs.base`)."""

from __future__ import annotations

from typing import Any

from ptde.envs.base import EnvInfo, MultiAgentEnv, Step

__all__ = ["EnvInfo", "MultiAgentEnv", "Step", "make_env"]


FAMILIES = ("smac", "grf", "ltr")


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
        backend = getattr(env_cfg.backend, "value", env_cfg.backend)
        if backend == "smax":
            from ptde.envs.smax import SMAXEnv

            return SMAXEnv(env_cfg, batch_size=batch_size, seed=seed, auto_reset=auto_reset)
        from ptde.envs.sc2 import SC2Env  # real StarCraft II through SMAC, when installed

        return SC2Env(env_cfg, batch_size=batch_size, seed=seed, auto_reset=auto_reset)
    if family == "grf":
        from ptde.envs.football import GRFEnv

        return GRFEnv(env_cfg, batch_size=batch_size, seed=seed, auto_reset=auto_reset)
    if family == "ltr":
        from ptde.envs.ranking import RankingEnv

        return RankingEnv(env_cfg, batch_size=batch_size, seed=seed, split=split, auto_reset=auto_reset)
    raise ValueError(f"unknown env family {family!r}; valid families: {', '.join(FAMILIES)}")
