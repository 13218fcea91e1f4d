"""A GRU over sequences of different lengths that computes only their real steps.

Why not `nn.GRU` on the padded batch: an update's 128 episodes differ in length (3s_vs_5z: 20 to
250 steps), so the padded GRU spends most of its time on padding, and its CPU backward is autograd
over ~10 small ops per step. Why not `nn.GRU` on a `PackedSequence`: on the CPU that path is
several times slower than the padded one. Here the sequences are sorted by length (longest first),
so the ones still running at step t are a prefix of the batch; the input projection of every real
step is one matrix product, each step multiplies only the running prefix by W_hh, and the backward
is written by hand (one matrix product per step, the weight gradient as one product over all steps).

The maths is PyTorch's GRU (gate order r, z, n; n = tanh(W_in x + b_in + r * (W_hn h + b_hn));
h' = (1 - z) * n + z * h), on the weights of an `nn.GRU`, so a module keeps its parameters and
checkpoints and can switch between this and `nn.GRU` freely.

The time loop runs in C++ (csrc/ragged_gru.cpp, each step one matrix product and one fused pass of
gate arithmetic, about half the time of this module's Python loop under bf16) when the process has
turned it on with `use_fused_kernel(True)` (`trainer.fused_gru`) and it builds; else in Python.
The two agree to float rounding, not bit for bit: the C++ gates run in float between bf16 loads and
stores where the Python loop rounds each op's result to bf16.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ptde.nn.cpp_kernels import load_kernel

_FUSED = {"on": False}


def use_fused_kernel(enabled: bool) -> bool:
    """Turn the C++ time loop on or off for this process; True when it is on (it built and loaded)."""
    _FUSED["on"] = bool(enabled) and load_kernel("ragged_gru")
    return _FUSED["on"]


def fused_kernel_on() -> bool:
    """Whether `ragged_gru` runs the C++ time loop in this process."""
    return _FUSED["on"]


class _RaggedGRUFunction(torch.autograd.Function):
    """Packed rows [R, 3H] of input projections -> packed hidden states [R, H], state after the last step [N, H].

    Rows are time-major: the `counts[t]` sequences still running at step t (a prefix of the
    length-sorted batch) occupy rows offsets[t] : offsets[t] + counts[t].
    """

    @staticmethod
    def forward(ctx, xp, h0, w_hh, b_hh, counts: list[int], save: bool):  # noqa: ANN001, ANN205
        H = h0.shape[1]
        R = xp.shape[0]
        # compute in the input projection's dtype (bf16 under autocast), whatever the weights' dtype
        w_param, h0_dtype, b_param_dtype = w_hh, h0.dtype, b_hh.dtype
        w_hh, b_hh, h0 = w_hh.to(xp.dtype), b_hh.to(xp.dtype), h0.to(xp.dtype)
        out = xp.new_empty(R, H)  # [R, H]
        gates = xp.new_empty(R, 3 * H) if save else None  # r, z, n of every row
        gh_n = xp.new_empty(R, H) if save else None  # W_hn h + b_hn of every row
        h = h0
        row = 0
        for n_t in counts:
            hp = h[:n_t]  # [n_t, H] the running prefix
            x_t = xp[row : row + n_t]  # [n_t, 3H]
            gh = torch.addmm(b_hh, hp, w_hh.t())  # [n_t, 3H]
            rz = torch.sigmoid(x_t[:, : 2 * H] + gh[:, : 2 * H])  # [n_t, 2H]
            n = torch.tanh(torch.addcmul(x_t[:, 2 * H :], rz[:, :H], gh[:, 2 * H :]))  # [n_t, H]
            h_t = torch.lerp(n, hp, rz[:, H:])  # n + z (h - n)
            out[row : row + n_t] = h_t
            if save:
                gates[row : row + n_t, : 2 * H] = rz
                gates[row : row + n_t, 2 * H :] = n
                gh_n[row : row + n_t] = gh[:, 2 * H :]
            h = h_t if n_t == h.shape[0] else torch.cat([h_t, h[n_t:]])
            row += n_t
        if save:
            ctx.save_for_backward(h0, w_param, out, gates, gh_n)
            ctx.counts, ctx.h0_dtype, ctx.b_dtype = counts, h0_dtype, b_param_dtype
        return out, h

    @staticmethod
    def backward(ctx, d_out, d_last):  # noqa: ANN001, ANN205
        h0, w_param, out, gates, gh_n = ctx.saved_tensors
        counts = ctx.counts
        w_hh = w_param.to(out.dtype)
        d_out, d_last = d_out.to(out.dtype), d_last.to(out.dtype)
        H = h0.shape[1]
        R = out.shape[0]
        offsets = [0]
        for n_t in counts[:-1]:
            offsets.append(offsets[-1] + n_t)
        d_pre = out.new_empty(R, 3 * H)  # gradient of the gates' pre-activations on the input side
        d_gh = out.new_empty(R, 3 * H)  # ... and on the hidden side (differs in the n gate: times r)
        h_prev = out.new_empty(R, H)  # the state each row started from
        dh = d_last.clone()  # [N, H] gradient reaching each sequence's current state
        for t in range(len(counts) - 1, -1, -1):
            n_t, row = counts[t], offsets[t]
            sl = slice(row, row + n_t)
            hp = h0[:n_t] if t == 0 else out[offsets[t - 1] : offsets[t - 1] + n_t]  # [n_t, H]
            h_prev[sl] = hp
            g = dh[:n_t] + d_out[sl]  # [n_t, H]
            rz, n = gates[sl, : 2 * H], gates[sl, 2 * H :]
            r, z = rz[:, :H], rz[:, H:]
            d_an = g * (1 - z) * (1 - n * n)  # through h' = (1-z) n + z h and the tanh
            d_rz = torch.cat([d_an * gh_n[sl], g * (hp - n)], dim=1) * rz * (1 - rz)  # through the sigmoids
            d_pre[sl, : 2 * H] = d_rz
            d_pre[sl, 2 * H :] = d_an
            d_gh[sl, : 2 * H] = d_rz
            d_gh[sl, 2 * H :] = d_an * r
            dh[:n_t] = torch.addmm(g * z, d_gh[sl], w_hh)
        d_w = d_gh.t() @ h_prev  # [3H, H]
        d_b = d_gh.sum(0)
        return d_pre, dh.to(ctx.h0_dtype), d_w.to(w_param.dtype), d_b.to(ctx.b_dtype), None, None


class _FusedRaggedGRUFunction(torch.autograd.Function):
    """`_RaggedGRUFunction`'s maths with the time loop in C++ (torch.ops.ptde_ragged_gru): rows
    [R, 3H] of input projections -> hidden states [R, H]."""

    @staticmethod
    def forward(ctx, xp, h0, w_hh, b_hh, counts: list[int], save: bool):  # noqa: ANN001, ANN205
        dtypes = (h0.dtype, w_hh.dtype, b_hh.dtype)
        h0, w_hh, b_hh = h0.to(xp.dtype), w_hh.to(xp.dtype), b_hh.to(xp.dtype)  # bf16 under autocast
        out, gates, gh_n = torch.ops.ptde_ragged_gru.forward(xp.contiguous(), h0.contiguous(), w_hh, b_hh, counts, save)
        if save:
            ctx.save_for_backward(h0, w_hh, out, gates, gh_n)
            ctx.counts, ctx.dtypes = counts, dtypes
        return out

    @staticmethod
    def backward(ctx, d_out):  # noqa: ANN001, ANN205
        h0, w_hh, out, gates, gh_n = ctx.saved_tensors
        d_xp, d_h0, d_w, d_b = torch.ops.ptde_ragged_gru.backward(
            d_out.to(out.dtype), h0, w_hh, out, gates, gh_n, ctx.counts
        )
        h0_dtype, w_dtype, b_dtype = ctx.dtypes
        return d_xp, d_h0.to(h0_dtype), d_w.to(w_dtype), d_b.to(b_dtype), None, None


@dataclass(frozen=True)
class RaggedLayout:
    """Where the real rows of a padded batch [B, T, n, ...] go when only they are computed.

    Episodes are sorted by length (longest first, ties in batch order), so at step t the episodes
    still running are a prefix; a row is (t, episode rank j, agent i), time-major, agents inner, so
    the n agents of one episode-step are n consecutive rows (the GIP module contracts the state once
    per episode-step) and the running sequences of step t are rows offsets[t] : offsets[t] + counts[t].
    """

    rows: torch.Tensor  # [R] index of each row into the flattened [B * T * n]
    positions: torch.Tensor  # [R / n] index of each episode-step into the flattened [B * T]
    counts: list[int]  # sequences (episode, agent) running at each step, len t_max
    shape: tuple[int, int, int]  # B, T, n

    @classmethod
    def of(cls, lengths: torch.Tensor, T: int, n: int, device: torch.device | str = "cpu") -> RaggedLayout:
        """lengths [B]: real steps of each episode (1..T)."""
        lengths = lengths.detach().to("cpu", torch.int64)
        B = lengths.shape[0]
        order = torch.argsort(lengths, descending=True, stable=True)  # [B]
        t_max = int(lengths.max())
        t = torch.arange(t_max)
        running = lengths[order].unsqueeze(0) > t.unsqueeze(1)  # [t_max, B] (a prefix per row)
        episode_steps = order.unsqueeze(0) * T + t.unsqueeze(1)  # [t_max, B]
        positions = episode_steps[running]  # [P] time-major, longest episode first
        rows = (positions.unsqueeze(1) * n + torch.arange(n)).reshape(-1)  # [R = P n]
        counts = (running.sum(1) * n).tolist()
        return cls(rows.to(device), positions.to(device), counts, (B, T, n))

    def gather(self, padded: torch.Tensor) -> torch.Tensor:
        """[B, T, n, D] -> rows [R, D]."""
        return padded.reshape(-1, padded.shape[-1]).index_select(0, self.rows)

    def gather_steps(self, padded: torch.Tensor) -> torch.Tensor:
        """[B, T, D] (per episode-step, e.g. the state) -> [R / n, D]."""
        return padded.reshape(-1, padded.shape[-1]).index_select(0, self.positions)

    def scatter(self, rows: torch.Tensor, fill: float = 0.0) -> torch.Tensor:
        """rows [R, D] -> [B, T, n, D], `fill` where no row is."""
        B, T, n = self.shape
        out = rows.new_full((B * T * n, rows.shape[-1]), fill)
        return out.index_copy(0, self.rows, rows).view(B, T, n, -1)


def ragged_gru(gru: nn.GRU, x: torch.Tensor, counts: list[int], h0: torch.Tensor | None = None) -> torch.Tensor:
    """x [R, D] rows in a `RaggedLayout` -> the GRU's state after each row's step [R, H], with
    `gru`'s weights (one layer, PyTorch's maths). h0 [N, H] (N = counts[0]) or zeros."""
    H = gru.hidden_size
    xp = torch.addmm(gru.bias_ih_l0, x, gru.weight_ih_l0.t())  # [R, 3H] every row's input projection at once
    h0 = x.new_zeros(counts[0], H) if h0 is None else h0
    w_hh = gru.weight_hh_l0
    save = torch.is_grad_enabled() and (xp.requires_grad or h0.requires_grad or w_hh.requires_grad)
    if _FUSED["on"] and xp.device.type == "cpu":
        return _FusedRaggedGRUFunction.apply(xp, h0, w_hh, gru.bias_hh_l0, counts, save)
    out, _ = _RaggedGRUFunction.apply(xp, h0, w_hh, gru.bias_hh_l0, counts, save)
    return out
