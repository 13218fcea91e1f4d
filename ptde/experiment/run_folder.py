"""The run folder's files: `results.json`
(the one file `ptde.report` reads for a run's outcome), the config snapshot and the distilled student."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import torch
import yaml

from ptde.files import atomic_write, write_json_atomic
from ptde.nn.global_info import StudentModule


def read_results(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "results.json").read_text())


def update_results(run_dir: Path, fresh: bool = False, **fields: Any) -> dict[str, Any]:
    """Merge fields into results.json (creating it), so each stage adds its own keys.

    A field given as None is removed; `fresh` starts the file over (a run that trains stage 1).
    """
    path = run_dir / "results.json"
    data = json.loads(path.read_text()) if path.exists() and not fresh else {}
    data.update(fields)
    for key in [k for k, v in fields.items() if v is None]:
        del data[key]
    write_json_atomic(path, data)
    return data


def source_version() -> dict[str, Any]:
    """The git commit of the ptde code this process runs, and whether tracked files differ from it,
    so a result can be traced to the code that trained it (None outside a git checkout)."""
    root = Path(__file__).resolve().parents[2]

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "ptde", "conf") if commit else None
    return {"git_commit": commit, "git_dirty": bool(dirty) if dirty is not None else None}


def holds_a_run(run_dir: Path) -> bool:
    """Whether a folder holds anything besides what Hydra wrote when the command started (`.hydra/`,
    the job's log): (part of) a run, or anything else a failed start must never delete."""
    if not run_dir.is_dir():
        return False
    return any(p.name != ".hydra" and not (p.is_file() and p.suffix == ".log") for p in run_dir.iterdir())


def write_config(run_dir: Path, cfg: dict[str, Any]) -> None:
    """The config snapshot `config.yaml`, the resolved config the run runs with (resume compares it)."""
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


STUDENT_FILE = "student.pt"


def save_student(path: Path, student: StudentModule, teacher_ckpt: Path, noise_var: float, var_floor: float) -> None:
    """`noise_var`: the execution noise the student acts with (0 or var_floor, see `DistillConfig`)."""
    with atomic_write(path) as tmp:
        torch.save(
            {
                "state_dict": student.state_dict(),
                "input_dim": student.net[0].in_features,
                "hidden_dim": student.net[0].out_features,
                "z_dim": student.z_dim,
                "teacher_checkpoint": str(teacher_ckpt.resolve()),
                "student_noise": noise_var > 0,
                "var_floor": float(var_floor),
            },
            tmp,
        )


def load_student(path: Path) -> tuple[StudentModule, Path, float]:
    """(student, its teacher's checkpoint, execution noise variance) from a student file."""
    d = torch.load(path, map_location="cpu", weights_only=True)
    student = StudentModule(d["input_dim"], d["hidden_dim"], d["z_dim"])
    student.load_state_dict(d["state_dict"])
    return student.eval(), Path(d["teacher_checkpoint"]), d["var_floor"] if d["student_noise"] else 0.0
