"""The on-policy counterpart of the replay buffer: the newest step-based rollout and nothing else.

`ReplayDataModule` serves it as it serves replay samples (its stream calls `sample`), so an
on-policy learner reads it inside `training_step` after the env-interaction callback collected it.
"""

from __future__ import annotations

import torch

from ptde.rollout.steps import StepRollout


class RolloutStore:
    """Holds the latest rollout; each collection replaces the last (PPO learns only from fresh data)."""

    def __init__(self) -> None:
        self.rollout: StepRollout | None = None
        self.rollouts_inserted = 0

    def __len__(self) -> int:
        return 0 if self.rollout is None else 1

    @property
    def nbytes(self) -> int:
        """Bytes of the held rollout's tensors (`train/replay_bytes` of an on-policy run)."""
        if self.rollout is None:
            return 0
        return sum(t.numel() * t.element_size() for t in self.rollout.tensors().values())

    def memory_metrics(self) -> dict[str, float]:
        """What the training log reports of the store: the held rollout's size (its length is fixed,
        n_rollout_threads x episode_length, so there is no episode length to report)."""
        return {"train/replay_bytes": float(self.nbytes)}

    def can_sample(self, batch_size: int = 1) -> bool:
        return self.rollout is not None

    def insert(self, rollout: StepRollout) -> None:
        self.rollout = rollout
        self.rollouts_inserted += 1

    def sample(
        self, batch_size: int | None = None, generator: torch.Generator | None = None
    ) -> dict[str, torch.Tensor]:
        """The whole newest rollout, [B, T, ...] per field (`batch_size` and `generator` are the replay
        stream's arguments; a rollout is read whole)."""
        if self.rollout is None:
            raise ValueError("no rollout collected yet: the env-interaction callback collects one before each update")
        return self.rollout.tensors()

    def state_dict(self) -> dict:
        """Nothing to keep: a resumed on-policy run collects a fresh rollout before its next update."""
        return {}

    def load_state_dict(self, sd: dict) -> None:
        pass
