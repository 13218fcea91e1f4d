"""Return targets shared by the learners."""

from __future__ import annotations

import torch


def td_lambda_targets(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    mask: torch.Tensor,
    target_q: torch.Tensor,
    gamma: float,
    td_lambda: float,
) -> torch.Tensor:
    """TD(λ) targets of Q_tot, as PyMARL2's `build_td_lambda_targets`.

    reward, terminated, mask [B, T]; target_q [B, T+1] (bootstrap values, index t+1 follows step t)
    -> G [B, T], with G_t = r_t + γ(1 - term_t)[(1 - λ) Q_{t+1} + λ G_{t+1}].
    After an episode's last real step (mask_{t+1} = 0), or at the end of the sequence,
    G_{t+1} is replaced by Q_{t+1}: a time-out bootstraps, a termination cuts the return.
    """
    B, T = reward.shape
    out = torch.empty_like(reward)
    g = target_q[:, T]
    next_mask = torch.cat([mask[:, 1:], torch.zeros_like(mask[:, :1])], dim=1)  # [B, T]
    for t in range(T - 1, -1, -1):
        q_next = target_q[:, t + 1]
        g_next = torch.where(next_mask[:, t] > 0, g, q_next)
        g = reward[:, t] + gamma * (1.0 - terminated[:, t]) * ((1.0 - td_lambda) * q_next + td_lambda * g_next)
        out[:, t] = g
    return out
