"""MAPPO: the PPO pieces by hand, action sampling, per-map config composition, active masks,
recurrent chunks, stacked frames, and learning on real SMAX."""

import csv
import json

import pytest
import torch
from conftest import CONF, compose_cfg, run_module

from ptde.envs.build import build_envs
from ptde.learners.mappo import MAPPOLearner, clipped_value_loss, normalise_advantages, ppo_policy_loss
from ptde.nn.agents import FeedForwardAgent
from ptde.nn.critics import ValueNorm
from ptde.nn.policy import sample_from_policy
from ptde.rollout.steps import collect_steps


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
    a = cfg["algo"]  # on smac/3m, the default env
    assert (a["lr"], a["clip_param"], a["gae_lambda"], a["ppo_epochs"], a["entropy_coef"]) == (
        5e-4,
        0.2,
        0.95,
        15,
        0.01,
    )
    assert (a["rollout_steps"], a["data_chunk_length"], a["num_mini_batch"]) == (400, 10, 1)
    assert a["use_feature_normalization"] and a["use_orthogonal"] and a["gain"] == 0.01
    assert a["epsilon_start"] == a["epsilon_finish"] == 1.0  # training rollouts sample from π


# on-policy's train_smac_<map>.sh (recurrent = rmappo, ppo epochs, clip, stacked frames, value active
# masks: the scripts' --use_value_active_masks turns them off); the paper's two custom maps take
# the settings of the map they extend, 2s3z (no script) on-policy's config.py defaults
ON_POLICY_SCRIPTS = {
    "3m": (True, 15, 0.2, 1, False),
    "2s3z": (True, 15, 0.2, 1, True),
    "5m_vs_6m": (True, 10, 0.05, 1, False),
    "3s_vs_5z": (False, 15, 0.05, 4, False),
    "3s_vs_8z": (False, 15, 0.05, 4, False),
    "3s5z_vs_3s6z": (True, 5, 0.2, 1, False),
    "3s5z_vs_3s7z": (True, 5, 0.2, 1, False),
    "6h_vs_8z": (False, 5, 0.2, 1, False),
}


@pytest.mark.parametrize("smac_map", sorted(p.stem for p in (CONF / "env" / "smac").glob("*.yaml")))
def test_per_map_ppo_settings_compose_for_every_smac_map(smac_map):
    keys = ("recurrent", "ppo_epochs", "clip_param", "stacked_frames", "use_value_active_masks")
    for algo in ("mappo", "mappo_gip"):
        a = compose_cfg(f"algo={algo}", f"env=smac/{smac_map}")["algo"]
        assert tuple(a[k] for k in keys) == ON_POLICY_SCRIPTS[smac_map], (algo, smac_map)
        assert (a["rollout_steps"], a["num_mini_batch"], a["lr"]) == (400, 1, 5e-4)
    # the command line still wins over the map's settings
    a = compose_cfg("algo=mappo", f"env=smac/{smac_map}", "algo.ppo_epochs=3", "algo.clip_param=0.1")["algo"]
    assert (a["ppo_epochs"], a["clip_param"]) == (3, 0.1)
    # other learners never see them
    assert "ppo_epochs" not in compose_cfg("algo=qmix", f"env=smac/{smac_map}")["algo"]


def test_mappo_off_smac_takes_the_schema_defaults():
    a = compose_cfg("algo=mappo", "env=grf/3_vs_1_with_keeper")["algo"]
    assert (a["recurrent"], a["ppo_epochs"], a["clip_param"], a["use_value_active_masks"]) == (True, 15, 0.2, True)


def _learner_and_rollout(*overrides: str, steps: int = 60, seed: int = 0):
    """An untrained MAPPO learner on SMAX 3m (4 auto-reset envs) and one rollout of `steps` steps from it."""
    torch.manual_seed(seed)
    cfg = compose_cfg(
        "algo=mappo", "env=smac/3m", "env.batch_size_run=4", "trainer.test_episodes=4", f"algo.rollout_steps={steps}",
        *overrides,
    )  # fmt: skip
    env, _, info = build_envs(cfg, seed=seed, auto_reset=True)
    learner = MAPPOLearner(cfg, info.__dict__)
    store, datamodule = learner.build_data(cfg, info, seed=0)
    rollout, _ = collect_steps(env, learner, info.n_actions, steps, generator=torch.Generator().manual_seed(seed))
    store.insert(rollout)
    return learner, next(iter(datamodule.train_dataloader())), rollout


def test_rollout_store_holds_only_the_newest_rollout():
    torch.manual_seed(0)
    cfg = compose_cfg("algo=mappo", "env=smac/3m", "env.batch_size_run=4", "trainer.test_episodes=4")
    env, _, info = build_envs(cfg, seed=0, auto_reset=True)
    learner = MAPPOLearner(cfg, info.__dict__)
    store, datamodule = learner.build_data(cfg, info, seed=0)
    stream = iter(datamodule.train_dataloader())
    carry = None
    for _ in range(2):
        rollout, carry = collect_steps(env, learner, info.n_actions, 30, carry)
        store.insert(rollout)
        served = next(stream)
        assert len(store) == 1 and served["reward"].shape == (4, 30) and served["state"].shape[1] == 31
        assert served["reward"].sum().item() == pytest.approx(rollout.reward.sum().item(), rel=1e-6)
        assert torch.equal(served["actions"], rollout.actions)
        assert store.memory_metrics() == {"train/replay_bytes": float(store.nbytes)} and store.nbytes > 0


def test_ppo_update_moves_the_policy_towards_positive_advantages():
    """One PPO update on a real SMAX rollout: its first minibatch starts at ratio 1 (π_old is the
    collecting policy), and afterwards the taken actions' log-probabilities have risen where the
    advantage was positive and fallen where it was negative."""
    learner, batch, rollout = _learner_and_rollout("algo.ppo_epochs=1")
    r = learner.prepare_rollout(batch)
    assert r["old_log_prob"].shape == r["advantages"].shape == (4 * 60 // 10, 10, 3)  # 10-step chunks
    m = r["policy_mask"] > 0
    torch.testing.assert_close(r["advantages"][m].mean(), torch.tensor(0.0), atol=1e-4, rtol=0)  # normalised
    torch.testing.assert_close(r["advantages"][m].std(unbiased=False), torch.tensor(1.0), atol=1e-3, rtol=0)

    def taken_log_prob() -> torch.Tensor:
        with torch.no_grad():
            return learner.taken_log_prob(r, slice(None))[0]

    # the chunks' log-probs are the acting policy's: recomputed from the stored states, they match
    # the whole rollout unrolled from its start
    with torch.no_grad():
        whole = learner.log_pi(batch["inputs"], None, batch["avail_actions"], None, batch["starts"][:, :-1])
    whole = whole.gather(-1, batch["actions"].unsqueeze(-1)).squeeze(-1).reshape(r["old_log_prob"].shape)
    torch.testing.assert_close(r["old_log_prob"], whole, atol=1e-5, rtol=0)
    stats = learner.ppo_update(r, *learner.configure_optimizers())
    assert stats["train/ratio_mean"] == pytest.approx(1.0, abs=1e-5)  # one epoch of one minibatch: ρ = 1
    assert stats["train/clip_fraction"] == 0.0 and stats["train/entropy"] > 0.5
    assert 0.0 < stats["train/dead_fraction"] < 1.0  # agents died in these battles
    valid = batch["valid"].unsqueeze(-1).expand_as(batch["active"])  # [B, T, n]
    dead = 1.0 - (batch["active"] * valid).sum() / valid.sum()  # the dead share of the valid agent-steps
    assert stats["train/dead_fraction"] == pytest.approx(dead.item(), abs=1e-6)
    delta = taken_log_prob() - r["old_log_prob"]
    # live agent-steps with a choice (a dead agent has only no-op and log π = 0 always)
    choice = m & (r["avail"].sum(-1) > 1)
    up = delta[choice & (r["advantages"] > 0.5)].mean()
    down = delta[choice & (r["advantages"] < -0.5)].mean()
    assert up > 0 > down, (up.item(), down.item())


def _actor_loss_and_grads(learner, r):
    learner.actor.zero_grad()
    loss, *_ = learner.actor_objective(r, slice(None))
    loss.backward()
    return loss.detach(), [p.grad.clone() for p in learner.actor.parameters()]


def test_a_dead_agents_steps_change_neither_the_policy_loss_nor_its_gradient():
    learner, batch, _ = _learner_and_rollout()
    r = learner.prepare_rollout(batch)
    dead = (r["policy_mask"] == 0) & (r["step_mask"] > 0)  # [N, L, n]
    assert dead.sum() > 20, "the rollout needs dead agents"
    # a dead agent's advantage, old log-prob and observations set to nonsense
    g = torch.Generator().manual_seed(1)
    other = dict(r)
    other["advantages"] = torch.where(dead, 100 * torch.randn(dead.shape, generator=g), r["advantages"])
    other["old_log_prob"] = torch.where(dead, torch.randn(dead.shape, generator=g), r["old_log_prob"])
    other["inputs"] = torch.where(dead[..., None], torch.randn(r["inputs"].shape, generator=g), r["inputs"])
    loss, grads = _actor_loss_and_grads(learner, r)
    loss2, grads2 = _actor_loss_and_grads(learner, other)
    torch.testing.assert_close(loss2, loss, rtol=0, atol=1e-7)
    for a, b in zip(grads, grads2, strict=True):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-7)
    # the advantage normalisation reads only live agents' steps
    live = r["policy_mask"] > 0
    raw = torch.randn(dead.shape, generator=g)
    changed = torch.where(dead, raw * 1000 + 50, raw)
    torch.testing.assert_close(normalise_advantages(changed, r["policy_mask"])[live],
                               normalise_advantages(raw, r["policy_mask"])[live])  # fmt: skip
    # without active masks the same nonsense does move the loss: the masks are what protects it
    learner_all, batch_all, _ = _learner_and_rollout("algo.use_policy_active_masks=false")
    r_all = learner_all.prepare_rollout(batch_all)
    other_all = dict(r_all, advantages=torch.where(dead, other["advantages"], r_all["advantages"]))
    assert abs(_actor_loss_and_grads(learner_all, other_all)[0] - _actor_loss_and_grads(learner_all, r_all)[0]) > 1e-3


def test_chunked_recurrent_training_equals_whole_sequences_when_chunks_are_episodes():
    """Episodes of exactly 15 steps (the time limit) and 15-step chunks: every chunk is one whole
    episode from a zero state, and the losses equal those of the whole 60-step sequences (resets
    inside). Chunks that cut episodes (5 steps) start from the stored states and agree as well."""
    losses = {}
    for chunk in (15, 60, 5):
        learner, batch, rollout = _learner_and_rollout(
            "env.episode_limit=15", f"algo.data_chunk_length={chunk}", "algo.value_norm=false", seed=5
        )
        assert (rollout.episodes.lengths == 15).all() and rollout.episodes.count == 4 * 4  # aligned episodes
        r = learner.prepare_rollout(batch)
        actor_loss, policy_loss, entropy, _ = learner.actor_objective(r, slice(None))
        value_loss = learner.value_objective(r, slice(None))
        losses[chunk] = torch.stack([actor_loss, policy_loss, entropy, value_loss]).detach()
        if chunk == 15:
            assert (r["actor_h0"] == 0).all() and (r["critic_h0"] == 0).all()  # each chunk starts an episode
            assert r["starts"][:, 0].all() and not r["starts"][:, 1:].any()
    torch.testing.assert_close(losses[15], losses[60], rtol=0, atol=1e-6)
    torch.testing.assert_close(losses[5], losses[60], rtol=0, atol=1e-6)


def test_stacked_frames_are_the_last_k_inputs_of_the_episode():
    agent = FeedForwardAgent(input_dim=2, hidden_dim=8, n_actions=3, stacked_frames=3)
    x = torch.arange(1, 7, dtype=torch.float32).view(1, 6, 1, 1).expand(1, 6, 1, 2)  # step t holds t+1
    starts = torch.tensor([[False, False, True, False, False, False]])
    carried = torch.full((1, 1, 4), 9.0)  # frames of the running episode before this sequence
    stacked, after = agent.stack(x, carried, starts)
    frames = stacked[0, :, 0, ::2]  # one feature per frame, oldest first
    expect = torch.tensor([[9, 9, 1], [9, 1, 2], [0, 0, 3], [0, 3, 4], [3, 4, 5], [4, 5, 6]], dtype=torch.float32)
    torch.testing.assert_close(frames, expect)
    torch.testing.assert_close(after[0, -1, 0, ::2], torch.tensor([5.0, 6.0]))  # carried into the next step


def test_mappo_gip_runs_both_stages_and_evaluates_with_the_student(tmp_path):
    """Stage 2 is the QMIX code unchanged: the teacher dataset, the student and MAPPO_KD."""
    run_dir = tmp_path / "mappo_gip"
    proc = run_module(
        "ptde.train", "algo=mappo_gip", "env=smac/3m", "logger=csv", "trainer.max_env_steps=1500",
        "trainer.test_interval=1000", "trainer.log_interval=500", "trainer.test_episodes=8", "trainer.progress_bar=false",
        "algo.rollout_steps=100", "algo.ppo_epochs=5", "variant.distill.teacher_episodes=16", "variant.distill.max_steps=100", "variant.distill.val_interval=50",
        f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((run_dir / "results.json").read_text())
    assert r["status"] == "finished" and r["algo"] == "mappo_gip" and r["algo_kd"] == "mappo_kd"
    assert r["updates"] >= 1 and r["distill/rows"] > 0
    for key in ("eval/centralized_win_rate", "eval/decentralized_win_rate", "eval/prr", "distill/val_mse"):
        assert key in r, key
    with open(run_dir / "metrics.csv") as f:  # the training rows carry the rollout store's size
        sizes = {float(row["train/replay_bytes"]) for row in csv.DictReader(f) if row.get("train/replay_bytes")}
    assert len(sizes) == 1 and sizes.pop() > 8 * 100 * 3 * 4  # every rollout: 8 envs x 100 steps x 3 agents, > 4 B each
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
    from ptde.rollout import test_policy

    class Uniform:
        uses_state = False

        def act(self, inputs, hidden):
            return torch.zeros(*inputs.shape[:-1], info.n_actions), hidden

        @staticmethod
        def select_actions(out, avail, epsilon, generator=None):
            return sample_from_policy(out, avail, 1.0, generator)

    random_rate = test_policy(test_env, Uniform(), info.n_actions, 32)["test/win_rate"]
    assert r["test/win_rate"] >= random_rate + 0.25, (r["test/win_rate"], random_rate)
