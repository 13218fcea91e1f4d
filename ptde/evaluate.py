"""`python -m ptde.evaluate checkpoint=<run folder or .ckpt> episodes=32 mode=centralized`.

Greedy evaluation of a saved run, rebuilt from the config stored in its checkpoint.
`mode=centralized` runs the stage-1 policy (GIU/GIP agents read the state);
`mode=decentralized` runs the distilled student (`*_KD`), which never sees the state.
Writes `eval_<mode>.json` beside the run's results.json.
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
from ptde.learners import load_learner
from ptde.pipeline import load_decentralized
from ptde.results import write_json_atomic
from ptde.runtime import ConfigError, ConfigView, resolve_checkpoint, run_dir_of, test_batch_size, to_container

register_configs()
register_entry_configs()


def evaluate(checkpoint: str | Path, episodes: int, mode: str, seed: int, batch_size: int) -> dict[str, Any]:
    ckpt = resolve_checkpoint(checkpoint)
    if mode == "decentralized":
        policy, learner = load_decentralized(run_dir_of(ckpt))
    else:
        learner = load_learner(ckpt)
        policy = learner
    cfg = learner.hparams["cfg"]
    env = make_env(
        ConfigView(cfg["env"]),
        batch_size=min(batch_size, test_batch_size(cfg["env"], episodes)),
        seed=seed,
        split="test",
    )
    metrics = test_policy(env, policy, learner.info.n_actions, episodes, prefix="eval")
    env.close()
    return {
        **metrics,
        "episodes": episodes,
        "mode": mode,
        "checkpoint": str(ckpt),
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
