"""The schema of a StarCraft-style battle, shared by both SMAC backends: JaxMARL's SMAX
(`ptde.envs.smax`, the default) and the real game through SMAC (`ptde.envs.sc2`). Torch- and
JAX-free, so composing a config imports neither."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import MISSING

from ptde.plugins import smac_backends
from ptde.registry import choice_enum

SMACBackend = choice_enum("SMACBackend", smac_backends(), __name__)  # smax, sc2: from ptde.plugins.ENVS


@dataclass
class SMACEnvConfig:
    """A StarCraft-style battle. `backend=smax` runs JaxMARL's SMAX (no game install)."""

    family: str = "smac"
    name: str = MISSING  # the map, e.g. 3m
    backend: SMACBackend = SMACBackend.smax
    episode_limit: int = MISSING  # SMAC's per-map limit
    batch_size_run: int = 8  # parallel environments while training (Table 7)
    # SMAX's reward is in [0, 2] (enemy health fraction + win bonus 1); x10 gives SMAC's
    # normalised scale of at most 20.
    reward_scale: float = 10.0
    walls_cause_death: bool = False  # SMAC has no deadly walls
    enemy_attack_mode: str = "closest"  # SMAX heuristic enemy: closest | random
    # backend=sc2: a game step that takes longer is a hung game; it is restarted and its episode dropped
    step_timeout_s: float = 120.0
