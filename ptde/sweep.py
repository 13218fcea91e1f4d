"""`python -m ptde.sweep grid=paper_smac [budget=smoke]`: one of the paper's grids, then its report.

The grid (algos x maps x seeds, with the paper's env-step budget per group of maps) is data in
`conf/grid/`. Each group becomes one `python -m ptde.train -m ...` Hydra multirun, all writing
into the same sweep folder, so `ptde.report` sees the whole grid at once. The Makefile's
`paper-*` targets call this; `launcher=joblib` or `launcher=submitit_slurm` fans the runs out.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from ptde.cli import group_options, prepare_command_line
from ptde.config import register_configs, register_entry_configs
from ptde.config.resolved import to_container
from ptde.errors import ConfigError

register_configs()
register_entry_configs()


def select(grid: dict[str, Any], cfg: dict[str, Any]) -> list[dict[str, Any]]:
    """The grid's groups, restricted to `cfg.algos/envs/seeds` when given; validated against conf/.

    An env outside the grid has no paper budget, so it is accepted with `budget=smoke` only.
    """
    algos = cfg["algos"] or grid["algos"]
    seeds = cfg["seeds"] if cfg["seeds"] is not None else grid["seeds"]
    missing_algos = sorted(set(algos) - set(group_options("algo")))
    if missing_algos:
        raise ConfigError(
            f"grid {grid['name']} needs algo {', '.join(missing_algos)}, not in conf/algo (available: "
            f"{', '.join(group_options('algo'))}); restrict the grid with algos=[...] (make ... ALGOS=a,b)"
        )
    wanted = cfg["envs"]
    groups = []
    for g in grid["groups"]:
        envs = [e for e in g["envs"] if wanted is None or e in wanted]
        if envs:
            groups.append({"envs": envs, "max_env_steps": g["max_env_steps"], "algos": algos, "seeds": seeds})
    outside = [e for e in (wanted or []) if not any(e in g["envs"] for g in grid["groups"])]
    if outside:
        if cfg["budget"] != "smoke":
            raise ConfigError(
                f"env {', '.join(outside)} is not in grid {grid['name']}, so it has no paper budget; "
                "use budget=smoke or one of the grid's maps: " + ", ".join(e for g in grid["groups"] for e in g["envs"])
            )
        groups.append({"envs": outside, "max_env_steps": 0, "algos": algos, "seeds": seeds})
    unknown_envs = sorted({e for g in groups for e in g["envs"]} - set(group_options("env")))
    if unknown_envs:
        raise ConfigError(f"unknown env {', '.join(unknown_envs)}; valid: {', '.join(group_options('env'))}")
    if not groups or not seeds:
        raise ConfigError(f"the restriction leaves nothing of grid {grid['name']} to run")
    return groups


def multirun_commands(cfg: dict[str, Any], sweep_dir: Path) -> list[list[str]]:
    """One `ptde.train -m` command per group of maps that shares a budget."""
    grid = cfg["grid"]
    commands = []
    for g in select(grid, cfg):
        budget = cfg["smoke_overrides"] if cfg["budget"] == "smoke" else [f"trainer.max_env_steps={g['max_env_steps']}"]
        launcher = [] if cfg["launcher"] == "basic" else [f"hydra/launcher={cfg['launcher']}"]
        commands.append(
            [
                sys.executable, "-m", "ptde.train", "-m",
                f"algo={','.join(g['algos'])}",
                f"env={','.join(g['envs'])}",
                f"seed={','.join(str(s) for s in g['seeds'])}",
                *budget, *grid["overrides"], *cfg["extra"], *launcher,
                f"hydra.sweep.dir={sweep_dir}",
            ]
        )  # fmt: skip
    return commands


def run_sweep(cfg: dict[str, Any]) -> tuple[Path, int]:
    """Run every multirun of the grid into one folder, then the report; returns (folder, exit code)."""
    name = cfg["grid"]["name"]
    sweep_dir = Path(cfg["out"] or Path("outputs/multirun") / name / time.strftime("%Y-%m-%d_%H-%M-%S")).resolve()
    commands = multirun_commands(cfg, sweep_dir)
    failed = 0
    for cmd in commands:
        print("+", shlex.join(cmd[1:]), flush=True)
        if not cfg["dry_run"]:
            failed += subprocess.run(cmd).returncode != 0
    if cfg["dry_run"]:
        return sweep_dir, 0
    if failed:
        print(f"ptde.sweep: {failed} of {len(commands)} multiruns failed; reporting what finished", file=sys.stderr)
    if cfg["report"]:
        from ptde.report.build import build_report

        index = build_report(sweep_dir, sweep_dir / "report", bootstrap_reps=2000, seed=0)
        print(f"report: {index}")
    return sweep_dir, int(failed > 0)


@hydra.main(config_path="../conf", config_name="sweep", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        sweep_dir, code = run_sweep(to_container(cfg))
    except ConfigError as exc:
        print(f"ptde.sweep: {exc}", file=sys.stderr)
        sys.exit(2)
    print(f"sweep folder: {sweep_dir}")
    sys.exit(code)


if __name__ == "__main__":
    prepare_command_line("sweep")
    main()
