"""CTDS's two agent networks (Zhao et al. 2022, "CTDS: Centralized Teacher with Decentralized
Student for Multi-Agent Reinforcement Learning", IEEE ToG; arXiv 2203.08412).

- Teacher: Q^T_i(τ_i, s, ·), the shared fc-ReLU-GRU agent whose per-step input is the agent's
  local input o_i (observation ⊕ last action ⊕ id) concatenated with global information. The paper
  gives the teacher the observations of all agents; this framework's global information is the
  state s (as for GIU/GIP), so the teacher reads o_i ⊕ s. It is trained by the mixer's TD loss
  (the paper's Eq. for L_TD with QMIX) and acts during training, as in the paper.
- Student: Q^S_i(τ_i, ·), the same agent architecture on o_i alone, trained *during* stage 1 to
  regress the teacher's individual Q values on the replayed episodes (the paper's distillation
  loss L_KD = Σ_i Σ_a (Q^S_i − Q^T_i)², teacher detached). The student executes after training.

`CTDSStudentActor` is the execution policy: its `act` has no state parameter at all.
"""

from __future__ import annotations

import torch
from torch import nn

from ptde.envs.base import EnvInfo
from ptde.nn.agents import RNNAgent


class CTDSQNetwork(nn.Module):
    """Teacher (acts, TD-trained) and student (distilled) side by side; forward runs the teacher."""

    uses_state = True  # the teacher is the acting policy during training

    def __init__(self, info: EnvInfo, rnn_hidden_dim: int) -> None:
        super().__init__()
        self.n_agents = info.n_agents
        self.input_dim = info.obs_dim + info.n_actions + info.n_agents
        self.teacher = RNNAgent(self.input_dim + info.state_dim, rnn_hidden_dim, info.n_actions)
        self.student = RNNAgent(self.input_dim, rnn_hidden_dim, info.n_actions)

    @staticmethod
    def teacher_inputs(inputs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """o_i [B, T, n, d] ⊕ s [B, T, S] -> [B, T, n, d + S]."""
        n = inputs.shape[-2]
        return torch.cat([inputs, state.unsqueeze(-2).expand(*state.shape[:-1], n, state.shape[-1])], dim=-1)

    def forward(
        self,
        inputs: torch.Tensor,
        state: torch.Tensor | None,
        hidden: torch.Tensor | None = None,
        valid: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor]]:
        """Teacher: inputs [B, T, n, d], state [B, T, S] -> Q^T [B, T, n, A], hidden [B, n, H], {}."""
        if state is None:
            raise ValueError("the CTDS teacher reads the global state")
        h, h_last = self.teacher.encode(self.teacher_inputs(inputs, state), hidden)  # [B, T, n, H]
        return self.teacher.head(h), h_last, {}

    def student_q(self, inputs: torch.Tensor, hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Student: inputs [B, T, n, d] -> Q^S [B, T, n, A], hidden [B, n, H]; no state anywhere."""
        h, h_last = self.student.encode(inputs, hidden)
        return self.student.head(h), h_last


def distillation_sum(student_q: torch.Tensor, teacher_q: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Σ over acting steps of Σ_i Σ_a (Q^S_i − Q^T_i)²; the teacher is a fixed target.

    student_q, teacher_q [B, T, n, A], mask [B, T] -> scalar.
    """
    sq = (student_q - teacher_q.detach()).pow(2).sum(dim=(-1, -2))  # [B, T]
    return (sq * mask).sum()


class CTDSStudentActor(nn.Module):
    """Decentralized execution of CTDS: the student alone. `act` takes no state."""

    uses_state = False

    def __init__(self, student: RNNAgent) -> None:
        super().__init__()
        self.student = student

    @torch.no_grad()
    def act(self, inputs: torch.Tensor, hidden: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [B, 1, n, d] -> Q^S [B, 1, n, A], hidden [B, n, H]."""
        h, h_last = self.student.encode(inputs, hidden)
        return self.student.head(h), h_last
