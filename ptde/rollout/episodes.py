"""Running B episodes with a policy: the one loop shared by training, testing and evaluation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import torch
import torch.nn.functional as F

from ptde.envs.base import MultiAgentEnv
from ptde.nn.policy import build_agent_inputs, epsilon_greedy


class Actor(Protocol):
    """What a rollout needs of a policy. A centralized one (`uses_state`) is called as
    `act(inputs [B, 1, n, d], hidden, state [B, 1, S])`; a decentralized one as
    `act(inputs, hidden)` and is never handed the state.

    `act`'s output [B, 1, n, A] becomes actions through the actor's optional
    `select_actions(out [B, n, A], avail [B, n, A], epsilon, generator) -> [B, n]`; without one,
    the output is read as Q values and acted on ε-greedily (`epsilon_greedy`). A policy-gradient
    actor samples from its policy there (see `ptde.nn.policy.sample_from_policy`)."""

    uses_state: bool

    def act(
        self, inputs: torch.Tensor, hidden: torch.Tensor | None, *args: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]: ...


@dataclass
class EpisodeBatch:
    """B episodes padded to the longest (T steps); index t+1 of obs/state/avail follows action t."""

    obs: torch.Tensor  # [B, T+1, n, o]
    state: torch.Tensor  # [B, T+1, S]
    avail_actions: torch.Tensor  # [B, T+1, n, A] bool
    actions: torch.Tensor  # [B, T, n] int64
    reward: torch.Tensor  # [B, T]
    terminated: torch.Tensor  # [B, T] float (1 on a real termination, 0 on time-out)
    mask: torch.Tensor  # [B, T] float (1 on real steps, 0 on padding)
    won: torch.Tensor  # [B] bool
    episode_return: torch.Tensor  # [B]
    length: torch.Tensor  # [B] int64
    # each episode's numeric env info at its last step (e.g. ndcg@10), [B] each
    info: dict[str, torch.Tensor] = field(default_factory=dict)
    # False for padding entries of an evaluation sweep (env info "valid" at reset)
    valid: torch.Tensor | None = None
    # True for episodes the env broke off (a crashed or hung engine worker was restarted), [B]
    dropped: torch.Tensor | None = None

    def subset(self, keep: torch.Tensor) -> EpisodeBatch:
        """The episodes where `keep` [B] is True, cut to the longest of them."""
        T = int(self.length[keep].max().item()) if bool(keep.any()) else 0
        pick = {
            name: getattr(self, name)[keep][:, : T + 1 if name in ("obs", "state", "avail_actions") else T]
            for name in ("obs", "state", "avail_actions", "actions", "reward", "terminated", "mask")
        }
        return EpisodeBatch(
            **pick,
            won=self.won[keep],
            episode_return=self.episode_return[keep],
            length=self.length[keep],
            info={k: v[keep] for k, v in self.info.items()},
            valid=None if self.valid is None else self.valid[keep],
            dropped=None if self.dropped is None else self.dropped[keep],
        )

    @property
    def batch_size(self) -> int:
        return self.obs.shape[0]

    @property
    def max_t(self) -> int:
        return self.actions.shape[1]


@torch.no_grad()
def run_episodes(
    env: MultiAgentEnv,
    policy: Actor,
    n_actions: int,
    epsilon: float,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    observer: Callable[[MultiAgentEnv], None] | None = None,
) -> EpisodeBatch:
    """Run B episodes to their end (all B run until the last one is done) and return them.

    `observer(env)` is called after the reset and after every step (rendering reads frames there).
    """
    step = env.reset()
    if observer is not None:
        observer(env)
    valid = step.info.get("valid")
    B, n, _ = step.obs.shape
    limit = env.get_env_info().episode_limit
    hidden = None
    last_onehot = torch.zeros(B, n, n_actions)
    done = torch.zeros(B, dtype=torch.bool)
    select_actions = getattr(policy, "select_actions", epsilon_greedy)
    obs, states, avails, actions, rewards, terms, masks = [], [], [], [], [], [], []
    won = torch.zeros(B, dtype=torch.bool)
    dropped = torch.zeros(B, dtype=torch.bool)
    final_info: dict[str, torch.Tensor] = {}
    for _ in range(limit):
        obs.append(step.obs)
        states.append(step.state)
        avails.append(step.avail_actions)
        inputs = build_agent_inputs(step.obs, last_onehot).unsqueeze(1)  # [B, 1, n, d]
        if policy.uses_state:
            q, hidden = policy.act(inputs.to(device), hidden, step.state.unsqueeze(1).to(device))
        else:
            q, hidden = policy.act(inputs.to(device), hidden)
        a = select_actions(q[:, 0].cpu(), step.avail_actions, epsilon, generator)  # [B, n]
        step = env.step(a)
        if observer is not None:
            observer(env)
        actions.append(a)
        rewards.append(step.reward)
        terms.append(step.terminated)
        masks.append(~done)
        won |= step.won
        if "dropped" in step.info:
            dropped |= step.info["dropped"].bool() & ~done
        newly_done = step.done & ~done
        for key, value in step.info.items():
            if key != "valid" and value.dtype.is_floating_point:
                prev = final_info.get(key, torch.zeros(B, dtype=value.dtype))
                final_info[key] = torch.where(newly_done, value, prev)
        done = done | step.done
        last_onehot = F.one_hot(a, n_actions).float()
        if bool(done.all()):
            break
    obs.append(step.obs)
    states.append(step.state)
    avails.append(step.avail_actions)
    mask = torch.stack(masks, 1).float()  # [B, T]
    reward = torch.stack(rewards, 1).float() * mask
    return EpisodeBatch(
        obs=torch.stack(obs, 1).float(),
        state=torch.stack(states, 1).float(),
        avail_actions=torch.stack(avails, 1).bool(),
        actions=torch.stack(actions, 1).long(),
        reward=reward,
        terminated=torch.stack(terms, 1).float() * mask,
        mask=mask,
        won=won,
        episode_return=reward.sum(1),
        length=mask.sum(1).long(),
        info=final_info,
        valid=valid,
        dropped=dropped if bool(dropped.any()) else None,
    )
