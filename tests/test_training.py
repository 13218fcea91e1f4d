"""Stage-1 training for real on SMAX: the learner fits, a short run writes its folder, and
`ptde.evaluate` loads the checkpoint."""

import csv
import json

import pytest
import torch
from conftest import fit_fixed_batch, learner_and_real_batch, run_module


def test_learner_fits_a_fixed_batch_of_real_episodes():
    """With the targets frozen, repeated updates on one batch must drive the TD loss down."""
    learner, batch = learner_and_real_batch()
    losses = fit_fixed_batch(learner, batch)
    assert losses[-1] < 0.3 * losses[0], losses[::10]


def test_short_run_writes_results_checkpoint_and_evaluates(tmp_path, tiny_overrides):
    run_dir = tmp_path / "run"
    proc = run_module("ptde.train", *tiny_overrides, f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "finished"
    assert results["algo"] == "qmix" and results["env"] == "3m"
    assert results["env_steps"] >= 3000
    assert 0.0 <= results["test/win_rate"] <= 1.0
    assert results["updates"] > 0
    assert (run_dir / "config.yaml").exists()
    assert (run_dir / "checkpoints" / "last.ckpt").exists()
    assert list((run_dir / "checkpoints").glob("env_steps_*.ckpt"))
    rows = list(csv.DictReader((run_dir / "metrics.csv").open()))
    losses = [float(r["train/td_loss"]) for r in rows if r.get("train/td_loss")]
    tests = [r for r in rows if r.get("test/win_rate")]
    assert len(losses) >= 3 and len(tests) >= 2
    env_steps = [float(r["env_steps"]) for r in rows]
    assert env_steps == sorted(env_steps)
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["ptde_counters"]["env_steps"] == results["env_steps"]

    ev = run_module("ptde.evaluate", f"checkpoint={run_dir}", "episodes=8", "batch_size=8")
    assert ev.returncode == 0, ev.stderr[-3000:]
    out = json.loads((run_dir / "eval_centralized.json").read_text())
    assert out["episodes"] == 8 and out["env_steps"] == results["env_steps"]
    assert 0.0 <= out["eval/win_rate"] <= 1.0 and out["eval/ep_length"] > 0


def test_evaluate_names_a_missing_checkpoint(tmp_path):
    proc = run_module("ptde.evaluate", f"checkpoint={tmp_path / 'nope'}")
    assert proc.returncode == 2
    assert "no checkpoint at" in proc.stderr


def test_length_sorted_chunks_give_the_same_loss_and_gradients():
    """Chunking an update by episode length only skips padding: loss and gradients are unchanged."""
    learner, batch = learner_and_real_batch()
    grads = []
    for chunk in (0, 5):
        learner.algo["update_chunk"] = chunk
        learner.zero_grad()
        loss, _ = learner.compute_loss(batch)
        loss.backward()
        grads.append((loss.item(), [p.grad.clone() for p in learner.q_net.parameters() if p.grad is not None]))
    (l0, g0), (l1, g1) = grads
    assert abs(l0 - l1) < 1e-5 * max(1.0, abs(l0))
    for a, b in zip(g0, g1, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


@pytest.mark.slow  # make test-all: make test's joblib sweep is test_workflow's (z_dim, both stages)
def test_seed_sweep_with_the_joblib_launcher_writes_one_folder_per_run(tmp_path):
    proc = run_module(
        "ptde.train", "-m", "hydra/launcher=joblib", "seed=0,1", "logger=none", "trainer.max_env_steps=300",
        "trainer.test_episodes=4", "trainer.test_interval=300", "algo.batch_size=8", "trainer.progress_bar=false",
        f"hydra.sweep.dir={tmp_path}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    for seed in (0, 1):
        results = json.loads((tmp_path / f"qmix_none_3m_seed{seed}" / "results.json").read_text())
        assert results["status"] == "finished" and results["seed"] == seed


def test_results_json_merges_stages_and_drops_stale_keys(tmp_path):
    from ptde.experiment.run_folder import update_results

    update_results(tmp_path, status="failed", reason="SIGTERM", **{"test/win_rate": 0.5})
    r = update_results(tmp_path, status="finished", reason=None, **{"eval/prr": 0.9})
    assert r == {"status": "finished", "test/win_rate": 0.5, "eval/prr": 0.9}
    assert update_results(tmp_path, fresh=True, status="running") == {"status": "running"}


def test_wandb_logger_writes_an_offline_run(tmp_path, monkeypatch):
    """logger=wandb with no API key configured logs offline into the run folder (real wandb)."""
    run_dir = tmp_path / "wb"
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc key
    monkeypatch.delenv("WANDB_MODE", raising=False)
    proc = run_module(
        "ptde.train", "logger=wandb", "trainer.max_env_steps=300", "trainer.test_episodes=4",
        "trainer.test_interval=300", "algo.batch_size=8", "trainer.progress_bar=false", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = list((run_dir / "wandb").glob("offline-run-*"))
    assert len(runs) == 1 and list(runs[0].glob("*.wandb"))
    assert (run_dir / "metrics.csv").read_text().count("\n") >= 2  # the CSV log is written as well


def test_non_finite_loss_stops_the_run_as_failed(tmp_path, tiny_overrides):
    run_dir = tmp_path / "nan"
    proc = run_module("ptde.train", *tiny_overrides, "env.reward_scale=nan", f"hydra.run.dir={run_dir}")
    assert proc.returncode != 0
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "failed"
    assert "non-finite TD loss" in results["reason"] and "env_steps" not in results


def test_a_non_finite_ppo_loss_stops_a_mappo_run_in_the_wording_the_campaign_reads(tmp_path):
    # `ptde.tools.campaign` does not retry a run whose reason starts with FloatingPointError
    run_dir = tmp_path / "nan_mappo"
    proc = run_module(
        "ptde.train", "algo=mappo", "env=smac/3m", "logger=csv", "trainer.max_env_steps=2000",
        "trainer.progress_bar=false", "env.reward_scale=nan", f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode != 0
    reason = json.loads((run_dir / "results.json").read_text())["reason"]
    assert reason.startswith("FloatingPointError: non-finite PPO loss (actor ")
    assert "at update 1, env step " in reason and reason.endswith("Check env.reward_scale and algo.lr.")
