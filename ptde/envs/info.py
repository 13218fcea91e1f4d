"""An environment's static description and the base class of the adapters, without torch: the GRF
engine workers import the adapter module without torch (see `ptde.envs.football`)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EnvInfo:
    """Static dimensions of an environment; everything a network needs to be built."""

    n_agents: int
    obs_dim: int
    state_dim: int
    n_actions: int
    episode_limit: int
    # The name of the scalar that decides success in reports ("win_rate", "score", "ndcg@10").
    success_metric: str = "win_rate"


class EnvAdapter:
    """What every adapter shares: `get_env_info` from its attributes (n_agents, obs_dim, state_dim,
    n_actions, episode_limit, success_metric), and the hooks the generic stages call, whose
    defaults do nothing."""

    success_metric: str = "win_rate"

    def get_env_info(self) -> EnvInfo:
        return EnvInfo(
            n_agents=self.n_agents,
            obs_dim=self.obs_dim,
            state_dim=self.state_dim,
            n_actions=self.n_actions,
            episode_limit=self.episode_limit,
            success_metric=self.success_metric,
        )

    def reference_metrics(self, seed: int) -> dict[str, float]:
        """Scores of non-MARL references on this env's test data, for results.json (default none;
        learning to rank adds random and LambdaMART rankers)."""
        return {}
