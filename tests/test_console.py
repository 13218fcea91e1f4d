"""What a run prints: no third-party notices a user cannot act on, a progress bar on a terminal and
one plain line per log interval anywhere else (a log file, a pipe, Slurm's output), and the wall
times results.json keeps of both stages."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import select
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, run_module

from ptde.callbacks.env_interaction import Progress
from ptde.experiment.runner import wall_times

# what the libraries under a run used to print, none of it the user's to act on
THIRD_PARTY_NOTICES = (
    "Here be dragons",  # Lightning: the `dataloader_iter` step flavor is experimental
    "Found `dataloader_iter` argument",  # Lightning, the same again
    "LeafSpec",  # torch's pytree deprecation, raised inside Lightning
    "litlogger",  # Lightning's tip on every Trainer
    "litmodels",  # its other tip
    "smaller than the logging interval",  # Lightning on the distillation Trainer's one-batch epochs
    "Unable to initialize backend",  # jax found no TPU
    "site-packages",  # any warning raised inside an installed library names its file
)
PLAIN_LINE = re.compile(r"^env steps (\d+)/(\d+) \(\d+%\)((?: \w+=\S+)*) elapsed=\S+$", re.MULTILINE)


def assert_quiet(output: str) -> None:
    found = [notice for notice in THIRD_PARTY_NOTICES if notice in output]
    assert not found, f"third-party notices {found} in:\n{output[-4000:]}"


def log_rows(run_dir: Path) -> list[dict[str, str]]:
    """metrics.csv's training rows, one per log interval (the rows that carry fps)."""
    with open(run_dir / "metrics.csv") as f:
        return [row for row in csv.DictReader(f) if row.get("fps")]


# ------------------------------------------------------------------ the progress display (fast)
class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def drive(progress: Progress, updates: int, steps: int, report_every: int) -> None:
    for i in range(1, updates + 1):
        progress.update(steps)
        if i % report_every == 0:
            progress.report({"win": "0.50", "eps": "0.10", "fps": "123"})
    progress.close()


def test_on_a_terminal_the_progress_is_a_redrawn_bar():
    out = Terminal()
    drive(Progress(total=1000, initial=0, stream=out), updates=10, steps=100, report_every=2)
    text = out.getvalue()
    assert text.count("\renv steps:") >= 5  # a redraw at least for every postfix
    assert "1000/1000" in text and "win=0.50, eps=0.10, fps=123" in text
    assert not PLAIN_LINE.search(text)


def test_elsewhere_the_progress_is_one_line_per_log_interval():
    out = io.StringIO()
    drive(Progress(total=1000, initial=200, stream=out), updates=8, steps=100, report_every=2)
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert [int(PLAIN_LINE.match(line)[1]) for line in lines] == [400, 600, 800, 1000]
    assert lines[0].startswith("env steps 400/1000 (40%) win=0.50 eps=0.10 fps=123 elapsed=")


# ------------------------------------------------------------------ wall times (fast)
def test_wall_time_is_both_stages_and_an_older_folder_keeps_its_stage_1_time():
    both = wall_times({"stage1_wall_time_s": 100.0, "stage2_wall_time_s": 20.0})
    assert both == {"stage1_wall_time_s": 100.0, "stage2_wall_time_s": 20.0, "wall_time_s": 120.0}
    assert wall_times({"stage1_wall_time_s": 100.0, "stage2_wall_time_s": 20.0}, drop_stage2=True)["wall_time_s"] == 100
    assert wall_times({"stage2_wall_time_s": 20.0})["wall_time_s"] == 20.0  # stage 2 alone (ptde.distill)
    # a folder whose stage 1 ran before the parts were kept apart, resumed for its stage 2: its
    # `wall_time_s` was stage 1's, and stage 2 now adds to it
    older = {"wall_time_s": 100.0, "stages_done": ["1"], "stage2_wall_time_s": 20.0}
    assert wall_times(older) == {"stage1_wall_time_s": 100.0, "stage2_wall_time_s": 20.0, "wall_time_s": 120.0}


# ------------------------------------------------------------------ real runs
def test_a_run_into_a_pipe_prints_no_notices_and_one_progress_line_per_log_interval(tmp_path, tiny_overrides):
    """Stdout and stderr are pipes here, as a log file or Slurm's output file would be."""
    run_dir = tmp_path / "gip"
    overrides = [o for o in tiny_overrides if not o.startswith("trainer.progress_bar")]
    gip = ["variant.distill.teacher_episodes=16", "variant.distill.max_steps=100", "variant.distill.val_interval=50"]
    proc = run_module(
        "ptde.train", "algo=qmix_gip", "stage=all", *overrides, *gip, "trainer.progress_bar=true",
        f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    output = proc.stdout + proc.stderr
    assert_quiet(output)
    assert output.count("GPU available") == 2  # once per Trainer (stage 1, distillation), not twice each

    assert "\renv steps" not in output  # no bar redraws
    lines = PLAIN_LINE.findall(proc.stderr)
    rows = log_rows(run_dir)
    assert [int(steps) for steps, _, _ in lines] == [int(float(row["env_steps"])) for row in rows]
    assert {total for _, total, _ in lines} == {"3000"}
    assert all("eps=" in fields and "fps=" in fields for _, _, fields in lines)
    assert any("loss=" in fields for _, _, fields in lines)  # once there has been an update

    r = json.loads((run_dir / "results.json").read_text())
    assert r["stages_done"] == ["1", "2"] and r["stage1_wall_time_s"] > 0 and r["stage2_wall_time_s"] > 0
    assert r["wall_time_s"] == pytest.approx(r["stage1_wall_time_s"] + r["stage2_wall_time_s"])


def run_in_terminal(*args: str, timeout: float = 600) -> tuple[int, str]:
    """`python -m args` with a pseudo-terminal as its stdout and stderr; its exit code and output."""
    import fcntl
    import pty
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))  # rows, columns
    env = {**os.environ, "PYTHONPATH": str(REPO), "HYDRA_FULL_ERROR": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", *args], cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=slave, stderr=slave
    )
    os.close(slave)
    chunks: list[bytes] = []
    deadline = time.monotonic() + timeout
    try:
        while select.select([master], [], [], max(deadline - time.monotonic(), 0))[0]:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: every writer has closed the terminal
                break
            if not data:
                break
            chunks.append(data)
    finally:
        os.close(master)
        if proc.poll() is None and time.monotonic() >= deadline:
            proc.kill()
    return proc.wait(timeout=60), b"".join(chunks).decode(errors="replace")


def test_mappo_on_a_terminal_redraws_its_bar_and_logs_no_epsilon(tmp_path, tiny_overrides):
    """MAPPO's ε is no exploration schedule (it is 1 all of training): neither its metrics.csv nor
    its progress carry one. On a terminal the progress is tqdm's bar, redrawn as steps come in."""
    run_dir = tmp_path / "mappo"
    overrides = [o for o in tiny_overrides if not o.startswith(("trainer.progress_bar", "algo.", "trainer.max_env"))]
    code, output = run_in_terminal(
        "ptde.train", "algo=mappo", *overrides, "trainer.max_env_steps=800", "trainer.log_interval=320",
        "trainer.test_interval=800", "algo.rollout_steps=20", "algo.ppo_epochs=2", "trainer.progress_bar=true",
        f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert code == 0, output[-3000:]
    assert_quiet(output)
    rows = log_rows(run_dir)
    assert rows and all("train/epsilon" not in row for row in rows)
    assert output.count("\renv steps:") > len(rows)  # redrawn with every rollout, not once per log interval
    assert "fps=" in output and "eps=" not in output
    assert not PLAIN_LINE.search(output.replace("\r\n", "\n"))
