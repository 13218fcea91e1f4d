"""Stage-1 learners and the one place that picks one from a config (`algo.learner`).

Every stage-1 learner is a LightningModule with the same small surface, so the env-interaction
callback, the pipeline, stage 2 and evaluation never branch on the algorithm:

- `counters` (RunCounters), `pending_metrics`, `pop_metrics()`, `from_checkpoint(path)`: shared
  by subclassing `ptde.learners.base.StageOneLearner`;
- `act(inputs, hidden[, state])` for rollouts (see `ptde.rollout.Actor`), `uses_state`, `info`,
  and optionally `select_actions(out, avail, epsilon, generator)` (default: ε-greedy on `out`);
- `build_data(cfg, info, seed) -> (buffer, datamodule)`: where its training batches come from;
- `global_info` (the GIU/GIP module or None) and `decentralized_policy(student, noise_var)`,
  which stage 2 uses to build the `*_KD` actor.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L

from ptde.runtime import ConfigError, load_checkpoint


def learner_registry() -> dict[str, type[L.LightningModule]]:
    """`algo.learner` value -> LightningModule class (imported lazily: modules import each other)."""
    from ptde.learners.copa import COPALearner
    from ptde.learners.csrl import CSRLLearner
    from ptde.learners.ctds import CTDSLearner
    from ptde.learners.mappo import MAPPOLearner
    from ptde.learners.value_decomposition import ValueDecompositionLearner

    return {
        "value_decomposition": ValueDecompositionLearner,
        "mappo": MAPPOLearner,
        "ctds": CTDSLearner,
        "copa": COPALearner,
        "csrl": CSRLLearner,
    }


def require_no_variant(variant: dict[str, Any], algo: str) -> None:
    """The baselines (CTDS, COPA, CSRL) bring their own use of global information; a GIU/GIP
    variant on top of one is refused."""
    if variant["name"] != "none":
        raise ConfigError(f"algo={algo} has its own use of global information; run it with variant=none")


def learner_class(cfg: dict[str, Any]) -> type[L.LightningModule]:
    registry = learner_registry()
    name = str(cfg["algo"]["learner"])
    if name not in registry:
        raise ConfigError(f"algo.learner={name!r} is not a learner; valid choices: {', '.join(sorted(registry))}")
    return registry[name]


def build_learner(cfg: dict[str, Any], env_info: dict[str, Any]) -> L.LightningModule:
    return learner_class(cfg)(cfg, env_info)


def load_learner(path: str | Path) -> L.LightningModule:
    """Rebuild any stage-1 learner from a run folder or .ckpt (its config travels inside)."""
    ckpt = load_checkpoint(path)
    return learner_class(ckpt["hyper_parameters"]["cfg"]).from_checkpoint(path)
