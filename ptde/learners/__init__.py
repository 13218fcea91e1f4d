"""Stage-1 learners and the one place that picks one from a config (`algo.learner`, `LEARNERS`).

Every stage-1 learner is a LightningModule with the same small surface, so the env-interaction
callback, the experiment stages (`ptde.experiment`) and evaluation never branch on the algorithm:

- `counters` (RunCounters), `pending_metrics`, `pop_metrics()`, `from_checkpoint_dict(ckpt)` (through
  `load_learner`): shared
  by subclassing `ptde.learners.base.StageOneLearner`;
- `act(inputs, hidden[, state])` for rollouts (see `ptde.rollout.Actor`), `uses_state`, `info`,
  and optionally `select_actions(out, avail, epsilon, generator)` (default: ε-greedy on `out`);
- `build_data(cfg, info, seed) -> (buffer, datamodule)`: where its training batches come from;
- `global_info` (the GIU/GIP module or None) and `decentralized_policy(student, noise_var)`,
  which stage 2 uses to build the `*_KD` actor; `own_student()`: the decentralized policy a
  learner trains during stage 1 itself (CTDS), else None.

`act`, `uses_state`, `global_info` and `decentralized_policy` are the base's, over the learner's
`acting_net`; a learner class is chosen from `LEARNERS` by `algo.learner`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from ptde import plugins
from ptde.data.checkpoint import load_checkpoint
from ptde.errors import ConfigError
from ptde.registry import choose

# `algo.learner` -> its LightningModule class (declared in ptde.plugins.LEARNERS; imported when chosen:
# the modules import each other)
LEARNERS = {name: plugin.learner for name, plugin in plugins.LEARNERS.items()}


def require_no_variant(variant: dict[str, Any], algo: str) -> None:
    """The baselines (CTDS, COPA, CSRL) bring their own use of global information; a GIU/GIP
    variant on top of one is refused."""
    if variant["name"] != "none":
        raise ConfigError(f"algo={algo} has its own use of global information; run it with variant=none")


def learner_class(cfg: dict[str, Any]) -> type[L.LightningModule]:
    return choose(LEARNERS, str(cfg["algo"]["learner"]), "algo.learner")


def build_learner(cfg: dict[str, Any], env_info: dict[str, Any]) -> L.LightningModule:
    return learner_class(cfg)(cfg, env_info)


def load_learner(path: str | Path) -> L.LightningModule:
    """Rebuild any stage-1 learner from a run folder or .ckpt (its config travels inside)."""
    ckpt = load_checkpoint(path)  # read once: the class and its weights come from the same dict
    return learner_class(ckpt["hyper_parameters"]["cfg"]).from_checkpoint_dict(ckpt)
