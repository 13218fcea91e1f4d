"""`python -m ptde.evaluate checkpoint=<run folder or .ckpt> episodes=32`: greedy evaluation.

Rebuilds the env and networks from the config stored in the checkpoint, so a run folder is all
it needs. Writes `eval_<mode>.json` beside the run's results.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from ptde.callbacks.env_interaction import test_policy
from ptde.cli import precheck
from ptde.config import register_configs, register_entry_configs
from ptde.envs import make_env
from ptde.learners.value_decomposition import ValueDecompositionLearner
from ptde.results import write_json_atomic
from ptde.runtime import ConfigError, _Namespace, load_checkpoint, resolve_checkpoint, run_dir_of, to_container

register_configs()
register_entry_configs()


def load_learner(checkpoint: str | Path) -> ValueDecompositionLearner:
    ckpt = load_checkpoint(checkpoint)
    hp = ckpt["hyper_parameters"]
    learner = ValueDecompositionLearner(hp["cfg"], hp["env_info"])
    learner.load_state_dict(ckpt["state_dict"])
    learner.on_load_checkpoint(ckpt)
    return learner.eval()


def evaluate(checkpoint: str | Path, episodes: int, mode: str, seed: int, batch_size: int) -> dict[str, Any]:
    learner = load_learner(checkpoint)
    cfg = learner.hparams["cfg"]
    if mode != "centralized":
        raise ConfigError(f"mode={mode!r} needs a distilled student; this run has none")
    env = make_env(_Namespace(cfg["env"]), batch_size=min(batch_size, episodes), seed=seed)
    metrics = test_policy(env, learner.act, learner.info.n_actions, episodes, prefix="eval")
    env.close()
    return {
        **metrics,
        "episodes": episodes,
        "mode": mode,
        "checkpoint": str(resolve_checkpoint(checkpoint)),
        "env_steps": learner.counters.env_steps,
    }


@hydra.main(config_path="../conf", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    c = to_container(cfg)
    try:
        result = evaluate(c["checkpoint"], c["episodes"], c["mode"], c["seed"], c["batch_size"])
    except ConfigError as exc:
        print(f"ptde.evaluate: {exc}", file=sys.stderr)
        sys.exit(2)
    out = run_dir_of(Path(result["checkpoint"])) / f"eval_{c['mode']}.json"
    write_json_atomic(out, result)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    precheck("evaluate")
    main()
