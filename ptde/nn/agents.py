"""The per-agent recurrent Q network shared by all agents (parameter sharing, agent id in input).

h_i comes from fc-ReLU-GRU over the local input history. The Q head is PyMARL's single Linear
when the agent sees no global information, and the authors' PTDE head otherwise:
Q_i = Linear([ReLU(Linear(h_i)), z_i]).
"""

from __future__ import annotations

import torch
from torch import nn


class QHead(nn.Module):
    def __init__(self, hidden_dim: int, n_actions: int, z_dim: int = 0) -> None:
        super().__init__()
        self.z_dim = z_dim
        if z_dim == 0:
            self.out = nn.Linear(hidden_dim, n_actions)
        else:
            self.fc = nn.Linear(hidden_dim, hidden_dim)
            self.out = nn.Linear(hidden_dim + z_dim, n_actions)

    def forward(self, h: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """h [..., H], z [..., z] -> Q [..., A]."""
        if self.z_dim == 0:
            return self.out(h)
        if z is None:
            raise ValueError("this Q head was built for global information z but got none")
        return self.out(torch.cat([torch.relu(self.fc(h)), z], dim=-1))


class RNNAgent(nn.Module):
    """fc-ReLU-GRU encoder of the local input history plus a Q head.

    The recurrence is an `nn.GRU` (same maths as PyMARL's GRUCell) so a whole stored sequence is
    unrolled in one C++ call during training; acting feeds sequences of length 1.
    """

    def __init__(self, input_dim: int, hidden_dim: int, n_actions: int, z_dim: int = 0) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.rnn = nn.GRU(hidden_dim, hidden_dim, batch_first=True)
        self.head = QHead(hidden_dim, n_actions, z_dim)

    def encode(self, inputs: torch.Tensor, hidden: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [B, T, n, d], hidden [B, n, H] -> h [B, T, n, H], h_T [B, n, H].

        The n agents share the network: their histories run as B*n sequences of the GRU.
        """
        B, T, n, d = inputs.shape
        x = torch.relu(self.fc1(inputs.permute(0, 2, 1, 3).reshape(B * n, T, d)))  # [B*n, T, H]
        h0 = None if hidden is None else hidden.reshape(1, B * n, -1).contiguous()
        h, h_last = self.rnn(x, h0)
        return h.view(B, n, T, -1).permute(0, 2, 1, 3), h_last.view(B, n, -1)
