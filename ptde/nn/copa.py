"""COPA's coach and players (Liu et al. 2021, "Coach-Player Multi-Agent Reinforcement Learning
for Dynamic Team Composition", ICML; reference code Cranial-XIX/marl-copa).

- Coach (Section 4.1): multi-head attention over all units' information gives each player i a
  hidden vector, from which a Gaussian strategy z_i ~ N(μ_i, diag σ²_i) (log σ² clamped to
  [-10, 0] as in the reference) is sampled with the reparameterisation trick. This framework's
  envs give no per-unit split of the state, so the units' information is the n agents' local
  inputs o_i plus the global state s as one more token; queries are the agents' tokens.
- Players: the shared fc-ReLU-GRU agent, Q_i(τ_i, z_i, ·) = Linear([ReLU(Linear(h_i)), z_i]).
- Communication (Section 4.3): the coach speaks only every `interval` (T) steps; between two
  messages a player keeps its last strategy. At execution the adaptive rule also holds a message
  back when it changed little: agent i receives the new z_i only if ‖z_new − z_old‖₂ > threshold
  (the reference's test-time rule; threshold 0 sends every T steps). Training follows the
  reference: z at step t is the coach's strategy sampled at the last multiple of T.
- Variational objective (Section 4.2, Eq. 6–7): a posterior q_φ(z_i | o_{i,t}, a_{i,t}) must
  recover the strategy from what the player then observed and did, for every step t of the
  strategy's period, which ties z to behaviour (a lower bound on their mutual information); the
  coach's entropy is added with weight 1/10 of the objective's, as in the reference. The
  reference's posterior attends over all entities; here it is an MLP of the agent's own input
  and action (the paper conditions on the agent's trajectory).

The acting hidden state carries (GRU state, current strategies, step counter), so a rollout's
one-step `act` calls know when the coach speaks.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ptde.envs.base import EnvInfo
from ptde.nn.agents import RNNAgent

CopaHidden = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # GRU [B, n, H], z [B, 1, n, Z], step [B]


class Coach(nn.Module):
    """Multi-head attention over the agents' tokens and a state token -> Gaussian z_i per agent."""

    def __init__(self, input_dim: int, state_dim: int, hidden_dim: int, n_heads: int) -> None:
        super().__init__()
        self.agent_encode = nn.Linear(input_dim, hidden_dim)
        self.state_encode = nn.Linear(state_dim, hidden_dim)
        self.attention = nn.MultiheadAttention(hidden_dim, n_heads, batch_first=True)
        self.mean = nn.Linear(hidden_dim, hidden_dim)
        self.log_var = nn.Linear(hidden_dim, hidden_dim)

    def forward(self, inputs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """inputs [B, K, n, d], state [B, K, S] -> z, μ, log σ² [B, K, n, Z]."""
        B, K, n, _ = inputs.shape
        agents = self.agent_encode(inputs).reshape(B * K, n, -1)  # [BK, n, H]
        units = F.leaky_relu(torch.cat([agents, self.state_encode(state).reshape(B * K, 1, -1)], dim=1))  # [BK, n+1, H]
        h, _ = self.attention(units[:, :n], units, units, need_weights=False)  # [BK, n, H]: agents attend to all
        h = h.reshape(B, K, n, -1)
        mu, log_var = self.mean(h), self.log_var(h).clamp(-10.0, 0.0)
        return mu + (0.5 * log_var).exp() * torch.randn_like(mu), mu, log_var


class StrategyPosterior(nn.Module):
    """q_φ(z_i | o_{i,t}, a_{i,t}): a Gaussian over the strategy from one step of the player."""

    def __init__(self, input_dim: int, n_actions: int, hidden_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(input_dim + n_actions, hidden_dim), nn.ReLU())
        self.mean = nn.Linear(hidden_dim, hidden_dim)
        self.log_var = nn.Linear(hidden_dim, hidden_dim)

    def forward(self, inputs: torch.Tensor, actions_onehot: torch.Tensor) -> torch.distributions.Normal:
        """inputs [..., d], actions_onehot [..., A] -> Normal over z [..., Z]."""
        x = self.net(torch.cat([inputs, actions_onehot], dim=-1))
        return torch.distributions.Normal(self.mean(x), (0.5 * self.log_var(x).clamp(-10.0, 0.0)).exp())


class COPAQNetwork(nn.Module):
    uses_state = True  # the coach reads every unit's information at execution

    def __init__(
        self, info: EnvInfo, rnn_hidden_dim: int, coach_dim: int, n_heads: int, interval: int, threshold: float
    ) -> None:
        super().__init__()
        if interval < 1:
            raise ValueError(f"the communication interval must be at least 1 step, got {interval}")
        self.n_agents = info.n_agents
        self.interval = interval
        self.threshold = threshold
        input_dim = info.obs_dim + info.n_actions + info.n_agents
        self.coach = Coach(input_dim, info.state_dim, coach_dim, n_heads)
        self.agent = RNNAgent(input_dim, rnn_hidden_dim, info.n_actions, z_dim=coach_dim)
        self.posterior = StrategyPosterior(input_dim, info.n_actions, coach_dim)

    def forward(
        self,
        inputs: torch.Tensor,
        state: torch.Tensor | None,
        hidden: CopaHidden | None = None,
        valid: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, CopaHidden | torch.Tensor, dict[str, torch.Tensor]]:
        """One acting step (T = 1, hidden carried between calls) or a whole episode from t = 0.

        inputs [B, T, n, d], state [B, T, S] -> Q [B, T, n, A], hidden, extras. For a whole
        episode, extras holds the coach's (z, μ, log σ²) [B, K, n, Z] at steps 0, T, 2T, ...
        """
        if state is None:
            raise ValueError("COPA's coach reads the global state")
        if inputs.shape[1] == 1:
            return self.step(inputs, state, hidden)
        if hidden is not None:
            raise ValueError("a COPA sequence is unrolled from the episode start (hidden=None)")
        T = inputs.shape[1]
        z_k, mu_k, log_var_k = self.coach(inputs[:, :: self.interval], state[:, :: self.interval])  # [B, K, n, Z]
        z = z_k.repeat_interleave(self.interval, dim=1)[:, :T]  # [B, T, n, Z]: last message at each step
        h, h_last = self.agent.encode(inputs)  # [B, T, n, H]
        return self.agent.head(h, z), h_last, {"z": z_k, "mu": mu_k, "log_var": log_var_k}

    def step(
        self, inputs: torch.Tensor, state: torch.Tensor, hidden: CopaHidden | None
    ) -> tuple[torch.Tensor, CopaHidden, dict[str, torch.Tensor]]:
        """inputs [B, 1, n, d], state [B, 1, S]: the coach speaks when step % interval == 0, and
        agent i takes the new strategy only if it moved more than `threshold` (or it has none)."""
        B = inputs.shape[0]
        if hidden is None:
            rnn_h, z, t = None, None, torch.zeros(B, dtype=torch.long, device=inputs.device)
        else:
            rnn_h, z, t = hidden
        speaks = t % self.interval == 0  # [B]
        if bool(speaks.any()):
            z_new, _, _ = self.coach(inputs, state)  # [B, 1, n, Z]
            if z is None:
                z = z_new
            else:
                moved = (z_new - z).norm(dim=-1) > self.threshold  # [B, 1, n]
                send = speaks.view(B, 1, 1) & moved
                z = torch.where(send.unsqueeze(-1), z_new, z)
        h, h_last = self.agent.encode(inputs, rnn_h)  # [B, 1, n, H]
        return self.agent.head(h, z), (h_last, z, t + 1), {}


def variational_sum(
    net: COPAQNetwork,
    inputs: torch.Tensor,
    actions: torch.Tensor,
    mask: torch.Tensor,
    extras: dict[str, torch.Tensor],
    n_actions: int,
) -> torch.Tensor:
    """Σ over acting steps and agents of −log q_φ(z_i | o_{i,t}, a_{i,t}) − ⅒·H[coach], where z_i is
    the strategy in force at step t (gradients reach the coach through z, as in the reference).

    inputs [B, T+1, n, d], actions [B, T, n], mask [B, T] -> scalar.
    """
    T = actions.shape[1]
    z = extras["z"].repeat_interleave(net.interval, dim=1)[:, :T]  # [B, T, n, Z]
    q = net.posterior(inputs[:, :T], F.one_hot(actions, n_actions).float())
    log_q = q.log_prob(z).sum(-1)  # [B, T, n]
    nll = -(log_q * mask.unsqueeze(-1)).sum()
    coach = torch.distributions.Normal(extras["mu"], (0.5 * extras["log_var"]).exp())
    speaks = mask[:, :: net.interval]  # [B, K']: messages sent at real steps (K' <= K)
    entropy = (coach.entropy()[:, : speaks.shape[1]].sum(-1) * speaks.unsqueeze(-1)).sum()
    return nll - 0.1 * entropy
