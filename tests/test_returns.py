"""TD(λ) targets against an episode worked out by hand."""

import torch

from ptde.learners.returns import gae_advantages_steps, td_lambda_targets


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
