"""TD(λ) targets against an episode worked out by hand."""

import os
import subprocess
import sys

import pytest
import torch

from ptde.learners.returns import gae_advantages_steps, td_lambda_targets
from ptde.nn.cpp_kernels import load_kernel


def gae_advantages(
    reward: torch.Tensor,
    terminated: torch.Tensor,
    mask: torch.Tensor,
    values: torch.Tensor,
    gamma: float,
    gae_lambda: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The reference layout the tests read GAE in: generalised advantage estimates (Schulman et al. 2016) of padded whole episodes.

    reward, terminated, mask [B, T]; values [B, T+1, ...] (any trailing dims, e.g. one value per
    agent; index t+1 follows step t) -> advantages, returns [B, T, ...], returns = A + V.
    δ_t = r_t + γ(1 - term_t)V_{t+1} - V_t and A_t = δ_t + γλ(1 - term_t)A_{t+1}, where A_{t+1} is 0
    after an episode's last real step: a time-out bootstraps from the value of its final state, a
    termination does not, and padding is never read.
    """
    next_mask = torch.cat([mask[:, 1:], torch.zeros_like(mask[:, :1])], dim=1)  # [B, T]
    T = reward.shape[1]
    ends = torch.maximum(1.0 - next_mask, terminated)
    return gae_advantages_steps(reward, terminated, ends, values[:, :T], values[:, 1:], gamma, gae_lambda)


def test_td_lambda_terminated_episode_by_hand():
    gamma, lam = 0.9, 0.5
    # one episode of 3 real steps that terminates, padded to T = 4
    reward = torch.tensor([[1.0, 2.0, 3.0, 0.0]])
    terminated = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    q = torch.tensor([[10.0, 20.0, 30.0, 40.0, 50.0]])  # Q_0..Q_4
    g2 = 3.0  # terminal: no bootstrap
    g1 = 2.0 + gamma * ((1 - lam) * 30.0 + lam * g2)
    g0 = 1.0 + gamma * ((1 - lam) * 20.0 + lam * g1)
    out = td_lambda_targets(reward, terminated, mask, q, gamma, lam)
    torch.testing.assert_close(out[0, :3], torch.tensor([g0, g1, g2]))


def test_td_lambda_time_out_bootstraps_from_final_state():
    gamma, lam = 0.99, 0.6
    reward = torch.tensor([[0.5, 0.25]])
    terminated = torch.zeros(1, 2)
    mask = torch.ones(1, 2)
    q = torch.tensor([[1.0, 2.0, 4.0]])
    g1 = 0.25 + gamma * 4.0  # last step of a time-out: r + γ Q(final obs)
    g0 = 0.5 + gamma * ((1 - lam) * 2.0 + lam * g1)
    out = td_lambda_targets(reward, terminated, mask, q, gamma, lam)
    torch.testing.assert_close(out, torch.tensor([[g0, g1]]))


def test_td_lambda_ignores_padding_after_a_truncated_episode():
    """An episode cut short (mask ends without termination) bootstraps from Q at its end and
    never reads padded values, whatever they hold."""
    gamma, lam = 0.9, 0.5
    reward = torch.tensor([[1.0, 0.0, 0.0]])
    terminated = torch.zeros(1, 3)
    mask = torch.tensor([[1.0, 0.0, 0.0]])
    q1 = torch.tensor([[0.0, 5.0, 123.0, -77.0]])
    q2 = torch.tensor([[0.0, 5.0, -999.0, 999.0]])
    a = td_lambda_targets(reward, terminated, mask, q1, gamma, lam)[0, 0]
    b = td_lambda_targets(reward, terminated, mask, q2, gamma, lam)[0, 0]
    assert a.item() == b.item() == 1.0 + gamma * 5.0


def test_lambda_one_is_monte_carlo_and_zero_is_one_step():
    reward = torch.tensor([[1.0, 1.0, 1.0]])
    terminated = torch.tensor([[0.0, 0.0, 1.0]])
    mask = torch.ones(1, 3)
    q = torch.tensor([[7.0, 7.0, 7.0, 7.0]])
    mc = td_lambda_targets(reward, terminated, mask, q, 0.5, 1.0)
    torch.testing.assert_close(mc, torch.tensor([[1.75, 1.5, 1.0]]))
    one_step = td_lambda_targets(reward, terminated, mask, q, 0.5, 0.0)
    torch.testing.assert_close(one_step, torch.tensor([[4.5, 4.5, 1.0]]))


def test_gae_terminated_episode_by_hand():
    """GAE of a 3-step episode that terminates (padded to T = 4), one value per agent."""
    gamma, lam = 0.9, 0.5
    reward = torch.tensor([[1.0, 0.0, 2.0, 0.0]])
    terminated = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    # agent 0's values V_0..V_4, agent 1's = 2 x agent 0's; V_3, V_4 follow the end and must not count
    v0 = torch.tensor([0.5, 1.0, 1.5, 9.0, -9.0])
    values = torch.stack([v0, 2 * v0], dim=-1).unsqueeze(0)  # [1, 5, 2]
    adv, ret = gae_advantages(reward, terminated, mask, values, gamma, lam)
    assert adv.shape == ret.shape == (1, 4, 2)
    for i, scale in enumerate((1.0, 2.0)):
        v = v0 * scale
        a2 = 2.0 - v[2]  # terminal: δ_2 = r_2 - V_2
        a1 = (0.0 + gamma * v[2] - v[1]) + gamma * lam * a2
        a0 = (1.0 + gamma * v[1] - v[0]) + gamma * lam * a1
        torch.testing.assert_close(adv[0, :3, i], torch.stack([a0, a1, a2]))
        torch.testing.assert_close(ret[0, :3, i], torch.stack([a0, a1, a2]) + v[:3])


def test_gae_time_out_bootstraps_and_ignores_padding():
    gamma, lam = 0.99, 0.95
    reward = torch.tensor([[0.5, 0.25, 0.0]])
    terminated = torch.zeros(1, 3)
    mask = torch.tensor([[1.0, 1.0, 0.0]])  # time-out after 2 steps
    a = torch.tensor([[1.0, 2.0, 4.0, 123.0]])
    b = torch.tensor([[1.0, 2.0, 4.0, -77.0]])
    adv_a, _ = gae_advantages(reward, terminated, mask, a, gamma, lam)
    adv_b, _ = gae_advantages(reward, terminated, mask, b, gamma, lam)
    a1 = 0.25 + gamma * 4.0 - 2.0  # bootstraps from the value of the final state
    a0 = 0.5 + gamma * 2.0 - 1.0 + gamma * lam * a1
    torch.testing.assert_close(adv_a[0, :2], torch.tensor([a0, a1]))
    torch.testing.assert_close(adv_a[0, :2], adv_b[0, :2])


def random_episodes(g: torch.Generator, B: int, T: int, dtype: torch.dtype) -> tuple[torch.Tensor, ...]:
    """reward, terminated, mask [B, T] and target_q [B, T+1] of B padded episodes, some terminated."""
    lengths = torch.randint(1, T + 1, (B,), generator=g)
    mask = (torch.arange(T) < lengths[:, None]).to(dtype)
    terminated = torch.zeros(B, T, dtype=dtype)
    ends = torch.rand(B, generator=g) < 0.6
    terminated[torch.arange(B)[ends], lengths[ends] - 1] = 1.0
    reward = torch.randn(B, T, generator=g, dtype=dtype) * 3 * mask
    return reward, terminated, mask, torch.randn(B, T + 1, generator=g, dtype=dtype) * 10


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_td_lambda_kernel_equals_the_loop_bit_for_bit(dtype) -> None:
    """The C++ recursion rounds as the ATen loop does, operation by operation: equal, not close."""
    assert load_kernel("td_lambda")
    g = torch.Generator().manual_seed(0)
    for trial in range(60):
        B, T = int(torch.randint(1, 140, (1,), generator=g)), int(torch.randint(1, 260, (1,), generator=g))
        gamma, lam = (
            (0.99, 0.6) if trial < 10 else (float(torch.rand(1, generator=g)), float(torch.rand(1, generator=g)))
        )
        args = random_episodes(g, B, T, dtype)
        fast = td_lambda_targets(*args, gamma, lam)
        assert torch.equal(fast, td_lambda_targets(*args, gamma, lam, kernel=False)), (trial, B, T, gamma, lam)
    view = torch.randn(4, 2 * 31, dtype=dtype)[:, ::2]  # a strided target_q [4, 31]
    args = random_episodes(g, 4, 30, dtype)[:3]
    assert torch.equal(td_lambda_targets(*args, view, 0.9, 0.5), td_lambda_targets(*args, view, 0.9, 0.5, kernel=False))


def test_td_lambda_with_gradients_runs_the_loop() -> None:
    """Targets that need a gradient (a learner that differentiates through them) keep autograd."""
    g = torch.Generator().manual_seed(1)
    reward, terminated, mask, target_q = random_episodes(g, 3, 12, torch.float32)
    target_q.requires_grad_(True)
    out = td_lambda_targets(reward, terminated, mask, target_q, 0.99, 0.6)
    out.sum().backward()
    assert out.grad_fn is not None and target_q.grad is not None and target_q.grad.abs().sum() > 0


def test_td_lambda_without_a_compiler_runs_the_loop(tmp_path) -> None:
    code = (
        "import torch; from ptde.learners.returns import td_lambda_targets\n"
        "r = torch.tensor([[1.0, 2.0]]); z = torch.zeros(1, 2); m = torch.ones(1, 2)\n"
        "print(td_lambda_targets(r, z, m, torch.zeros(1, 3), 0.5, 0.0).tolist())\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "CXX": "no-such-compiler"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "[[1.0, 2.0]]" in proc.stdout  # λ = 0: one-step targets r_t + γ·0
    assert "no C++ compiler (no-such-compiler) on PATH; the td_lambda kernel falls back to Python" in proc.stderr
