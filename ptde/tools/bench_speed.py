"""`python -m ptde.tools.bench --parts speed`: a run's wall time on this code against an older commit.

Issue 29's record: `ptde.train` stage 1 of QMIX and QMIX_GIP on SMAX 3s_vs_5z at a fixed env-step
budget, one thread, defaults otherwise, run on this checkout and on a `git worktree` of `base`
(the commit before the speed work) in the same bench run, old and new interleaved so that load
from elsewhere falls on both alike. Every run is sampled by py-spy (`ptde.tools.profile_run`), so
the same runs give the wall times and the share of each phase (update, collection, tests, ...).
Each run's CPU seconds are recorded beside its wall time: on a machine shared with other jobs the
old and the new run meet different loads, which moves their wall times (the same old QMIX run took
365 s, 286 s and 274 s in three bench runs) far more than their CPU times.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path
from typing import Any

from ptde.tools.profile_run import profile

REPO = Path(__file__).resolve().parents[2]
BASE = "1d4bb03"  # main before issue 29 (the last landed commit of the SMAX campaign)


def run_overrides(algo: str, env: str, steps: int) -> list[str]:
    return [
        f"algo={algo}",
        f"env={env}",
        "stage=1",
        "logger=csv",
        "trainer.progress_bar=false",
        "trainer.torch_threads=1",
        f"trainer.max_env_steps={steps}",
    ]


def code_commit() -> str:
    """The commit the new runs measure (`+dirty` when the checkout has uncommitted changes)."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True)
    return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def merge_speed(previous: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """A speed record that keeps the algos not measured this time when the setting is the same
    (base commit, env, budget): `--speed-algos qmix_gip` after a change to GIP alone updates that
    algo's cell and leaves QMIX's, each cell naming the commit it measured."""
    same = previous is not None and all(previous.get(k) == new[k] for k in ("base_commit", "env", "env_steps"))
    if not same:
        return new
    return {**new, "algos": previous.get("algos", {}) | new["algos"]}


def bench_speed(
    steps: int,
    base: str = BASE,
    env: str = "smac/3s_vs_5z",
    algos: tuple[str, ...] = ("qmix", "qmix_gip"),
    precisions: tuple[str, ...] = ("32-true", "bf16-mixed"),
) -> dict[str, Any]:
    """Per algo: the old commit's run and this code's run under each precision, with their ratios."""
    out: dict[str, Any] = {
        "base_commit": base,
        "commit": code_commit(),
        "env": env,
        "env_steps": steps,
        "threads": 1,
        "algos": {},
    }
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "base"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(old), base], cwd=REPO, check=True, capture_output=True
        )
        try:
            for algo in algos:
                cell: dict[str, Any] = {"old": profile(run_overrides(algo, env, steps), old)}
                for precision in precisions:
                    new = run_overrides(algo, env, steps) + [f"trainer.precision={precision}"]
                    cell[precision] = profile(new, REPO)
                    cell[f"ratio_{precision}"] = round(cell[precision]["wall_s"] / cell["old"]["wall_s"], 3)
                    cell[f"train_ratio_{precision}"] = round(
                        cell[precision]["train_wall_s"] / cell["old"]["train_wall_s"], 3
                    )
                    cell[f"cpu_ratio_{precision}"] = round(cell[precision]["cpu_s"] / cell["old"]["cpu_s"], 3)
                cell["commit"] = out["commit"]
                out["algos"][algo] = cell
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(old)], cwd=REPO, capture_output=True)
    return out
