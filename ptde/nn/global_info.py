"""PTDE's global-information modules (paper Section 3, Figures 1b and 2).

All three end in the same distribution generator: μ = Linear(z,z)-LeakyReLU-Linear(z,z)(e) and
σ² from a twin head, exponentiated and floored at `var_floor`; with `var_ceiling` set, the head's
log σ² is clamped at log(var_ceiling) before exp (the authors' code has no ceiling: a ceiling of
1000·var_floor is commented out there; without one, exp overflows once the head's output passes
~88, which ended a learning-to-rank GIP run, see docs/ptde.md).

- `GIUModule`: e = Linear(s), one distribution shared by every agent of a timestep. The embedding is
  linear, as in the authors' GIU (`StateCoachNet` in chenyiqun/ptde-open); only GIP's
  personalised embedding goes through an ELU.
- `GIPModule`: an Agent-Hyper Network of the agent's local input o_i generates the weights W(o_i)
  [|s| x z] and bias b(o_i) [z] of the Agent-Personalization Network, e_i = ELU(sᵀW(o_i) + b(o_i)).
- `StudentModule`: the stage-2 student, an MLP of o_i alone that predicts the teacher's μ.

GIP is computed in factored form. W(o_i) = reshape(M u_i + c) with u_i = ReLU(L1(o_i)), so
sᵀW(o_i) = (Σ_j s_j M_j) u_i + sᵀC. The state is shared by all agents of a timestep, so s is
contracted with the hyper weights M once per timestep ([z, hyper] per timestep) and then with
each agent's hidden vector u_i; no [|s| x z] matrix is ever built per agent-step.
`gip_embedding_reference` keeps the straightforward formulation for the tests.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ptde.envs.base import EnvInfo
from ptde.nn.hyper_product import hyper_product
from ptde.plugins import VARIANTS
from ptde.registry import choose


class DistributionHead(nn.Module):
    """e [..., z] -> (μ, σ²) [..., z], var_floor <= σ² (<= var_ceiling when set)."""

    def __init__(self, z_dim: int, var_floor: float, var_ceiling: float | None = None) -> None:
        super().__init__()
        self.var_floor = var_floor
        self.log_var_max = None if var_ceiling is None else math.log(var_ceiling)
        self.mu = nn.Sequential(nn.Linear(z_dim, z_dim), nn.LeakyReLU(), nn.Linear(z_dim, z_dim))
        self.log_var = nn.Sequential(nn.Linear(z_dim, z_dim), nn.LeakyReLU(), nn.Linear(z_dim, z_dim))

    def forward(self, e: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        log_var = self.log_var(e)
        if self.log_var_max is not None:  # before exp: exp(x) of a large x is inf, and inf * 0 is a NaN gradient
            log_var = log_var.clamp(max=self.log_var_max)
        return self.mu(e), log_var.exp().clamp(min=self.var_floor)


class GIUModule(nn.Module):
    """Global Information Unification: the same (μ, σ²) for all agents of a timestep."""

    def __init__(self, state_dim: int, z_dim: int, var_floor: float, var_ceiling: float | None = None) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.embed = nn.Linear(state_dim, z_dim)
        self.head = DistributionHead(z_dim, var_floor, var_ceiling)

    def forward(self, inputs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """inputs [B, T, n, d] (unused but for n), state [B, T, S] -> μ, σ² [B, T, n, z]."""
        e = self.embed(state).unsqueeze(-2)  # [B, T, 1, z], linear in s (no activation)
        mu, var = self.head(e)
        n = inputs.shape[-2]
        return mu.expand(*mu.shape[:-2], n, self.z_dim), var.expand(*var.shape[:-2], n, self.z_dim)


class GIPModule(nn.Module):
    """Global Information Personalization: a per-agent embedding of s made by a hypernetwork of o_i."""

    def __init__(
        self,
        input_dim: int,
        state_dim: int,
        z_dim: int,
        hyper_hidden_dim: int,
        var_floor: float,
        var_ceiling: float | None = None,
    ) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.state_dim = state_dim
        self.hyper_hidden_dim = hyper_hidden_dim
        # Agent-Hyper Network: o_i -> W(o_i) [S*z] and b(o_i) [z]
        self.hyper_w_in = nn.Linear(input_dim, hyper_hidden_dim)
        self.hyper_w_out = nn.Linear(hyper_hidden_dim, state_dim * z_dim)
        self.hyper_b = nn.Linear(input_dim, z_dim)
        self.head = DistributionHead(z_dim, var_floor, var_ceiling)

    def embedding(self, inputs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """e_i = ELU(sᵀW(o_i) + b(o_i)) in factored form. inputs [B, T, n, d], state [B, T, S] -> [B, T, n, z]."""
        S, z, H = self.state_dim, self.z_dim, self.hyper_hidden_dim
        lead = state.shape[:-1]
        u = torch.relu(self.hyper_w_in(inputs))  # [B, T, n, H]
        s = state.reshape(-1, S)  # [BT, S]
        # row j*z+k of the Linear's weight [S*z, H] -> (j, k): the weight viewed as [S, z*H], no copy
        m = self.hyper_w_out.weight.view(S, z * H)
        n = inputs.shape[-2]
        per_agent = hyper_product(u.reshape(-1, n, H), s, m, z)  # [BT, n, z]: (s·M) u_i, in chunks of steps
        s_c = s @ self.hyper_w_out.bias.view(S, z)  # [BT, z]
        e = per_agent + s_c.unsqueeze(1) + self.hyper_b(inputs).reshape(-1, n, z)
        return F.elu(e).view(*lead, n, z)

    def forward(self, inputs: torch.Tensor, state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.embedding(inputs, state))


def gip_embedding_reference(module: GIPModule, inputs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
    """The straightforward GIP: build W(o_i) [S x z] for every agent-step, then sᵀW. For tests and
    the benchmark only (it is what the factored form must equal)."""
    S, z = module.state_dim, module.z_dim
    w = module.hyper_w_out(torch.relu(module.hyper_w_in(inputs)))  # [B, T, n, S*z]
    w = w.view(*inputs.shape[:-1], S, z)  # [B, T, n, S, z]
    s = state.unsqueeze(-2).expand(*inputs.shape[:-1], S).unsqueeze(-2)  # [B, T, n, 1, S]
    return F.elu((s @ w).squeeze(-2) + module.hyper_b(inputs))  # [B, T, n, z]


class StudentModule(nn.Module):
    """Stage-2 student: μ'_i from the agent's local input only (no state anywhere)."""

    def __init__(self, input_dim: int, hidden_dim: int, z_dim: int) -> None:
        super().__init__()
        self.z_dim = z_dim
        self.net = nn.Sequential(
            nn.Linear(input_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, z_dim),
            nn.LeakyReLU(),
            nn.Linear(z_dim, z_dim),
        )

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs [..., d] -> μ' [..., z]."""
        return self.net(inputs)


# `variant.name` (declared in ptde.plugins.VARIANTS) -> its builder(variant, info, input_dim)
def no_global_info(variant: dict[str, Any], info: EnvInfo, input_dim: int) -> None:
    """variant=none: plain CTDE, the agents see their own observation history only."""
    return None


def giu_module(variant: dict[str, Any], info: EnvInfo, input_dim: int) -> nn.Module:
    return GIUModule(info.state_dim, variant["z_dim"], variant["var_floor"], variant.get("var_ceiling"))


def gip_module(variant: dict[str, Any], info: EnvInfo, input_dim: int) -> nn.Module:
    return GIPModule(
        input_dim,
        info.state_dim,
        variant["z_dim"],
        variant["hyper_hidden_dim"],
        variant["var_floor"],
        variant.get("var_ceiling"),
    )


def build_global_info(variant: dict[str, Any], info: EnvInfo, input_dim: int) -> nn.Module | None:
    return choose(VARIANTS, str(variant["name"]), "variant.name")(variant, info, input_dim)
