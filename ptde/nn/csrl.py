"""CSRL's commander (Chen et al. 2022, "Commander-Soldiers Reinforcement Learning for
Cooperative Multi-Agent Systems", IJCNN).

The commander reads the global state and issues each soldier (agent) its own specific
information c_i; the soldier's Q head conditions on it, Q_i = Linear([ReLU(Linear(h_i)), c_i]),
and the commander runs at execution too (centralized execution).

Where the paper leaves the commander's form open we follow the PTDE authors' CSRL
(chenyiqun/ptde-open, `CSRLCoachNet`): a hypernetwork of the agent's local input o_i generates
the weights W(o_i) [|s| × c] and bias b(o_i) [c], and c_i = ELU(sᵀW(o_i) + b(o_i)), used as it is
(deterministic: no distribution, no noise). That is GIP's Agent-Personalization embedding without
its distribution head, so it reuses `GIPModule.embedding` (factored form, see ptde/nn/global_info.py).
"""

from __future__ import annotations

import torch

from ptde.envs.base import EnvInfo
from ptde.nn.global_info import GIPModule
from ptde.nn.policy import AgentNetwork


class CommanderModule(GIPModule):
    """c_i = ELU(sᵀW(o_i) + b(o_i)) for every agent; returned as a zero-variance distribution so
    `AgentNetwork` uses it unchanged (z = μ + 0·ε = c_i)."""

    def __init__(self, input_dim: int, state_dim: int, info_dim: int, hyper_hidden_dim: int) -> None:
        super().__init__(input_dim, state_dim, info_dim, hyper_hidden_dim, var_floor=0.0)
        self.head = None  # deterministic specific information: GIP's distribution head is not used

    def forward(self, inputs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [B, T, n, d], state [B, T, S] -> (c [B, T, n, c], zeros [B, T, n, c])."""
        c = self.embedding(inputs, state)
        return c, torch.zeros_like(c)


def build_csrl_network(info: EnvInfo, rnn_hidden_dim: int, info_dim: int, hyper_hidden_dim: int) -> AgentNetwork:
    """Soldiers (the shared RNN agent) whose Q head reads the commander's c_i."""
    input_dim = info.obs_dim + info.n_actions + info.n_agents
    return AgentNetwork(info, rnn_hidden_dim, CommanderModule(input_dim, info.state_dim, info_dim, hyper_hidden_dim))
