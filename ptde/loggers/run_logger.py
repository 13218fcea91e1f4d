"""The run's logger, the one logging path of both stages: stage 1's rows go to metrics.csv and wandb
against env steps (`log`); stage 2's distillation curves to distill/metrics.csv and the same wandb run
against `distill/step` (`stage2_logger`, the distillation Trainer's only logger); stage 2's data size and
evaluation to wandb (`log_to_wandb`) beside results.json."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import Logger, WandbLogger

from ptde.loggers.csv_metrics import DISTILL_METRICS_FILE, CSVMetricsLogger
from ptde.loggers.wandb_run import resolve_wandb_mode, wandb_group, wandb_job_type, wandb_tags

DISTILL_STEP = "distill/step"


class RunLogger:
    """Fans metrics out to the configured Lightning loggers, with env steps as the step."""

    def __init__(self, loggers: list[Logger], run_dir: Path) -> None:
        self.loggers = loggers
        self.run_dir = Path(run_dir)
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

    def stage2_logger(self) -> Logger:
        """The distillation Trainer's logger: its curves into distill/metrics.csv (started over: a
        resumed run repeats stage 2 whole) and into this run's wandb run."""
        return Stage2Curves(self, CSVMetricsLogger(self.run_dir, file_name=DISTILL_METRICS_FILE))

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
    """Lightning logger of the distillation Trainer: its curves into distill/metrics.csv (Lightning's
    CSV layout: the metrics, `epoch` and `step`) and into the run's wandb run against `distill/step`."""

    def __init__(self, run_logger: RunLogger, csv: CSVMetricsLogger) -> None:
        super().__init__()
        self.run_logger = run_logger
        self.csv = csv

    @property
    def name(self) -> str:
        return "stage2"

    @property
    def version(self) -> str:
        return ""

    def log_hyperparams(self, params: Any, *args: Any, **kwargs: Any) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        self.csv.log_metrics(metrics, step)
        row = {k: float(v) for k, v in metrics.items() if k.startswith("distill/")}
        if row:
            self.run_logger.log_to_wandb({**row, DISTILL_STEP: step})

    def save(self) -> None:
        self.csv.save()

    def finalize(self, status: str) -> None:
        self.csv.finalize(status)


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
    return RunLogger(loggers, run_dir)
