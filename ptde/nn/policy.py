"""The agents' network (PyMARL's "controller"): agent inputs -> one output per agent and action, read
as Q values by the value-decomposition learners and as action logits by MAPPO's actor.

Local agent input o_i = observation ⊕ last action one-hot ⊕ agent id one-hot. When the variant
gives agents global information, a global-information module turns (o_i, s) into z_i, which the
Q head concatenates; the plain CTDE policy never looks at the state.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ptde.envs.base import EnvInfo
from ptde.nn.agents import FeedForwardAgent, RNNAgent
from ptde.nn.ragged_gru import RaggedLayout


def build_agent_inputs(obs: torch.Tensor, last_actions_onehot: torch.Tensor) -> torch.Tensor:
    """obs [..., n, o], last_actions_onehot [..., n, A] -> o_i [..., n, o + A + n].

    Written part by part into one tensor (an update's batch is tens of MB: one pass, not a cat's)."""
    n, o, A = obs.shape[-2], obs.shape[-1], last_actions_onehot.shape[-1]
    out = obs.new_empty(*obs.shape[:-1], o + A + n)
    out[..., :o] = obs
    out[..., o : o + A] = last_actions_onehot
    out[..., o + A :] = torch.eye(n, dtype=obs.dtype, device=obs.device)
    return out


def previous_actions_onehot(actions: torch.Tensor, n_actions: int, steps: int) -> torch.Tensor:
    """actions [B, T, n] -> last-action one-hots [B, steps, n, A] float (zeros at t = 0)."""
    B, T, n = actions.shape
    out = torch.zeros(B, steps, n, n_actions, device=actions.device)
    k = min(steps - 1, T)
    out[:, 1 : k + 1].scatter_(-1, actions[:, :k].unsqueeze(-1), 1.0)
    return out


def epsilon_greedy(
    q: torch.Tensor, avail: torch.Tensor, epsilon: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """q [B, n, A], avail [B, n, A] bool -> actions [B, n]; each agent explores independently."""
    masked = q.masked_fill(~avail, float("-inf"))
    greedy = masked.argmax(dim=-1)
    if epsilon <= 0.0:
        return greedy
    probs = avail.float().reshape(-1, avail.shape[-1])
    random_actions = torch.multinomial(probs, 1, generator=generator).view(greedy.shape)
    explore = torch.rand(greedy.shape, generator=generator) < epsilon
    return torch.where(explore, random_actions, greedy)


def sample_from_policy(
    logits: torch.Tensor, avail: torch.Tensor, epsilon: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """logits [B, n, A], avail [B, n, A] bool -> actions [B, n] of a stochastic policy.

    Each agent's action is drawn from its categorical π over available actions with probability
    ε, else it is π's most probable action: ε = 1 is on-policy sampling (MAPPO's training
    rollouts), ε = 0 acts greedily (tests). ε plays the same role as in `epsilon_greedy`, with π
    in place of the uniform exploration distribution.
    """
    masked = logits.masked_fill(~avail, float("-inf"))
    greedy = masked.argmax(dim=-1)
    if epsilon <= 0.0:
        return greedy
    probs = torch.softmax(masked, dim=-1).reshape(-1, masked.shape[-1])
    sampled = torch.multinomial(probs, 1, generator=generator).view(greedy.shape)
    if epsilon >= 1.0:
        return sampled
    explore = torch.rand(greedy.shape, generator=generator) < epsilon
    return torch.where(explore, sampled, greedy)


class AgentNetwork(nn.Module):
    """Shared RNN agent (+ optional global-information module) over all n agents; its outputs are Q
    values or, for MAPPO's actor, action logits."""

    def __init__(
        self,
        info: EnvInfo,
        rnn_hidden_dim: int,
        global_info: nn.Module | None = None,
        agent: RNNAgent | FeedForwardAgent | None = None,
    ) -> None:
        """`agent`: a body built elsewhere (MAPPO's, with on-policy's options); default PyMARL's RNN agent."""
        super().__init__()
        self.n_agents = info.n_agents
        self.n_actions = info.n_actions
        self.input_dim = info.obs_dim + info.n_actions + info.n_agents
        self.global_info = global_info
        z_dim = 0 if global_info is None else global_info.z_dim
        self.agent = agent if agent is not None else RNNAgent(self.input_dim, rnn_hidden_dim, info.n_actions, z_dim)

    @property
    def uses_state(self) -> bool:
        return self.global_info is not None

    def init_hidden(self, batch_size: int) -> torch.Tensor:
        return torch.zeros(batch_size, self.n_agents, self.agent.carry_dim, device=self.agent.fc1.weight.device)

    def global_distribution(
        self, inputs: torch.Tensor, state: torch.Tensor, valid: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(μ, σ²) [B, T, n, z] of the global-information module.

        With `valid` [B, T] bool, only valid timesteps are computed (padding is most of a batch
        of short episodes); the rest hold μ = 0, σ² = 1 and are masked out by the loss.
        """
        if valid is None:
            return self.global_info(inputs, state)
        B, T, n, d = inputs.shape
        idx = valid.reshape(-1).nonzero().squeeze(1)  # [V]
        mu_v, var_v = self.global_info(
            inputs.reshape(B * T, n, d)[idx].unsqueeze(0), state.reshape(B * T, -1)[idx].unsqueeze(0)
        )  # [1, V, n, z]
        z = mu_v.shape[-1]
        mu = inputs.new_zeros(B * T, n, z).index_copy(0, idx, mu_v[0])
        var = inputs.new_ones(B * T, n, z).index_copy(0, idx, var_v[0])
        return mu.view(B, T, n, z), var.view(B, T, n, z)

    def forward(
        self,
        inputs: torch.Tensor,
        state: torch.Tensor | None,
        hidden: torch.Tensor | None = None,
        sample_z: bool = True,
        valid: torch.Tensor | None = None,
        starts: torch.Tensor | None = None,
        lengths: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor]]:
        """inputs [B, T, n, d], state [B, T, S] -> Q [B, T, n, A], hidden [B, n, H], extras.

        `extras` holds the global-information distribution (mu, var) when there is one.
        z is sampled (rsample) as the authors do, also when acting greedily.
        `starts` [B, T] bool: episodes begin there (a step-based rollout); the agent's state is zeroed.
        `lengths` [B]: each sequence's real steps (from its start, no hidden state carried in); only
        they are computed (`forward_ragged`), Q is 0 after them and `hidden` is not returned.
        """
        if lengths is not None:
            return self.forward_ragged(inputs, state, lengths, sample_z)
        h, h_last = self.agent.encode(inputs, hidden, starts)  # [B, T, n, H], [B, n, H]
        extras: dict[str, torch.Tensor] = {}
        z = None
        if self.global_info is not None:
            if state is None:
                raise ValueError("this policy's global-information module needs the state")
            mu, var = self.global_distribution(inputs, state, valid)  # [B, T, n, z] each
            z = mu + var.sqrt() * torch.randn_like(mu) if sample_z else mu
            extras = {"mu": mu, "var": var}
        q = self.agent.head(h, z)  # [B, T, n, A]
        return q, h_last, extras

    @property
    def ragged(self) -> bool:
        """Whether `forward(..., lengths=)` computes only the real steps (the recurrent agent can)."""
        return isinstance(self.agent, RNNAgent)

    def forward_ragged(
        self, inputs: torch.Tensor, state: torch.Tensor | None, lengths: torch.Tensor, sample_z: bool = True
    ) -> tuple[torch.Tensor, None, dict[str, torch.Tensor]]:
        """The training forward over whole episodes: inputs [B, T, n, d], state [B, T, S], lengths [B]
        -> Q [B, T, n, A] (0 after each episode's last step), None, extras with the global
        information's mu and var as rows [R, z] (rows in `extras["layout"]`'s order).

        Why: an update's episodes differ in length and padding is most of a padded batch; here the
        agent body, the GIP/GIU module and the Q head see the real steps alone (`RaggedLayout`).
        """
        B, T, n, d = inputs.shape
        layout = RaggedLayout.of(lengths, T, n, inputs.device)
        x = layout.gather(inputs)  # [R, d]
        h = self.agent.encode_rows(x, layout.counts)  # [R, H]
        extras: dict[str, Any] = {"layout": layout}
        z = None
        if self.global_info is not None:
            if state is None:
                raise ValueError("this policy's global-information module needs the state")
            P = x.shape[0] // n
            s = layout.gather_steps(state)  # [P, S], one state per episode-step
            mu, var = self.global_info(x.view(1, P, n, d), s.unsqueeze(0))  # [1, P, n, z] each
            mu, var = mu.reshape(P * n, -1), var.reshape(P * n, -1)  # [R, z]
            z = mu + var.sqrt() * torch.randn_like(mu) if sample_z else mu
            extras |= {"mu": mu, "var": var}
        with torch.autocast(device_type=h.device.type, enabled=False):  # Q in fp32 under bf16-mixed
            q = self.agent.head(h.float(), None if z is None else z.float())  # [R, A]
        return layout.scatter(q), None, extras


class DecentralizedAgentNetwork(nn.Module):
    """Execution after distillation (`*_KD`): the student's μ'(o_i) replaces the teacher's z_i.

    Its interface has no state argument at all: nothing global can reach the policy.
    """

    uses_state = False

    def __init__(self, agent: RNNAgent | FeedForwardAgent, student: nn.Module, noise_var: float = 0.0) -> None:
        super().__init__()
        self.agent = agent
        self.student = student
        self.noise_var = noise_var  # the authors add Normal noise with σ² = var_floor; 0 = deterministic

    @torch.no_grad()
    def act(self, inputs: torch.Tensor, hidden: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [B, 1, n, d] -> Q [B, 1, n, A], hidden [B, n, H]."""
        h, h_last = self.agent.encode(inputs, hidden)  # [B, 1, n, H], [B, n, H]
        z = self.student(inputs)  # [B, T, n, z]
        if self.noise_var > 0:
            z = z + self.noise_var**0.5 * torch.randn_like(z)
        return self.agent.head(h, z), h_last
