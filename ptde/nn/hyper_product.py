"""GIP's state-contracted hypernetwork product, computed in cache-sized chunks of timesteps.

e_pre[p, i] = (Σ_j s[p, j] M_j) u[p, i]: the state of episode-step p is contracted with the hyper
weights M once (s·M, [z, H] per step) and then with each of its n agents' hidden vectors u.
Why a hand-written function and not `(s @ m).view(P, z, H)` then `bmm`: s·M of a whole update is
a [P, z·H] tensor (3s_vs_5z, 128 episodes: 9k steps x 4096, 74 MB in bf16) that is written once and
read back by the bmm, and autograd keeps it for the backward and writes its gradient, as large, too.
Computed a few hundred steps at a time, every chunk of s·M stays in the core's cache between its
product and its use, and the backward recomputes it instead of keeping it (measured on this machine:
forward and backward of 9k steps 170 ms -> 80 ms in bf16, 500 -> 405 ms in float32). M is the
hypernetwork Linear's own weight seen as [S, z·H] (a view, no copy), and its gradient comes out
in that layout.

An update with at most one chunk of steps (learning to rank: 128 one-step episodes) keeps its s·M
and the weights' cast for the backward instead of recomputing them, and takes the weight gradient
from one product instead of summing into zeros: the same numbers with a third fewer large products.

The maths is the same as the two-product form; only the order of the sums differs (the weight
gradient is summed chunk by chunk, in float32 or the weight's dtype if wider).
"""

from __future__ import annotations

import torch

# steps per chunk: s·M of one chunk is CHUNK x z x H elements (64 x 64 in the paper's GIP: 2 MB in
# bf16, about this CPU's L2); forward + backward of 9k steps measured best at 256 among 128-768
CHUNK_STEPS = 256


def _forward(
    u: torch.Tensor, s: torch.Tensor, m: torch.Tensor, z: int, chunk: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """u [P, n, H], s [P, S], m [S, z*H], all in one dtype -> [P, n, z] and the last chunk's s·M
    [C, z, H] (all of s·M when P <= chunk)."""
    P, n, H = u.shape
    out = u.new_empty(P, n, z)
    for a in range(0, P, chunk):
        b = min(a + chunk, P)
        s_m = (s[a:b] @ m).view(b - a, z, H)  # [C, z, H]
        torch.bmm(u[a:b], s_m.transpose(1, 2), out=out[a:b])  # [C, n, z]
    return out, s_m


class _HyperProduct(torch.autograd.Function):
    """u [P, n, H], s [P, S], m [S, z*H] -> [P, n, z] in u's dtype."""

    @staticmethod
    def forward(ctx, u, s, m, z: int, chunk: int):  # noqa: ANN001, ANN205
        m_c = m.to(u.dtype)
        out, s_m = _forward(u, s.to(u.dtype), m_c, z, chunk)
        one_chunk = u.shape[0] <= chunk
        # one chunk: s·M [P, z, H] is small, keep it; the weights' cast is kept either way
        ctx.save_for_backward(u, s, m, m_c, s_m if one_chunk else None)
        ctx.z, ctx.chunk, ctx.one_chunk = z, chunk, one_chunk
        return out

    @staticmethod
    def backward(ctx, d_out):  # noqa: ANN001, ANN205
        u, s, m, m_c, kept_s_m = ctx.saved_tensors
        z, chunk, one_chunk = ctx.z, ctx.chunk, ctx.one_chunk
        P, n, H = u.shape
        dtype = u.dtype
        d_out = d_out.to(dtype)
        s_c = s.to(dtype)
        need_u, need_s, need_m = ctx.needs_input_grad[:3]
        d_u = torch.empty_like(u) if need_u else None
        d_s = u.new_empty(P, s.shape[1]) if need_s else None
        acc = torch.promote_types(m.dtype, torch.float32)
        d_m = torch.zeros(m.shape, dtype=acc, device=m.device) if need_m and not one_chunk else None
        for a in range(0, P, chunk):
            b = min(a + chunk, P)
            g = d_out[a:b]  # [C, n, z]
            if need_u:
                # recomputed, not kept from the forward, unless the update is one chunk
                s_m = kept_s_m if one_chunk else (s_c[a:b] @ m_c).view(b - a, z, H)  # [C, z, H]
                torch.bmm(g, s_m, out=d_u[a:b])  # [C, n, H]
            if need_s or need_m:
                d_sm = torch.bmm(g.transpose(1, 2), u[a:b]).view(b - a, z * H)  # [C, z*H]
                if need_m and one_chunk:
                    d_m = (s_c.t() @ d_sm).to(acc)  # [S, z*H]: the one chunk's product, in float32
                elif need_m:
                    d_m += s_c[a:b].t() @ d_sm  # [S, z*H], summed in float32
                if need_s:
                    torch.mm(d_sm, m_c.t(), out=d_s[a:b])  # [C, S]
        return (
            d_u,
            None if d_s is None else d_s.to(s.dtype),
            None if d_m is None else d_m.to(m.dtype),
            None,
            None,
        )


def hyper_product(u: torch.Tensor, s: torch.Tensor, m: torch.Tensor, z: int, chunk: int = CHUNK_STEPS) -> torch.Tensor:
    """u [P, n, H] (each agent's hyper hidden vector), s [P, S] (the step's state), m [S, z*H] (the
    hyper weights, column k*H + h for output k and hidden unit h: a Linear(H, S*z)'s weight viewed
    as [S, z*H]) -> [P, n, z] in u's dtype (bf16 under bf16-mixed: s and m are cast to it)."""
    with torch.autocast(device_type=u.device.type, enabled=False):
        if not torch.is_grad_enabled():  # acting and targets: no graph to keep
            return _forward(u, s.to(u.dtype), m.to(u.dtype), z, chunk)[0]
        return _HyperProduct.apply(u, s, m, z, chunk)
