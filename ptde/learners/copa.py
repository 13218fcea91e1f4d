"""COPA (Liu et al. 2021, "Coach-Player Multi-Agent Reinforcement Learning for Dynamic Team
Composition"), the second centralized-execution baseline of the PTDE paper's Table 2.

loss = L_TD (QMIX mixer over the players' Q_i(τ_i, z_i, ·))  +  vi_coef · L_VI,
L_VI = Σ_t Σ_i −log q_φ(z_i | o_{i,t}, a_{i,t}) − ⅒ Σ_k Σ_i H[N(μ_i, σ²_i)]   (the paper's Eq. 7 with the
reference's entropy term), where z_i is the strategy the coach last sent (every `comm_interval`
steps). Coach, players, posterior and the adaptive communication rule: ptde/nn/copa.py.
Choices from the reference code (Cranial-XIX/marl-copa): log σ² clamped to [-10, 0], coach
entropy weight 1/10 of vi_coef, vi_coef 0.001, threshold rule ‖z_new − z_old‖ > β at execution.
Kept from this framework instead: the QMIX mixer on the state (the reference mixes with the
coach's attention features), TD(λ) and one Adam for all networks.
"""

from __future__ import annotations

from typing import Any

import torch

from ptde.envs.base import EnvInfo
from ptde.learners import require_no_variant
from ptde.learners.value_decomposition import ValueDecompositionLearner
from ptde.nn.copa import COPAQNetwork, variational_sum


class COPALearner(ValueDecompositionLearner):
    @staticmethod
    def build_q_net(algo: dict[str, Any], variant: dict[str, Any], info: EnvInfo) -> COPAQNetwork:
        require_no_variant(variant, "copa")
        return COPAQNetwork(
            info,
            algo["rnn_hidden_dim"],
            coach_dim=algo["coach_dim"],
            n_heads=algo["coach_heads"],
            interval=algo["comm_interval"],
            threshold=algo["comm_threshold"],
        )

    def auxiliary_sum(
        self, batch: dict[str, torch.Tensor], inputs: torch.Tensor, q: torch.Tensor, extras: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """vi_coef · L_VI summed over the chunk's steps (extras: the coach's z, μ, log σ²)."""
        vi = variational_sum(self.q_net, inputs, batch["actions"], batch["mask"], extras, self.info.n_actions)
        self.pending_metrics.setdefault("train/vi_loss", []).append(vi.item() / max(batch["mask"].sum().item(), 1))
        return self.algo["vi_coef"] * vi
