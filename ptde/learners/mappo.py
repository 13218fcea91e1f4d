"""Stage 1 for MAPPO (Yu et al. 2021) with any global-information variant, as marlbenchmark/on-policy
trains it on SMAC.

On-policy actor-critic. The actor is the shared agent network of the Q-learners
(`AgentNetwork`, agent id in the input), read as action logits, with on-policy's options:
LayerNorm on its inputs, orthogonal init (policy head gain 0.01), and either the recurrent body
(`rmappo`) or a feed-forward one over stacked frames (`mappo`). With GIU/GIP its z_i is
concatenated to the actor's features (paper Figure 3b), so stage 2 distills it unchanged. The
critic is a centralized value of the global state of the same kind (`ptde.nn.critics`).

Data: step-based collection (`ptde.rollout.steps`, `StepInteractionCallback`): before every update,
`rollout_steps` steps of each of the B auto-reset envs with actions sampled from π; episodes and
the actor's state run on from one rollout into the next. `training_step` runs one PPO update:

1. with the pre-update networks (the ones that collected the data): the critic over the rollout,
   continuing from its state at the end of the last rollout, V of the final state of every
   episode cut by the time limit, and old log-probs π_old(a|τ) on the training chunks;
2. GAE(γ, λ) on the denormalised values: a termination does not bootstrap, a time-out bootstraps
   from its final state, the rollout's end from the next state; returns = A + V; advantages
   normalised over the live agents' steps (active masks);
3. `ppo_epochs` passes over `num_mini_batch` minibatches of `data_chunk_length`-step chunks, each
   starting from the recurrent state the rollout had there and reset at episode starts inside:
   clipped surrogate minus the entropy bonus over live agents' steps, clipped Huber loss on
   returns normalised by the ValueNorm (updated on every minibatch, as on-policy does), each
   network's gradient clipped to `grad_norm_clip`, one Adam per network.

Departures from on-policy, kept on purpose: the actor is PTDE's agent network (fc-ReLU-GRU-head;
on-policy has two fc-ReLU-LayerNorm layers and a LayerNorm after the GRU); the critic reads the
state ⊕ agent id, not SMAC's agent-specific state; a time-out bootstraps from its final state
(on-policy's default `use_proper_time_limits=False` treats it as a termination); stacked frames
are zero before the episode start (on-policy's env rolls the previous episode's frames in).
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

from ptde.data.datamodule import ReplayDataModule
from ptde.data.rollout_store import RolloutStore
from ptde.envs.base import EnvInfo
from ptde.errors import ConfigError
from ptde.learners.base import StageOneLearner
from ptde.learners.returns import gae_advantages_steps
from ptde.nn.agents import build_agent
from ptde.nn.critics import CentralizedValueNetwork, ValueNorm
from ptde.nn.global_info import build_global_info
from ptde.nn.policy import AgentNetwork, DecentralizedAgentNetwork, sample_from_policy


def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1.0)


def normalise_advantages(advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(A - mean) / (std + 1e-5) with the statistics of the entries where `mask` is 1 (on-policy
    takes them over the live agents' steps)."""
    mean = masked_mean(advantages, mask)
    std = masked_mean((advantages - mean) ** 2, mask).sqrt()
    return (advantages - mean) / (std + 1e-5)


def ppo_policy_loss(
    log_prob: torch.Tensor, old_log_prob: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, clip: float
) -> tuple[torch.Tensor, dict[str, float]]:
    """PPO's clipped surrogate, negated to minimise: -E[min(ρA, clip(ρ, 1-ε, 1+ε)A)], ρ = π/π_old.

    All arguments [B, T, n] (mask 1 on the agent-steps that count). Also returns the mean ratio and
    the fraction of agent-steps whose ratio was clipped.
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


def to_chunks(x: torch.Tensor, length: int) -> torch.Tensor:
    """[B, T, ...] -> [B*T/L, L, ...]: each env's rollout cut into consecutive chunks of L steps."""
    B, T = x.shape[:2]
    return x.reshape(B * (T // length), length, *x.shape[2:])


class DecentralizedActor(DecentralizedAgentNetwork):
    """`MAPPO_KD` execution: the actor's body with the student's μ'(o_i) as z_i; actions as the
    teacher draws them (sampled with probability ε, greedy at ε = 0)."""

    select_actions = staticmethod(sample_from_policy)


class MAPPOLearner(StageOneLearner):
    collects_steps = True

    def __init__(self, cfg: dict[str, Any], env_info: dict[str, Any]) -> None:
        super().__init__(cfg, env_info)
        algo, variant, info = self.algo, cfg["variant"], self.info
        input_dim = info.obs_dim + info.n_actions + info.n_agents
        global_info = build_global_info(variant, info, input_dim=input_dim)
        agent = build_agent(
            input_dim,
            algo["rnn_hidden_dim"],
            info.n_actions,
            0 if global_info is None else global_info.z_dim,
            algo["recurrent"],
            algo["stacked_frames"],
            algo["use_feature_normalization"],
            algo["gain"] if algo["use_orthogonal"] else None,
        )
        self.actor = AgentNetwork(info, algo["rnn_hidden_dim"], global_info, agent=agent)  # action logits
        self.critic = CentralizedValueNetwork(
            info.state_dim,
            info.n_agents,
            algo["critic_hidden_dim"],
            algo["recurrent"],
            algo["stacked_frames"],
            algo["use_feature_normalization"],
            algo["use_orthogonal"],
        )
        self.value_norm = ValueNorm()
        # the critic's state after the last rollout's final step, [B, n, C]: the next rollout continues it
        self.critic_carry: torch.Tensor | None = None

    @staticmethod
    def build_data(cfg: dict[str, Any], info: EnvInfo, seed: int) -> tuple[RolloutStore, ReplayDataModule]:
        """On-policy: a store of exactly one step-based rollout, read whole by every update."""
        a = cfg["algo"]
        if a["rollout_steps"] % a["data_chunk_length"]:
            raise ConfigError(
                f"algo.data_chunk_length ({a['data_chunk_length']}) must divide algo.rollout_steps "
                f"({a['rollout_steps']}): every update trains on whole chunks of the rollout"
            )
        if a["recurrent"] and a["stacked_frames"] != 1:
            raise ConfigError(
                f"algo.stacked_frames={a['stacked_frames']} needs algo.recurrent=false (on-policy stacks frames "
                "for its feed-forward mappo, the recurrent rmappo reads one frame)"
            )
        store = RolloutStore()
        return store, ReplayDataModule(store, 1, seed=seed)

    # ------------------------------------------------------------------ acting (`StageOneLearner`)
    decentralized_class = DecentralizedActor

    @property
    def acting_net(self) -> torch.nn.Module:
        """The actor: action logits [B, T, n, A]. A GIU/GIP actor reads the state when acting
        (centralized execution); the critic never acts."""
        return self.actor

    def acting_options(self) -> dict[str, Any]:
        return {"sample_z": False}  # z_i = μ_i (see the module docstring)

    def init_hidden(self, batch_size: int) -> torch.Tensor:
        """The actor's carried state before any step, [B, n, C]."""
        return self.actor.init_hidden(batch_size)

    select_actions = staticmethod(sample_from_policy)

    # ------------------------------------------------------------------ learning
    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        a = self.algo
        return [
            torch.optim.Adam(self.actor.parameters(), lr=a["lr"], eps=a["optim_eps"]),
            torch.optim.Adam(self.critic.parameters(), lr=a["critic_lr"], eps=a["optim_eps"]),
        ]

    def log_pi(
        self,
        inputs: torch.Tensor,
        state: torch.Tensor | None,
        avail: torch.Tensor,
        hidden: torch.Tensor | None = None,
        starts: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """log π(·|τ_i) over available actions: inputs [N, L, n, d] from state `hidden` [N, n, C], reset
        where `starts` [N, L] -> [N, L, n, A].

        Unavailable actions get a large negative logit (not -inf), so they carry probability 0
        and p·log p stays finite in the entropy.
        """
        logits, _, _ = self.actor(inputs, state, hidden, sample_z=False, starts=starts)
        return torch.log_softmax(logits.masked_fill(~avail, -1e10), dim=-1)

    def training_step(self, dataloader_iter: Iterator) -> None:
        batch, _, _ = next(dataloader_iter)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        actor_opt, critic_opt = self.optimizers()
        self.record(self.ppo_update(self.prepare_rollout(batch), actor_opt, critic_opt, self.manual_backward))
        self.counters.updates += 1

    @torch.no_grad()
    def critic_values(
        self, batch: dict[str, torch.Tensor], carry: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The pre-update critic over a rollout, continuing from `carry` [B, n, C] (None: zero).

        -> V(s_t) [B, T, n], V of what step t reached [B, T, n] (s_{t+1}; the final state where the
        episode was cut by the time limit; s_T at the end), both in the critic's (normalised) space,
        and the critic's carried state after every step [B, T+1, n, C].
        """
        state, starts, truncated = batch["state"], batch["starts"], batch["truncated"]  # [B, T+1, S], [B, T+1]
        T = truncated.shape[1]
        v_all, carried = self.critic(state, carry, starts)  # [B, T+1, n], [B, T+1, n, C]
        next_v = v_all[:, 1:].clone()
        cut = truncated.nonzero()  # [K, 2] (env, step) where the time limit ended an episode
        if cut.shape[0]:
            b, t = cut[:, 0], cut[:, 1]
            v_final, _ = self.critic(batch["final_state"][b, t].unsqueeze(1), carried[b, t])  # [K, 1, n]
            next_v[b, t] = v_final[:, 0]
        return v_all[:, :T], next_v, carried

    @torch.no_grad()
    def prepare_rollout(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor | None]:
        """Steps 1-2: what the PPO epochs read, from the networks that collected the rollout.

        Returns chunked tensors [N, L, ...] (N = B·T/L chunks of L = data_chunk_length steps): inputs,
        actor_state (None without GIU/GIP), critic_state, avail, actions, starts, policy_mask,
        value_mask, step_mask [N, L, n], old_log_prob, old_values (normalised space), advantages
        (normalised), returns (raw); actor_h0 and critic_h0 [N, n, C], the states at the chunk starts;
        dead_fraction [] (the share of valid agent-steps whose agent was dead, for the log). The critic's
        state after the rollout is kept for the next one.
        """
        a, n = self.algo, self.info.n_agents
        reward, terminated, truncated = batch["reward"], batch["terminated"], batch["truncated"]  # [B, T]
        B, T = reward.shape
        L = a["data_chunk_length"]
        carry = self.critic_carry if self.critic_carry is not None and self.critic_carry.shape[0] == B else None
        values, next_values, carried = self.critic_values(batch, carry)  # [B, T, n] x2, [B, T+1, n, C]
        self.critic_carry = carried[:, T - 1].detach()  # the next rollout starts at s_T
        if a["value_norm"]:
            values, next_values = self.value_norm.denormalize(values), self.value_norm.denormalize(next_values)
        ends = torch.maximum(terminated, truncated)
        advantages, returns = gae_advantages_steps(
            reward, terminated, ends, values, next_values, a["gamma"], a["gae_lambda"]
        )  # [B, T, n]
        step_mask = batch["valid"].unsqueeze(-1).expand(B, T, n)  # [B, T, n]
        active = batch["active"] * step_mask
        advantages = normalise_advantages(advantages, active)
        # the critic's state before each chunk's first step (zero where an episode starts there), [B, T/L, n, C]
        before = torch.cat([carried.new_zeros(B, 1, *carried.shape[2:]) if carry is None else carry[:, None],
                            carried[:, : T - 1]], dim=1)  # fmt: skip
        keep = (~batch["starts"][:, :T]).to(before.dtype)[:, :, None, None]
        critic_h0 = (before * keep)[:, ::L]
        old_values_n = self.value_norm.normalize(values) if a["value_norm"] else values
        r: dict[str, torch.Tensor | None] = {
            "inputs": to_chunks(batch["inputs"], L),
            "actor_state": to_chunks(batch["state"][:, :T], L) if self.actor.uses_state else None,
            "critic_state": to_chunks(batch["state"][:, :T], L),
            "avail": to_chunks(batch["avail_actions"], L),
            "actions": to_chunks(batch["actions"], L),
            "starts": to_chunks(batch["starts"][:, :T], L),
            "step_mask": to_chunks(step_mask, L),
            "policy_mask": to_chunks(active if a["use_policy_active_masks"] else step_mask, L),
            "value_mask": to_chunks(active if a["use_value_active_masks"] else step_mask, L),
            "old_values": to_chunks(old_values_n, L),
            "advantages": to_chunks(advantages, L),
            "returns": to_chunks(returns, L),
            "actor_h0": batch["hidden"][:, ::L].reshape(-1, *batch["hidden"].shape[2:]),  # [N, n, C]
            "critic_h0": critic_h0.reshape(-1, *critic_h0.shape[2:]),
            "dead_fraction": 1.0 - masked_mean(active, step_mask),  # []
        }
        r["old_log_prob"] = self.taken_log_prob(r, slice(None))[0]
        return r

    def taken_log_prob(self, r: dict[str, torch.Tensor | None], idx: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """log π(a_t|τ_t) of the taken actions [b, L, n] and log π(·|τ_t) [b, L, n, A] on chunks `idx`."""
        actor_state = None if r["actor_state"] is None else r["actor_state"][idx]
        log_pi = self.log_pi(r["inputs"][idx], actor_state, r["avail"][idx], r["actor_h0"][idx], r["starts"][idx])
        return log_pi.gather(-1, r["actions"][idx].unsqueeze(-1)).squeeze(-1), log_pi

    def actor_objective(
        self, r: dict[str, torch.Tensor | None], idx: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, dict[str, float]]:
        """(policy loss - entropy_coef · entropy, policy loss, entropy, stats) of chunks `idx`."""
        m = r["policy_mask"][idx]
        log_prob, log_pi = self.taken_log_prob(r, idx)
        entropy = masked_mean(-(log_pi.exp() * log_pi).sum(-1), m)
        policy_loss, stats = ppo_policy_loss(
            log_prob, r["old_log_prob"][idx], r["advantages"][idx], m, self.algo["clip_param"]
        )
        return policy_loss - self.algo["entropy_coef"] * entropy, policy_loss, entropy, stats

    def value_objective(self, r: dict[str, torch.Tensor | None], idx: Any) -> torch.Tensor:
        """The clipped value loss of chunks `idx`; the ValueNorm first takes their returns (on-policy)."""
        a = self.algo
        returns = r["returns"][idx]
        if a["value_norm"]:
            self.value_norm.update(returns, r["step_mask"][idx])
            targets = self.value_norm.normalize(returns)
        else:
            targets = returns
        new_values, _ = self.critic(r["critic_state"][idx], r["critic_h0"][idx], r["starts"][idx])  # [b, L, n]
        return clipped_value_loss(
            new_values, r["old_values"][idx], targets, r["value_mask"][idx], a["clip_param"], a["huber_delta"],
            a["clipped_value_loss"],
        )  # fmt: skip

    def ppo_update(
        self,
        r: dict[str, torch.Tensor | None],
        actor_opt: torch.optim.Optimizer,
        critic_opt: torch.optim.Optimizer,
        backward: Callable[[torch.Tensor], None] = torch.Tensor.backward,
    ) -> dict[str, float]:
        """Step 3: `ppo_epochs` passes over `num_mini_batch` minibatches of chunks."""
        a = self.algo
        N = r["inputs"].shape[0]
        totals: dict[str, float] = {}
        n_minibatches = 0
        for _ in range(a["ppo_epochs"]):
            for idx in torch.randperm(N, device=r["inputs"].device).chunk(a["num_mini_batch"]):
                actor_loss, policy_loss, entropy, pstats = self.actor_objective(r, idx)
                value_loss = self.value_objective(r, idx)
                critic_loss = a["value_loss_coef"] * value_loss
                if not (torch.isfinite(actor_loss) and torch.isfinite(critic_loss)):
                    raise self.non_finite(
                        f"PPO loss (actor {actor_loss.item()}, critic {critic_loss.item()})",
                        "env.reward_scale and algo.lr",
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
        stats["train/return_mean"] = masked_mean(r["returns"], r["step_mask"]).item()
        stats["train/dead_fraction"] = r["dead_fraction"].item()
        return stats
