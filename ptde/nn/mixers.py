"""Mixing networks: Q_tot from the agents' chosen Q values and the global state."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
        w1 = self.hyper_w1(s).abs().view(-1, self.n_agents, self.embed_dim)  # [BT, n, E]
        b1 = self.hyper_b1(s).view(-1, 1, self.embed_dim)  # [BT, 1, E]
        hidden = F.elu(torch.bmm(qs, w1) + b1)  # [BT, 1, E]
        w2 = self.hyper_w2(s).abs().view(-1, self.embed_dim, 1)  # [BT, E, 1]
        b2 = self.hyper_b2(s).view(-1, 1, 1)  # [BT, 1, 1]
        return (torch.bmm(hidden, w2) + b2).view(lead)


def build_mixer(kind: str, n_agents: int, state_dim: int, embed_dim: int, hypernet_embed: int) -> nn.Module:
    if kind == "vdn":
        return VDNMixer()
    if kind == "qmix":
        return QMixer(n_agents, state_dim, embed_dim, hypernet_embed)
    raise ValueError(f"unknown mixer {kind!r}; valid mixers: vdn, qmix")
