"""Stage 1 for MAPPO (Yu et al. 2021) with any global-information variant.

On-policy actor-critic. The actor is the same shared recurrent agent network as the Q-learners'
(`MultiAgentQNetwork`, agent id in the input), read as action logits; with GIU/GIP its z_i is
concatenated to the actor's features (paper Figure 3b), so stage 2 distills it unchanged. The
critic is a recurrent centralized value of the global state (`ptde.nn.critics`).

Data: the env-interaction callback collects one rollout (env.batch_size_run whole episodes,
actions sampled from π) before every training step into a store that holds only that rollout
(`EpisodeReplayBuffer` with capacity = the rollout's episodes, so each collection overwrites the
last); the datamodule hands the whole rollout to `training_step`, which runs one PPO update:

1. with the pre-update networks (the ones that collected the data): old log-probs π_old(a|τ)
   and old values, recomputed here rather than stored by the rollout;
2. GAE(γ, λ) on the denormalised values, returns = A + V; the value normaliser takes the returns;
   advantages are normalised over the real agent-steps;
3. `ppo_epochs` passes over `num_mini_batch` minibatches of whole episodes: clipped surrogate
   minus the entropy bonus for the actor, clipped Huber loss on normalised returns for the
   critic, each network's gradient clipped to `grad_norm_clip`, one Adam per network.

Deviations from marlbenchmark/on-policy, for a recurrent episode learner: sequences are whole
episodes (not 10-step chunks, so hidden states are recomputed from the episode start), the
value normaliser is updated once per rollout (not once per minibatch), no orthogonal init.
GIU/GIP's z_i is the mean μ_i here (the value-decomposition learner samples z_i ~ N(μ_i, σ_i²)):
the ratio π/π_old must compare the same function of (τ_i, s), and a fresh z sample per forward
pass made half the ratios clip in a first test; the policy's randomness is π's own. Stage 2
distills μ_i either way.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.nn.functional as F

from ptde.data.buffer import EpisodeReplayBuffer
from ptde.data.datamodule import ReplayDataModule
from ptde.envs.base import EnvInfo
from ptde.learners.base import StageOneLearner
from ptde.learners.returns import gae_advantages
from ptde.nn.critics import CentralizedValueNetwork, ValueNorm
from ptde.nn.global_info import build_global_info
from ptde.nn.policy import (
    DecentralizedQNetwork,
    MultiAgentQNetwork,
    build_agent_inputs,
    previous_actions_onehot,
    sample_from_policy,
)
from ptde.runtime import ConfigError


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def ppo_policy_loss(
    log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, clip: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped surrogate, negated to minimise: -E[min(ρA, clip(ρ, 1-ε, 1+ε)A)], ρ = π/π_old.

    All arguments [B, T, n] (mask 1 on real agent-steps). Also returns the mean ratio and the
    fraction of agent-steps whose ratio was clipped.
    """
    ratio = (log_prob - old_log_prob).exp()
    surrogate = torch.min(ratio * advantages, ratio.clamp(1.0 - clip, 1.0 + clip) * advantages)
    clipped = ((ratio - 1.0).abs() > clip).float()
    stats = {
        "train/ratio_mean": masked_mean(ratio.detach(), mask).item(),
        "train/clip_fraction": masked_mean(clipped, mask).item(),
    }
    return -masked_mean(surrogate, mask), stats


def clipped_value_loss(
    values: torch.Tensor,
    old_values: torch.Tensor,
    targets: torch.Tensor,
    mask: torch.Tensor,
    clip: float,
    huber_delta: float,
    use_clipping: bool = True,
) -> torch.Tensor:
    """MAPPO's value loss: max(Huber(target - V), Huber(target - V_clipped)), masked mean, where
    V_clipped = V_old + clip(V - V_old, -ε, ε) keeps the critic near the one that collected the data."""
    loss = F.huber_loss(values, targets, reduction="none", delta=huber_delta)
    if use_clipping:
        v_clipped = old_values + (values - old_values).clamp(-clip, clip)
        loss = torch.max(loss, F.huber_loss(v_clipped, targets, reduction="none", delta=huber_delta))
    return masked_mean(loss, mask)


class DecentralizedActor(DecentralizedQNetwork):
    """`MAPPO_KD` execution: the actor's RNN with the student's μ'(o_i) as z_i; actions as the
    teacher draws them (sampled with probability ε, greedy at ε = 0)."""

    select_actions = staticmethod(sample_from_policy)


class MAPPOLearner(StageOneLearner):
    def __init__(self, cfg: dict[str, Any], env_info: dict[str, Any]) -> None:
        """`cfg` is the run's resolved config as plain containers (it travels in checkpoints)."""
        super().__init__()
        self.save_hyperparameters()
        self.automatic_optimization = False
        algo, variant = cfg["algo"], cfg["variant"]
        self.algo = algo
        info = EnvInfo(**env_info)
        self.info = info
        global_info = build_global_info(variant, info, input_dim=info.obs_dim + info.n_actions + info.n_agents)
        self.actor = MultiAgentQNetwork(info, algo["rnn_hidden_dim"], global_info)  # outputs action logits
        self.critic = CentralizedValueNetwork(info.state_dim, info.n_agents, algo["critic_hidden_dim"])
        self.value_norm = ValueNorm()

    @staticmethod
    def build_data(cfg: dict[str, Any], info: EnvInfo, seed: int) -> tuple[EpisodeReplayBuffer, ReplayDataModule]:
        """On-policy: a store of exactly one rollout, read whole by every update."""
        episodes = cfg["algo"]["batch_size"]
        if episodes != cfg["env"]["batch_size_run"]:
            raise ConfigError(
                f"MAPPO learns from one collection of the parallel envs: algo.batch_size ({episodes}) must equal "
                f"env.batch_size_run ({cfg['env']['batch_size_run']}); mappo.yaml sets it to ${{env.batch_size_run}}"
            )
        buffer = EpisodeReplayBuffer(episodes, info)
        return buffer, ReplayDataModule(buffer, episodes, seed=seed)

    # ------------------------------------------------------------------ PTDE stage 2
    @property
    def global_info(self) -> torch.nn.Module | None:
        return self.actor.global_info

    def decentralized_policy(self, student: torch.nn.Module, noise_var: float = 0.0) -> DecentralizedActor:
        return DecentralizedActor(self.actor.agent, student, noise_var).eval()

    # ------------------------------------------------------------------ acting
    @property
    def uses_state(self) -> bool:
        """A GIU/GIP actor reads the state when acting (centralized execution); the critic never acts."""
        return self.actor.uses_state

    @torch.no_grad()
    def act(
        self, inputs: torch.Tensor, hidden: torch.Tensor | None, state: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [B, 1, n, d], state [B, 1, S] -> logits [B, 1, n, A], hidden."""
        logits, hidden, _ = self.actor(inputs, state, hidden, sample_z=False)
        return logits, hidden

    select_actions = staticmethod(sample_from_policy)

    # ------------------------------------------------------------------ learning
    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        a = self.algo
        return [
            torch.optim.Adam(self.actor.parameters(), lr=a["lr"], eps=a["optim_eps"]),
            torch.optim.Adam(self.critic.parameters(), lr=a["critic_lr"], eps=a["optim_eps"]),
        ]

    def log_pi(
        self, inputs: torch.Tensor, state: torch.Tensor | None, avail: torch.Tensor, valid: torch.Tensor
    ) -> torch.Tensor:
        """log π(·|τ_i) over available actions: inputs [B, T, n, d] -> [B, T, n, A].

        Unavailable actions get a large negative logit (not -inf), so they carry probability 0
        and p·log p stays finite in the entropy; padding rows (no action available) come out
        uniform and are masked by the caller.
        """
        logits, _, _ = self.actor(inputs, state, sample_z=False, valid=valid)
        return torch.log_softmax(logits.masked_fill(~avail, -1e10), dim=-1)

    def training_step(self, dataloader_iter: Iterator) -> None:
        batch, _, _ = next(dataloader_iter)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        actor_opt, critic_opt = self.optimizers()
        self.record(self.ppo_update(self.prepare_rollout(batch), actor_opt, critic_opt, self.manual_backward))
        self.counters.updates += 1

    @torch.no_grad()
    def prepare_rollout(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Steps 1-2: what the PPO epochs read, from the networks that collected the rollout.

        Returns (all [B, T, ...]) inputs, actor_state (None without GIU/GIP), avail, valid,
        agent_mask, actions; old_log_prob, old_values (normalised space), advantages (normalised),
        targets (value targets in the critic's space), returns (raw), state [B, T+1, S].
        The value normaliser takes this rollout's returns here.
        """
        a, n = self.algo, self.info.n_agents
        obs, state, avail = batch["obs"], batch["state"], batch["avail_actions"]  # [B, T+1, ...]
        actions, reward = batch["actions"], batch["reward"]  # [B, T, n], [B, T]
        terminated, mask = batch["terminated"], batch["mask"]  # [B, T]
        B, T = mask.shape
        inputs = build_agent_inputs(obs, previous_actions_onehot(actions, self.info.n_actions, T + 1))[:, :T]
        actor_state = state[:, :T] if self.actor.uses_state else None
        avail_t, valid = avail[:, :T], mask > 0  # [B, T, n, A], [B, T]
        agent_mask = mask.unsqueeze(-1).expand(B, T, n)  # [B, T, n]
        old_log_prob = self.log_pi(inputs, actor_state, avail_t, valid).gather(-1, actions.unsqueeze(-1)).squeeze(-1)
        old_values = self.critic(state)  # [B, T+1, n], normalised space
        values = self.value_norm.denormalize(old_values) if a["value_norm"] else old_values
        advantages, returns = gae_advantages(reward, terminated, mask, values, a["gamma"], a["gae_lambda"])
        if a["value_norm"]:
            self.value_norm.update(returns, agent_mask)
            targets = self.value_norm.normalize(returns)  # [B, T, n]
        else:
            targets = returns
        adv_mean = masked_mean(advantages, agent_mask)
        adv_std = masked_mean((advantages - adv_mean) ** 2, agent_mask).sqrt()
        return {
            "inputs": inputs,
            "actor_state": actor_state,
            "avail": avail_t,
            "valid": valid,
            "agent_mask": agent_mask,
            "actions": actions,
            "state": state,
            "old_log_prob": old_log_prob,
            "old_values": old_values[:, :T],
            "advantages": (advantages - adv_mean) / (adv_std + 1e-5),
            "targets": targets,
            "returns": returns,
        }

    def ppo_update(
        self,
        r: dict[str, torch.Tensor],
        actor_opt: torch.optim.Optimizer,
        critic_opt: torch.optim.Optimizer,
        backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
    ) -> dict[str, float]:
        """Step 3: `ppo_epochs` passes over `num_mini_batch` minibatches of whole episodes."""
        a = self.algo
        B, T = r["valid"].shape
        totals: dict[str, float] = {}
        n_minibatches = 0
        for _ in range(a["ppo_epochs"]):
            for idx in torch.randperm(B, device=r["valid"].device).chunk(a["num_mini_batch"]):
                m = r["agent_mask"][idx]
                actor_state = None if r["actor_state"] is None else r["actor_state"][idx]
                log_pi = self.log_pi(r["inputs"][idx], actor_state, r["avail"][idx], r["valid"][idx])  # [b, T, n, A]
                log_prob = log_pi.gather(-1, r["actions"][idx].unsqueeze(-1)).squeeze(-1)  # [b, T, n]
                entropy = masked_mean(-(log_pi.exp() * log_pi).sum(-1), m)
                policy_loss, pstats = ppo_policy_loss(
                    log_prob, r["old_log_prob"][idx], r["advantages"][idx], m, a["clip_param"]
                )
                new_values = self.critic(r["state"][idx])[:, :T]  # [b, T, n]
                value_loss = clipped_value_loss(
                    new_values, r["old_values"][idx], r["targets"][idx], m, a["clip_param"], a["huber_delta"],
                    a["clipped_value_loss"],
                )  # fmt: skip
                actor_loss = policy_loss - a["entropy_coef"] * entropy
                critic_loss = a["value_loss_coef"] * value_loss
                if not (torch.isfinite(actor_loss) and torch.isfinite(critic_loss)):
                    c = self.counters
                    raise FloatingPointError(
                        f"non-finite PPO loss (actor {actor_loss.item()}, critic {critic_loss.item()}) at update "
                        f"{c.updates + 1}, env step {c.env_steps}: the run stops before the parameters change, so "
                        "checkpoints/last.ckpt is the last good state. Check env.reward_scale and algo.lr."
                    )
                actor_opt.zero_grad()
                critic_opt.zero_grad()
                backward(actor_loss + critic_loss)  # the two networks share no parameters
                actor_grad = torch.nn.utils.clip_grad_norm_(self.actor.parameters(), a["grad_norm_clip"])
                critic_grad = torch.nn.utils.clip_grad_norm_(self.critic.parameters(), a["grad_norm_clip"])
                actor_opt.step()
                critic_opt.step()
                step_stats = {
                    "train/policy_loss": policy_loss.item(),
                    "train/value_loss": value_loss.item(),
                    "train/entropy": entropy.item(),
                    "train/actor_grad_norm": float(actor_grad),
                    "train/critic_grad_norm": float(critic_grad),
                    **pstats,
                }
                for k, v in step_stats.items():
                    totals[k] = totals.get(k, 0.0) + v
                n_minibatches += 1
        stats = {k: v / n_minibatches for k, v in totals.items()}
        stats["train/return_mean"] = masked_mean(r["returns"], r["agent_mask"]).item()
        return stats
