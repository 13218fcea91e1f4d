"""Reliability: a run killed with SIGKILL at any moment resumes from its last checkpoint and ends
exactly where the uninterrupted run ends (the replay comes back from the incremental replay
store, the default); a kill during a checkpoint save costs only the work since the previous
checkpoint; a NaN stops the run with the last good checkpoint intact; bad resumes are refused
with the reason."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import REPO, compose_cfg, run_module

from ptde.callbacks.env_interaction import linear_epsilon
from ptde.errors import ConfigError
from ptde.experiment.resume import (
    ResumePlan,
    config_differences,
    find_unfinished_run,
    pick_checkpoint,
    plan_resume,
    resume_argv,
)
from ptde.experiment.run_folder import LOCK_FILE, RunFolderInUse, claim_run_folder, run_folder_holder

pytest.importorskip("jaxmarl")

# small but real: 3m, a few hundred episodes, checkpoints every ~1000 env steps, a replay of 64
# episodes (full after ~1300 env steps, so checkpoints evict and the store deletes), kept by default
RUN = [
    "env=smac/3m",
    "logger=csv",
    "trainer.max_env_steps=4000",
    "trainer.test_interval=1500",
    "trainer.log_interval=500",
    "trainer.checkpoint_interval=1000",
    "trainer.test_episodes=8",
    "trainer.progress_bar=false",
    "trainer.torch_threads=1",
    "algo.batch_size=16",
    "algo.buffer_size=64",
    "algo.target_update_interval=20",
]


def start(run_dir: Path, *overrides: str, env: dict | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "ptde.train", *RUN, *overrides, f"hydra.run.dir={run_dir}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(pattern: str, folder: Path, proc: subprocess.Popen, timeout: float = 300) -> None:
    t0 = time.time()
    while not list(folder.glob(pattern)):
        assert proc.poll() is None, f"run ended before {pattern} appeared: {proc.stderr.read()[-2000:]}"
        assert time.time() - t0 < timeout, f"{pattern} did not appear"
        time.sleep(0.2)


def counters(ckpt: Path) -> dict:
    return torch.load(ckpt, map_location="cpu", weights_only=True)["ptde_counters"]


def rows(run_dir: Path) -> list[dict]:
    with (run_dir / "metrics.csv").open(newline="") as f:
        return [{k: v for k, v in r.items() if k != "fps"} for r in csv.DictReader(f)]  # fps: wall-clock


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    run_dir = tmp_path_factory.mktemp("uninterrupted") / "run"
    proc = start(run_dir)
    assert proc.wait(timeout=600) == 0, proc.stderr.read()[-3000:]
    return run_dir


def assert_same_run(run_dir: Path, reference: Path) -> None:
    """The same final networks, target networks, counters and metrics.csv rows as `reference`, bit
    for bit. Of metrics.csv only `fps` is left out: it is the one wall-clock column (env steps per
    second of the process), everything else (train/replay_bytes included) must match."""
    res = json.loads((run_dir / "results.json").read_text())
    ref = json.loads((reference / "results.json").read_text())
    assert res["status"] == "finished"
    for key in ("env_steps", "episodes", "updates", "test/return", "test/win_rate"):
        assert res.get(key) == ref.get(key), key
    a = torch.load(reference / "checkpoints" / "last.ckpt", weights_only=True)
    b = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert a["ptde_counters"] == b["ptde_counters"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k
    assert rows(run_dir) == rows(reference)


def episode_files(run_dir: Path) -> list[tuple[int, int]]:
    """(first, end) episode ids of the replay store's episode files, in order."""
    names = (run_dir / "checkpoints" / "replay").glob("episodes_*.pt")
    return sorted(tuple(int(x) for x in p.stem.split("_")[1:]) for p in names)


def test_sigkill_after_a_checkpoint_then_resume_ends_exactly_like_the_uninterrupted_run(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    proc = start(run_dir)
    wait_for("checkpoints/env_steps_2*.ckpt", run_dir, proc)  # the second periodic checkpoint
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    killed_at = last["ptde_counters"]["env_steps"]
    assert json.loads((run_dir / "results.json").read_text())["status"] == "running"  # killed: no chance to say more
    # the replay is not inside the checkpoint but beside it, each episode written once: the files of
    # successive checkpoints hold consecutive, disjoint ranges of episode ids
    assert "buffer" not in last["callbacks"]["EnvInteractionCallback"]
    assert (run_dir / "checkpoints" / "replay" / last["ptde_replay"]["index"]).is_file()
    files = episode_files(run_dir)
    assert len(files) >= 2 and all(a[1] == b[0] for a, b in zip(files, files[1:], strict=False))

    # the same command again (resume=auto): what a requeued job does
    resumed = run_module("ptde.train", *RUN, f"hydra.run.dir={run_dir}")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"env step {killed_at}" in resumed.stderr and "refilled" not in resumed.stderr
    assert json.loads((run_dir / "results.json").read_text())["resumed_from_env_steps"] == [killed_at]
    assert_same_run(run_dir, uninterrupted)
    got = rows(run_dir)  # the CSV continues: no row written twice, env steps never go back, epsilon follows them
    steps = [float(r["env_steps"]) for r in got]
    assert steps == sorted(steps)
    assert len({tuple(sorted(r.items())) for r in got}) == len(got)
    cfg = compose_cfg(*RUN)["algo"]
    for r in got:
        if r.get("train/epsilon"):
            eps = linear_epsilon(
                float(r["env_steps"]), cfg["epsilon_start"], cfg["epsilon_finish"], cfg["epsilon_anneal_time"]
            )
            assert float(r["train/epsilon"]) == pytest.approx(eps)


def test_a_resumed_ranking_run_is_served_the_queries_the_uninterrupted_run_was(tmp_path_factory):
    """The env's own random streams travel in the checkpoint too (here the training queries' epoch
    order; the football engines' RNGs the same way, tests/test_football.py): resumed mid-epoch, the
    run must not start the query order over."""
    data = tmp_path_factory.mktemp("ltr_data")
    cmd = [
        sys.executable, "-m", "ptde.train", "algo=qmix", "env=ltr/synthetic", "env.synthetic_queries=300",
        f"env.data_dir={data}", "logger=csv", "trainer.max_env_steps=6000", "trainer.test_interval=1000",
        "trainer.log_interval=500", "trainer.checkpoint_interval=1500", "trainer.progress_bar=false",
        "trainer.torch_threads=1", "algo.batch_size=16", "algo.buffer_size=64",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    reference = tmp_path_factory.mktemp("ltr_reference") / "run"
    done = subprocess.run([*cmd, f"hydra.run.dir={reference}"], cwd=REPO, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    run_dir = tmp_path_factory.mktemp("ltr_killed") / "run"
    proc = subprocess.Popen(
        [*cmd, f"hydra.run.dir={run_dir}"],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    # last.ckpt, not env_steps_1*.ckpt: a periodic checkpoint writes env_steps_<n>.ckpt first and
    # last.ckpt after it, and a kill in between (the CI rehearsal of d6a5453 on a loaded machine hit it)
    # leaves no last.ckpt to read the kill's step from
    wait_for("checkpoints/last.ckpt", run_dir, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed_at = counters(run_dir / "checkpoints" / "last.ckpt")["env_steps"]
    assert 1500 <= killed_at < 6000 and killed_at % 210 != 0  # 210 training queries an epoch: resumed mid-epoch
    resumed = subprocess.run([*cmd, f"hydra.run.dir={run_dir}"], cwd=REPO, env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert json.loads((run_dir / "results.json").read_text())["resumed_from_env_steps"] == [killed_at]
    assert_same_run(run_dir, reference)


def test_a_checkpoint_without_the_envs_state_resumes_with_a_warning_that_it_is_not_exact(tmp_path, capsys):
    """Checkpoints written before the ranking and football envs' state was kept still load; the
    resumed run is told its episodes start over from the seed."""
    from ptde.callbacks.env_interaction import EnvInteractionCallback
    from ptde.envs.ranking import LTREnvConfig, RankingEnv

    cfg = LTREnvConfig(
        name="synthetic", data_dir=str(tmp_path), synthetic_queries=60, synthetic_docs_per_query=12,
        synthetic_features=8, n_queries=60,
    )  # fmt: skip

    def callback() -> EnvInteractionCallback:
        envs = RankingEnv(cfg, batch_size=5, seed=3), RankingEnv(cfg, batch_size=5, seed=3, split="test")
        return EnvInteractionCallback(*envs, buffer=None, algo_cfg={}, trainer_cfg={}, run_logger=None, seed=0)

    killed = callback()
    for _ in range(3):
        killed.train_env.reset()
    state = killed.state_dict()
    ahead = killed.train_env.reset().info["query_index"].tolist()
    resumed = callback()
    resumed.load_state_dict(state)
    assert resumed.train_env.reset().info["query_index"].tolist() == ahead
    assert "not the uninterrupted one" not in capsys.readouterr().err
    old = callback()
    old.load_state_dict({k: v for k, v in state.items() if not k.endswith("_env_rng")})
    err = capsys.readouterr().err
    assert "train env's random streams" in err and "test env's random streams" in err
    assert old.train_env.reset().info["query_index"].tolist() != ahead


def test_sigkill_during_a_checkpoint_save_resumes_from_the_previous_checkpoint(uninterrupted, tmp_path):
    run_dir = tmp_path / "run"
    # the second save of last.ckpt is cut in half and the process SIGKILLed before the rename: the
    # store's episode files and index of that checkpoint, and env_steps_<n>.ckpt, are already written
    proc = start(
        run_dir, env={"PYTHONPATH": f"{REPO / 'tests' / 'faults'}:{REPO}", "PTDE_KILL_ON_CHECKPOINT_SAVE": "2"}
    )
    assert proc.wait(timeout=600) == -signal.SIGKILL
    ckpts = run_dir / "checkpoints"
    assert (ckpts / "last.ckpt.tmp").exists()  # the half-written file
    previous = counters(ckpts / "last.ckpt")  # still the first checkpoint, and readable
    first, second = sorted(ckpts.glob("env_steps_*.ckpt"), key=lambda p: int(p.stem.split("_")[-1]))
    assert previous == counters(first)
    assert (ckpts / "replay" / f"index_{counters(second)['env_steps']}.pt").is_file()  # the newer generation

    resumed = run_module("ptde.train", f"resume={run_dir}", "trainer.progress_bar=false")  # the saved config
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    res = json.loads((run_dir / "results.json").read_text())
    assert res["resumed_from_env_steps"] == [previous["env_steps"]]
    assert_same_run(run_dir, uninterrupted)  # the previous generation of the store was whole
    assert not (ckpts / "last.ckpt.tmp").exists()  # the next save replaced it
    assert not list((ckpts / "replay").glob("*.tmp"))


def test_an_older_checkpoint_whose_replay_is_gone_is_refused_not_refilled(uninterrupted):
    """The store keeps the replay of the newest two checkpoints; resuming an older one needs
    trainer.save_buffer=false, said so, rather than a silently refilled buffer."""
    periodic = sorted(
        (uninterrupted / "checkpoints").glob("env_steps_*.ckpt"), key=lambda p: int(p.stem.split("_")[-1])
    )
    assert len(periodic) == 3
    oldest, newest = str(periodic[0]), str(periodic[-1])
    with pytest.raises(ConfigError) as err:
        plan_resume(compose_cfg(f"resume={oldest}"), uninterrupted, [f"resume={oldest}"])
    assert "with its replay buffer" in str(err.value) and "trainer.save_buffer=false" in str(err.value)
    refill = [f"resume={oldest}", "trainer.save_buffer=false"]
    assert plan_resume(compose_cfg(*refill), uninterrupted, refill).checkpoint == periodic[0]
    plan = plan_resume(compose_cfg(f"resume={newest}"), uninterrupted, [f"resume={newest}"])
    assert plan.checkpoint == periodic[-1]  # the newest periodic one's replay is still there


def test_nan_after_the_first_checkpoint_stops_the_run_and_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    from ptde.envs.smax import SMAXEnv
    from ptde.experiment.runner import run

    real_step = SMAXEnv.step
    live_steps = {"n": 0}

    def step_then_nan(self, actions):
        if self.batch_size == 8:  # the training env (the test env runs 4)
            live_steps["n"] += int((~np.asarray(self._done)).sum())
        out = real_step(self, actions)
        if live_steps["n"] > 1500:  # after the first checkpoint (every 1000 env steps)
            out.reward[:] = float("nan")
        return out

    monkeypatch.setattr(SMAXEnv, "step", step_then_nan)
    cfg = compose_cfg(*RUN, "trainer.test_episodes=4", "trainer.save_buffer=false")
    with pytest.raises(FloatingPointError, match="non-finite TD loss"):
        run(cfg, tmp_path)
    res = json.loads((tmp_path / "results.json").read_text())
    assert res["status"] == "failed" and "non-finite TD loss" in res["reason"]
    failed_at = int(re.search(r"env step (\d+)", res["reason"]).group(1))
    last = torch.load(tmp_path / "checkpoints" / "last.ckpt", weights_only=True)
    saved_at = last["ptde_counters"]["env_steps"]
    assert 1000 <= saved_at < failed_at and failed_at > 1500
    periodic = torch.load(tmp_path / "checkpoints" / f"env_steps_{saved_at}.ckpt", weights_only=True)
    for k, v in last["state_dict"].items():
        assert torch.isfinite(v).all(), k
        assert torch.equal(v, periodic["state_dict"][k]), k  # untouched since it was written


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_stage_2_resumes_without_retraining_stage_1(tmp_path, sig):
    """SIGKILL leaves the run `running`; SIGTERM (a scheduler, the campaign) marks it `preempted`,
    exit 143, never `failed`. Either way the next run skips stage 1 and distils again."""
    run_dir = tmp_path / "run"
    gip = [
        "algo=qmix_gip",
        "trainer.max_env_steps=1500",
        "variant.distill.teacher_episodes=40",
        "variant.distill.max_steps=400",
        "variant.distill.val_interval=50",
    ]
    proc = start(run_dir, *gip)
    wait_for("teacher_dataset.pt", run_dir, proc)  # stage 1 is done, stage 2 is distilling
    proc.send_signal(sig)
    code = proc.wait(timeout=120)
    before = json.loads((run_dir / "results.json").read_text())
    if sig == signal.SIGKILL:
        assert before["stages_done"] == ["1"] and before["status"] == "running"
    else:
        assert code == 143 and before["stages_done"] == ["1"]
        assert before["status"] == "preempted" and "stage 2" in before["reason"], before
    stage1_ckpt = (run_dir / "checkpoints" / "last.ckpt").stat().st_mtime_ns

    again = run_module("ptde.train", *RUN, *gip, f"hydra.run.dir={run_dir}")
    assert again.returncode == 0, again.stderr[-3000:]
    after = json.loads((run_dir / "results.json").read_text())
    assert after["status"] == "finished" and after["stages_done"] == ["1", "2"]
    assert (run_dir / "checkpoints" / "last.ckpt").stat().st_mtime_ns == stage1_ckpt  # stage 1 not re-run
    for key in ("env_steps", "updates", "test/return", "stage1_wall_time_s"):
        assert after[key] == before[key]
    assert before["wall_time_s"] == before["stage1_wall_time_s"]  # until stage 2 finishes: stage 1 alone
    assert after["wall_time_s"] == pytest.approx(after["stage1_wall_time_s"] + after["stage2_wall_time_s"])
    assert 0 <= after["eval/decentralized_win_rate"] <= 1 and "eval/prr" in after


# ------------------------------------------------------------------------------ refusals (fast)
def fake_run(run_dir: Path, cfg: dict, status: str = "running") -> Path:
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(cfg))
    (run_dir / "results.json").write_text(json.dumps({"status": status, "stages_done": []}))
    return run_dir


def test_resume_refuses_a_different_config_and_names_what_differs(tmp_path):
    cfg = compose_cfg(*RUN)
    fake_run(tmp_path / "r", cfg)
    other = compose_cfg(*RUN, "algo.lr=0.01", "env=smac/2s3z", "trainer.max_env_steps=9000")
    with pytest.raises(ConfigError) as err:
        plan_resume(other, tmp_path / "r", [])
    msg = str(err.value)
    assert "algo.lr: 0.001 -> 0.01" in msg and "env.name: '3m' -> '2s3z'" in msg
    assert "max_env_steps" not in msg.split(". Only")[0]  # the budget may change on resume
    # resume=<folder>: the saved config is the base; only what the command line names can change it
    command = compose_cfg(f"resume={tmp_path / 'r'}", "trainer.max_env_steps=9000")  # defaults + these two
    plan = plan_resume(command, tmp_path / "r", [f"resume={tmp_path / 'r'}", "trainer.max_env_steps=9000"])
    assert plan.cfg["trainer"]["max_env_steps"] == 9000 and plan.cfg["algo"] == cfg["algo"]
    assert plan.cfg["trainer"]["test_interval"] == 1500  # the run's own, not the default
    with pytest.raises(ConfigError, match="algo.lr"):
        plan_resume(compose_cfg(f"resume={tmp_path / 'r'}", "algo.lr=0.1"), tmp_path / "r", ["algo.lr=0.1"])


def test_resume_true_finds_the_newest_unfinished_run_of_the_same_config(tmp_path):
    cfg = compose_cfg(*RUN)
    fake_run(tmp_path / "a", cfg)
    time.sleep(0.01)
    fake_run(tmp_path / "b", cfg, status="finished")
    fake_run(tmp_path / "c", compose_cfg(*RUN, "seed=3"))
    assert find_unfinished_run(cfg, tmp_path) == tmp_path / "a"
    with pytest.raises(ConfigError, match="no unfinished run"):
        find_unfinished_run(compose_cfg(*RUN, "seed=7"), tmp_path)
    assert config_differences(cfg, compose_cfg(*RUN, "seed=3")) == ["seed: 0 -> 3"]


def test_resume_of_one_run_inside_a_sweep_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        resume_argv(["ptde.train", "-m", "seed=0,1", "resume=true"])
    assert exit_.value.code == 2 and "hydra.sweep.dir" in capsys.readouterr().err
    assert resume_argv(["ptde.train", "seed=1"]) == ["ptde.train", "seed=1"]  # auto: Hydra's folder as is


def test_an_unreadable_checkpoint_is_refused_with_the_readable_ones_named(tmp_path):
    cfg = compose_cfg(*RUN)
    run_dir = fake_run(tmp_path / "r", cfg)
    ckpts = run_dir / "checkpoints"
    ckpts.mkdir()
    good = {"hyper_parameters": {"cfg": cfg}, "ptde_counters": {"env_steps": 1000}}
    torch.save(good, ckpts / "env_steps_1000.ckpt")
    torch.save(good, ckpts / "last.ckpt")
    (ckpts / "last.ckpt").write_bytes((ckpts / "last.ckpt").read_bytes()[:100])  # truncated
    with pytest.raises(ConfigError) as err:
        pick_checkpoint(run_dir, None)
    assert "last.ckpt is unreadable" in str(err.value) and "env_steps_1000.ckpt" in str(err.value)
    assert pick_checkpoint(run_dir, str(ckpts / "env_steps_1000.ckpt")) == ckpts / "env_steps_1000.ckpt"


def test_a_checkpoint_of_another_env_algo_or_variant_is_refused(tmp_path):
    run_dir = fake_run(tmp_path / "r", compose_cfg(*RUN))
    (run_dir / "checkpoints").mkdir()
    other = compose_cfg(*RUN, "algo=vdn_gip", "env=smac/2s3z")
    torch.save({"hyper_parameters": {"cfg": other}}, run_dir / "checkpoints" / "last.ckpt")
    with pytest.raises(ConfigError) as err:
        pick_checkpoint(run_dir, None)
    msg = str(err.value)
    assert "algo.name: 'vdn' -> 'qmix'" in msg and "env.name: '2s3z' -> '3m'" in msg
    assert "variant.name: 'gip' -> 'none'" in msg


HOLD = """import sys, time
from pathlib import Path
from ptde.experiment.run_folder import claim_run_folder
with claim_run_folder(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(600)
"""


def test_a_second_process_in_a_run_folder_is_refused_and_a_killed_holder_leaves_no_lock(tmp_path):
    """Two writers would interleave one run's checkpoints, replay and metrics.csv: the second is refused,
    and the folder is left as it was even when the first has written nothing yet."""
    run_dir = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], cwd=REPO, env=env, stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        assert run_folder_holder(run_dir) == str(holder.pid)
        second = subprocess.run([sys.executable, "-m", "ptde.train", *RUN, f"hydra.run.dir={run_dir}"],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=300)  # fmt: skip
        assert second.returncode == 2, second.stderr[-2000:]
        assert f"{run_dir} is in use by another ptde process (pid {holder.pid})" in second.stderr
        assert (run_dir / LOCK_FILE).read_text() == f"{holder.pid}\n"  # not deleted, not taken over
        assert not (run_dir / "config.yaml").exists() and not (run_dir / "results.json").exists()
    finally:
        holder.kill()  # SIGKILL: no cleanup code runs, the kernel drops the lock
        holder.wait()
    assert run_folder_holder(run_dir) is None
    with claim_run_folder(run_dir):
        assert run_folder_holder(run_dir) == str(os.getpid())
        with pytest.raises(RunFolderInUse, match=f"pid {os.getpid()}"):  # another claim, even in-process
            with claim_run_folder(run_dir):
                pass
    assert run_folder_holder(run_dir) is None


def test_a_fresh_folder_is_a_fresh_run_and_a_finished_run_is_not_rerun(tmp_path):
    cfg = compose_cfg(*RUN)
    assert plan_resume(cfg, tmp_path / "new", []) == ResumePlan(cfg)
    run_dir = fake_run(tmp_path / "done", cfg, status="finished")
    plan = plan_resume(cfg, run_dir, [])
    assert plan.finished and plan.checkpoint is None


def test_sigterm_saves_a_checkpoint_at_the_next_update_and_the_run_continues_from_it(tmp_path):
    run_dir = tmp_path / "run"
    # a longer budget than RUN's: the signal, sent 1 s after the first periodic checkpoint, must land
    # during training even when this process is starved on a loaded machine (after training's last
    # update the run no longer handles SIGTERM, and the default action would kill it with -15)
    budget = "trainer.max_env_steps=12000"
    proc = start(run_dir, "trainer.save_buffer=false", budget)
    wait_for("checkpoints/env_steps_1*.ckpt", run_dir, proc)
    time.sleep(1.0)
    periodic = max(int(p.stem.split("_")[-1]) for p in (run_dir / "checkpoints").glob("env_steps_*.ckpt"))
    signalled = time.time()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 143
    res = json.loads((run_dir / "results.json").read_text())
    assert res["status"] == "preempted" and "SIGTERM" in res["reason"]
    last = run_dir / "checkpoints" / "last.ckpt"
    saved = counters(last)["env_steps"]
    # written after the signal, at the end of the update it interrupted (the periodic checkpoint's own
    # update when a starved process had not got past it), not left as the periodic checkpoint wrote it
    assert last.stat().st_mtime >= signalled - 0.05 and saved >= periodic

    again = run_module("ptde.train", *RUN, "trainer.save_buffer=false", budget, f"hydra.run.dir={run_dir}")
    assert again.returncode == 0, again.stderr[-3000:]
    res = json.loads((run_dir / "results.json").read_text())
    assert res["status"] == "finished" and res["resumed_from_env_steps"] == [saved] and res["env_steps"] >= 12000


def test_preemption_hands_over_to_the_handler_that_was_there_before(monkeypatch):
    """Under submitit the previous SIGUSR2 handler requeues the job and exits."""
    from ptde.experiment.preemption import Preempted, PreemptionHandler

    calls = []

    def submitit_like(signum, frame):
        calls.append(signum)
        sys.exit(-1)

    old = signal.signal(signal.SIGUSR2, submitit_like)
    try:
        handler = PreemptionHandler()
        handler.install()
        os.kill(os.getpid(), signal.SIGUSR2)
        time.sleep(0.05)
        assert handler.requested == signal.SIGUSR2 and calls == []  # only noted: the update finishes first
        with pytest.raises(Preempted, match="requeued"):
            handler.hand_over()
        assert calls == [signal.SIGUSR2] and signal.getsignal(signal.SIGUSR2) is submitit_like
    finally:
        signal.signal(signal.SIGUSR2, old)


@pytest.mark.slow
def test_repeated_sigkills_at_random_moments_still_end_exactly_like_the_uninterrupted_run(uninterrupted, tmp_path):
    """Kills land in collection, in updates, in tests and in saves; each resume continues exactly."""
    import random

    rng = random.Random(7)
    run_dir = tmp_path / "run"
    last = run_dir / "checkpoints" / "last.ckpt"
    for _ in range(3):
        before = last.stat().st_mtime_ns if last.exists() else 0
        proc = start(run_dir)
        while (not last.exists() or last.stat().st_mtime_ns == before) and proc.poll() is None:
            time.sleep(0.1)  # this process has saved a checkpoint of its own
        time.sleep(rng.uniform(0.0, 4.0))  # then a random moment: collecting, updating, testing or saving
        if proc.poll() is not None:
            break
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    final = run_module("ptde.train", *RUN, f"hydra.run.dir={run_dir}")
    assert final.returncode == 0, final.stderr[-3000:]
    res = json.loads((run_dir / "results.json").read_text())
    assert len(res["resumed_from_env_steps"]) >= 2
    assert_same_run(run_dir, uninterrupted)
    print("resumed from env steps", res["resumed_from_env_steps"])


def test_a_signal_anywhere_in_stage_2_stops_it_at_once_as_preempted():
    """Stage 2 saves nothing (a resume repeats it), so a SIGTERM in its teacher data or evaluation, not only
    in the distillation trainer, ends the run as preempted (exit 143), never with the default action's -15."""
    import os

    from ptde.experiment.preemption import Preempted, preempt_at_once

    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Preempted, match="in stage 2"), preempt_at_once("stopped in stage 2"):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)  # the handler runs at the next bytecode; the sleep is never finished
    assert signal.getsignal(signal.SIGTERM) == before


def test_a_run_made_before_a_config_key_existed_is_told_which_commit_resumes_it(tmp_path):
    cfg = compose_cfg(*RUN)
    old = json.loads(json.dumps(cfg))
    del old["trainer"]["precision"]  # the run predates the key
    run_dir = fake_run(tmp_path / "r", old)
    results = json.loads((run_dir / "results.json").read_text())
    (run_dir / "results.json").write_text(json.dumps({**results, "git_commit": "71c52bb" + "0" * 33}))
    with pytest.raises(ConfigError) as err:
        plan_resume(cfg, run_dir, [])
    msg = str(err.value)
    assert "trainer.precision: '<absent>' -> 'bf16-mixed'" in msg
    assert "older ptde (commit 71c52bb00000" in msg and "git worktree add <dir> 71c52bb00000" in msg
    # a key that is new at null changes nothing: no refusal, no hint
    del old["trainer"]["max_batch_episodes"]
    assert config_differences(old, cfg) == ["trainer.precision: '<absent>' -> 'bf16-mixed'"]
