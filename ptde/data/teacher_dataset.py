"""Stage-2 data: the trained teacher's knowledge μ_i paired with the agent's local input o_i.

The teacher is rolled with ε-greedy exploration (ε = 0.05 by default, as the authors do) and
every real agent step (padding excluded) becomes one row. The file is saved in the run folder
so distillation can be re-run without re-collecting; it holds tensors only (safe to load with
weights_only=True).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightning as L
import torch

from ptde.envs.base import MultiAgentEnv
from ptde.files import atomic_write
from ptde.nn.policy import build_agent_inputs, previous_actions_onehot
from ptde.rollout import run_episodes

FILE_NAME = "teacher_dataset.pt"


@dataclass
class TeacherDataset:
    inputs: torch.Tensor  # [N, d] local agent inputs o_i
    mu: torch.Tensor  # [N, z] teacher μ_i
    episodes: int

    def __len__(self) -> int:
        return self.inputs.shape[0]

    def save(self, path: Path) -> None:
        with atomic_write(path) as tmp:
            torch.save({"inputs": self.inputs, "mu": self.mu, "episodes": torch.tensor(self.episodes)}, tmp)

    @classmethod
    def load(cls, path: Path) -> TeacherDataset:
        d = torch.load(path, map_location="cpu", weights_only=True)
        return cls(inputs=d["inputs"], mu=d["mu"], episodes=int(d["episodes"]))


@torch.no_grad()
def collect_teacher_dataset(
    teacher: L.LightningModule, env: MultiAgentEnv, episodes: int, epsilon: float, seed: int = 0
) -> TeacherDataset:
    """Roll `teacher` for `episodes` episodes and keep one row per real agent step.

    The rows depend only on the teacher, the env's seed and `seed`: ε's draws come from a generator
    of `seed`, and the teacher's sampled z (drawn from torch's global RNG inside its act) from a
    global RNG seeded with `seed` for this call and restored after it, so a re-run or a resumed run
    does not change the data with whatever the RNG held before.
    """
    if teacher.global_info is None:
        raise ValueError("the teacher has no global-information module (variant none): nothing to distill")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _collect(teacher, env, episodes, epsilon, torch.Generator().manual_seed(seed))


def _collect(
    teacher: L.LightningModule, env: MultiAgentEnv, episodes: int, epsilon: float, generator: torch.Generator
) -> TeacherDataset:
    n_actions = teacher.info.n_actions
    inputs_all, mu_all = [], []
    done = 0
    while done < episodes:
        batch = run_episodes(env, teacher, n_actions, epsilon, generator)
        take = min(batch.batch_size, episodes - done)
        T = batch.max_t
        # inputs at the T acting steps: obs_t ⊕ a_{t-1} ⊕ id
        inputs = build_agent_inputs(batch.obs[:take, :T], previous_actions_onehot(batch.actions[:take], n_actions, T))
        mu, _ = teacher.global_info(inputs, batch.state[:take, :T])  # [b, T, n, z]
        real = batch.mask[:take] > 0  # [b, T]
        inputs_all.append(inputs[real].reshape(-1, inputs.shape[-1]))  # [rows*n, d]
        mu_all.append(mu[real].reshape(-1, mu.shape[-1]))
        done += take
    return TeacherDataset(inputs=torch.cat(inputs_all), mu=torch.cat(mu_all), episodes=episodes)
