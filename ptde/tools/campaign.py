"""`python -m ptde.tools.campaign campaign=smax` (`make campaign`): a benchmark campaign, resumably.

A campaign (`conf/campaign/*.yaml`) is a grid of algos x envs x seeds at fixed budgets. Each run is
one `ptde.train` process with its own `hydra.run.dir` under `work_dir`, so re-running the command
continues every run where it stopped (`resume=auto` picks up its checkpoint) and skips the finished
ones. When a run finishes, only its small artefacts (config.yaml, results.json, metrics.csv,
distill/metrics.csv) are copied to `<out>/runs/<run>/`, and the report in `<out>/report/` is rebuilt
from those copies, so what is committed is exactly what the report was made from. A named group (a
condition of an ablation, with its own overrides) has its own `<out>/<group>/runs/` and report.

Runs are ordered seed-major (every cell's seed 0 before any seed 1), so a campaign cut short by the
end of a session leaves whole cells of the table as early as possible.
"""

from __future__ import annotations

import csv
import fnmatch
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from ptde.cli import group_options, precheck
from ptde.config import register_configs, register_entry_configs
from ptde.config.resolved import to_container
from ptde.errors import ConfigError
from ptde.experiment.run_folder import read_results, run_folder_holder

register_configs()
register_entry_configs()

ARTEFACTS = ("config.yaml", "results.json", "metrics.csv", "distill/metrics.csv")


@dataclass(frozen=True)
class CampaignRun:
    algo: str
    env: str  # env option, e.g. smac/3s_vs_5z
    seed: int
    max_env_steps: int
    group: str = ""  # the named group's folder under out and work_dir ("" : none)
    overrides: tuple[str, ...] = ()  # the group's ptde.train overrides

    @property
    def name(self) -> str:
        """The run's folder name, as ptde.report labels it."""
        return f"{self.algo}_{self.env.split('/')[-1]}_seed{self.seed}"

    @property
    def key(self) -> str:
        """Unique in the campaign: what `only` matches and the log names."""
        return f"{self.group}/{self.name}" if self.group else self.name


def campaign_runs(cfg: dict[str, Any]) -> list[CampaignRun]:
    """The campaign's runs, seed-major, restricted by `only`; every algo and env checked against conf/."""
    groups = cfg["campaign"]["groups"]
    for kind, names in (
        ("algo", {a for g in groups for a in g["algos"]}),
        ("env", {e for g in groups for e in g["envs"]}),
    ):
        unknown = sorted(names - set(group_options(kind)))
        if unknown:
            raise ConfigError(f"campaign {cfg['campaign']['name']} names unknown {kind} {', '.join(unknown)}; "
                              f"valid: {', '.join(group_options(kind))}")  # fmt: skip
    runs = [
        CampaignRun(algo, env, seed, g["max_env_steps"], g["name"], tuple(g["overrides"]))
        for g in groups
        for seed in g["seeds"]
        for env in g["envs"]
        for algo in g["algos"]
    ]  # group by group, and seed-major inside a group
    twice = sorted(k for k, n in Counter(r.key for r in runs).items() if n > 1)
    if twice:
        raise ConfigError(f"campaign {cfg['campaign']['name']} has the run(s) {', '.join(twice)} in two groups; "
                          "give the groups distinct names")  # fmt: skip
    if cfg["only"] is not None:
        runs = [r for r in runs if any(fnmatch.fnmatchcase(r.key, pat) for pat in cfg["only"])]
        if not runs:
            raise ConfigError(f"only={cfg['only']} matches no run of campaign {cfg['campaign']['name']}")
    return runs


def train_command(cfg: dict[str, Any], run: CampaignRun, run_dir: Path) -> list[str]:
    budget = cfg["smoke_overrides"] if cfg["budget"] == "smoke" else [f"trainer.max_env_steps={run.max_env_steps}"]
    nice = ["nice", "-n", str(cfg["nice"])] if cfg["nice"] and shutil.which("nice") else []
    return [
        *nice, sys.executable, "-m", "ptde.train",
        f"algo={run.algo}", f"env={run.env}", f"seed={run.seed}",
        *budget, *cfg["campaign"]["overrides"], *run.overrides, *cfg["extra"],
        f"hydra.run.dir={run_dir}",
    ]  # fmt: skip


def results_of(run_dir: Path) -> dict[str, Any]:
    """A run folder's results.json, or {} where there is none (yet) or it is unreadable."""
    try:
        return read_results(run_dir)
    except (FileNotFoundError, ValueError):
        return {}


def is_finished(run_dir: Path) -> bool:
    return results_of(run_dir).get("status") == "finished"


def stopped_non_finite(run_dir: Path) -> bool:
    """A run that stopped on a non-finite loss or gradient. Resume is exact, so resuming it would
    replay the same updates into the same failure: it is not retried."""
    results = results_of(run_dir)
    return results.get("status") == "failed" and str(results.get("reason") or "").startswith("FloatingPointError")


def last_logged_env_steps(metrics_csv: Path) -> int:
    """The env steps of metrics.csv's last row (0 when there is none)."""
    try:
        with metrics_csv.open(newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("env_steps")]
    except FileNotFoundError:
        return 0
    return int(float(rows[-1]["env_steps"])) if rows else 0


def copy_artefacts(run_dir: Path, dest: Path) -> None:
    """The run's small files only (never checkpoints, teacher data or logger folders)."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for rel in ARTEFACTS:
        if (run_dir / rel).is_file():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(run_dir / rel, tmp / rel)
    shutil.rmtree(dest, ignore_errors=True)
    tmp.rename(dest)


class Campaign:
    """Runs the campaign's jobs on `jobs` workers; the main thread copies artefacts and reports."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        self.cfg = cfg
        self.out = Path(cfg["out"] or cfg["campaign"]["out"])
        self.work = Path(cfg["work_dir"] or Path("outputs/benchmarks") / cfg["campaign"]["name"])
        self.runs = campaign_runs(cfg)
        self.lock = threading.Lock()
        self.procs: set[subprocess.Popen] = set()
        self.stopping = False
        self.failed: list[str] = []
        self.started = 0  # training processes launched: a stopped campaign launches fewer than its plan

    def runs_dir(self, group: str) -> Path:
        """Where a group's committed artefacts go (`<out>/runs` for an unnamed group)."""
        return self.out / group / "runs"

    def artefacts(self, run: CampaignRun) -> Path:
        return self.runs_dir(run.group) / run.name

    def work_dir(self, run: CampaignRun) -> Path:
        return self.work / run.group / run.name

    def status(self, run: CampaignRun) -> str:
        """done (artefacts committed), running (another process trains in its folder: left to it),
        failed (stopped on a non-finite loss or gradient: not retried), copy (finished, not copied
        yet), resume (has a checkpoint), new."""
        if is_finished(self.artefacts(run)):
            return "done"
        run_dir = self.work_dir(run)
        if run_folder_holder(run_dir) is not None:
            return "running"
        if stopped_non_finite(run_dir) or stopped_non_finite(self.artefacts(run)):
            return "failed"
        if is_finished(run_dir):
            return "copy"
        return "resume" if (run_dir / "checkpoints" / "last.ckpt").exists() else "new"

    def progress(self, run: CampaignRun, status: str) -> str:
        """Where a run stands, for the plan's line: a finished run's final test (and its student's),
        a resumable one's checkpoint against its budget and how far its log got past it (what the
        killed process trained after the checkpoint is trained again), a failed one's reason."""
        if status in ("done", "copy", "failed"):
            folder = self.artefacts(run) if status == "done" else self.work_dir(run)
            res = results_of(folder) or results_of(self.artefacts(run))
            if status == "failed":  # the exception and its first clause: "FloatingPointError: non-finite TD loss ..."
                return ": ".join(str(res.get("reason") or "").split(": ")[:2])
            metric = res.get("success_metric", "win_rate")
            parts = [f"final {metric} {res[f'test/{metric}']:.3f}"] if res.get(f"test/{metric}") is not None else []
            if res.get(f"eval/decentralized_{metric}") is not None:
                parts.append(f"student {res[f'eval/decentralized_{metric}']:.3f}")
            return ", ".join(parts + [f"{int(res.get('env_steps', 0)):,} env steps"])
        if status == "running":  # a campaign started twice, or a ptde.train started by hand in its folder
            holder = run_folder_holder(self.work_dir(run))
            if holder is None:  # it ended since `status` looked
                return "trained by another process that has just ended; not started here (run the campaign again)"
            return f"trained by another process (pid {holder}); not started here"
        if status != "resume":
            return ""
        from ptde.data.checkpoint import load_checkpoint  # torch: only for a run with a checkpoint
        from ptde.experiment.resume import saved_config

        run_dir = self.work_dir(run)
        try:
            ckpt = load_checkpoint(run_dir / "checkpoints" / "last.ckpt", mmap=True)  # the counters, not the weights
            at = int(ckpt.get("ptde_counters", {})["env_steps"])
            budget = int(saved_config(run_dir)["trainer"]["max_env_steps"])  # the run's own (smoke or full)
        except Exception as exc:  # noqa: BLE001 - the resume itself names what is wrong with the run folder
            return f"checkpoint or config.yaml unreadable ({type(exc).__name__})"
        if "1" in results_of(run_dir).get("stages_done", []):
            return f"stage 1 finished at {at:,} env steps; stage 2 to run"
        line = f"checkpoint at {at:,} of {budget:,} env steps ({at / budget:.0%})"
        logged = last_logged_env_steps(run_dir / "metrics.csv")
        return line + (f", logged to {logged:,}" if logged > at else "")

    def train(self, run: CampaignRun) -> None:
        """One run to its end; an error is reported and counted, never allowed to stop the others."""
        try:
            self._train(run)
        except Exception as exc:  # noqa: BLE001 - the campaign goes on with the other runs
            with self.lock:
                self.failed.append(run.key)
                print(f"[campaign] {run.key}: {type(exc).__name__}: {exc}", flush=True)

    def _train(self, run: CampaignRun) -> None:
        if self.stopping:
            return
        run_dir = self.work_dir(run).resolve()
        run_dir.mkdir(parents=True, exist_ok=True)
        cmd = train_command(self.cfg, run, run_dir)
        with self.lock:
            print(f"[campaign] start {run.key} ({self.status(run)})", flush=True)
            self.started += 1
        with open(run_dir / "train.log", "a") as log:
            log.write(f"\n+ {shlex.join(cmd)}\n")
            log.flush()
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            with self.lock:
                self.procs.add(proc)
            code = proc.wait()
            with self.lock:
                self.procs.discard(proc)
        with self.lock:
            if is_finished(run_dir):
                copy_artefacts(run_dir, self.artefacts(run))
                print(f"[campaign] finished {run.key}", flush=True)
                self.rebuild_report(run.group)
            elif not self.stopping:
                self.failed.append(run.key)
                print(f"[campaign] {run.key} ended with exit code {code}; see {run_dir / 'train.log'}", flush=True)

    def rebuild_reports(self) -> None:
        """Every group's report, in the campaign's order of groups."""
        for group in dict.fromkeys(r.group for r in self.runs):
            self.rebuild_report(group)

    def rebuild_report(self, group: str) -> None:
        if not self.cfg["report"] or not self.runs_dir(group).is_dir():
            return
        from ptde.report.build import build_report
        from ptde.report.runs import dedupe, load_source
        from ptde.report.wandb_report import write_report_spec

        title = " / ".join(filter(None, (f"campaign {self.cfg['campaign']['name']}", group)))
        out = self.out / group / "report"
        every = load_source(self.runs_dir(group), unique=False)  # read once: the tables and the wandb spec
        threshold = self.cfg["campaign"]["threshold"]
        index = build_report(dedupe(*every), out, bootstrap_reps=2000, seed=0, title=title, threshold=threshold)
        print(f"[campaign] report: {index}", flush=True)
        try:  # the same comparison as a wandb report, its spec beside the local report (never uploaded)
            spec = write_report_spec(every[0], out, f"PTDE report: {title}")
            print(f"[campaign] wandb report spec: {spec}", flush=True)
        except RuntimeError as exc:  # wandb's report API not installed
            print(f"[campaign] no wandb report spec: {exc}", flush=True)

    def stop(self, signum: int, _frame: Any) -> None:
        """SIGTERM/SIGINT: each training process checkpoints at its next update and exits (preempted)."""
        self.stopping = True
        with self.lock:
            for proc in self.procs:
                os.killpg(proc.pid, signal.SIGTERM)

    def run(self) -> int:
        plan = [(r, self.status(r)) for r in self.runs]
        for r, s in plan:
            detail = self.progress(r, s)
            print(f"[campaign] {r.key:<32} {s:<6}  {detail}".rstrip(), flush=True)
        if self.cfg["dry_run"]:
            return 0
        if self.cfg["report_only"]:  # e.g. after a change to the report code, while other runs still train
            self.rebuild_reports()
            return 0
        for r, s in plan:
            if s == "copy":
                copy_artefacts(self.work_dir(r), self.artefacts(r))
            if s == "failed":
                self.failed.append(r.key)
                print(f"[campaign] {r.key}: not resumed, it stopped on a non-finite loss or gradient and an exact "
                      f"resume replays it into the same failure (results.json reason); to start it over, remove "
                      f"{self.work_dir(r)} and {self.artefacts(r)}", flush=True)  # fmt: skip
        todo = [r for r, s in plan if s in ("new", "resume")]
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)
        t0 = time.time()
        with ThreadPoolExecutor(max_workers=max(1, self.cfg["jobs"])) as pool:
            list(pool.map(self.train, todo))
        if not todo:
            self.rebuild_reports()
        elsewhere = [r.key for r, s in plan if s == "running"]
        unstarted = f" ({len(todo) - self.started} not started: stopped)" if self.started < len(todo) else ""
        print(f"[campaign] {self.started} runs trained or resumed{unstarted} in {time.time() - t0:.0f} s; "
              f"{len(self.failed)} failed{': ' + ', '.join(self.failed) if self.failed else ''}"
              f"{'; left to the process training them: ' + ', '.join(elsewhere) if elsewhere else ''}", flush=True)  # fmt: skip
        if self.stopping:
            return 143
        return int(bool(self.failed))


@hydra.main(config_path="../../conf", config_name="benchmark", version_base="1.3")
def main(cfg: DictConfig) -> None:
    try:
        code = Campaign(to_container(cfg)).run()
    except ConfigError as exc:
        print(f"ptde.tools.campaign: {exc}", file=sys.stderr)
        sys.exit(2)
    sys.exit(code)


if __name__ == "__main__":
    precheck("benchmark")
    main()
