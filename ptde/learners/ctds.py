"""CTDS (Zhao et al. 2022, "CTDS: Centralized Teacher with Decentralized Student for Multi-Agent
Reinforcement Learning"): the distillation happens *during* stage-1 training (the PTDE paper's
Table 6 compares it with PTDE's separate stage 2).

loss = L_TD(teacher, QMIX mixer)  +  distill_coef · L_KD,   L_KD = Σ_i Σ_a (Q^S_i(τ_i, a) − Q^T_i(τ_i, s, a))²

on the same replayed episodes, both terms averaged over the real steps like the TD loss (the
teacher's Q is a fixed target in L_KD, so the student never changes the teacher). As in the
paper, the teacher collects the training data and the student is used for decentralized
execution; results.json carries both win rates and PRR = student ÷ teacher
(`eval/centralized_win_rate`, `eval/decentralized_win_rate`, `eval/prr`).
Networks: ptde/nn/ctds.py.
"""

from __future__ import annotations

from typing import Any

import torch

from ptde.envs.base import EnvInfo
from ptde.learners import require_no_variant
from ptde.learners.value_decomposition import ValueDecompositionLearner
from ptde.nn.ctds import CTDSQNetwork, CTDSStudentActor, distillation_sum


class CTDSLearner(ValueDecompositionLearner):
    @staticmethod
    def build_q_net(algo: dict[str, Any], variant: dict[str, Any], info: EnvInfo) -> CTDSQNetwork:
        require_no_variant(variant, "ctds")
        return CTDSQNetwork(info, algo["rnn_hidden_dim"])

    def auxiliary_sum(
        self, batch: dict[str, torch.Tensor], inputs: torch.Tensor, q: torch.Tensor, extras: dict[str, torch.Tensor]
    ) -> torch.Tensor:
        """distill_coef · Σ over acting steps of Σ_i Σ_a (Q^S − Q^T)²; inputs [B, T+1, n, d], q [B, T+1, n, A]."""
        T = batch["mask"].shape[1]
        student_q, _ = self.q_net.student_q(inputs[:, :T])  # [B, T, n, A]
        kd = distillation_sum(student_q, q[:, :T], batch["mask"])
        self.pending_metrics.setdefault("train/distill_loss", []).append(kd.item() / max(batch["mask"].sum().item(), 1))
        return self.algo["distill_coef"] * kd

    def decentralized_policy(self, student: torch.nn.Module | None = None, noise_var: float = 0.0) -> CTDSStudentActor:
        """CTDS's student, trained during stage 1; there is nothing for stage 2 to pass in."""
        return CTDSStudentActor(self.q_net.student).eval()

    def own_student(self) -> CTDSStudentActor:
        """Stage 1 already yields the decentralized policy: it is evaluated with its teacher."""
        return self.decentralized_policy()
