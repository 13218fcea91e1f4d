"""Finding and loading the runs a report is made of: run folders, offline wandb runs, or a wandb project.

Every source gives the same `RunRecord` (final results, learning curves, distillation curves).
A run that cannot be used (no or corrupt results.json, not finished, a duplicate) is never
averaged in: it becomes an issue line naming the run, and the report lists the issues.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from ptde.report.wandb_offline import merge_offline_runs, offline_run_id, read_offline_run

# the success metric of results written before results.json named it
SUCCESS_METRIC = {"smac": "win_rate", "grf": "win_rate", "ltr": "ndcg@10"}
RUN_FILES = ("results.json", "config.yaml", "metrics.csv", ".hydra")


@dataclass
class RunRecord:
    name: str  # the run folder's (or wandb run's) name, as issues refer to it
    results: dict[str, Any]  # results.json: status, algo, env, env_family, seed, test/*, eval/*, distill/*
    curves: pd.DataFrame  # env_steps plus metric columns, one row per log event
    distill: pd.DataFrame | None = None  # step, distill/train_mse, distill/val_mse (stage 2)
    group: str | None = None  # its wandb group (`ptde.loggers.wandb_run.wandb_group`): the config without the seed

    @property
    def algo(self) -> str:
        return self.results["algo"]

    @property
    def env(self) -> str:
        return self.results["env"]

    @property
    def family(self) -> str:
        return self.results["env_family"]

    @property
    def seed(self) -> int:
        return int(self.results["seed"])

    @property
    def metric(self) -> str:
        return self.results.get("success_metric") or SUCCESS_METRIC.get(self.family, "win_rate")


class RunIssue(Exception):
    """Why a run is left out of the report."""


def metric_curve(df: pd.DataFrame, x: str, y: str) -> tuple[np.ndarray, np.ndarray] | None:
    """(x, y) of a logged metric in x order, the last value per x; None when either is never logged."""
    if x not in df or y not in df:
        return None
    d = df[[x, y]].apply(pd.to_numeric, errors="coerce").dropna().groupby(x, as_index=False)[y].last()
    return (d[x].to_numpy(float), d[y].to_numpy(float)) if len(d) else None


def _read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path) if path.is_file() and path.stat().st_size else pd.DataFrame()


def load_run_folder(run_dir: Path) -> RunRecord:
    path = run_dir / "results.json"
    if not path.is_file():
        raise RunIssue("no results.json (the run never started or was killed before writing it)")
    try:
        results = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RunIssue(f"results.json is corrupt ({exc})") from None
    if not isinstance(results, dict):
        raise RunIssue("results.json does not hold an object")
    status = results.get("status")
    if status != "finished":
        reason = f": {results['reason']}" if results.get("reason") else ""
        raise RunIssue(f"status {status!r}{reason}")
    missing = [k for k in ("algo", "env", "env_family", "seed") if k not in results]
    if missing:
        raise RunIssue(f"results.json lacks {', '.join(missing)}")
    distill = _read_csv(run_dir / "distill" / "metrics.csv")
    curves = _read_csv(run_dir / "metrics.csv")
    return RunRecord(run_dir.name, results, curves, distill if len(distill) else None, _group_of(run_dir))


def _group_of(run_dir: Path) -> str | None:
    from ptde.loggers.wandb_run import wandb_group

    try:
        return wandb_group(yaml.safe_load((run_dir / "config.yaml").read_text()))
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return None


def load_offline_wandb(folders: list[Path]) -> RunRecord:
    """An offline wandb run on its own (one folder per process that logged to it, in time order):
    its summary (a ptde run's results.json) over the last logged value of each metric, and the
    distillation curves of stage 2 from its history."""
    try:
        run = merge_offline_runs([read_offline_run(f) for f in folders])
    except (OSError, ValueError) as exc:
        raise RunIssue(f"unreadable wandb run log ({exc})") from None
    if run["exit_code"] != 0:
        raise RunIssue("the wandb run has no successful exit record (still running, crashed or killed)")
    cfg, history = run["config"], run["history"]
    try:
        results = results_from_config(cfg)
    except KeyError as exc:
        raise RunIssue(f"the wandb run config lacks {exc}") from None
    results.update({**last_values(history), **summary_values(run["summary"])})
    return RunRecord(run["name"], results, history, distill_curves(history), run["group"])


def summary_values(summary: dict[str, Any]) -> dict[str, Any]:
    """The numbers and names of a wandb run's summary (ptde writes its results.json there)."""
    return {k: v for k, v in summary.items() if isinstance(v, str | int | float | bool)}


def distill_curves(history: pd.DataFrame) -> pd.DataFrame | None:
    """distill/metrics.csv's layout (step, distill/train_mse, distill/val_mse) from a wandb history."""
    columns = [c for c in ("distill/train_mse", "distill/val_mse") if c in history]
    if "distill/step" not in history or not columns:
        return None
    rows = history[history["distill/step"].notna() & history[columns].notna().any(axis=1)]
    out = rows[["distill/step", *columns]].rename(columns={"distill/step": "step"}).reset_index(drop=True)
    return out if len(out) else None


def results_from_config(cfg: dict[str, Any]) -> dict[str, Any]:
    """The identity keys of results.json from a ptde run config (as logged to wandb)."""
    from ptde.config.resolved import run_label

    return {
        "status": "finished",
        "algo": run_label(cfg),
        "env": cfg["env"]["name"],
        "env_family": cfg["env"]["family"],
        "seed": int(cfg["seed"]),
    }


def last_values(history: pd.DataFrame) -> dict[str, float]:
    out = {}
    for col in history.columns:
        values = pd.to_numeric(history[col], errors="coerce").dropna()
        if len(values) and col.startswith(("test/", "eval/", "distill/")):
            out[col] = float(values.iloc[-1])
    if "env_steps" in history:
        out["env_steps"] = float(pd.to_numeric(history["env_steps"], errors="coerce").max())
    return out


def find_run_folders(source: Path) -> tuple[list[Path], list[Path]]:
    """(run folders, standalone offline wandb runs) under `source`; never looks inside a run folder."""
    runs, wandb_runs = [], []
    stack = [source]
    while stack:
        d = stack.pop()
        if d.name.startswith("offline-run-"):
            wandb_runs.append(d)
            continue
        if (d / "results.json").exists() or (d != source and any((d / f).exists() for f in RUN_FILES)):
            runs.append(d)
            continue
        stack.extend(sorted((p for p in d.iterdir() if p.is_dir() and p.name != "report"), reverse=True))
    return sorted(runs), sorted(wandb_runs)


def select_runs(source: Path, folders: list[Path], only: list[str]) -> list[Path]:
    """The folders whose path under `source` matches one of the fnmatch patterns `only`
    (case-sensitive on every platform, as the campaign's `only`): a comparison across the groups
    of a campaign (one group's QMIX against another's GIP) is one report without copying runs
    around. A pattern that matches nothing is an error naming the folders there are, since a
    misspelt group would otherwise drop a row silently."""
    rel = {d: d.relative_to(source).as_posix() for d in folders}
    for pattern in only:
        if not any(fnmatchcase(r, pattern) for r in rel.values()):
            listed = "\n  ".join(sorted(rel.values())) or "(none)"
            raise FileNotFoundError(f"only: '{pattern}' matches no run under {source}; the runs there:\n  {listed}")
    return [d for d in folders if any(fnmatchcase(rel[d], p) for p in only)]


def load_source(source: Path, unique: bool = True, only: list[str] | None = None) -> tuple[list[RunRecord], list[str]]:
    """All usable runs under a folder, and one issue line per run left out (`unique=False`: keep
    runs of the same algo, env and seed, e.g. the jobs of a sweep over another key; see `dedupe`).
    `only`: just the runs whose path under the folder matches one of these patterns (`select_runs`)."""
    if not source.is_dir():
        raise FileNotFoundError(f"report source {source} is not a folder")
    run_dirs, wandb_dirs = find_run_folders(source)
    if only is not None:
        picked = set(select_runs(source, run_dirs + wandb_dirs, only))
        run_dirs, wandb_dirs = [d for d in run_dirs if d in picked], [d for d in wandb_dirs if d in picked]
    by_id: dict[str, list[Path]] = {}
    for d in sorted(wandb_dirs, key=lambda d: d.name):  # offline-run-<date_time>-<id>: time order
        by_id.setdefault(offline_run_id(d), []).append(d)
    records, issues = [], []
    jobs = [(d, load_run_folder, d) for d in run_dirs] + [(ds[-1], load_offline_wandb, ds) for ds in by_id.values()]
    for d, loader, arg in jobs:
        try:
            records.append(loader(arg))
        except RunIssue as exc:
            issues.append(f"{d.relative_to(source) if d != source else d.name}: skipped, {exc}")
    return dedupe(records, issues) if unique else (records, issues)


def dedupe(records: list[RunRecord], issues: list[str]) -> tuple[list[RunRecord], list[str]]:
    """One run per (algo, env, seed): a second one would weigh that seed twice. The tables have one
    cell per algorithm and map, so of two configs (wandb groups) of the same seed, as in a sweep
    over a learning rate, only the first is tabulated (the wandb report shows every group)."""
    seen: dict[tuple[str, str, int], RunRecord] = {}
    kept = []
    for r in records:
        key = (r.algo, r.env, r.seed)
        if key in seen:
            first = seen[key]
            other = f", another config (wandb group {r.group}, kept: {first.group})" if r.group != first.group else ""
            issues.append(f"{r.name}: skipped, duplicate of {first.name} ({r.algo} on {r.env}, seed {r.seed}{other})")
            continue
        seen[key] = r
        kept.append(r)
    return kept, issues


def load_wandb_project(project: str, entity: str | None, unique: bool = True) -> tuple[list[RunRecord], list[str]]:
    """Finished runs of a wandb project through `wandb.Api` (needs the network and an API key)."""
    from ptde.loggers.wandb_run import wandb_logged_in

    if not wandb_logged_in():
        raise RuntimeError(
            "source=wandb reads a wandb project online, but no API key is configured (WANDB_API_KEY or "
            "`wandb login`); offline, point source= at a folder of run folders or offline wandb runs"
        )
    import wandb

    api = wandb.Api()
    path = f"{entity or api.default_entity}/{project}"
    records, issues = [], []
    for run in api.runs(path):
        if run.state != "finished":
            issues.append(f"{run.name}: skipped, wandb state {run.state!r}")
            continue
        try:
            results = results_from_config(dict(run.config))
        except KeyError as exc:
            issues.append(f"{run.name}: skipped, its config lacks {exc}")
            continue
        history = pd.DataFrame(list(run.scan_history()))
        results.update({**last_values(history), **summary_values(dict(run.summary_metrics))})
        records.append(RunRecord(run.name, results, history, distill_curves(history), run.group))
    return dedupe(records, issues) if unique else (records, issues)
