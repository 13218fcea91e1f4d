"""MAPPO's centralized value function and the running normaliser of its targets.

The critic sees the global state, never the agents' observations: it is used only in training,
so execution stays decentralized whatever it reads.
"""

from __future__ import annotations

import torch
from torch import nn

from ptde.nn.agents import build_agent


class CentralizedValueNetwork(nn.Module):
    """V_i(s_0..s_t) for every agent i: fc-ReLU-GRU-Linear over the history of global states.

    As MAPPO's recurrent critic, with parameters shared across agents and the agent id one-hot
    appended to the state (the env gives one global state; the id lets the agents' values differ,
    in place of SMAC's agent-specific state). Its body is the actor's kind (`build_agent`): the
    recurrent agent, or the feed-forward one over stacked states, with a one-output head
    (orthogonal init at gain 1, as on-policy's `v_out`).
    """

    def __init__(
        self,
        state_dim: int,
        n_agents: int,
        hidden_dim: int,
        recurrent: bool = True,
        stacked_frames: int = 1,
        feature_norm: bool = False,
        orthogonal: bool = False,
    ) -> None:
        super().__init__()
        self.n_agents = n_agents
        self.net = build_agent(
            state_dim + n_agents, hidden_dim, 1, 0, recurrent, stacked_frames, feature_norm, 1.0 if orthogonal else None
        )

    @property
    def carry_dim(self) -> int:
        return self.net.carry_dim

    def forward(
        self, state: torch.Tensor, hidden: torch.Tensor | None = None, starts: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """state [B, T, S], hidden [B, n, C] -> values [B, T, n] (in the normalised space when ValueNorm is
        on) and the carried state after every step [B, T, n, C]; `starts` [B, T] resets it."""
        B, T, _ = state.shape
        n = self.n_agents
        ids = torch.eye(n, dtype=state.dtype, device=state.device).expand(B, T, n, n)
        x = torch.cat([state.unsqueeze(2).expand(B, T, n, state.shape[-1]), ids], dim=-1)  # [B, T, n, S+n]
        h, carried = self.net.unroll(x, hidden, starts)  # [B, T, n, H], [B, T, n, C]
        return self.net.head(h).squeeze(-1), carried


class ValueNorm(nn.Module):
    """Running mean and variance of the value targets (MAPPO's ValueNorm, PopArt without the
    output rescaling): the critic regresses normalised returns, GAE reads denormalised values.

    Debiased exponential moving averages with weight `beta` per update; the variance is floored
    at 1e-2. The statistics are buffers, so they travel in checkpoints.
    """

    def __init__(self, beta: float = 0.99999, epsilon: float = 1e-5) -> None:
        super().__init__()
        self.beta = beta
        self.epsilon = epsilon
        self.register_buffer("running_mean", torch.zeros(()))
        self.register_buffer("running_mean_sq", torch.zeros(()))
        self.register_buffer("debiasing_term", torch.zeros(()))

    def mean_var(self) -> tuple[torch.Tensor, torch.Tensor]:
        debias = self.debiasing_term.clamp(min=self.epsilon)
        mean = self.running_mean / debias
        var = (self.running_mean_sq / debias - mean**2).clamp(min=1e-2)
        return mean, var

    @torch.no_grad()
    def update(self, x: torch.Tensor, mask: torch.Tensor) -> None:
        """Fold in the masked entries of x (mask broadcastable to x, 1 = real)."""
        mask = mask.expand_as(x)
        n = mask.sum().clamp(min=1.0)
        batch_mean = (x * mask).sum() / n
        batch_mean_sq = (x**2 * mask).sum() / n
        b = self.beta
        self.running_mean.mul_(b).add_(batch_mean * (1.0 - b))
        self.running_mean_sq.mul_(b).add_(batch_mean_sq * (1.0 - b))
        self.debiasing_term.mul_(b).add_(1.0 - b)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, var = self.mean_var()
        return (x - mean) / var.sqrt()

    def denormalize(self, x: torch.Tensor) -> torch.Tensor:
        mean, var = self.mean_var()
        return x * var.sqrt() + mean
