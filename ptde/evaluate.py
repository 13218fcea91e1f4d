"""`python -m ptde.evaluate checkpoint=<run folder or .ckpt> episodes=32 mode=centralized [render=true]`.

Greedy evaluation of a saved run, rebuilt from the config stored in its checkpoint.
`mode=centralized` runs the stage-1 policy (GIU/GIP agents read the state);
`mode=decentralized` runs the distilled student (`*_KD`), which never sees the state.
`z=mean` makes a GIU/GIP teacher act on its mean μ instead of its sampled z (centralized only).
The success metric comes with its standard error over the episodes (`eval/<metric>_se`: its
std / sqrt(n), for a win rate sqrt(p(1-p)/n)).
Writes `eval_<mode>.json` beside the run's results.json. `render=true` also saves one greedy
episode as an animated GIF (`render_<mode>.gif` in the run folder, or `render_path`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from ptde.cli import prepare_command_line
from ptde.config import register_configs, register_entry_configs
from ptde.config.resolved import run_label, to_container
from ptde.data.checkpoint import resolve_checkpoint, run_dir_of
from ptde.envs import make_env
from ptde.envs.build import test_batch_size
from ptde.errors import ConfigError
from ptde.experiment.evaluation import MeanZPolicy, load_decentralized
from ptde.files import dumps_strict, write_json_atomic
from ptde.learners import load_learner
from ptde.nested import ConfigView
from ptde.rollout import Actor, test_policy

register_configs()
register_entry_configs()


def load_policy(ckpt: Path, mode: str, z: str = "sampled") -> tuple[Actor, Any]:
    """(policy, learner): the stage-1 learner itself (acting on z = μ with `z=mean`), or the
    distilled student in its agent network."""
    if mode == "decentralized":
        if z != "sampled":
            raise ConfigError(f"z={z} applies to the teacher (mode=centralized); the student acts on μ'(o_i)")
        return load_decentralized(run_dir_of(ckpt))
    learner = load_learner(ckpt)
    return (MeanZPolicy(learner) if z == "mean" else learner), learner


def evaluate(
    checkpoint: str | Path, episodes: int, mode: str, seed: int, batch_size: int, z: str = "sampled"
) -> dict[str, Any]:
    ckpt = resolve_checkpoint(checkpoint)
    policy, learner = load_policy(ckpt, mode, z)
    cfg = learner.hparams["cfg"]
    env = make_env(
        ConfigView(cfg["env"]),
        batch_size=min(batch_size, test_batch_size(cfg["env"], episodes)),
        seed=seed,
        split="test",
    )
    metrics = test_policy(env, policy, learner.info.n_actions, episodes, prefix="eval")
    metric = env.get_env_info().success_metric
    env.close()
    # std over the episodes / sqrt(n): for a win rate the binomial sqrt(p(1-p)/n), for ndcg@k its own
    metrics[f"eval/{metric}_se"] = metrics[f"eval/{metric}_std"] / max(metrics["eval/episodes"], 1.0) ** 0.5
    return {
        **metrics,
        "episodes": episodes,
        "mode": mode,
        "z": z,
        "checkpoint": str(ckpt),
        "env_steps": learner.counters.env_steps,
    }


def render_episode(checkpoint: str | Path, mode: str, seed: int, path: Path | None, fps: int) -> dict[str, Any]:
    """Play one greedy episode in one environment and save it as a GIF."""
    from ptde.report.render import record_episode, write_gif

    ckpt = resolve_checkpoint(checkpoint)
    policy, learner = load_policy(ckpt, mode)
    cfg = learner.hparams["cfg"]
    env = make_env(ConfigView(cfg["env"]), batch_size=1, seed=seed, split="test")
    if not hasattr(env, "frame"):
        raise ConfigError(f"env family {cfg['env']['family']!r} has no renderer (smac on SMAX and grf do)")
    frames, batch = record_episode(env, policy, learner.info.n_actions)
    env.close()
    path = path or run_dir_of(ckpt) / f"render_{mode}.gif"
    title = f"{run_label(cfg)} ({mode}) on {cfg['env']['name']}, won={bool(batch.won[0])}"
    n = write_gif(frames, path, title, fps)
    return {"render": str(path), "render_frames": n, "render_episode_length": int(batch.length[0])}


@hydra.main(config_path="../conf", config_name="evaluate", version_base="1.3")
def main(cfg: DictConfig) -> None:
    c = to_container(cfg)
    try:
        result = evaluate(c["checkpoint"], c["episodes"], c["mode"], c["seed"], c["batch_size"], c["z"])
        if c["render"]:
            gif = Path(c["render_path"]) if c["render_path"] else None
            result |= render_episode(c["checkpoint"], c["mode"], c["seed"], gif, c["render_fps"])
    except ConfigError as exc:
        print(f"ptde.evaluate: {exc}", file=sys.stderr)
        sys.exit(2)
    suffix = "" if c["z"] == "sampled" else f"_z-{c['z']}"
    out = run_dir_of(Path(result["checkpoint"])) / f"eval_{c['mode']}{suffix}.json"
    write_json_atomic(out, result)
    print(dumps_strict(result))


if __name__ == "__main__":
    prepare_command_line("evaluate")
    main()
