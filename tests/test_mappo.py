"""MAPPO: the PPO pieces by hand, action sampling, config composition, and learning on real SMAX."""

import json

import pytest
import torch
from conftest import compose_cfg, run_module

from ptde.learners.mappo import MAPPOLearner, clipped_value_loss, ppo_policy_loss
from ptde.nn.critics import ValueNorm
from ptde.nn.policy import sample_from_policy
from ptde.rollout import run_episodes
from ptde.runtime import build_envs


def test_ppo_clipped_surrogate_on_a_known_batch():
    """ratios 0.5, 1.0, 1.5, 1.1 with advantages 1, -1, 1, -2 and clip 0.2; a masked entry is ignored."""
    ratio = torch.tensor([0.5, 1.0, 1.5, 1.1, 7.0])
    old = torch.log(torch.tensor([0.2, 0.3, 0.4, 0.5, 0.1]))
    log_prob = (old + ratio.log()).requires_grad_(True)
    adv = torch.tensor([1.0, -1.0, 1.0, -2.0, 100.0])
    mask = torch.tensor([1.0, 1.0, 1.0, 1.0, 0.0])
    loss, stats = ppo_policy_loss(log_prob, old, adv, mask, clip=0.2)
    # min(ρA, clip(ρ)A): 0.5 (unclipped is lower), -1, 1.2 (clipped), -2.2
    assert loss.item() == pytest.approx(-(0.5 - 1.0 + 1.2 - 2.2) / 4)
    assert stats["train/clip_fraction"] == pytest.approx(0.5)  # 0.5 and 1.5 lie outside [0.8, 1.2]
    assert stats["train/ratio_mean"] == pytest.approx((0.5 + 1.0 + 1.5 + 1.1) / 4)
    (grad,) = torch.autograd.grad(loss, log_prob)
    # d(-ρA/4)/dlog π = -ρA/4 where the unclipped term is the min; 0 where the clip is active
    torch.testing.assert_close(grad, torch.tensor([-0.125, 0.25, 0.0, 0.55, 0.0]))


def test_clipped_value_loss_takes_the_worse_of_clipped_and_unclipped():
    old = torch.zeros(3)
    values = torch.tensor([1.0, 1.0, 0.1])
    targets = torch.tensor([2.0, 0.5, 30.0])
    mask = torch.ones(3)
    loss = clipped_value_loss(values, old, targets, mask, clip=0.2, huber_delta=10.0)
    # 1: max(0.5·1², 0.5·1.8²) = 1.62; 2: max(0.5·0.5², 0.5·0.3²) = 0.125; 3: Huber beyond δ: 10·(29.9 - 5) = 249
    assert loss.item() == pytest.approx((1.62 + 0.125 + 249.0) / 3)
    no_clip = clipped_value_loss(values, old, targets, mask, 0.2, 10.0, use_clipping=False)
    assert no_clip.item() == pytest.approx((0.5 + 0.125 + 249.0) / 3)


def test_value_norm_tracks_mean_and_variance_and_round_trips():
    torch.manual_seed(0)
    vn = ValueNorm(beta=0.9)
    for _ in range(200):
        vn.update(torch.randn(64, 3) * 4.0 + 10.0, torch.ones(64, 1))
    mean, var = vn.mean_var()
    assert mean.item() == pytest.approx(10.0, abs=0.5) and var.sqrt().item() == pytest.approx(4.0, abs=0.5)
    x = torch.randn(5) * 3
    torch.testing.assert_close(vn.denormalize(vn.normalize(x)), x)


def test_policy_sampling_respects_available_actions_and_epsilon():
    g = torch.Generator().manual_seed(0)
    logits = torch.tensor([[[0.0, 0.0, 5.0, 0.0], [2.0, 0.0, 0.0, 1.0]]]).expand(4000, 2, 4)
    avail = torch.tensor([[[True, True, False, True], [True, True, True, True]]]).expand(4000, 2, 4)
    greedy = sample_from_policy(logits, avail, 0.0, g)
    assert (greedy[:, 0] != 2).all() and (greedy[:, 1] == 0).all()
    sampled = sample_from_policy(logits, avail, 1.0, g)
    assert (sampled[:, 0] != 2).all()  # never an unavailable action, however likely its logit
    freq = torch.bincount(sampled[:, 1], minlength=4).float() / 4000
    torch.testing.assert_close(freq, torch.softmax(logits[0, 1], -1), atol=0.03, rtol=0)


def test_mappo_configs_compose():
    cfg = compose_cfg("algo=mappo_gip")
    assert cfg == compose_cfg("algo=mappo", "variant=gip")
    assert compose_cfg("algo=mappo_giu") == compose_cfg("algo=mappo", "variant=giu")
    assert cfg["algo"]["learner"] == "mappo" and cfg["variant"]["name"] == "gip"
    # one rollout is one collection of the parallel envs
    assert compose_cfg("algo=mappo", "env.batch_size_run=4")["algo"]["batch_size"] == 4
    a = cfg["algo"]
    assert (a["lr"], a["clip_param"], a["gae_lambda"], a["ppo_epochs"], a["entropy_coef"]) == (5e-4, 0.2, 0.95, 5, 0.01)
    assert a["epsilon_start"] == a["epsilon_finish"] == 1.0  # training rollouts sample from π


def _learner_and_rollout(*overrides: str) -> tuple[MAPPOLearner, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    cfg = compose_cfg("algo=mappo", "env=smac/3m", "trainer.test_episodes=8", *overrides)
    env, _, info = build_envs(cfg, seed=0)
    learner = MAPPOLearner(cfg, info.__dict__)
    buffer, datamodule = learner.build_data(cfg, info, seed=0)
    buffer.insert(run_episodes(env, learner, info.n_actions, epsilon=1.0))
    assert buffer.can_sample(cfg["algo"]["batch_size"])
    return learner, next(iter(datamodule.train_dataloader()))


def test_rollout_store_holds_only_the_newest_rollout():
    torch.manual_seed(0)
    cfg = compose_cfg("algo=mappo", "env=smac/3m", "env.batch_size_run=4", "trainer.test_episodes=4")
    env, _, info = build_envs(cfg, seed=0)
    learner = MAPPOLearner(cfg, info.__dict__)
    buffer, datamodule = learner.build_data(cfg, info, seed=0)
    stream = iter(datamodule.train_dataloader())
    for _ in range(2):
        batch = run_episodes(env, learner, info.n_actions, epsilon=1.0)
        buffer.insert(batch)
        served = next(stream)
        assert len(buffer) == 4 and served["mask"].shape[0] == 4
        # the served episodes are exactly this rollout's (in some order)
        assert sorted(served["mask"].sum(1).tolist()) == sorted(batch.mask.sum(1).tolist())
        assert served["reward"].sum().item() == pytest.approx(batch.reward.sum().item(), rel=1e-5)


def test_ppo_update_moves_the_policy_towards_positive_advantages():
    """One PPO update on a real SMAX rollout: its first minibatch starts at ratio 1 (π_old is the
    collecting policy), and afterwards the taken actions' log-probabilities have risen where the
    advantage was positive and fallen where it was negative."""
    learner, batch = _learner_and_rollout("algo.ppo_epochs=1")
    r = learner.prepare_rollout(batch)
    assert r["old_log_prob"].shape == r["advantages"].shape == batch["actions"].shape
    m = r["agent_mask"] > 0
    torch.testing.assert_close(r["advantages"][m].mean(), torch.tensor(0.0), atol=1e-4, rtol=0)  # normalised

    def taken_log_prob() -> torch.Tensor:
        with torch.no_grad():
            log_pi = learner.log_pi(r["inputs"], None, r["avail"], r["valid"])
            return log_pi.gather(-1, r["actions"].unsqueeze(-1)).squeeze(-1)

    torch.testing.assert_close(taken_log_prob(), r["old_log_prob"])
    stats = learner.ppo_update(r, *learner.configure_optimizers())
    assert stats["train/ratio_mean"] == pytest.approx(1.0, abs=1e-5)  # one epoch of one minibatch: ρ = 1
    assert stats["train/clip_fraction"] == 0.0 and stats["train/entropy"] > 0.5
    delta = taken_log_prob() - r["old_log_prob"]
    # real agent-steps with a choice (a dead agent has only no-op and log π = 0 always)
    choice = m & (r["avail"].sum(-1) > 1)
    up = delta[choice & (r["advantages"] > 0.5)].mean()
    down = delta[choice & (r["advantages"] < -0.5)].mean()
    assert up > 0 > down, (up.item(), down.item())


def test_mappo_gip_runs_both_stages_and_evaluates_with_the_student(tmp_path):
    """Stage 2 is the QMIX code unchanged: the teacher dataset, the student and MAPPO_KD."""
    run_dir = tmp_path / "mappo_gip"
    proc = run_module(
        "ptde.train", "algo=mappo_gip", "env=smac/3m", "logger=csv", "trainer.max_env_steps=1500",
        "trainer.test_interval=1000", "trainer.test_episodes=8", "trainer.progress_bar=false",
        "variant.distill.teacher_episodes=16", "variant.distill.max_steps=100", "variant.distill.val_interval=50",
        f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((run_dir / "results.json").read_text())
    assert r["status"] == "finished" and r["algo"] == "mappo_gip" and r["algo_kd"] == "mappo_kd"
    assert r["updates"] >= 1 and r["distill/rows"] > 0
    for key in ("eval/centralized_win_rate", "eval/decentralized_win_rate", "eval/prr", "distill/val_mse"):
        assert key in r, key
    ev = run_module("ptde.evaluate", f"checkpoint={run_dir}", "mode=decentralized", "episodes=4", "batch_size=4")
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert json.loads((run_dir / "eval_decentralized.json").read_text())["mode"] == "decentralized"


@pytest.mark.slow
def test_mappo_learns_smax_3m(tmp_path):
    """MAPPO on SMAX 3m for 15k env steps must beat the untrained greedy policy's and a uniformly
    random policy's test win rate by a clear margin."""
    run_dir = tmp_path / "mappo3m"
    proc = run_module(
        "ptde.train", "algo=mappo", "env=smac/3m", "logger=csv", "trainer.max_env_steps=15000",
        "trainer.test_interval=5000", "trainer.progress_bar=false", "trainer.torch_threads=1",
        f"hydra.run.dir={run_dir}", timeout=1200,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    r = json.loads((run_dir / "results.json").read_text())
    cfg = compose_cfg("algo=mappo", "env=smac/3m")
    _, test_env, info = build_envs(cfg, seed=123)
    from ptde.callbacks.env_interaction import test_policy

    class Uniform:
        uses_state = False

        def act(self, inputs, hidden):
            return torch.zeros(*inputs.shape[:-1], info.n_actions), hidden

        @staticmethod
        def select_actions(out, avail, epsilon, generator=None):
            return sample_from_policy(out, avail, 1.0, generator)

    random_rate = test_policy(test_env, Uniform(), info.n_actions, 32)["test/win_rate"]
    assert r["test/win_rate"] >= random_rate + 0.25, (r["test/win_rate"], random_rate)
