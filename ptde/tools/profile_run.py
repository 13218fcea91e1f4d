"""`python -m ptde.tools.profile_run [ptde.train overrides]`: where a real run's wall time goes.

Samples a `ptde.train` process with py-spy (a sampling profiler: the run is the real one, at full
speed, with no instrumentation in the code) and sorts every sample into the phases of a stage-1
run: the update (forward, backward, optimiser), collection (acting, env stepping, the rest of the
episode loop), test phases, logging, checkpointing, sampling the replay (data loading), start-up
and stage 2. Shares are of all samples of the process, idle waits included (py-spy `--idle`), so
they add up to the wall time. Why a sampling profiler and not timers in the loop: the shares come
from the same run a user would run, and nothing has to be kept in sync with the code's structure
but the function names below.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

# (phase, frame names that put a sample in it), checked in order from the stack's root: the first
# frame of the stack that names a phase decides, then finer phases inside the update and collection
PHASES: list[tuple[str, tuple[str, ...]]] = [
    ("stage2", ("run_stage2",)),
    ("test", ("run_test", "test_policy")),
    ("checkpoint", ("CheckpointCallback.", "save_checkpoint")),
    ("logging", ("RunLogger.log", "_log ")),
    ("collection", ("EnvInteractionCallback.collect", "StepInteractionCallback.collect", "warm_up")),
    ("data_loading", ("EpisodeReplayBuffer.sample", "ReplayDataset", "_DataFetcher", "fetch")),
    ("update", ("training_step",)),
]
UPDATE_PARTS = [
    ("update/backward", ("manual_backward", "backward")),
    ("update/optimizer", ("Adam.", "opt.step", "Optimizer", "clip_grad_norm_")),
    ("update/global_info", ("GIPModule.", "GIUModule.")),
    ("update/agent_rnn", ("RNNAgent.",)),
    ("update/mixer", ("QMixer.", "mix ", "QPLEXMixer.", "VDNMixer.")),
    ("update/td_targets", ("td_lambda_targets",)),
]
COLLECTION_PARTS = [
    ("collection/env_step", ("SMAXEnv.step", "GRFEnv.step", "LTREnv.step", "SC2Env.step", ".step (ptde/envs")),
    ("collection/env_reset", ("SMAXEnv.reset", "GRFEnv.reset", ".reset (ptde/envs")),
    ("collection/acting", ("act (ptde", "select_actions", "epsilon_greedy")),
    ("collection/replay_insert", ("EpisodeReplayBuffer.insert",)),
]


def classify(stack: list[str]) -> list[str]:
    """The phase of one sample (root-first frames) and, inside update/collection, its part."""
    for phase, names in PHASES:
        at = next((i for i, f in enumerate(stack) if any(n in f for n in names)), None)
        if at is None:
            continue
        out = [phase]
        parts = UPDATE_PARTS if phase == "update" else COLLECTION_PARTS if phase == "collection" else []
        rest = stack[at:]
        for part, pnames in parts:
            if any(any(n in f for n in pnames) for f in rest):
                out.append(part)
                break
        else:
            if parts:
                out.append(f"{phase}/other")
        return out
    if any("train_stage1" in f for f in stack):
        return ["stage1_other"]
    return ["startup_other"]


def breakdown(raw: Path) -> dict[str, float]:
    """Shares of all samples per phase and part, from py-spy's raw (collapsed) output."""
    counts: Counter[str] = Counter()
    total = 0
    for line in raw.read_text().splitlines():
        frames, _, n = line.rpartition(" ")
        if not frames:
            continue
        k = int(n)
        total += k
        for key in classify(frames.split(";")):
            counts[key] += k
    return {k: round(v / max(total, 1), 4) for k, v in sorted(counts.items())} | {"samples": float(total)}


def profile(overrides: list[str], cwd: Path, rate: int = 50, out: Path | None = None) -> dict[str, float]:
    """Run `ptde.train overrides` from `cwd` under py-spy (the checkout in `cwd` is the one imported);
    the breakdown plus the run's wall times."""
    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.txt"
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
        t = time.perf_counter()
        run = subprocess.Popen(
            [sys.executable, "-m", "ptde.train", *overrides, f"hydra.run.dir={tmp}/run"], cwd=cwd, **quiet
        )
        spy = [py_spy, "record", "--idle", "-r", str(rate), "-f", "raw", "-o", str(raw), "--pid", str(run.pid)]
        sampler = subprocess.Popen(spy, **quiet)
        # reaped here, not by Popen, to read the run's own resource usage: its CPU seconds (all its
        # threads, JAX's included). On a machine shared with other jobs the wall time also counts the
        # waits for a core, which differ between two runs made one after the other; CPU time does not
        _, status, usage = os.wait4(run.pid, 0)
        run.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - t
        sampler.wait()
        if run.returncode != 0:
            raise subprocess.CalledProcessError(run.returncode, run.args)
        cpu = usage.ru_utime + usage.ru_stime
        if out is not None:
            shutil.copy(raw, out)
        results = json.loads((Path(tmp) / "run" / "results.json").read_text())
        return breakdown(raw) | {
            "wall_s": round(wall, 1),  # the process: start-up, JIT compiles and stage 1
            "cpu_s": round(cpu, 1),
            # stage 1's training loop alone (an older checkout's results.json has it as wall_time_s)
            "train_wall_s": round(float(results.get("stage1_wall_time_s", results["wall_time_s"])), 1),
            "env_steps": float(results["env_steps"]),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", help="ptde.train overrides")
    parser.add_argument("--raw", type=Path, help="breakdown of an existing py-spy raw file instead of a run")
    parser.add_argument("--cwd", type=Path, default=Path.cwd(), help="checkout to run (e.g. an old worktree)")
    args = parser.parse_args()
    result = breakdown(args.raw) if args.raw else profile(args.overrides, args.cwd)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
