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

    def encode(self, inputs: torch.Tensor, h0: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [N, T, d], h0 [N, H] -> h [N, T, H], h_T [N, H]."""
        x = torch.relu(self.fc1(inputs))  # [N, T, H]
        h, h_last = self.rnn(x, None if h0 is None else h0.unsqueeze(0).contiguous())
        return h, h_last.squeeze(0)
