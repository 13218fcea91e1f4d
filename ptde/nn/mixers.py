"""Mixing networks: Q_tot from the agents' chosen Q values and the global state.

VDN and QMIX are called as `mixer(agent_qs, state)`. A mixer that also reads the joint action
declares `uses_actions = True` (QPLEX) and is called as `mixer(agent_qs, state, actions_onehot,
max_qs)`, where max_qs are each agent's greedy Q_i over its available actions.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ptde.envs.base import EnvInfo
from ptde.plugins import MIXERS
from ptde.registry import choose


class VDNMixer(nn.Module):
    """Q_tot = sum_i Q_i (Sunehag et al. 2017)."""

    def forward(self, agent_qs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """agent_qs [B, T, n], state [B, T, S] -> [B, T]."""
        return agent_qs.sum(dim=-1)


class QMixer(nn.Module):
    """QMIX (Rashid et al. 2018) as PyMARL2 runs it: hypernetworks of the state produce
    non-negative weights (abs), ELU hidden layer, so dQ_tot/dQ_i >= 0 (monotonic)."""

    def __init__(self, n_agents: int, state_dim: int, embed_dim: int = 32, hypernet_embed: int = 64) -> None:
        super().__init__()
        self.n_agents = n_agents
        self.embed_dim = embed_dim
        self.hyper_w1 = nn.Sequential(
            nn.Linear(state_dim, hypernet_embed), nn.ReLU(), nn.Linear(hypernet_embed, n_agents * embed_dim)
        )
        self.hyper_b1 = nn.Linear(state_dim, embed_dim)
        self.hyper_w2 = nn.Sequential(
            nn.Linear(state_dim, hypernet_embed), nn.ReLU(), nn.Linear(hypernet_embed, embed_dim)
        )
        self.hyper_b2 = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.ReLU(), nn.Linear(embed_dim, 1))

    def forward(self, agent_qs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """agent_qs [B, T, n], state [B, T, S] -> [B, T]."""
        lead = agent_qs.shape[:-1]
        qs = agent_qs.reshape(-1, 1, self.n_agents)  # [BT, 1, n]
        s = state.reshape(-1, state.shape[-1])  # [BT, S]
        # the four hypernetworks' first layers all read s: one product with their weights stacked
        # (each output column the same number as from its own layer, gradients too; 0.6x the time)
        first = (self.hyper_w1[0], self.hyper_b1, self.hyper_w2[0], self.hyper_b2[0])
        out = F.linear(s, torch.cat([m.weight for m in first]), torch.cat([m.bias for m in first]))
        pre_w1, b1, pre_w2, pre_b2 = out.split([m.out_features for m in first], dim=-1)
        w1 = self.hyper_w1[2](F.relu(pre_w1)).abs().view(-1, self.n_agents, self.embed_dim)  # [BT, n, E]
        hidden = F.elu(torch.bmm(qs, w1) + b1.view(-1, 1, self.embed_dim))  # [BT, 1, E]
        w2 = self.hyper_w2[2](F.relu(pre_w2)).abs().view(-1, self.embed_dim, 1)  # [BT, E, 1]
        b2 = self.hyper_b2[2](F.relu(pre_b2)).view(-1, 1, 1)  # [BT, 1, 1]
        return (torch.bmm(hidden, w2) + b2).view(lead)


class QPLEXMixer(nn.Module):
    """QPLEX's duplex dueling mixer (Wang et al. 2020), as PyMARL2 runs it (`dmaq_qatten_learner`
    with the `DMAQer` mixer and `DMAQ_SI_Weight`, config `qplex.yaml`). The choices followed:

    - weighted head: each Q_i is first transformed per state, Q'_i = w_i(s)·Q_i + v_i(s) with
      w_i = |hyper_w_final(s)| + 1e-10 > 0 (2-layer hypernetworks of width `hypernet_embed`);
    - V_tot = Σ_i Q'_i(τ_i, a_i) and the advantage A'_i = Q'_i(a_i) - Q'_i(a_i*) >= 0 is
      detached (`is_stop_gradient`), so Q_i learns through V_tot only;
    - duplex weights λ_i(s, a) > 0: `num_kernel` (4) attention heads, each |key(s)|·σ(agents(s))·
      σ(action(s ⊕ a one-hot)), summed over heads; every extractor is Linear-ReLU-Linear of width
      `adv_hypernet_embed` (`adv_hypernet_layers: 2`);
    - Q_tot = V_tot + Σ_i (λ_i - 1)·A'_i (`is_minus_one`), i.e. Σ_i w_i max Q_i + v_i +
      Σ_i λ_i w_i (Q_i - max Q_i): the greedy joint action of Q_tot is each agent's greedy action
      (the IGM property), whatever the weights.

    PyMARL2 calls its mixer twice (the V part and the advantage part) and adds them; this returns
    the sum from one call. The learner gives it the taken (or, for targets, the double-Q chosen)
    actions and each agent's max Q_i over available actions, as PyMARL2 does.
    """

    uses_actions = True

    def __init__(
        self,
        n_agents: int,
        n_actions: int,
        state_dim: int,
        hypernet_embed: int = 64,
        adv_hypernet_embed: int = 64,
        num_kernel: int = 4,
    ) -> None:
        super().__init__()
        self.n_agents = n_agents
        self.n_actions = n_actions
        self.state_dim = state_dim

        def two_layer(inp: int, out: int, width: int) -> nn.Sequential:
            return nn.Sequential(nn.Linear(inp, width), nn.ReLU(), nn.Linear(width, out))

        self.hyper_w_final = two_layer(state_dim, n_agents, hypernet_embed)
        self.hyper_v = two_layer(state_dim, n_agents, hypernet_embed)
        w = adv_hypernet_embed
        self.key_heads = nn.ModuleList(two_layer(state_dim, 1, w) for _ in range(num_kernel))
        self.agent_heads = nn.ModuleList(two_layer(state_dim, n_agents, w) for _ in range(num_kernel))
        self.action_heads = nn.ModuleList(
            two_layer(state_dim + n_agents * n_actions, n_agents, w) for _ in range(num_kernel)
        )

    def duplex_weights(self, state: torch.Tensor, actions_onehot: torch.Tensor) -> torch.Tensor:
        """λ_i(s, a) > 0. state [N, S], actions_onehot [N, n*A] -> [N, n]."""
        state_action = torch.cat([state, actions_onehot], dim=-1)  # [N, S + n*A]
        lam = state.new_zeros(state.shape[0], self.n_agents)
        for key, agents, action in zip(self.key_heads, self.agent_heads, self.action_heads, strict=True):
            lam = lam + (key(state).abs() + 1e-10) * torch.sigmoid(agents(state)) * torch.sigmoid(action(state_action))
        return lam

    def forward(
        self, agent_qs: torch.Tensor, state: torch.Tensor, actions_onehot: torch.Tensor, max_qs: torch.Tensor
    ) -> torch.Tensor:
        """agent_qs [B, T, n], state [B, T, S], actions_onehot [B, T, n, A], max_qs [B, T, n] -> [B, T]."""
        lead = agent_qs.shape[:-1]
        n = self.n_agents
        s = state.reshape(-1, self.state_dim)  # [N, S]
        qs, max_q = agent_qs.reshape(-1, n), max_qs.reshape(-1, n)  # [N, n]
        w = self.hyper_w_final(s).abs() + 1e-10  # [N, n]
        v = self.hyper_v(s)  # [N, n]
        q_t, max_q_t = w * qs + v, w * max_q + v  # [N, n]
        v_tot = q_t.sum(-1)  # [N]
        adv = (q_t - max_q_t).detach()  # [N, n], <= 0
        lam = self.duplex_weights(s, actions_onehot.reshape(-1, n * self.n_actions))  # [N, n]
        adv_tot = (adv * (lam - 1.0)).sum(-1)  # [N]
        return (v_tot + adv_tot).view(lead)


# `algo.mixer` (declared in ptde.plugins.MIXERS) -> its builder(algo, info), sized from the env
def vdn_mixer(algo: dict[str, Any], info: EnvInfo) -> nn.Module:
    return VDNMixer()


def qmix_mixer(algo: dict[str, Any], info: EnvInfo) -> nn.Module:
    return QMixer(info.n_agents, info.state_dim, algo["mixing_embed_dim"], algo["hypernet_embed"])


def qplex_mixer(algo: dict[str, Any], info: EnvInfo) -> nn.Module:
    return QPLEXMixer(
        info.n_agents,
        info.n_actions,
        info.state_dim,
        algo["hypernet_embed"],
        algo["adv_hypernet_embed"],
        algo["num_kernel"],
    )


def build_mixer(algo: dict[str, Any], info: EnvInfo) -> nn.Module:
    """The mixer `algo.mixer` names, sized from the env."""
    return choose(MIXERS, str(algo["mixer"]), "algo.mixer")(algo, info)
