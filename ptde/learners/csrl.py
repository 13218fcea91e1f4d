"""CSRL (Chen et al. 2022, "Commander-Soldiers Reinforcement Learning for Cooperative Multi-Agent
Systems"), the centralized-execution baseline of the PTDE paper's Table 2.

A commander turns the global state into agent-specific information c_i (ptde/nn/csrl.py: the
PTDE authors' hypernetwork form c_i = ELU(sᵀW(o_i) + b(o_i))); the soldiers' shared RNN agent
conditions its Q on it. Trained end to end by the QMIX TD loss of `ValueDecompositionLearner`,
with nothing else added; the commander also runs at execution (centralized execution).
"""

from __future__ import annotations

from typing import Any

import torch

from ptde.envs.base import EnvInfo
from ptde.learners import require_no_variant
from ptde.learners.value_decomposition import ValueDecompositionLearner
from ptde.nn.csrl import build_csrl_network
from ptde.nn.policy import AgentNetwork


class CSRLLearner(ValueDecompositionLearner):
    @staticmethod
    def build_q_net(algo: dict[str, Any], variant: dict[str, Any], info: EnvInfo) -> AgentNetwork:
        require_no_variant(variant, "csrl")
        return build_csrl_network(info, algo["rnn_hidden_dim"], algo["commander_dim"], algo["commander_hyper_hidden"])

    @property
    def global_info(self) -> torch.nn.Module | None:
        """The commander executes with the agents: it is no PTDE module for stage 2 to distill."""
        return None
