"""Shared test helpers: real configs composed by Hydra, real SMAX, real files in tmp dirs."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONF = REPO / "conf"
os.environ.setdefault("WANDB_MODE", "offline")
os.environ.setdefault("WANDB_SILENT", "true")


def compose_cfg(*overrides: str) -> dict:
    """The resolved config `python -m ptde.train <overrides>` would run with, as plain containers."""
    from hydra import compose, initialize_config_dir

    from ptde.config import register_configs
    from ptde.config.resolved import to_container

    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return to_container(compose("config", overrides=list(overrides)))


def run_module(module: str, *args: str, cwd: Path = REPO, timeout: int = 600):
    """Run `python -m module args` as a user would; returns the CompletedProcess."""
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", module, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )


@pytest.fixture(scope="session")
def tiny_overrides() -> list[str]:
    """A stage-1 budget that trains for real in well under a minute on 2 cores."""
    return [
        "env=smac/3m",
        "logger=csv",
        "trainer.max_env_steps=3000",
        "trainer.test_interval=1500",
        "trainer.log_interval=500",
        "trainer.checkpoint_interval=1500",
        "trainer.test_episodes=8",
        "trainer.progress_bar=false",
        "algo.batch_size=16",
        "algo.buffer_size=200",
        "env.batch_size_run=8",
    ]


def learner_and_real_batch(algo: str = "qmix", *overrides: str):
    """An untrained learner of `algo` on SMAX 3m and 16 of its own random-policy episodes; its update in
    float32 unless an override says otherwise (the tests that use it compare computations)."""
    import torch

    from ptde.data.buffer import EpisodeReplayBuffer
    from ptde.envs.build import build_envs
    from ptde.learners import build_learner
    from ptde.rollout import run_episodes

    torch.manual_seed(0)
    cfg = compose_cfg(
        f"algo={algo}", "env=smac/3m", "env.batch_size_run=8", "trainer.test_episodes=8", "trainer.precision=32-true",
        *overrides,
    )  # fmt: skip
    train_env, _, info = build_envs(cfg, seed=0)
    learner = build_learner(cfg, info.__dict__)
    buffer = EpisodeReplayBuffer(64, info)
    for _ in range(2):
        buffer.insert(run_episodes(train_env, learner, info.n_actions, epsilon=1.0))
    return learner, buffer.sample(16, torch.Generator().manual_seed(0))


def fit_fixed_batch(learner, batch, steps: int = 60) -> list[float]:
    """TD losses of `steps` Adam updates on one batch with frozen targets (a learner must fit it)."""
    import torch

    opt = torch.optim.Adam(list(learner.q_net.parameters()) + list(learner.mixer.parameters()), lr=1e-3)
    losses = []
    for _ in range(steps):
        loss, _ = learner.compute_loss(batch)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses
