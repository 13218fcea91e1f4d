"""Step-based collection, as marlbenchmark/on-policy's runner collects: B auto-reset envs stepped a
fixed number of steps per rollout.

The episode path (`ptde.rollout.run_episodes`) runs B whole episodes and freezes finished envs
until the longest is over; replay learners store whole episodes, so they keep it. An on-policy
learner instead takes `steps` transitions of every env per update: an env whose episode ends
starts the next at once (`make_env(..., auto_reset=True)`), the rollout records where episodes
start and end (and whether by termination or time-out), and `RolloutCarry` takes the env's
latest outputs, the policy's carried state and the unfinished episodes' returns into the next
rollout. The policy's state is zeroed before the first step of every episode, never elsewhere.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Protocol

import torch
import torch.nn.functional as F

from ptde.envs.base import MultiAgentEnv, Step
from ptde.nn.policy import build_agent_inputs, epsilon_greedy
from ptde.rollout.episodes import Actor


class StepActor(Actor, Protocol):
    """An `Actor` that also says what its carried state looks like before any step."""

    def init_hidden(self, batch_size: int) -> torch.Tensor: ...  # [B, n, C]


@dataclass
class FinishedEpisodes:
    """The episodes that ended during one rollout (some began in an earlier one), E of them."""

    returns: torch.Tensor  # [E]
    lengths: torch.Tensor  # [E] int64
    won: torch.Tensor  # [E] bool
    dropped: torch.Tensor  # [E] bool: broken off by a crashed or hung engine worker
    env_index: torch.Tensor  # [E] int64: which of the B envs played it
    info: dict[str, torch.Tensor] = field(default_factory=dict)  # the env's numeric info at the last step, [E]

    @property
    def count(self) -> int:
        return int(self.returns.shape[0])


@dataclass
class StepRollout:
    """T steps of B envs; index t of every field describes the step acted on at t."""

    inputs: torch.Tensor  # [B, T, n, d] agent inputs o_t ⊕ a_{t-1} ⊕ id (a_{-1} = 0 at an episode start)
    state: torch.Tensor  # [B, T+1, S]: s_t, and at T the state the next rollout starts from
    avail_actions: torch.Tensor  # [B, T, n, A] bool
    actions: torch.Tensor  # [B, T, n] int64
    reward: torch.Tensor  # [B, T]
    terminated: torch.Tensor  # [B, T] float: the episode ended at t for real (no bootstrap)
    truncated: torch.Tensor  # [B, T] float: the episode limit (bootstrap from final_state)
    final_state: torch.Tensor  # [B, T, S]: the state step t reached (s_{t+1} unless an episode ended at t)
    starts: torch.Tensor  # [B, T+1] bool: an episode begins at t (at T: the next rollout's first step)
    active: torch.Tensor  # [B, T, n] float: agent i is alive at t (a dead SMAC unit only waits)
    valid: torch.Tensor  # [B, T] float: 0 on a step an env broke off (its transition is not real)
    hidden: torch.Tensor  # [B, T, n, C]: the policy's carried state before acting at t (zero at starts)
    episodes: FinishedEpisodes

    @property
    def batch_size(self) -> int:
        return self.reward.shape[0]

    @property
    def steps(self) -> int:
        return self.reward.shape[1]

    def tensors(self) -> dict[str, torch.Tensor]:
        """The per-step fields by name (what a learner's update reads)."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name != "episodes"}


@dataclass
class RolloutCarry:
    """What one rollout hands the next: the env's latest outputs and the unfinished episodes."""

    step: Step  # the outputs the next step acts on
    hidden: torch.Tensor  # [B, n, C] the policy's state after the last step
    last_action: torch.Tensor  # [B, n, A] one-hot of the last actions
    starts: torch.Tensor  # [B] bool: the next step begins an episode
    episode_return: torch.Tensor  # [B] return so far of each env's running episode
    episode_length: torch.Tensor  # [B] int64
    won: torch.Tensor  # [B] bool


def agents_alive(step: Step, n_agents: int) -> torch.Tensor:
    """[B, n] float: the env's `ally_alive` info where it reports one (SMAX), else every agent."""
    alive = step.info.get("ally_alive")
    if alive is None:
        return torch.ones(step.obs.shape[0], n_agents)
    return alive.float()


def start_carry(env: MultiAgentEnv, policy: StepActor, n_actions: int) -> RolloutCarry:
    step = env.reset()
    B, n, _ = step.obs.shape
    return RolloutCarry(
        step=step,
        hidden=policy.init_hidden(B).cpu(),
        last_action=torch.zeros(B, n, n_actions),
        starts=torch.ones(B, dtype=torch.bool),
        episode_return=torch.zeros(B),
        episode_length=torch.zeros(B, dtype=torch.long),
        won=torch.zeros(B, dtype=torch.bool),
    )


@torch.no_grad()
def collect_steps(
    env: MultiAgentEnv,
    policy: StepActor,
    n_actions: int,
    steps: int,
    carry: RolloutCarry | None = None,
    epsilon: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    observer: Callable[[MultiAgentEnv], None] | None = None,
) -> tuple[StepRollout, RolloutCarry]:
    """`steps` transitions of each of the env's B (auto-reset) envs; `carry` continues the last rollout
    (None: reset the env and start fresh). Returns the rollout and the carry for the next one.

    `observer(env)` is called after every step.
    """
    c = carry if carry is not None else start_carry(env, policy, n_actions)
    B, n, _ = c.step.obs.shape
    select_actions = getattr(policy, "select_actions", epsilon_greedy)
    rec: dict[str, list[torch.Tensor]] = {k: [] for k in StepRollout.__dataclass_fields__ if k != "episodes"}
    finished: dict[str, list[torch.Tensor]] = {k: [] for k in ("returns", "lengths", "won", "dropped", "env_index")}
    finished_info: dict[str, list[torch.Tensor]] = {}
    step, hidden, last_action, starts = c.step, c.hidden, c.last_action, c.starts
    ep_return, ep_length, won = c.episode_return.clone(), c.episode_length.clone(), c.won.clone()
    for _ in range(steps):
        keep = (~starts).float()  # [B]
        hidden = hidden * keep.view(B, *([1] * (hidden.dim() - 1)))  # a new episode starts from zero
        inputs = build_agent_inputs(step.obs, last_action * keep.view(B, 1, 1))  # [B, n, d]
        rec["inputs"].append(inputs)
        rec["state"].append(step.state)
        rec["avail_actions"].append(step.avail_actions)
        rec["starts"].append(starts)
        rec["active"].append(agents_alive(step, n))
        rec["hidden"].append(hidden)
        x = inputs.unsqueeze(1).to(device)  # [B, 1, n, d]
        if policy.uses_state:
            out, hidden = policy.act(x, hidden.to(device), step.state.unsqueeze(1).to(device))
        else:
            out, hidden = policy.act(x, hidden.to(device))
        hidden = hidden.cpu()
        a = select_actions(out[:, 0].cpu(), step.avail_actions, epsilon, generator)  # [B, n]
        step = env.step(a)
        if observer is not None:
            observer(env)
        done = step.done
        dropped = step.info["dropped"].bool() if "dropped" in step.info else torch.zeros(B, dtype=torch.bool)
        rec["actions"].append(a)
        rec["reward"].append(step.reward.float())
        rec["terminated"].append(step.terminated.float())
        rec["truncated"].append(step.truncated.float())
        rec["final_state"].append(step.final_state if step.final_state is not None else step.state)
        rec["valid"].append((~dropped).float())
        ep_return += step.reward.float()
        ep_length += 1
        won |= step.won
        if bool(done.any()):
            idx = done.nonzero().squeeze(1)
            finished["returns"].append(ep_return[idx].clone())
            finished["lengths"].append(ep_length[idx].clone())
            finished["won"].append(won[idx].clone())
            finished["dropped"].append(dropped[idx])
            finished["env_index"].append(idx)
            for key, value in step.info.items():
                if key not in ("valid", "ally_alive") and value.dtype.is_floating_point:
                    finished_info.setdefault(key, []).append(value[idx])
            ep_return[idx], ep_length[idx], won[idx] = 0.0, 0, False
        last_action = F.one_hot(a, n_actions).float()
        starts = done.clone()
    rec["state"].append(step.state)
    rec["starts"].append(starts)
    stacked = {k: torch.stack(v, 1) for k, v in rec.items()}
    stacked["state"] = stacked["state"].float()
    stacked["inputs"] = stacked["inputs"].float()
    stacked["actions"] = stacked["actions"].long()
    stacked["avail_actions"] = stacked["avail_actions"].bool()
    stacked["starts"] = stacked["starts"].bool()

    def cat(values: list[torch.Tensor], dtype: torch.dtype) -> torch.Tensor:
        return torch.cat(values).to(dtype) if values else torch.zeros(0, dtype=dtype)

    episodes = FinishedEpisodes(
        returns=cat(finished["returns"], torch.float32),
        lengths=cat(finished["lengths"], torch.long),
        won=cat(finished["won"], torch.bool),
        dropped=cat(finished["dropped"], torch.bool),
        env_index=cat(finished["env_index"], torch.long),
        info={k: torch.cat(v) for k, v in finished_info.items()},
    )
    rollout = StepRollout(**stacked, episodes=episodes)
    new_carry = RolloutCarry(step, hidden, last_action, starts, ep_return, ep_length, won)
    return rollout, new_carry
