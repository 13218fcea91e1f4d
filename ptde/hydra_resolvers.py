"""OmegaConf resolvers of the sweep folder names in `conf/` (`hydra.sweep.subdir`).

Hydra resolves a job's folder name in the job's own process (a joblib worker, a Slurm node),
where only the imports of the unpickled task function have run, so the resolvers register when
the `ptde` package is imported (ptde/__init__.py) rather than in an entry point.
"""

from __future__ import annotations

import re
from pathlib import PurePath

from omegaconf import OmegaConf


def sweep_suffix(override_dirname: str) -> str:
    """`_algo.lr-0.001+variant.z_dim-32` from Hydra's override_dirname (`key-value` items joined by
    `+`, conf/config.yaml), nothing when it is empty.

    Any other character that Hydra's override grammar does not take unquoted (a `/` of a path, a
    quote, a space) becomes `-`, so the job stays one folder and its path can be passed as it is to
    `teacher=`, `resume=` or `checkpoint=`.
    """
    return "_" + re.sub(r"[^A-Za-z0-9_.+\-]", "-", override_dirname) if override_dirname else ""


def run_name(path: str) -> str:
    """The run folder's name of a run folder or `.ckpt` path (ptde.distill's teacher), without touching disk."""
    p = PurePath(path)
    if p.suffix == ".ckpt":
        p = p.parent.parent if p.parent.name == "checkpoints" else p.parent
    return p.name


def register_resolvers() -> None:
    OmegaConf.register_new_resolver("ptde.sweep_suffix", sweep_suffix, replace=True)
    OmegaConf.register_new_resolver("ptde.run_name", run_name, replace=True)
