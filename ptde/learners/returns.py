"""Return targets shared by the learners."""

from __future__ import annotations

import torch

from ptde.nn.cpp_kernels import load_kernel


def td_lambda_targets(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    mask: torch.Tensor,
    target_q: torch.Tensor,
    gamma: float,
    td_lambda: float,
    kernel: bool = True,
) -> torch.Tensor:
    """TD(λ) targets of Q_tot, as PyMARL2's `build_td_lambda_targets`.

    reward, terminated, mask [B, T]; target_q [B, T+1] (bootstrap values, index t+1 follows step t)
    -> G [B, T], with G_t = r_t + γ(1 - term_t)[(1 - λ) Q_{t+1} + λ G_{t+1}].
    After an episode's last real step (mask_{t+1} = 0), or at the end of the sequence,
    G_{t+1} is replaced by Q_{t+1}: a time-out bootstraps, a termination cuts the return.

    On the CPU, without gradients, the recursion runs in C++ (ptde/nn/csrc/td_lambda.cpp: the same
    arithmetic, equal bit for bit); elsewhere, without a compiler or with `kernel=False`, as a loop
    of ATen ops over time (any device, dtype or autograd).
    """
    inputs = (reward, terminated, mask, target_q)
    if (
        kernel
        and all(x.device.type == "cpu" and x.dtype == reward.dtype for x in inputs)
        and reward.dtype in (torch.float32, torch.float64)
        and not (torch.is_grad_enabled() and any(x.requires_grad for x in inputs))
        and load_kernel("td_lambda")
    ):
        return torch.ops.ptde_td_lambda.targets(reward, terminated, mask, target_q, gamma, td_lambda)
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


def gae_advantages_steps(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    ends: torch.Tensor,
    values: torch.Tensor,
    next_values: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """GAE over a step-based rollout, where an env's row holds the ends and starts of several episodes.

    reward, terminated, ends [B, T] (ends: the episode ends at step t, by termination or time-out, or
    the rollout stops there); values [B, T, ...] = V(s_t); next_values [B, T, ...] = the value of what
    step t reached (s_{t+1}, or the final state of an episode that ended at t) -> advantages, returns.
    δ_t = r_t + γ(1 - term_t)V'_t - V_t and A_t = δ_t + γλ(1 - ends_t)A_{t+1}.
    """
    B, T = reward.shape
    extra = values.dim() - 2

    def per_step(x: torch.Tensor) -> torch.Tensor:  # [B] -> [B, 1, ...] to broadcast over values' trailing dims
        return x.view(B, *([1] * extra))

    adv = torch.empty_like(values)
    next_adv = torch.zeros_like(values[:, 0])
    for t in range(T - 1, -1, -1):
        delta = per_step(reward[:, t]) + gamma * per_step(1.0 - terminated[:, t]) * next_values[:, t] - values[:, t]
        next_adv = delta + gamma * gae_lambda * per_step(1.0 - ends[:, t]) * next_adv
        adv[:, t] = next_adv
    return adv, adv + values
