"""The run folder's files: `results.json`
(the one file `ptde.report` reads for a run's outcome), the config snapshot and the distilled student."""

from __future__ import annotations

import fcntl
import json
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
import yaml

from ptde.errors import ConfigError
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


LOCK_FILE = ".ptde.lock"


class RunFolderInUse(ConfigError):
    """Another process trains in the folder. Never a reason to delete the folder: it is that run's."""


def _pid_in(fd: int) -> str:
    """The pid a holder wrote into its lock file; "unknown" in the instant between its flock and its write."""
    return os.read(fd, 32).decode(errors="replace").strip() or "unknown"


@contextmanager
def claim_run_folder(run_dir: Path) -> Iterator[None]:
    """Hold `run_dir` for this process while a block runs, so a second ptde process there (a campaign
    started twice, a resume while the run still runs) is refused instead of writing the same
    checkpoints, replay and metrics.csv as the first: resume is only exact with one writer.

    An flock on `<run_dir>/.ptde.lock`: the kernel drops it when the process ends however it ends
    (SIGKILL included), so no stale lock outlives a killed run, and processes started with exec (the
    football engines) do not inherit it. The file holds the holder's pid, for the refusal's message.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _pid_in(fd)
        os.close(fd)
        raise RunFolderInUse(
            f"{run_dir} is in use by another ptde process (pid {holder}); wait for it to end, or stop it "
            "(a stopped run continues from its last checkpoint when its command is run again)"
        ) from None
    try:
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        yield
    finally:
        os.close(fd)  # releases the lock; the file stays (a later holder overwrites the pid)


def run_folder_holder(run_dir: Path) -> str | None:
    """The pid of the process holding `run_dir` (see `claim_run_folder`), or None when none does."""
    try:
        fd = os.open(run_dir / LOCK_FILE, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)  # released with the fd below
    except BlockingIOError:
        return _pid_in(fd)
    finally:
        os.close(fd)
    return None


def holds_a_run(run_dir: Path) -> bool:
    """Whether a folder holds anything besides what Hydra wrote when the command started (`.hydra/`,
    the job's log) and the lock file: (part of) a run, or anything else a failed start must never delete."""
    if not run_dir.is_dir():
        return False
    skip = (".hydra", LOCK_FILE)
    return any(p.name not in skip and not (p.is_file() and p.suffix == ".log") for p in run_dir.iterdir())


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
