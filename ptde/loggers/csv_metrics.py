"""`metrics.csv` (every stage-1 metric against env steps) and `distill/metrics.csv` (stage 2's curves
against distillation steps), readable after a kill at any moment."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger

from ptde.files import atomic_write

METRICS_FILE = "metrics.csv"
DISTILL_METRICS_FILE = "distill/metrics.csv"


class CSVMetricsLogger(Logger):
    """`metrics.csv`, one row per log event, a column per metric (Lightning's CSVLogger layout:
    `step` plus the metric columns), written so that a kill at any moment leaves a readable file.

    Rows are appended and flushed at every `save()`; when a new metric appears the file is
    rewritten with the wider header through a temporary file and a rename. Lightning's own
    CSVLogger deletes an existing file when it starts, which would lose a resumed run's history.
    """

    def __init__(self, run_dir: Path, resume_step: int | None = None, file_name: str = METRICS_FILE) -> None:
        """`resume_step`: keep the rows up to that env step of an existing file (a resumed stage 1);
        None starts the file over (a fresh run, and stage 2, which a resumed run repeats whole)."""
        super().__init__()
        self.path = Path(run_dir) / file_name
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
