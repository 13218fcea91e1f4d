"""The benchmark campaign tool (make campaign) and the sample-efficiency table it reports."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import REPO

from ptde.report.efficiency import curve_efficiency, efficiency_table, run_efficiency
from ptde.report.runs import RunRecord


def record(algo: str, seed: int, steps: list[int], wins: list[float]) -> RunRecord:
    results = {"status": "finished", "algo": algo, "env": "3s_vs_5z", "env_family": "smac", "seed": seed,
               "success_metric": "win_rate", "test/win_rate": wins[-1], "test/episodes": 32.0}  # fmt: skip
    return RunRecord(f"{algo}_{seed}", results, pd.DataFrame({"env_steps": steps, "test/win_rate": wins}), None)


def test_curve_efficiency_on_a_known_curve():
    out = curve_efficiency(np.array([0, 10_000, 20_000, 30_000.0]), np.array([0.0, 0.5, 0.9, 0.7]), 0.8)
    assert out["steps_to_threshold"] == 20_000
    # trapezoids: (0+.5)/2*10k + (.5+.9)/2*10k + (.9+.7)/2*10k = 17.5k over a 30k span
    assert math.isclose(out["auc"], 17_500 / 30_000)
    assert out["peak"] == 0.9 and out["final"] == 0.7
    never = curve_efficiency(np.array([0, 10_000.0]), np.array([0.1, 0.79]), 0.8)
    assert math.isnan(never["steps_to_threshold"]) and math.isclose(never["auc"], 0.445)


def test_efficiency_table_over_seeds():
    records = [
        record("qmix", 0, [0, 10_000, 20_000], [0.0, 0.8, 1.0]),  # reaches 0.8 at 10k
        record("qmix", 1, [0, 10_000, 20_000], [0.0, 0.2, 0.9]),  # at 20k
        record("qmix", 2, [0, 10_000, 20_000], [0.0, 0.1, 0.2]),  # never
        record("qmix_gip", 0, [0, 10_000, 20_000], [0.0, 0.0, 0.0]),
    ]
    per_run = run_efficiency(records, 0.8)
    assert len(per_run) == 4
    table = efficiency_table(per_run, "smac", 0.8)
    row = table.loc["3s_vs_5z / qmix"]
    assert row.iloc[0] == "2/3"
    assert row["env steps to first ≥ threshold"] == "15k ± 5k"
    aucs = [(0 + 2 * 0.8 + 1.0) / 4, (0 + 2 * 0.2 + 0.9) / 4, (0 + 2 * 0.1 + 0.2) / 4]  # (a + 2b + c) / 4
    assert row["AUC (mean test score)"] == f"{np.mean(aucs):.3f} ± {np.std(aucs):.3f}"
    assert row["final test"] == f"{np.mean([1.0, 0.9, 0.2]):.3f} ± {np.std([1.0, 0.9, 0.2]):.3f}"
    ses = [0.0, np.sqrt(0.9 * 0.1 / 32), np.sqrt(0.2 * 0.8 / 32)]  # binomial, 32 test episodes
    assert row["SE of one final test"] == f"{np.mean(ses):.3f}"
    gip = table.loc["3s_vs_5z / qmix_gip"]
    assert gip.iloc[0] == "0/1" and gip["env steps to first ≥ threshold"] == "never"


def test_the_standard_error_of_a_final_test_is_the_metrics_spread_and_a_missing_one_a_marked_bound():
    def ltr(seed: int, **std: float) -> RunRecord:
        results = {"status": "finished", "algo": "qmix", "env": "synthetic", "env_family": "ltr", "seed": seed,
                   "success_metric": "ndcg@10", "test/ndcg@10": 0.9, "test/episodes": 3000.0, **std}  # fmt: skip
        return RunRecord(
            f"qmix_{seed}", results, pd.DataFrame({"env_steps": [0, 10], "test/ndcg@10": [0.5, 0.9]}), None
        )

    logged = efficiency_table(run_efficiency([ltr(0, **{"test/ndcg@10_std": 0.1})], 0.8), "ltr", 0.8)
    assert logged.iloc[0]["SE of one final test"] == f"{0.1 / np.sqrt(3000):.3f}" == "0.002"
    older = efficiency_table(run_efficiency([ltr(0)], 0.8), "ltr", 0.8)  # a run from before the key
    assert older.iloc[0]["SE of one final test"] == f"≤ {np.sqrt(0.9 * 0.1 / 3000):.3f}" == "≤ 0.005"
    # win rates are 0/1 per episode: without the key the binomial is the SE itself, unmarked
    assert not run_efficiency([record("qmix", 0, [0, 10], [0.0, 0.5])], 0.8)["se_is_bound"].any()


def campaign(tmp, *args: str) -> list[str]:
    return [
        sys.executable, "-m", "ptde.tools.campaign", "budget=smoke", "jobs=2", "nice=0",
        f"out={tmp / 'bench'}", f"work_dir={tmp / 'work'}", "only=[qmix_3m_seed0,qmix_gip_3m_seed0]",
        "extra=['trainer.max_env_steps=3000','trainer.checkpoint_interval=1500','trainer.test_interval=1500',"
        "'trainer.test_episodes=8','algo.batch_size=16','algo.buffer_size=200']", *args,
    ]  # fmt: skip


def test_smoke_campaign_is_resumable_and_commits_only_small_artefacts(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    work, runs = tmp_path / "work", tmp_path / "bench" / "runs"
    # 1. interrupted: SIGTERM once qmix has a checkpoint; the training processes stop as preempted
    proc = subprocess.Popen(campaign(tmp_path), cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    ckpt = work / "qmix_3m_seed0" / "checkpoints" / "last.ckpt"
    deadline = time.time() + 300
    while not ckpt.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert ckpt.exists(), proc.communicate()[0] if proc.poll() is not None else "no checkpoint within 300 s"
    proc.send_signal(signal.SIGTERM)
    out1, _ = proc.communicate(timeout=300)
    qmix_first = json.loads((work / "qmix_3m_seed0" / "results.json").read_text())
    if qmix_first["status"] != "finished":  # it may have finished in the instant before the signal
        assert proc.returncode == 143, out1
        assert qmix_first["status"] == "preempted", qmix_first
        assert not (runs / "qmix_3m_seed0").exists()
    # 2. the same command resumes it and trains the rest
    second = subprocess.run(campaign(tmp_path), cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout + second.stderr
    if qmix_first["status"] != "finished":  # the plan says how far its checkpoint got of its own budget
        assert re.search(r"qmix_3m_seed0 +resume +checkpoint at [\d,]+ of 3,000 env steps \(\d+%\)", second.stdout), (
            second.stdout
        )
    commit = subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    for name in ("qmix_3m_seed0", "qmix_gip_3m_seed0"):
        files = sorted(str(p.relative_to(runs / name)) for p in (runs / name).rglob("*") if p.is_file())
        expected = ["config.yaml", "metrics.csv", "results.json"] + (["distill/metrics.csv"] if "gip" in name else [])
        assert files == sorted(expected)  # no checkpoints, teacher data, logs or wandb folders
        res = json.loads((runs / name / "results.json").read_text())
        assert res["status"] == "finished" and res["env_steps"] >= 3000
        assert res["git_commit"] == commit and len(commit) == 40
    if qmix_first["status"] != "finished":
        assert json.loads((runs / "qmix_3m_seed0" / "results.json").read_text())["resumed_from_env_steps"]
    index = (tmp_path / "bench" / "report" / "index.md").read_text()
    assert "qmix_kd" in index and "PRR" in index and "sample efficiency" in index
    assert (tmp_path / "bench" / "report" / "efficiency_smac.csv").exists()
    # the wandb report's spec beside it: a panel grid per map over the runs' wandb groups, never uploaded
    spec = json.loads((tmp_path / "bench" / "report" / "wandb_report.json").read_text())
    assert "smac/3m" in json.dumps(spec) and '"Run History Line Plot"' in json.dumps(spec), spec
    # 3. once more: nothing is trained, nothing is rewritten
    mtimes = {p: p.stat().st_mtime_ns for p in runs.rglob("results.json")}
    third = subprocess.run(campaign(tmp_path), cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert third.returncode == 0, third.stdout + third.stderr
    assert "0 runs trained or resumed" in third.stdout and third.stdout.count(" done") == 2
    assert re.search(
        r"qmix_gip_3m_seed0 +done +final win_rate \d\.\d{3}, student \d\.\d{3}, [\d,]+ env steps", third.stdout
    )
    assert mtimes == {p: p.stat().st_mtime_ns for p in runs.rglob("results.json")}


def test_every_campaign_composes_and_each_run_is_a_valid_train_config(tmp_path):
    """A typo in a campaign's override (an algo key, a map) fails here, not hours into a campaign."""
    from conftest import CONF, compose_cfg
    from hydra import compose, initialize_config_dir

    from ptde.config import register_entry_configs
    from ptde.config.resolved import to_container
    from ptde.tools.campaign import campaign_runs, train_command

    register_entry_configs()
    names = sorted(p.stem for p in (CONF / "campaign").glob("*.yaml"))
    assert {"smax", "collapse_2s3z", "mappo_5m_vs_6m"} <= set(names)
    algo_of = {}
    for name in names:
        with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
            cfg = to_container(compose("benchmark", overrides=[f"campaign={name}"]))
        runs = campaign_runs(cfg)
        assert runs and cfg["campaign"]["name"] == name
        for run in {(r.group, r.algo, r.env): r for r in runs}.values():  # one run per group x algo x env
            cmd = train_command(cfg, run, tmp_path / run.name)
            train = compose_cfg(*cmd[cmd.index("ptde.train") + 1 : -1])  # all but hydra.run.dir
            assert train["trainer"]["max_env_steps"] == run.max_env_steps, name
            assert train["env"]["name"] == run.env.split("/")[1], name
            algo_of[name, run.group] = train["algo"]
    collapse = {group: algo for (name, group), algo in algo_of.items() if name == "collapse_2s3z"}
    assert sorted(collapse) == "buffer buffer_128 default double_q eps lambda long lr lr_1e-4 target tau vdn".split()
    assert collapse["default"]["target_update_tau"] == 0.0 and collapse["default"]["lr"] == 0.001
    assert collapse["tau"]["target_update_tau"] == 0.01
    assert collapse["eps"]["epsilon_anneal_time"] == 200_000
    assert collapse["lr"]["lr"] == 0.0005 and collapse["target"]["target_update_interval"] == 400
    assert collapse["lr_1e-4"]["lr"] == 0.0001
    assert collapse["lambda"]["td_lambda"] == 0 and collapse["buffer"]["buffer_size"] == 1000
    assert collapse["double_q"]["double_q"] is False and collapse["vdn"]["mixer"] == "vdn"
    # each condition changes one thing of the defaults, nothing else (VDN: its mixer, and its name)
    for group, algo in collapse.items():
        changed = {k for k in algo if algo[k] != collapse["default"][k]}
        assert len(changed) == {"default": 0, "long": 0, "vdn": 2}.get(group, 1), (group, changed)
    assert algo_of["mappo_5m_vs_6m", ""]["name"] == "mappo"


def test_named_groups_have_their_own_folders_and_keys(tmp_path, monkeypatch, capsys):
    """An ablation's conditions are groups of one campaign; each keeps its runs in <out>/<group>/."""
    from conftest import CONF
    from hydra import compose, initialize_config_dir

    from ptde.config import register_entry_configs
    from ptde.config.resolved import to_container
    from ptde.errors import ConfigError
    from ptde.tools.campaign import Campaign, campaign_runs

    register_entry_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        cfg = to_container(compose("benchmark", overrides=["campaign=collapse_2s3z", "only=[tau/*,lr/*seed1]",
                                                           f"out={tmp_path / 'out'}", f"work_dir={tmp_path / 'w'}"]))  # fmt: skip
    runs = campaign_runs(cfg)
    assert [r.key for r in runs] == ["lr/qmix_2s3z_seed1", "tau/qmix_2s3z_seed0", "tau/qmix_2s3z_seed1"]
    assert {r.name for r in runs} == {"qmix_2s3z_seed0", "qmix_2s3z_seed1"}  # the report's labels
    done = tmp_path / "out" / "tau" / "runs" / "qmix_2s3z_seed0"
    done.mkdir(parents=True)
    (done / "results.json").write_text(json.dumps({"status": "finished"}))
    ckpt = tmp_path / "w" / "lr" / "qmix_2s3z_seed1" / "checkpoints" / "last.ckpt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"")
    camp = Campaign(cfg)
    assert [camp.status(r) for r in runs] == ["resume", "done", "new"]  # the same run name, another group
    # a run that stopped on a non-finite loss is not retried (an exact resume fails the same way);
    # one that failed otherwise (killed, a crashed engine) is resumed
    results = ckpt.parent.parent / "results.json"
    results.write_text(json.dumps({"status": "failed", "reason": "RuntimeError: GRF worker 3 failed on reset twice"}))
    assert camp.status(runs[0]) == "resume"
    nan = "FloatingPointError: non-finite TD loss (nan) at update 15198, env step 486464: ..."
    results.write_text(json.dumps({"status": "failed", "reason": nan}))
    assert camp.status(runs[0]) == "failed"
    results.unlink()  # the committed copy says so too (a clean clone has no work folder)
    committed = tmp_path / "out" / "lr" / "runs" / "qmix_2s3z_seed1"
    committed.mkdir(parents=True)
    (committed / "results.json").write_text(json.dumps({"status": "failed", "reason": nan}))
    assert camp.status(runs[0]) == "failed"
    # the plan's line says where each run stands: a failure's first clause, a finished run's scores
    assert (
        camp.progress(runs[0], "failed")
        == "FloatingPointError: non-finite TD loss (nan) at update 15198, env step 486464"
    )
    scores = {
        "success_metric": "win_rate",
        "test/win_rate": 0.75,
        "eval/decentralized_win_rate": 0.625,
        "env_steps": 2000,
    }
    (done / "results.json").write_text(json.dumps({"status": "finished", **scores}))
    assert camp.progress(runs[1], "done") == "final win_rate 0.750, student 0.625, 2,000 env steps"
    assert camp.progress(runs[2], "new") == ""
    # a run another process trains (the campaign started twice) is left to it, not started again
    from ptde.experiment.run_folder import claim_run_folder

    with claim_run_folder(camp.work_dir(runs[2])):
        assert camp.status(runs[2]) == "running"
        assert camp.progress(runs[2], "running") == f"trained by another process (pid {os.getpid()}); not started here"
    assert camp.status(runs[2]) == "new"
    # the holder ended between `status` and the progress line: no "pid None"
    assert camp.progress(runs[2], "running").startswith("trained by another process that has just ended")
    # stopped before its workers start: nothing is launched, and the summary does not claim otherwise
    camp.stopping = True
    monkeypatch.setattr(signal, "signal", lambda *_: None)  # keep pytest's own handlers
    capsys.readouterr()
    assert camp.run() == 143
    assert "[campaign] 0 runs trained or resumed (1 not started: stopped)" in capsys.readouterr().out
    # report_only: every group's report rebuilt, with a run still to resume and one new, nothing launched
    camp.stopping, camp.cfg = False, {**cfg, "report_only": True}
    rebuilt = []
    monkeypatch.setattr(camp, "rebuild_report", rebuilt.append)
    monkeypatch.setattr(camp, "train", lambda run: pytest.fail(f"report_only trained {run.key}"))
    assert camp.run() == 0 and rebuilt == ["lr", "tau"]
    assert "runs trained or resumed" not in capsys.readouterr().out
    (committed / "results.json").unlink()
    assert camp.progress(runs[0], "resume").startswith("checkpoint or config.yaml unreadable")  # the empty .ckpt
    dup = {**cfg, "only": None}
    dup["campaign"] = {**cfg["campaign"], "groups": [{**g, "name": "x"} for g in cfg["campaign"]["groups"][:2]]}
    with pytest.raises(ConfigError, match="x/qmix_2s3z_seed0"):
        campaign_runs(dup)
