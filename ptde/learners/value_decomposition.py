"""Stage 1 for value decomposition (VDN, QMIX, QPLEX) with any global-information variant.

Reads top to bottom like PyMARL2's NQLearner: unroll the agents over the sampled episodes, pick
the chosen Q_i, mix them into Q_tot, build TD(λ) targets from the target networks with double Q,
minimise the masked 0.5·TD² and hard-update the targets every `target_update_interval` episodes
(or, with `target_update_tau` > 0, move them by tau toward the online nets after every update).
Env interaction happens in `ptde.callbacks.EnvInteractionCallback`; this module only learns.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from ptde.data.buffer import BUFFER_DTYPES, EpisodeReplayBuffer
from ptde.data.datamodule import ReplayDataModule, replay_batch_size
from ptde.envs.base import EnvInfo
from ptde.learners.base import RunCounters, StageOneLearner
from ptde.learners.precision import resolve_precision, update_autocast
from ptde.learners.returns import td_lambda_targets
from ptde.nn.global_info import build_global_info
from ptde.nn.mixers import build_mixer
from ptde.nn.policy import AgentNetwork, build_agent_inputs, previous_actions_onehot

__all__ = ["RunCounters", "ValueDecompositionLearner"]


class ValueDecompositionLearner(StageOneLearner):
    def __init__(self, cfg: dict[str, Any], env_info: dict[str, Any]) -> None:
        super().__init__(cfg, env_info)
        algo, variant, info = self.algo, cfg["variant"], self.info
        self.q_net = self.build_q_net(algo, variant, info)
        self.mixer = build_mixer(algo, info)
        self.target_q_net = copy.deepcopy(self.q_net).requires_grad_(False)
        self.target_mixer = copy.deepcopy(self.mixer).requires_grad_(False)
        trainer = cfg.get("trainer") or {}
        self.precision = resolve_precision(trainer.get("precision", "32-true"), trainer.get("accelerator", "cpu"))

    @staticmethod
    def build_q_net(algo: dict[str, Any], variant: dict[str, Any], info: EnvInfo) -> torch.nn.Module:
        """The agent network (its target is a copy): the shared RNN agent plus the variant's GIU/GIP.

        Baselines that swap the agent network (CTDS, COPA, CSRL) override this; the network's
        `forward(inputs, state, hidden, valid=...)` returns (Q [B, T, n, A], hidden, extras).
        """
        global_info = build_global_info(variant, info, input_dim=info.obs_dim + info.n_actions + info.n_agents)
        return AgentNetwork(info, algo["rnn_hidden_dim"], global_info)

    @staticmethod
    def build_data(cfg: dict[str, Any], info: EnvInfo, seed: int) -> tuple[EpisodeReplayBuffer, ReplayDataModule]:
        """Off-policy: a FIFO replay of whole episodes, sampled uniformly each update."""
        algo = cfg["algo"]
        buffer = EpisodeReplayBuffer(algo["buffer_size"], info, BUFFER_DTYPES[str(algo["buffer_dtype"])])
        return buffer, ReplayDataModule(buffer, replay_batch_size(cfg["algo"], cfg["trainer"]), seed=seed)

    @property
    def acting_net(self) -> torch.nn.Module:
        """Q_i [B, T, n, A] of every agent (with GIU/GIP, z_i sampled from N(μ_i, σ_i²))."""
        return self.q_net

    # ------------------------------------------------------------------ learning
    def configure_optimizers(self) -> torch.optim.Optimizer:
        params = list(self.q_net.parameters()) + list(self.mixer.parameters())
        return torch.optim.Adam(params, lr=self.algo["lr"])

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        """Masked 0.5·TD² over the sampled episodes.

        Episodes are sorted by length and processed in chunks of `update_chunk`, each cut to its
        own longest episode: a batch of mostly short episodes then costs little more than its real
        steps (the loss is the same as over the whole padded batch).
        """
        mask = batch["mask"]  # [B, T]
        lengths = mask.sum(1)
        # a network that computes only the real steps (`ragged`) has no padding to cut: one chunk
        B = mask.shape[0]
        chunk = B if getattr(self.q_net, "ragged", False) else (self.algo["update_chunk"] or B)
        order = lengths.argsort(descending=True)
        sq_sum = mask.new_zeros(())
        aux_sum = mask.new_zeros(())
        totals = {"q_taken": 0.0, "target": 0.0, "td_abs": 0.0}
        for idx in order.split(chunk) if chunk < B else [slice(None)]:  # one chunk: no reordering copy
            t_max = int(lengths[idx].max().item())
            sub = {
                k: v[idx, : t_max + 1 if k in ("obs", "state", "avail_actions") else t_max] for k, v in batch.items()
            }
            chunk_sq, chunk_aux, chunk_totals = self._td_squares(sub)
            sq_sum = sq_sum + chunk_sq
            aux_sum = aux_sum + chunk_aux
            for k, v in chunk_totals.items():
                totals[k] += v
        n_steps = mask.sum()
        td_loss = 0.5 * sq_sum / n_steps
        aux_loss = aux_sum / n_steps
        loss = td_loss + aux_loss
        steps = n_steps.item()
        stats = {
            "train/td_loss": td_loss.item(),
            "train/q_taken_mean": totals["q_taken"] / (steps * self.info.n_agents),
            "train/target_mean": totals["target"] / steps,
            "train/td_error_abs": totals["td_abs"] / steps,
        }
        if aux_sum.requires_grad:
            stats["train/aux_loss"] = aux_loss.item()
        return loss, stats

    def _td_squares(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor, dict[str, float]]:
        """Σ masked TD² of a batch of episodes, Σ of the learner's auxiliary loss (0 for plain
        value decomposition; see `auxiliary_sum`), and sums for the logged statistics."""
        obs, state, avail = batch["obs"], batch["state"], batch["avail_actions"]  # [B, T+1, ...]
        actions, reward = batch["actions"], batch["reward"]  # [B, T, n], [B, T]
        terminated, mask = batch["terminated"], batch["mask"]  # [B, T]
        T1 = obs.shape[1]
        inputs = build_agent_inputs(obs, previous_actions_onehot(actions, self.info.n_actions, T1))
        net_state = state if self.q_net.uses_state else None
        length = mask.sum(1, keepdim=True)  # [B, 1] real steps of each episode
        if getattr(self.q_net, "ragged", False):
            # ragged networks compute each episode's real steps and the observation after its last one
            where = {"lengths": length.squeeze(1).long() + 1}
        else:
            # positions the loss reads: where an agent acts (mask), and after a step that bootstraps
            # (not terminated); the global-info module skips the rest (padding, terminal observations)
            zeros = torch.zeros_like(mask[:, :1])
            acting = torch.cat([mask, zeros], dim=1)  # [B, T+1]
            bootstrap = torch.cat([zeros, mask * (1.0 - terminated)], dim=1)  # [B, T+1]
            where = {"valid": (acting + bootstrap) > 0}
        with update_autocast(self.precision, mask.device.type):
            q, _, extras = self.q_net(inputs, net_state, **where)  # [B, T+1, n, A]
        q = q.float()
        chosen_q = q[:, :-1].gather(-1, actions.unsqueeze(-1)).squeeze(-1)  # [B, T, n]
        with torch.no_grad():
            with update_autocast(self.precision, mask.device.type):
                target_q, _, _ = self.target_q_net(inputs, net_state, **where)  # [B, T+1, n, A]
            target_q = target_q.float()
            select_from = q.detach() if self.algo["double_q"] else target_q
            best = select_from.masked_fill(~avail, float("-inf")).argmax(-1, keepdim=True)  # [B, T+1, n, 1]
            target_max_q = target_q.gather(-1, best).squeeze(-1)  # [B, T+1, n]
            observed = torch.arange(T1, device=mask.device) <= length  # [B, T+1] t <= length
            target_tot = self.mix(self.target_mixer, target_max_q, state, best, target_q, avail, observed)  # [B, T+1]
            targets = td_lambda_targets(
                reward, terminated, mask, target_tot, self.algo["gamma"], self.algo["td_lambda"]
            )
        chosen_tot = self.mix(
            self.mixer, chosen_q, state[:, :-1], actions.unsqueeze(-1), q.detach()[:, :-1], avail[:, :-1], mask > 0
        )  # [B, T]
        td_error = (chosen_tot - targets) * mask
        totals = {
            "q_taken": (chosen_q.detach() * mask.unsqueeze(-1)).sum().item(),
            "target": (targets * mask).sum().item(),
            "td_abs": td_error.detach().abs().sum().item(),
        }
        return td_error.pow(2).sum(), self.auxiliary_sum(batch, inputs, q, extras), totals

    def auxiliary_sum(
        self, batch: dict[str, torch.Tensor], inputs: torch.Tensor, q: torch.Tensor, extras: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """Σ over the batch's steps of a loss added to the TD loss (divided by the step count like
        it). `q` [B, T+1, n, A] and `extras` are what the online agent network returned. None here;
        CTDS adds its student's distillation loss, COPA its variational objective."""
        return batch["mask"].new_zeros(())

    def mix(
        self,
        mixer: torch.nn.Module,
        agent_qs: torch.Tensor,
        state: torch.Tensor,
        actions: torch.Tensor,
        q: torch.Tensor,
        avail: torch.Tensor,
        where: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Q_tot [B, T] of agent_qs [B, T, n]. A mixer that reads the joint action (`uses_actions`,
        QPLEX) also gets the actions [B, T, n, 1] as one-hots and each agent's greedy value max Q_i
        of q [B, T, n, A] over its available actions (0 where none is, i.e. padding).

        `where` [B, T] bool: the positions the loss reads; the mixer (a function of each position
        alone) runs on them only and Q_tot is 0 elsewhere, so padding costs nothing."""
        if where is not None:
            lead = agent_qs.shape[:2]
            idx = where.reshape(-1).nonzero().squeeze(1)  # [P]

            def pick(x: torch.Tensor) -> torch.Tensor:  # [B, T, ...] -> [1, P, ...]
                return x.reshape(-1, *x.shape[2:]).index_select(0, idx).unsqueeze(0)

            joint = (actions, q, avail)  # read by a mixer of the joint action only
            if getattr(mixer, "uses_actions", False):
                joint = tuple(pick(x) for x in joint)
            picked = self.mix(mixer, pick(agent_qs), pick(state), *joint)  # [1, P]
            return picked.new_zeros(lead.numel()).index_copy(0, idx, picked[0]).view(lead)
        if not getattr(mixer, "uses_actions", False):
            return mixer(agent_qs, state)
        onehot = F.one_hot(actions.squeeze(-1), self.info.n_actions).float()  # [B, T, n, A]
        max_q = q.masked_fill(~avail, float("-inf")).amax(-1)  # [B, T, n]
        max_q = torch.where(avail.any(-1), max_q, torch.zeros_like(max_q))
        return mixer(agent_qs, state, onehot, max_q)

    def training_step(self, dataloader_iter: Iterator) -> None:
        batch, _, _ = next(dataloader_iter)
        batch = {k: v.to(self.device) for k, v in batch.items()}
        loss, stats = self.compute_loss(batch)
        if not torch.isfinite(loss):
            raise self.non_finite(
                f"TD loss ({loss.item()})", "the env's rewards (env.reward_scale) and algo.lr" + self.variance_hint()
            )
        opt = self.optimizers()
        opt.zero_grad()
        self.manual_backward(loss)
        params = [p for g in opt.param_groups for p in g["params"]]
        grad_norm = torch.nn.utils.clip_grad_norm_(params, self.algo["grad_norm_clip"])
        if not torch.isfinite(grad_norm):
            raise self.non_finite(f"gradient norm ({float(grad_norm)})", "algo.lr" + self.variance_hint())
        opt.step()
        stats["train/grad_norm"] = float(grad_norm)
        self.counters.updates += 1
        for k, v in stats.items():
            self.pending_metrics.setdefault(k, []).append(v)
        self.update_targets_on_schedule()

    def variance_hint(self) -> str:
        """For a GIU/GIP run without a ceiling on σ²: a σ² head whose output passed exp's range ends
        a run this way (docs/ptde.md), so the message names the knob."""
        variant = self.hparams["cfg"]["variant"]
        if variant["name"] == "none" or variant.get("var_ceiling") is not None:
            return ""
        return ", and variant.var_ceiling (GIU/GIP's σ² = exp(head output) has no ceiling by default)"

    def update_targets_on_schedule(self) -> None:
        """After each update: a soft update when `target_update_tau` > 0, else the hard copy once
        `target_update_interval` episodes have passed since the last one (PyMARL2's schedule)."""
        c = self.counters
        if self.algo["target_update_tau"] > 0:
            self.soft_update_targets(self.algo["target_update_tau"])
        elif (c.episodes - c.last_target_update_episode) >= self.algo["target_update_interval"]:
            self.update_targets()
            c.last_target_update_episode = c.episodes

    def update_targets(self) -> None:
        self.target_q_net.load_state_dict(self.q_net.state_dict())
        self.target_mixer.load_state_dict(self.mixer.state_dict())

    @torch.no_grad()
    def soft_update_targets(self, tau: float) -> None:
        for target, online in ((self.target_q_net, self.q_net), (self.target_mixer, self.mixer)):
            for t, o in zip(target.state_dict().values(), online.state_dict().values(), strict=True):
                if t.is_floating_point():
                    t.lerp_(o, tau)  # t <- t + tau (o - t)
                else:
                    t.copy_(o)
