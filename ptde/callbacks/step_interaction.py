"""Environment interaction for on-policy stage-1 training, as marlbenchmark/on-policy's runner does it.

Before every update: `algo.rollout_steps` steps of each of the B auto-reset training envs
(`ptde.rollout.steps`), continuing the episodes and the policy state of the previous rollout, into
the rollout store. Tests, logging, the env-step budget and checkpoints are the episode callback's.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

import lightning as L

from ptde.callbacks.env_interaction import EnvInteractionCallback
from ptde.rollout.steps import RolloutCarry, collect_steps


class StepInteractionCallback(EnvInteractionCallback):
    """`EnvInteractionCallback` with step-based collection; the carry between rollouts lives here.

    The carry (live env episodes, the policy's state) is not saved in checkpoints: a resumed run
    starts its training envs afresh, losing only the episodes that were running at the checkpoint.
    """

    # an on-policy learner's ε only switches its rollouts between sampling from the policy (1, all
    # of training) and acting greedily: no exploration schedule, nothing to log (MAPPO's logs and
    # progress carry no `train/epsilon`)
    logs_epsilon: ClassVar[bool] = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.carry: RolloutCarry | None = None

    def warm_up(self, module: L.LightningModule) -> None:
        """Nothing to fill: every update collects its own rollout first."""

    def collect(self, module: L.LightningModule) -> None:
        c = module.counters
        t = time.time()
        rollout, self.carry = collect_steps(
            self.train_env,
            module,
            self.n_actions,
            self.algo["rollout_steps"],
            self.carry,
            self.epsilon(c.env_steps),
            self.generator,
            module.device,
        )
        self.collect_seconds += time.time() - t
        steps = rollout.batch_size * rollout.steps
        c.env_steps += steps
        ep = rollout.episodes
        if bool(ep.dropped.any()):  # an engine worker crashed or hung: that episode's stats are not the policy's
            c.dropped_episodes += int(ep.dropped.sum())
            module.pending_metrics.setdefault("train/dropped_episodes", []).append(float(c.dropped_episodes))
        kept = ~ep.dropped
        c.episodes += int(kept.sum())
        self.buffer.insert(rollout)
        if bool(kept.any()):
            module.pending_metrics.setdefault("train/return", []).append(ep.returns[kept].mean().item())
            module.pending_metrics.setdefault("train/win_rate", []).append(ep.won[kept].float().mean().item())
        if self.progress is not None:
            self.progress.update(steps)
