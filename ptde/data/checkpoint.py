"""Checkpoint files: where a run folder's checkpoint is, loading it, and the run it belongs to."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from ptde.errors import ConfigError


def resolve_checkpoint(path: str | Path) -> Path:
    """A run folder means its checkpoints/last.ckpt; a file is taken as it is."""
    p = Path(path)
    if p.is_dir():
        p = p / "checkpoints" / "last.ckpt"
    if not p.is_file():
        raise ConfigError(
            f"no checkpoint at {str(path)!r} (expected a run folder with checkpoints/last.ckpt or a .ckpt file)"
        )
    return p


def load_checkpoint(path: str | Path, mmap: bool = False) -> dict[str, Any]:
    """Checkpoints hold only tensors and plain containers, so they load with weights_only=True.

    `mmap=True` maps the tensors instead of reading them: for a caller that wants only the
    counters (a campaign's plan line), not the 26 MB of a football run's weights and optimiser.
    """
    return torch.load(resolve_checkpoint(path), map_location="cpu", weights_only=True, mmap=mmap)


def run_dir_of(checkpoint: Path) -> Path:
    """The run folder a checkpoint belongs to (`<run>/checkpoints/x.ckpt`, or a .ckpt moved beside it)."""
    return checkpoint.parent.parent if checkpoint.parent.name == "checkpoints" else checkpoint.parent
