"""Continuing a killed run: which folder, which checkpoint, and whether the config still matches.

`resume` (top-level config key):
- `auto` (default): continue the run's own folder when it already holds a checkpoint. A fresh
  timestamped folder never does, so this only acts when the same folder is run again: a Slurm job
  requeued after preemption (submitit re-runs the job in its sweep folder), or a command re-run
  with the same `hydra.run.dir` / `hydra.sweep.dir`.
- `true`: the run in the command's own `hydra.run.dir` when it names one, else the newest
  unfinished run under `outputs/` whose config equals this command's.
- a run folder or `.ckpt` file: that run (its saved config is used; command-line overrides may
  only change the keys in `RESUME_MAY_CHANGE`).
- `false`: always start over.

A finished run is not re-run; a run killed during stage 2 does not re-train stage 1. With
trainer.save_buffer=true (the default) the checkpoint's replay buffer comes back from the replay
store; a periodic checkpoint whose replay the store no longer keeps is refused, not refilled.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ptde.data.checkpoint import load_checkpoint, run_dir_of
from ptde.data.replay_store import ReplayStore, store_folder
from ptde.errors import ConfigError
from ptde.experiment.run_folder import read_results
from ptde.nested import flatten

# what a resumed run may change: the budget (extend a finished run), and how it runs, not what it learns
RESUME_MAY_CHANGE = (
    "resume",
    "trainer.max_env_steps",
    "trainer.progress_bar",
    "trainer.torch_threads",
    "trainer.keep_freed_memory",
    "trainer.accelerator",
    "trainer.save_buffer",
    "logger.mode",
)
OUTPUTS = Path("outputs")


def resume_kind(value: Any) -> str:
    """auto | true | false | path, from the raw config value (Hydra parses true/false as bools)."""
    text = str(value).strip().lower()
    if text in {"auto", "true", "false"}:
        return text
    return "path"


def config_differences(saved: dict[str, Any], current: dict[str, Any], may_change=RESUME_MAY_CHANGE) -> list[str]:
    """`key: saved -> current` for every key that differs and may not change on resume."""
    a, b = flatten(saved), flatten(current)
    diffs = []
    for key in sorted(set(a) | set(b)):
        if key.startswith(may_change) or a.get(key) == b.get(key):
            continue
        diffs.append(f"{key}: {a.get(key, '<absent>')!r} -> {b.get(key, '<absent>')!r}")
    return diffs


def older_version_hint(diffs: list[str], previous: dict[str, Any]) -> str:
    """A key the run's config does not have was added to ptde after the run started: say which commit
    the run trained on, so it can be resumed with that code."""
    commit = previous.get("git_commit")
    if not commit or not any(": '<absent>' -> " in d for d in diffs):
        return ""
    return (
        f". The run was started by an older ptde (commit {commit[:12]}, results.json git_commit) without "
        f"the key(s) marked <absent>: resume it with that code, e.g. from `git worktree add <dir> {commit[:12]}`"
    )


def saved_config(run_dir: Path) -> dict[str, Any]:
    path = run_dir / "config.yaml"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a ptde run folder (it has no config.yaml)")
    return yaml.safe_load(path.read_text())


def run_dir_of_resume(value: str) -> Path:
    """resume=<run folder or .ckpt> -> the run folder."""
    p = Path(value)
    if p.is_file() and p.suffix == ".ckpt":
        return run_dir_of(p)
    if p.is_dir():
        saved_config(p)  # refuses a folder that is not a run
        return p
    raise ConfigError(f"resume={value!r}: no run folder or .ckpt file there")


def find_unfinished_run(cfg: dict[str, Any], root: Path = OUTPUTS) -> Path:
    """resume=true: the newest unfinished run folder under `root` whose config equals `cfg`."""
    candidates = []
    for results in root.rglob("results.json"):
        run_dir = results.parent
        try:
            status = read_results(run_dir).get("status")
            saved = saved_config(run_dir)
        except (ConfigError, ValueError, OSError):
            continue
        if status != "finished" and not config_differences(saved, cfg):
            candidates.append((results.stat().st_mtime, run_dir))
    if not candidates:
        raise ConfigError(
            f"resume=true: no unfinished run under {root}/ has this config; pass the folder itself "
            "(resume=<run folder>), or resume=false to start a new run"
        )
    return max(candidates)[1]


def resume_argv(argv: list[str]) -> list[str]:
    """Point Hydra's run folder at the run that `resume=true|<folder>` names, before Hydra starts.

    A sweep (`-m`) resumes by re-running it in its own folder (`hydra.sweep.dir=<it>`, with the
    default resume=auto), so naming one run there is refused.
    """
    from ptde.cli import CONF_DIR, split_flags, task_overrides

    flags, overrides = split_flags(argv[1:])
    values = [a.split("=", 1)[1] for a in overrides if a.startswith("resume=")]
    if not values or resume_kind(values[-1]) in {"auto", "false"}:
        return argv
    explicit = [a.split("=", 1)[1] for a in overrides if a.startswith("hydra.run.dir=")]
    try:
        if {"-m", "--multirun"} & set(flags):
            raise ConfigError(
                f"resume={values[-1]} names one run; to resume a sweep, run it again with "
                "hydra.sweep.dir=<its folder> (resume=auto continues every job that has a checkpoint)"
            )
        if resume_kind(values[-1]) == "true" and explicit:
            if not (Path(explicit[-1]) / "results.json").is_file():
                raise ConfigError(
                    f"resume=true: hydra.run.dir={explicit[-1]} holds no run to resume (no results.json); "
                    "drop resume=true to start a run there"
                )
            return argv  # Hydra's run folder is already that run's
        if resume_kind(values[-1]) == "true":
            from hydra import compose, initialize_config_dir

            from ptde.config.resolved import to_container

            with initialize_config_dir(config_dir=CONF_DIR, version_base="1.3"):
                cfg = to_container(compose("config", overrides=task_overrides(overrides)))
            run_dir = find_unfinished_run(cfg)
        else:
            run_dir = run_dir_of_resume(values[-1])
    except ConfigError as exc:
        print(f"ptde.train: {exc}", file=sys.stderr)
        sys.exit(2)
    return [*[a for a in argv if not a.startswith("hydra.run.dir=")], f"hydra.run.dir={run_dir}"]


@dataclass
class ResumePlan:
    """What `ptde.train` does in a run folder: the config to run, and where it continues from."""

    cfg: dict[str, Any]
    checkpoint: Path | None = None  # stage-1 checkpoint to continue from (None: stage 1 from scratch)
    previous: dict[str, Any] = field(default_factory=dict)  # results.json of the run being continued
    checkpoint_env_steps: int = 0  # the checkpoint's env-step counter (read once, when it was checked)

    @property
    def resuming(self) -> bool:
        return bool(self.previous)

    @property
    def stages_done(self) -> list[str]:
        return list(self.previous.get("stages_done", []))

    @property
    def finished(self) -> bool:
        return self.previous.get("status") == "finished"


def plan_resume(cfg: dict[str, Any], run_dir: Path, explicit_overrides: list[str]) -> ResumePlan:
    """Decide how to run `cfg` in `run_dir` (Hydra's folder, already pointed at the run to resume).

    `explicit_overrides` are the command line's `key=value` overrides: with resume=<folder> the
    saved config is the base and only those may (if allowed) change it.
    """
    kind = resume_kind(cfg["resume"])
    results_path = run_dir / "results.json"
    if kind == "false" or not results_path.is_file():
        if kind in {"true", "path"}:
            raise ConfigError(f"resume={cfg['resume']}: {run_dir} holds no run to resume (no results.json)")
        return ResumePlan(cfg)
    saved = saved_config(run_dir)
    if kind == "path":
        cfg = apply_overrides(saved, cfg, explicit_overrides)
    diffs = config_differences(saved, cfg)
    previous = read_results(run_dir)
    if diffs:
        raise ConfigError(
            f"cannot resume {run_dir}: this command's config differs from the run's own in "
            + "; ".join(diffs)
            + f". Only {', '.join(RESUME_MAY_CHANGE[1:])} may change on resume; start a new run with resume=false"
            + older_version_hint(diffs, previous)
        )
    picked = _checked_checkpoint(run_dir, cfg["resume"] if kind == "path" else None)
    if picked is None:
        plan = ResumePlan(cfg, None, previous)
        if kind == "auto" and not plan.finished and "1" not in plan.stages_done:
            return ResumePlan(cfg)  # killed before its first checkpoint: nothing to continue, start over
        return plan
    checkpoint, counters, replay = picked
    if replay is not None and cfg["trainer"]["save_buffer"]:
        refuse_lost_replay(run_dir, checkpoint, replay)
    return ResumePlan(cfg, checkpoint, previous, int(counters.get("env_steps", 0)))


def refuse_lost_replay(run_dir: Path, checkpoint: Path, replay: dict[str, Any]) -> None:
    """A checkpoint whose replay the store no longer holds (an older periodic one, see
    `ptde.data.replay_store`) is refused before anything runs: continuing it with a refilled buffer
    would not be the exact resume it promises, so that takes trainer.save_buffer=false, said so."""
    why = ReplayStore(store_folder(run_dir)).unrestorable(replay)
    if why is not None:
        raise ConfigError(
            f"cannot resume from {checkpoint} with its replay buffer: {why}. Resume from the run's "
            f"last.ckpt (resume={run_dir}), or add trainer.save_buffer=false to continue from this "
            "checkpoint with a refilled buffer"
        )


def apply_overrides(saved: dict[str, Any], composed: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """The saved config with the values of the keys (or groups) the command line names."""
    out = yaml.safe_load(yaml.safe_dump(saved))
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        node_src, node_dst = composed, out
        parts = key.split(".")
        if parts[0] in {"algo", "env", "variant", "logger", "trainer"} and len(parts) == 1:
            out[parts[0]] = composed[parts[0]]  # a group choice: its whole node
            continue
        for p in parts[:-1]:
            node_src, node_dst = node_src[p], node_dst.setdefault(p, {})
        node_dst[parts[-1]] = node_src[parts[-1]]
    return out


def pick_checkpoint(run_dir: Path, explicit: str | None) -> Path | None:
    """The checkpoint to continue from: the named .ckpt, else checkpoints/last.ckpt. An unreadable
    one is refused with the readable alternatives named (it is never silently skipped)."""
    picked = _checked_checkpoint(run_dir, explicit)
    return None if picked is None else picked[0]


def _checked_checkpoint(
    run_dir: Path, explicit: str | None
) -> tuple[Path, dict[str, Any], dict[str, Any] | None] | None:
    """`pick_checkpoint`'s path with the checkpoint's counters and the replay-store generation it
    names (`ptde_replay`, None where it keeps none): the one load a resume needs before Lightning's."""
    path = Path(explicit) if explicit and str(explicit).endswith(".ckpt") else run_dir / "checkpoints" / "last.ckpt"
    if not path.is_file():
        return None
    try:
        ckpt = load_checkpoint(path)
    except Exception as exc:  # noqa: BLE001 - any unpickling error means the file is unusable
        others = sorted(str(p) for p in path.parent.glob("env_steps_*.ckpt") if _readable(p))
        hint = f"; readable checkpoints: {', '.join(others)} (resume=<one of them>)" if others else ""
        raise ConfigError(f"checkpoint {path} is unreadable ({type(exc).__name__}: {exc}){hint}") from None
    trained = ckpt.get("hyper_parameters", {}).get("cfg", {})
    run_cfg = saved_config(run_dir)
    diffs = [
        d
        for g in ("algo", "env", "variant")
        for d in config_differences({g: trained.get(g, {})}, {g: run_cfg[g]}, may_change=("variant.distill",))
    ]
    if diffs:
        raise ConfigError(f"checkpoint {path} was trained with another setup than run {run_dir}: " + "; ".join(diffs))
    return path, ckpt.get("ptde_counters", {}), ckpt.get("ptde_replay")


def _readable(path: Path) -> bool:
    try:
        load_checkpoint(path)
    except Exception:  # noqa: BLE001
        return False
    return True
