"""Run loggers: the CSV file always, Weights & Biases when asked (offline unless logged in).

All metrics are logged against env steps (the paper's x axis), through one function, so CSV and
wandb rows agree and wandb never sees a step go backwards. A resumed run continues both: the CSV
keeps its rows up to the checkpoint's env step (rows a killed run wrote after it are dropped, so
no step appears twice) and wandb continues the same run id.

One wandb run holds both PTDE stages of a run folder: stage 2 logs its distillation curves
against `distill/step` (wandb's own step keeps counting up), the teacher-data size and the
centralized/decentralized evaluation into the same run, and the run's summary ends as the
folder's results.json. The run's `group` is its config without the seed (one group is one table
cell), its `job_type` the stages it holds, its tags the algorithm, env and variant.
"""

from __future__ import annotations

import csv
import hashlib
import json
import netrc
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger, WandbLogger

from ptde.experiment.run_folder import atomic_write

METRICS_FILE = "metrics.csv"
DISTILL_STEP = "distill/step"
# keys that say how (or from where) a run runs, not what it learns: left out of its wandb group
GROUP_IGNORES = ("seed", "stage", "teacher", "resume", "logger.", "trainer.progress_bar", "trainer.torch_threads")
GROUP_IGNORES += ("trainer.accelerator", "trainer.save_buffer")


def wandb_group(cfg: dict[str, Any]) -> str:
    """`qmix_gip_3m_<hash of the config without the seed>`: the seeds of one config, one group."""
    from ptde.experiment.resume import flatten
    from ptde.runtime import run_label

    kept = {k: v for k, v in flatten(cfg).items() if not k.startswith(GROUP_IGNORES)}
    digest = hashlib.sha1(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{run_label(cfg)}_{cfg['env']['name']}_{digest}"


def wandb_job_type(cfg: dict[str, Any]) -> str:
    """The stages the run holds: stage1, stage2 (distillation of a given teacher) or stage1+2."""
    stage = str(cfg["stage"])
    if stage == "all":
        return "stage1+2" if cfg["variant"]["name"] != "none" else "stage1"
    return f"stage{stage}"


def wandb_tags(cfg: dict[str, Any]) -> list[str]:
    env = f"{cfg['env']['family']}/{cfg['env']['name']}"
    own = [f"algo:{cfg['algo']['name']}", f"env:{env}", f"variant:{cfg['variant']['name']}"]
    return list(dict.fromkeys([*cfg["logger"]["tags"], *own]))


def wandb_logged_in() -> bool:
    """True when an API key is configured (env var or ~/.netrc); never touches the network."""
    if os.environ.get("WANDB_API_KEY"):
        return True
    try:
        auth = netrc.netrc().authenticators("api.wandb.ai")
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False
    return bool(auth and auth[2])


def resolve_wandb_mode(mode: str) -> str:
    if mode == "auto":
        return "online" if wandb_logged_in() else "offline"
    return mode


class CSVMetricsLogger(Logger):
    """`metrics.csv`, one row per log event, a column per metric (Lightning's CSVLogger layout:
    `step` plus the metric columns), written so that a kill at any moment leaves a readable file.

    Rows are appended and flushed at every `save()`; when a new metric appears the file is
    rewritten with the wider header through a temporary file and a rename. Lightning's own
    CSVLogger deletes an existing file when it starts, which would lose a resumed run's history.
    """

    def __init__(self, run_dir: Path, resume_step: int | None = None) -> None:
        super().__init__()
        self.path = Path(run_dir) / METRICS_FILE
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rows: list[dict[str, Any]] = []
        self.pending: list[dict[str, Any]] = []
        self.keys: list[str] = []
        if resume_step is not None and self.path.exists():
            with self.path.open(newline="") as f:
                old = list(csv.DictReader(f))
            self.rows = [r for r in old if r.get("env_steps") and float(r["env_steps"]) <= resume_step]
            self.keys = sorted({k for r in self.rows for k in r})
        self._rewrite()

    @property
    def name(self) -> str:
        return "csv"

    @property
    def version(self) -> str:
        return ""

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass  # the run folder's config.yaml holds the config

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.pending.append({**metrics, "step": step})

    def save(self) -> None:
        if not self.pending:
            return
        new_keys = {k for r in self.pending for k in r} - set(self.keys)
        self.rows.extend(self.pending)
        if new_keys:
            self.keys = sorted(set(self.keys) | new_keys)
            self._rewrite()
        else:
            with self.path.open("a", newline="") as f:
                csv.DictWriter(f, fieldnames=self.keys).writerows(self.pending)
        self.pending = []

    def _rewrite(self) -> None:
        with atomic_write(self.path) as tmp, tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.keys)
            if self.keys:
                writer.writeheader()
            writer.writerows(self.rows)

    def finalize(self, status: str) -> None:
        self.save()


class RunLogger:
    """Fans metrics out to the configured Lightning loggers, with env steps as the step."""

    def __init__(self, loggers: list[Logger]) -> None:
        self.loggers = loggers
        self.wandb = next((lg for lg in loggers if isinstance(lg, WandbLogger)), None)
        if self.wandb is not None:
            run = self.wandb.experiment  # starts (or resumes) the wandb run now
            run.define_metric(DISTILL_STEP)
            run.define_metric("distill/*", step_metric=DISTILL_STEP)

    def log(self, metrics: dict[str, float], env_steps: int) -> None:
        row = {"env_steps": float(env_steps), **metrics}
        for logger in self.loggers:
            logger.log_metrics(row, step=env_steps)
            logger.save()

    def log_to_wandb(self, metrics: dict[str, Any]) -> None:
        """A stage-2 row (distillation curve point, teacher-data size, evaluation); its CSV side is
        distill/metrics.csv and results.json, so metrics.csv stays the stage-1 curve."""
        if self.wandb is not None:
            self.wandb.experiment.log(metrics)

    def summarize(self, results: dict[str, Any]) -> None:
        """The wandb run's summary becomes the run folder's results.json (numbers and names)."""
        if self.wandb is None:
            return
        self.wandb.experiment.summary.update({k: v for k, v in results.items() if v is not None})

    def finish(self, exit_code: int = 0) -> None:
        for logger in self.loggers:
            logger.finalize("success" if exit_code == 0 else "failed")
        if self.wandb is not None:
            self.wandb.experiment.finish(exit_code=exit_code)

    @property
    def wandb_run_id(self) -> str | None:
        return None if self.wandb is None else self.wandb.experiment.id


class Stage2Curves(Logger):
    """Lightning logger of the distillation Trainer that forwards its curves into the run's wandb run,
    against distillation steps (`distill/step`)."""

    def __init__(self, run_logger: RunLogger) -> None:
        super().__init__()
        self.run_logger = run_logger

    @property
    def name(self) -> str:
        return "stage2"

    @property
    def version(self) -> str:
        return ""

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        row = {k: float(v) for k, v in metrics.items() if k.startswith("distill/")}
        if row:
            self.run_logger.log_to_wandb({**row, DISTILL_STEP: step})


def build_run_logger(
    logger_cfg: dict[str, Any],
    run_dir: Path,
    run_name: str,
    cfg: dict[str, Any],
    resume_step: int | None = None,
    wandb_run_id: str | None = None,
    csv: bool = True,
) -> RunLogger:
    """`resume_step`: continue a run's CSV from that env step; `wandb_run_id`: continue that wandb run;
    `csv=False`: no metrics.csv (a run of stage 2 alone, or one whose stage 1 is already done)."""
    loggers: list[Logger] = [CSVMetricsLogger(run_dir, resume_step)] if csv else []
    if logger_cfg["name"] == "wandb":
        mode = resolve_wandb_mode(logger_cfg["mode"])
        loggers.append(
            WandbLogger(
                project=logger_cfg["project"],
                entity=logger_cfg["entity"],
                name=run_name,
                save_dir=str(run_dir),
                mode=mode,
                tags=wandb_tags(cfg),
                group=wandb_group(cfg),
                job_type=wandb_job_type(cfg),
                config=cfg,
                id=wandb_run_id,
                resume="allow" if wandb_run_id else None,
            )
        )
    return RunLogger(loggers)
