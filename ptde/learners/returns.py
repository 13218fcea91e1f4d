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


def gae_advantages(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    mask: torch.Tensor,
    values: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimates (Schulman et al. 2016) and the value targets they imply.

    reward, terminated, mask [B, T]; values [B, T+1, ...] (any trailing dims, e.g. one value per
    agent; index t+1 follows step t) -> advantages, returns [B, T, ...], returns = A + V.
    δ_t = r_t + γ(1 - term_t)V_{t+1} - V_t and A_t = δ_t + γλ(1 - term_t)A_{t+1}, where A_{t+1} is 0
    after an episode's last real step: a time-out bootstraps from the value of its final state, a
    termination does not, and padding is never read.
    """
    B, T = reward.shape
    extra = values.dim() - 2

    def per_step(x: torch.Tensor) -> torch.Tensor:  # [B] -> [B, 1, ...] to broadcast over values' trailing dims
        return x.view(B, *([1] * extra))

    adv = torch.empty_like(values[:, :T])
    next_adv = torch.zeros_like(values[:, 0])
    next_mask = torch.cat([mask[:, 1:], torch.zeros_like(mask[:, :1])], dim=1)  # [B, T]
    for t in range(T - 1, -1, -1):
        not_term = per_step(1.0 - terminated[:, t])
        delta = per_step(reward[:, t]) + gamma * not_term * values[:, t + 1] - values[:, t]
        next_adv = delta + gamma * gae_lambda * not_term * per_step(next_mask[:, t]) * next_adv
        adv[:, t] = next_adv
    return adv, adv + values[:, :T]
