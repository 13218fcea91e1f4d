"""Reference for the tests: the padded replay buffer ptde used before ragged storage (issue 17),
kept verbatim (class renamed). Every episode is padded to the episode limit in float32, as PyMARL's
ReplayBuffer; `ptde.data.buffer.EpisodeReplayBuffer` must sample what this one samples."""

from __future__ import annotations

import torch

from ptde.envs.base import EnvInfo
from ptde.rollout import EpisodeBatch

# names of the per-step fields and whether they carry the extra final (T+1) entry
_FIELDS = {
    "obs": True,
    "state": True,
    "avail_actions": True,
    "actions": False,
    "reward": False,
    "terminated": False,
    "mask": False,
}


class PaddedReplayBuffer:
    """Ring buffer of `capacity` episodes; once full, the oldest episode is overwritten first."""

    def __init__(self, capacity: int, info: EnvInfo) -> None:
        self.capacity = capacity
        T = info.episode_limit
        n, A = info.n_agents, info.n_actions
        # torch.empty: memory is only committed as episodes arrive
        self.storage = {
            "obs": torch.empty(capacity, T + 1, n, info.obs_dim),
            "state": torch.empty(capacity, T + 1, info.state_dim),
            "avail_actions": torch.empty(capacity, T + 1, n, A, dtype=torch.bool),
            "actions": torch.empty(capacity, T, n, dtype=torch.long),
            "reward": torch.empty(capacity, T),
            "terminated": torch.empty(capacity, T),
            "mask": torch.empty(capacity, T),
        }
        self.episode_limit = T
        self.insert_index = 0  # next slot to write
        self.size = 0  # episodes stored
        self.episodes_inserted = 0

    def __len__(self) -> int:
        return self.size

    def can_sample(self, batch_size: int) -> bool:
        return self.size >= batch_size

    def insert(self, batch: EpisodeBatch) -> None:
        """Append B episodes, padding each to the episode limit (padding is zero, mask 0)."""
        B, T = batch.batch_size, batch.max_t
        if T > self.episode_limit:
            raise ValueError(f"episode of {T} steps exceeds the buffer's limit {self.episode_limit}")
        slots = (self.insert_index + torch.arange(B)) % self.capacity
        for name, has_final in _FIELDS.items():
            src = getattr(batch, name)
            dst = self.storage[name]
            t_src = T + 1 if has_final else T
            dst[slots, :t_src] = src.to(dst.dtype)
            dst[slots, t_src:] = 0
        self.insert_index = int((self.insert_index + B) % self.capacity)
        self.size = min(self.size + B, self.capacity)
        self.episodes_inserted += B

    def sample(self, batch_size: int, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """Uniformly sample episodes without replacement; cut to the longest sampled episode so
        no time is spent on steps that are padding in every sampled episode."""
        if not self.can_sample(batch_size):
            raise ValueError(f"buffer holds {self.size} episodes, fewer than the batch size {batch_size}")
        idx = torch.randperm(self.size, generator=generator)[:batch_size]
        mask = self.storage["mask"][idx]  # [b, T]
        t_max = int(mask.sum(1).max().item())
        out = {"mask": mask[:, :t_max]}
        for name, has_final in _FIELDS.items():
            if name == "mask":
                continue
            out[name] = self.storage[name][idx, : t_max + 1 if has_final else t_max]
        return out

    def state_dict(self) -> dict:
        n = self.size
        return {
            "storage": {k: v[:n].clone() for k, v in self.storage.items()},
            "insert_index": self.insert_index,
            "size": self.size,
            "episodes_inserted": self.episodes_inserted,
        }

    def load_state_dict(self, sd: dict) -> None:
        n = sd["size"]
        for k, v in sd["storage"].items():
            self.storage[k][:n] = v
        self.insert_index = sd["insert_index"]
        self.size = n
        self.episodes_inserted = sd["episodes_inserted"]
