"""Environment adapters behind one batched protocol (`ptde.envs.base`), chosen from `ptde.plugins.ENVS`."""

from __future__ import annotations

from typing import Any

from ptde.envs.base import EnvInfo, MultiAgentEnv, Step
from ptde.plugins import ENVS
from ptde.registry import choose, load

__all__ = ["EnvInfo", "MultiAgentEnv", "Step", "check_env_config", "make_env"]


def family_key(family: Any, backend: Any = None) -> str:
    """The key of `ptde.plugins.ENVS`: `env.family`, and for SMAC `smac/<env.backend>`."""
    family = getattr(family, "value", family)
    return f"smac/{getattr(backend, 'value', backend)}" if family == "smac" else family


def check_env_config(env: dict[str, Any]) -> None:
    """Refuse, with a ConfigError naming the valid choices, an env config its family cannot build."""
    plugin = choose(ENVS, family_key(env["family"], env.get("backend")), "env.family")
    load(plugin.check)(env)


def make_env(
    env_cfg: Any, batch_size: int, seed: int = 0, split: str = "train", auto_reset: bool = False
) -> MultiAgentEnv:
    """Build B parallel environments of the family the env config names.

    `split` matters where the data has one (ranking: train or held-out test queries).
    `auto_reset`: an env whose episode ends starts the next at once (see `MultiAgentEnv`), for
    step-based collection; off, finished envs freeze until the batch is over (episode collection).
    """
    plugin = choose(ENVS, family_key(env_cfg.family, getattr(env_cfg, "backend", None)), "env.family")
    adapter = load(plugin.adapter)  # imported now: JAX, the football engine, SMAC
    if plugin.splits:
        return adapter(env_cfg, batch_size=batch_size, seed=seed, split=split, auto_reset=auto_reset)
    return adapter(env_cfg, batch_size=batch_size, seed=seed, auto_reset=auto_reset)
