"""Run loggers: the CSV file always, Weights & Biases when asked (offline unless logged in).

All metrics are logged against env steps (the paper's x axis), through one function, so CSV and
wandb rows agree and wandb never sees a step go backwards.
"""

from __future__ import annotations

import netrc
import os
from pathlib import Path
from typing import Any

from lightning.pytorch.loggers import CSVLogger, Logger, WandbLogger


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


def build_run_logger(logger_cfg: dict[str, Any], run_dir: Path, run_name: str, cfg: dict[str, Any]) -> RunLogger:
    loggers: list[Logger] = [CSVLogger(save_dir=str(run_dir), name="", version="")]
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
            )
        )
    run_logger = RunLogger(loggers)
    return run_logger
