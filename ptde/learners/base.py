"""What every stage-1 learner shares: run counters, the metric queue, checkpoint round trips.

The value-decomposition learners and MAPPO subclass `StageOneLearner`, so progress counting,
training-metric logging and rebuilding from a checkpoint are one piece of code, not one per
algorithm (the env-interaction callback reads `counters` and `pending_metrics` of any learner).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import lightning as L

from ptde.runtime import load_checkpoint


@dataclass
class RunCounters:
    """Progress of a run in the units RL cares about; saved in every checkpoint."""

    env_steps: int = 0
    episodes: int = 0
    updates: int = 0
    last_target_update_episode: int = 0
    last_test_step: int = 0
    last_log_step: int = 0
    last_checkpoint_step: int = 0
    dropped_episodes: int = 0  # broken off by a crashed or hung env worker (not learned from)


class StageOneLearner(L.LightningModule):
    """A LightningModule with the surface `ptde.learners` documents (subclasses add the networks)."""

    # False: trains from whole episodes (`ptde.rollout`, replay); True: from step-based rollouts of
    # auto-reset envs (`ptde.step_rollout`), collected by `StepInteractionCallback`
    collects_steps: bool = False

    def __init__(self) -> None:
        super().__init__()
        self.counters = RunCounters()
        self.pending_metrics: dict[str, list[float]] = {}

    def record(self, stats: dict[str, float]) -> None:
        """Queue training statistics; `pop_metrics` averages them at the next log row."""
        for k, v in stats.items():
            self.pending_metrics.setdefault(k, []).append(v)

    def pop_metrics(self) -> dict[str, float]:
        """Means of the training stats since the last call (logged every log_interval env steps)."""
        out = {k: sum(v) / len(v) for k, v in self.pending_metrics.items() if v}
        self.pending_metrics = {}
        return out

    @classmethod
    def from_checkpoint(cls, path: str | Path) -> StageOneLearner:
        """Rebuild from a run folder or .ckpt; the config stored in the checkpoint is all it needs."""
        ckpt = load_checkpoint(path)
        hp = ckpt["hyper_parameters"]
        learner = cls(hp["cfg"], hp["env_info"])
        learner.load_state_dict(ckpt["state_dict"])
        learner.on_load_checkpoint(ckpt)
        return learner.eval()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["ptde_counters"] = asdict(self.counters)
        # the stats queued since the last log row: a resumed run logs the same row as an uninterrupted one
        checkpoint["ptde_pending_metrics"] = {k: list(v) for k, v in self.pending_metrics.items()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.counters = RunCounters(**checkpoint.get("ptde_counters", {}))
        self.pending_metrics = {k: list(v) for k, v in checkpoint.get("ptde_pending_metrics", {}).items()}
