"""The per-agent networks shared by all agents (parameter sharing, agent id in input).

h_i comes from fc-ReLU-GRU over the local input history. The Q head is PyMARL's single Linear
when the agent sees no global information, and the authors' PTDE head otherwise:
Q_i = Linear([ReLU(Linear(h_i)), z_i]).

MAPPO adds on-policy's options (marlbenchmark/on-policy): a LayerNorm on the inputs
(`use_feature_normalization`), orthogonal initialisation with zero biases and a small gain on the
output layer (`use_orthogonal`, `gain`), resets of the recurrent state inside a sequence (a
step-based rollout holds several episodes per env), and a feed-forward body over stacked frames
(`FeedForwardAgent`, on-policy's non-recurrent `mappo`). Built without them, `RNNAgent` is the
PyMARL network, parameter for parameter and draw for draw.
"""

from __future__ import annotations

import torch
from torch import nn

from ptde.nn.ragged_gru import ragged_gru

RELU_GAIN = nn.init.calculate_gain("relu")


def orthogonal_init_(layer: nn.Linear, gain: float) -> nn.Linear:
    """on-policy's `init`: orthogonal weights scaled by `gain`, zero bias."""
    nn.init.orthogonal_(layer.weight, gain=gain)
    nn.init.zeros_(layer.bias)
    return layer


class QHead(nn.Module):
    def __init__(self, hidden_dim: int, n_actions: int, z_dim: int = 0) -> None:
        super().__init__()
        self.z_dim = z_dim
        if z_dim == 0:
            self.out = nn.Linear(hidden_dim, n_actions)
        else:
            self.fc = nn.Linear(hidden_dim, hidden_dim)
            self.out = nn.Linear(hidden_dim + z_dim, n_actions)

    def init_orthogonal(self, gain: float) -> None:
        """Hidden layer at ReLU's gain, output layer at `gain` (0.01 for a policy: near-uniform π at start)."""
        if self.z_dim:
            orthogonal_init_(self.fc, RELU_GAIN)
        orthogonal_init_(self.out, gain)

    def forward(self, h: torch.Tensor, z: torch.Tensor | None = None) -> torch.Tensor:
        """h [..., H], z [..., z] -> Q [..., A]."""
        if self.z_dim == 0:
            return self.out(h)
        if z is None:
            raise ValueError("this Q head was built for global information z but got none")
        return self.out(torch.cat([torch.relu(self.fc(h)), z], dim=-1))


def steps_since_start(starts: torch.Tensor) -> torch.Tensor:
    """starts [B, T] bool (an episode begins at t) -> steps since the latest start at or before t, [B, T]
    (a large number where no episode starts in [0, t]: the sequence continues one from before)."""
    T = starts.shape[1]
    t = torch.arange(T, device=starts.device).expand_as(starts)
    last = torch.where(starts, t, torch.full_like(t, -1)).cummax(dim=1).values
    return torch.where(last >= 0, t - last, torch.full_like(t, 1 << 30))


class RNNAgent(nn.Module):
    """fc-ReLU-GRU encoder of the local input history plus a Q head.

    The recurrence is an `nn.GRU` (same maths as PyMARL's GRUCell) so a whole stored sequence is
    unrolled in one C++ call during training; acting feeds sequences of length 1, run through the
    GRU's cell (the same numbers without nn.GRU's per-call overhead).
    """

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        n_actions: int,
        z_dim: int = 0,
        feature_norm: bool = False,
        orthogonal_gain: float | None = None,
    ) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.fc1 = nn.Linear(input_dim, hidden_dim)
        self.rnn = nn.GRU(hidden_dim, hidden_dim, batch_first=True)
        self.head = QHead(hidden_dim, n_actions, z_dim)
        self.feature_norm = nn.LayerNorm(input_dim) if feature_norm else None
        if orthogonal_gain is not None:
            orthogonal_init_(self.fc1, RELU_GAIN)
            for name, p in self.rnn.named_parameters():
                if "bias" in name:
                    nn.init.zeros_(p)
                else:
                    nn.init.orthogonal_(p)
            self.head.init_orthogonal(orthogonal_gain)

    @property
    def carry_dim(self) -> int:
        """Size of the per-agent state a rollout carries from step to step."""
        return self.hidden_dim

    def encode(
        self, inputs: torch.Tensor, hidden: torch.Tensor | None = None, starts: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [B, T, n, d], hidden [B, n, H] -> h [B, T, n, H], h_T [B, n, H].

        The n agents share the network: their histories run as B*n sequences of the GRU.
        `starts` [B, T] bool zeroes the recurrent state before every step that begins an episode.
        """
        B, T, n, d = inputs.shape
        if self.feature_norm is not None:
            inputs = self.feature_norm(inputs)
        x = torch.relu(self.fc1(inputs.permute(0, 2, 1, 3).reshape(B * n, T, d)))  # [B*n, T, H]
        h0 = None if hidden is None else hidden.reshape(1, B * n, -1).contiguous()
        if starts is None and T == 1 and x.device.type == "cpu":
            # one step (acting): the GRU's cell, the same arithmetic as nn.GRU on one step (bit for
            # bit on the CPU) without its per-call overhead, ~50 µs of every env step
            rnn = self.rnn
            h_prev = x.new_zeros(B * n, self.hidden_dim) if h0 is None else h0[0]
            h_last = torch.gru_cell(x[:, 0], h_prev, rnn.weight_ih_l0, rnn.weight_hh_l0, rnn.bias_ih_l0, rnn.bias_hh_l0)
            h = h_last.unsqueeze(1)  # [B*n, 1, H]
        elif starts is None:
            h, h_last = self.rnn(x, h0)
        else:
            h, h_last = self._run_with_resets(x, h0, starts.repeat_interleave(n, dim=0))
        return h.view(B, n, T, -1).permute(0, 2, 1, 3), h_last.view(B, n, -1)

    def encode_rows(self, rows: torch.Tensor, counts: list[int]) -> torch.Tensor:
        """rows [R, d] of a `RaggedLayout` (real steps only, from each episode's start) -> h [R, H].
        The same function as `encode` on the padded batch, computed on the real steps alone."""
        if self.feature_norm is not None:
            rows = self.feature_norm(rows)
        return ragged_gru(self.rnn, torch.relu(self.fc1(rows)), counts)  # [R, H]

    def _run_with_resets(
        self, x: torch.Tensor, h0: torch.Tensor | None, starts: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """x [N, T, H], starts [N, T]: one GRU call per stretch in which no sequence starts an episode."""
        N, T, _ = x.shape
        h = x.new_zeros(1, N, self.hidden_dim) if h0 is None else h0
        cuts = (starts[:, 1:].any(dim=0).nonzero().squeeze(1) + 1).tolist()
        bounds = [0, *cuts, T]
        keep = (~starts).to(x.dtype)  # [N, T]
        outs = []
        for s, e in zip(bounds[:-1], bounds[1:], strict=True):
            out, h = self.rnn(x[:, s:e], (h * keep[:, s].view(1, N, 1)).contiguous())
            outs.append(out)
        return torch.cat(outs, dim=1), h

    def unroll(
        self, inputs: torch.Tensor, hidden: torch.Tensor | None = None, starts: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """-> features [B, T, n, H] and the carried state after every step [B, T, n, H] (the GRU's
        output is its state)."""
        h, _ = self.encode(inputs, hidden, starts)
        return h, h


class FeedForwardAgent(nn.Module):
    """on-policy's non-recurrent body: fc-ReLU-fc-ReLU over the last `stacked_frames` inputs
    (`--use_stacked_frames`), frames from before the episode start zero. Its carried state is the
    previous k-1 inputs, so rollouts carry and reset it exactly as they do an RNN's hidden state."""

    def __init__(
        self,
        input_dim: int,
        hidden_dim: int,
        n_actions: int,
        z_dim: int = 0,
        stacked_frames: int = 1,
        feature_norm: bool = False,
        orthogonal_gain: float | None = None,
    ) -> None:
        super().__init__()
        if stacked_frames < 1:
            raise ValueError(f"stacked_frames must be >= 1, got {stacked_frames}")
        self.frames = stacked_frames
        self.input_dim = input_dim
        self.hidden_dim = hidden_dim
        d = input_dim * stacked_frames
        self.fc1 = nn.Linear(d, hidden_dim)
        self.fc2 = nn.Linear(hidden_dim, hidden_dim)
        self.head = QHead(hidden_dim, n_actions, z_dim)
        self.feature_norm = nn.LayerNorm(d) if feature_norm else None
        if orthogonal_gain is not None:
            orthogonal_init_(self.fc1, RELU_GAIN)
            orthogonal_init_(self.fc2, RELU_GAIN)
            self.head.init_orthogonal(orthogonal_gain)

    @property
    def carry_dim(self) -> int:
        return (self.frames - 1) * self.input_dim

    def stack(
        self, inputs: torch.Tensor, hidden: torch.Tensor | None, starts: torch.Tensor | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [B, T, n, d], hidden [B, n, (k-1)d] (oldest frame first) -> stacked [B, T, n, kd] and
        the carried frames after every step [B, T, n, (k-1)d]."""
        B, T, n, d = inputs.shape
        k = self.frames
        if hidden is None:
            hidden = inputs.new_zeros(B, n, (k - 1) * d)
        past = hidden.view(B, n, k - 1, d).permute(0, 2, 1, 3)  # [B, k-1, n, d]
        seq = torch.cat([past, inputs], dim=1)  # [B, k-1+T, n, d]
        since = None if starts is None else steps_since_start(starts)  # [B, T]
        frames = []
        for back in range(k - 1, -1, -1):  # oldest first
            f = seq[:, k - 1 - back : k - 1 - back + T]  # frame t - back, [B, T, n, d]
            if since is not None:
                f = f * (back <= since).to(f.dtype)[:, :, None, None]  # not from an earlier episode
            frames.append(f)
        stacked = torch.cat(frames, dim=-1)
        return stacked, stacked[..., d:]

    def unroll(
        self, inputs: torch.Tensor, hidden: torch.Tensor | None = None, starts: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        x, carried = self.stack(inputs, hidden, starts)
        if self.feature_norm is not None:
            x = self.feature_norm(x)
        return torch.relu(self.fc2(torch.relu(self.fc1(x)))), carried

    def encode(
        self, inputs: torch.Tensor, hidden: torch.Tensor | None = None, starts: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [B, T, n, d] -> features [B, T, n, H], carried frames after the last step [B, n, (k-1)d]."""
        h, carried = self.unroll(inputs, hidden, starts)
        return h, carried[:, -1]


def build_agent(
    input_dim: int,
    hidden_dim: int,
    n_outputs: int,
    z_dim: int = 0,
    recurrent: bool = True,
    stacked_frames: int = 1,
    feature_norm: bool = False,
    orthogonal_gain: float | None = None,
) -> RNNAgent | FeedForwardAgent:
    """The recurrent agent (`rmappo`) or the feed-forward one over stacked frames (`mappo`)."""
    if recurrent:
        if stacked_frames != 1:
            raise ValueError("stacked frames go with the feed-forward agent (recurrent=false), as on-policy has them")
        return RNNAgent(input_dim, hidden_dim, n_outputs, z_dim, feature_norm, orthogonal_gain)
    return FeedForwardAgent(input_dim, hidden_dim, n_outputs, z_dim, stacked_frames, feature_norm, orthogonal_gain)
