"""The batched multi-agent environment protocol every benchmark adapter implements.

Learners, rollouts and evaluation only ever see this interface, so SMAX, real SMAC, GRF and
learning-to-rank are interchangeable. Everything crosses the boundary as torch tensors with a
leading batch dimension B (parallel environments), because the learner batches over B anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from ptde.envs.info import EnvAdapter, EnvInfo

__all__ = ["BattleFrame", "EnvAdapter", "EnvInfo", "MultiAgentEnv", "PitchFrame", "Step"]


@dataclass
class Step:
    """One batched transition's outputs (or the first observation after reset).

    `terminated` is a *real* termination (the MDP ended; no bootstrap). `truncated` is the
    episode limit (bootstrap from the final observation). `done = terminated | truncated`.
    """

    obs: torch.Tensor  # [B, n_agents, obs_dim] float32
    state: torch.Tensor  # [B, state_dim] float32
    avail_actions: torch.Tensor  # [B, n_agents, n_actions] bool
    reward: torch.Tensor  # [B] float32
    terminated: torch.Tensor  # [B] bool
    truncated: torch.Tensor  # [B] bool
    won: torch.Tensor  # [B] bool (success flag: battle won / goal scored / ...)
    info: dict[str, torch.Tensor] = field(default_factory=dict)  # extra [B] tensors
    # auto-reset envs only: what each env's transition reached, [B, n, obs_dim] / [B, state_dim]. Where an
    # episode ended (`done`), obs/state above already belong to the next episode; these hold its
    # final observation, which a time-out bootstraps from. Elsewhere they equal obs/state.
    final_obs: torch.Tensor | None = None
    final_state: torch.Tensor | None = None

    @property
    def done(self) -> torch.Tensor:  # [B] bool
        return self.terminated | self.truncated


@dataclass
class BattleFrame:
    """What one SMAX battle looks like at one step, for `ptde.report.render` (allies first, then enemies)."""

    t: int
    positions: np.ndarray  # [n_units, 2] map coordinates
    health: np.ndarray  # [n_units] fraction of the unit type's full health
    alive: np.ndarray  # [n_units] bool
    n_allies: int
    unit_types: list[str]  # [n_units]
    width: float
    height: float


@dataclass
class PitchFrame:
    """One GRF step as a pitch plot, from the engine's raw observation (x in [-1, 1], y in [-0.42, 0.42])."""

    t: int
    left: np.ndarray  # [n_left, 2] left-team (our) players
    right: np.ndarray  # [n_right, 2]
    ball: np.ndarray  # [3] x, y, z
    agents: list[int]  # the left-team players the agents control


@runtime_checkable
class MultiAgentEnv(Protocol):
    """B environments stepped in lock-step.

    `reset` starts B new episodes. `step` advances all B; an environment whose episode is
    already done keeps returning its final outputs (callers mask those steps out), so a batch of
    episodes is collected like PyMARL's parallel runner: all B run until the last one ends.

    Built with `auto_reset=True` (`make_env(..., auto_reset=True)`), an environment whose episode
    ends in `step` starts its next episode at once: the returned obs/state/avail are the new
    episode's first, reward/terminated/truncated/won/info describe the transition that ended the
    old one, and `final_obs`/`final_state` hold where it ended. Nothing is frozen, so every step
    of every env is a real transition (on-policy step-based collection, `ptde.rollout.steps`).

    An env whose next episodes depend on its own random streams also has `rng_state()` (plain values
    and tensors) and `set_rng_state(state)`: checkpoints keep the state, so a resumed run plays the
    episodes the uninterrupted one would have (SMAX, learning to rank, football).
    """

    batch_size: int

    def get_env_info(self) -> EnvInfo: ...

    def reset(self, seed: int | None = None) -> Step: ...

    def step(self, actions: torch.Tensor) -> Step:  # actions [B, n_agents] int64
        ...

    def close(self) -> None: ...
