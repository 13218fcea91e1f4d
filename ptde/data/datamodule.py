"""Lightning's view of the replay buffer: an endless stream of sampled batches.

RL has no epochs; the stream never ends and training stops on the env-step budget. The learner
pulls from the iterator inside `training_step` (Lightning's `dataloader_iter` mode), so each
sample is drawn after the env-interaction callback has pushed the newest episodes, in the order
PyMARL's loop has: collect, insert, sample, train.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, IterableDataset

from ptde.data.buffer import EpisodeReplayBuffer


def replay_batch_size(algo: dict[str, Any], trainer: dict[str, Any]) -> int:
    """Episodes per sampled batch, and so the episodes collected before the first update: the algo's
    `batch_size`, capped by `trainer.max_batch_episodes` (the smoke switch sets 16, so a football smoke
    run does not first collect 128 episodes of up to 150 steps)."""
    cap = trainer.get("max_batch_episodes")
    return algo["batch_size"] if cap is None else min(algo["batch_size"], cap)


class ReplaySampleStream(IterableDataset):
    def __init__(self, buffer: EpisodeReplayBuffer, batch_size: int, seed: int) -> None:
        super().__init__()
        self.buffer = buffer
        self.batch_size = batch_size
        self.generator = torch.Generator().manual_seed(seed)

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        while True:
            yield self.buffer.sample(self.batch_size, self.generator)


class ReplayDataModule(L.LightningDataModule):
    def __init__(self, buffer: EpisodeReplayBuffer, batch_size: int, seed: int = 0) -> None:
        super().__init__()
        self.buffer = buffer
        self.stream = ReplaySampleStream(buffer, batch_size, seed)

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The sampling RNG travels in checkpoints, so a resumed run draws the same batches."""
        return {"generator": self.stream.generator.get_state()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.stream.generator.set_state(state["generator"])

    def train_dataloader(self) -> DataLoader:
        # batch_size=None: the stream already yields whole sampled batches
        return DataLoader(self.stream, batch_size=None, num_workers=0)
