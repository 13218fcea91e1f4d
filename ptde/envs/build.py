"""The envs of a run, built from its config dict: training and test envs, and an env's dimensions
without running it."""

from __future__ import annotations

from typing import Any

from ptde.envs import make_env
from ptde.envs.base import EnvInfo, MultiAgentEnv
from ptde.nested import ConfigView


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
