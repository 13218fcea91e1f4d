"""Run loggers: the CSV file always, Weights & Biases when asked (offline unless logged in).

All metrics are logged against env steps (the paper's x axis), through one function, so CSV and
wandb rows agree and wandb never sees a step go backwards. A resumed run continues both: the CSV
keeps its rows up to the checkpoint's env step (rows a killed run wrote after it are dropped, so
no step appears twice) and wandb continues the same run id.
"""

from __future__ import annotations

import csv
import netrc
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger, WandbLogger

METRICS_FILE = "metrics.csv"


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
        tmp = self.path.with_name(self.path.name + ".tmp")
        with tmp.open("w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.keys)
            if self.keys:
                writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)

    def finalize(self, status: str) -> None:
        self.save()


class RunLogger:
    """Fans metrics out to the configured Lightning loggers, with env steps as the step."""

    def __init__(self, loggers: list[Logger]) -> None:
        self.loggers = loggers

    def log(self, metrics: dict[str, float], env_steps: int) -> None:
        row = {"env_steps": float(env_steps), **metrics}
        for logger in self.loggers:
            logger.log_metrics(row, step=env_steps)
            logger.save()

    def log_config(self, cfg: dict[str, Any]) -> None:
        for logger in self.loggers:
            logger.log_hyperparams(cfg)

    def finish(self) -> None:
        for logger in self.loggers:
            logger.finalize("success")
            if isinstance(logger, WandbLogger):
                import wandb

                wandb.finish()

    @property
    def wandb_run_id(self) -> str | None:
        for logger in self.loggers:
            if isinstance(logger, WandbLogger):
                return logger.experiment.id
        return None


def build_run_logger(
    logger_cfg: dict[str, Any],
    run_dir: Path,
    run_name: str,
    cfg: dict[str, Any],
    resume_step: int | None = None,
    wandb_run_id: str | None = None,
) -> RunLogger:
    """`resume_step`: continue a run's CSV from that env step; `wandb_run_id`: continue that wandb run."""
    loggers: list[Logger] = [CSVMetricsLogger(run_dir, resume_step)]
    if logger_cfg["name"] == "wandb":
        mode = resolve_wandb_mode(logger_cfg["mode"])
        loggers.append(
            WandbLogger(
                project=logger_cfg["project"],
                entity=logger_cfg["entity"],
                name=run_name,
                save_dir=str(run_dir),
                mode=mode,
                tags=list(logger_cfg["tags"]),
                config=cfg,
                id=wandb_run_id,
                resume="allow" if wandb_run_id else None,
            )
        )
    return RunLogger(loggers)
