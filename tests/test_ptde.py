"""PTDE core: GIU/GIP/student modules, the factored GIP, decentralized execution without the
state, distillation, PRR, and a tiny stage=all run."""

import inspect
import json
import math

import pytest
import torch
from conftest import compose_cfg, run_module

from ptde.data.teacher_dataset import TeacherDataset, collect_teacher_dataset
from ptde.envs.base import EnvInfo, Step
from ptde.envs.build import build_envs
from ptde.experiment.prr import performance_retention_ratio
from ptde.experiment.stage2 import distill
from ptde.learners.value_decomposition import ValueDecompositionLearner
from ptde.loggers.run_logger import RunLogger
from ptde.nn.global_info import GIPModule, GIUModule, StudentModule, gip_embedding_reference
from ptde.nn.policy import AgentNetwork, DecentralizedAgentNetwork
from ptde.rollout import run_episodes

INFO = EnvInfo(n_agents=4, obs_dim=12, state_dim=20, n_actions=7, episode_limit=10)
D = INFO.obs_dim + INFO.n_actions + INFO.n_agents


def test_giu_gives_every_agent_the_same_distribution():
    torch.manual_seed(0)
    giu = GIUModule(INFO.state_dim, z_dim=16, var_floor=0.01)
    inputs = torch.randn(3, 5, 4, D)  # different o_i per agent
    mu, var = giu(inputs, torch.randn(3, 5, INFO.state_dim))
    assert mu.shape == (3, 5, 4, 16) and var.shape == mu.shape
    assert torch.allclose(mu, mu[:, :, :1].expand_as(mu))
    assert (var >= 0.01).all()


def test_giu_embeds_the_state_linearly():
    """The authors' GIU feeds Linear(s) straight into the μ/σ heads (no ELU, unlike GIP's e_i)."""
    torch.manual_seed(0)
    giu = GIUModule(INFO.state_dim, z_dim=16, var_floor=0.01)
    s = torch.randn(1, 1, INFO.state_dim) * 5
    e = giu.embed(s)
    assert (e < -0.5).any()  # negative pre-activations exist, where an ELU would change e
    mu, var = giu(torch.randn(1, 1, 4, D), s)
    torch.testing.assert_close(mu[0, 0, 2], giu.head.mu(e[0, 0]))
    torch.testing.assert_close(var[0, 0, 2], giu.head.log_var(e[0, 0]).exp().clamp(min=0.01))


def test_gip_personalises_by_local_input():
    torch.manual_seed(0)
    gip = GIPModule(D, INFO.state_dim, z_dim=16, hyper_hidden_dim=32, var_floor=0.01)
    inputs = torch.randn(3, 5, 4, D)
    state = torch.randn(3, 5, INFO.state_dim)
    mu, var = gip(inputs, state)
    assert mu.shape == (3, 5, 4, 16)
    assert (mu[:, :, 0] - mu[:, :, 1]).abs().max() > 1e-3  # different o_i -> different mu
    same = inputs.clone()
    same[:, :, 1] = same[:, :, 0]
    mu_same, _ = gip(same, state)
    torch.testing.assert_close(mu_same[:, :, 0], mu_same[:, :, 1])  # same o_i -> same mu
    assert (var >= 0.01).all()
    # the state matters too
    mu_other, _ = gip(inputs, torch.randn(3, 5, INFO.state_dim))
    assert (mu_other - mu).abs().max() > 1e-3


def test_without_a_ceiling_a_large_log_variance_overflows_and_with_one_it_stays_finite():
    """The learning-to-rank GIP run that ended on a NaN TD loss at 486,464 env steps: the σ² head's
    output reached ~512, exp gave inf. With variant.var_ceiling the head's log σ² is clamped before
    exp, so σ² stays at the ceiling and the gradient stays finite (0 through the clamped entries)."""
    torch.manual_seed(3)
    inputs, state = torch.randn(2, 3, 4, D), torch.randn(2, 3, INFO.state_dim)
    heads = {}
    for ceiling in (None, 10.0):
        gip = GIPModule(D, INFO.state_dim, 16, 32, var_floor=0.01, var_ceiling=ceiling)
        with torch.no_grad():
            gip.head.log_var[2].bias[:8] = 200.0  # exp(200) is past float32's range
        heads[ceiling] = gip
        mu, var = gip(inputs, state)
        z = mu + var.sqrt() * torch.randn_like(mu)
        if ceiling is None:
            assert torch.isinf(var[..., :8]).all()
            continue
        assert torch.isfinite(var).all() and (var <= ceiling).all() and (var >= 0.01).all()
        assert (var[..., :8] == ceiling).all()
        z.square().sum().backward()
        grads = [p.grad for p in gip.parameters() if p.grad is not None]
        assert grads and all(torch.isfinite(g).all() for g in grads)
        assert (gip.head.log_var[2].bias.grad[:8] == 0).all()  # clamped: no gradient through them
        assert (gip.head.log_var[2].bias.grad[8:] != 0).any()
    # below the ceiling the two heads compute the same σ²
    with torch.no_grad():
        heads[10.0].load_state_dict(heads[None].state_dict())
        for gip in heads.values():
            gip.head.log_var[2].bias.zero_()
        torch.testing.assert_close(heads[10.0](inputs, state), heads[None](inputs, state), rtol=0, atol=0)


@pytest.mark.parametrize(
    "overrides,named",
    [
        (("algo=qmix_gip",), True),
        (("algo=qmix_giu",), True),
        (("algo=qmix_gip", "variant.var_ceiling=10"), False),
        (("algo=qmix",), False),
    ],
)
def test_a_non_finite_update_names_var_ceiling_for_a_giu_or_gip_run_without_one(overrides, named):
    from ptde.envs.build import probe_env_info

    cfg = compose_cfg(*overrides, "env=smac/3m")
    learner = ValueDecompositionLearner(cfg, probe_env_info(cfg["env"]).__dict__)
    assert ("variant.var_ceiling" in learner.variance_hint()) is named


def test_a_var_ceiling_at_or_below_the_floor_is_refused():
    from ptde.config.resolved import validate
    from ptde.errors import ConfigError

    cfg = compose_cfg("algo=qmix_gip", "env=smac/3m", "variant.var_ceiling=0.01")
    with pytest.raises(ConfigError, match="variant.var_ceiling=0.01 must be above variant.var_floor=0.01"):
        validate(cfg)


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-10), (torch.float32, 1e-5)])
@pytest.mark.parametrize("n,S", [(5, 99), (8, 228)])
def test_factored_gip_equals_the_straightforward_formulation(dtype, tol, n, S):
    torch.manual_seed(1)
    d = 30
    gip = GIPModule(d, S, z_dim=64, hyper_hidden_dim=64, var_floor=0.01).to(dtype)
    inputs = torch.randn(4, 6, n, d, dtype=dtype)
    state = torch.randn(4, 6, S, dtype=dtype)
    fast = gip.embedding(inputs, state)
    slow = gip_embedding_reference(gip, inputs, state)
    torch.testing.assert_close(fast, slow, atol=tol, rtol=tol)
    params = list(gip.parameters())
    g_fast = torch.autograd.grad((fast * torch.cos(fast)).sum(), params, allow_unused=True)
    g_slow = torch.autograd.grad((slow * torch.cos(slow)).sum(), params, allow_unused=True)
    for a, b in zip(g_fast, g_slow, strict=True):
        if a is None:
            assert b is None
            continue
        # float32 sums of ~10^5 terms differ in their last bits: compare at the gradient's scale
        scale = b.abs().max().clamp(min=1.0)
        torch.testing.assert_close(a / scale, b / scale, atol=tol, rtol=0)


def test_skipping_padded_timesteps_changes_nothing_on_valid_ones():
    torch.manual_seed(2)
    gip = GIPModule(D, INFO.state_dim, 16, 32, 0.01)
    net = AgentNetwork(INFO, 32, gip)
    inputs, state = torch.randn(3, 6, 4, D), torch.randn(3, 6, INFO.state_dim)
    valid = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0]]).bool()
    mu_all, _ = net.global_distribution(inputs, state)
    mu_valid, _ = net.global_distribution(inputs, state, valid)
    torch.testing.assert_close(mu_valid[valid], mu_all[valid])
    assert (mu_valid[~valid] == 0).all()


def test_student_execution_path_takes_no_state():
    params = list(inspect.signature(DecentralizedAgentNetwork.act).parameters)
    assert params == ["self", "inputs", "hidden"]
    assert DecentralizedAgentNetwork.uses_state is False
    student = StudentModule(D, 32, 16)
    assert list(inspect.signature(StudentModule.forward).parameters) == ["self", "inputs"]
    assert student.net[0].in_features == D  # local input only


class ScrambledStateEnv:
    """A real SMAX env whose global state is replaced by noise: a state-free policy can't tell."""

    def __init__(self, env, seed):
        self.env, self.g = env, torch.Generator().manual_seed(seed)
        self.batch_size = env.batch_size

    def get_env_info(self):
        return self.env.get_env_info()

    def reset(self, seed=None):
        return self._scramble(self.env.reset(seed))

    def step(self, actions):
        return self._scramble(self.env.step(actions))

    def _scramble(self, s: Step) -> Step:
        s.state = torch.randn(s.state.shape, generator=self.g) * 100
        return s

    def close(self):
        pass


def test_decentralized_policy_acts_identically_whatever_the_state():
    torch.manual_seed(3)
    cfg = compose_cfg("algo=qmix_gip", "env=smac/3m", "env.batch_size_run=4", "trainer.test_episodes=4")
    train_env, _, info = build_envs(cfg, seed=0)
    teacher = ValueDecompositionLearner(cfg, info.__dict__)
    policy = DecentralizedAgentNetwork(teacher.q_net.agent, StudentModule(teacher.q_net.input_dim, 64, 64))
    train_env.reset(seed=7)
    a = run_episodes(ScrambledStateEnv(train_env, 1), policy, info.n_actions, 0.0)
    train_env.reset(seed=7)
    b = run_episodes(ScrambledStateEnv(train_env, 2), policy, info.n_actions, 0.0)
    assert not torch.equal(a.state, b.state)
    assert torch.equal(a.actions, b.actions)
    # while the centralized GIP teacher does read it
    train_env.reset(seed=7)
    c = run_episodes(ScrambledStateEnv(train_env, 1), teacher, info.n_actions, 0.0)
    assert teacher.uses_state and c.actions.shape[0] == 4


def test_the_student_gets_execution_noise_when_its_teacher_acts_on_a_sampled_z():
    from ptde.envs.build import probe_env_info
    from ptde.experiment.stage2 import execution_noise
    from ptde.learners.mappo import MAPPOLearner

    qmix_cfg = compose_cfg("algo=qmix_gip", "env=smac/3m")
    info = probe_env_info(qmix_cfg["env"]).__dict__
    qmix = ValueDecompositionLearner(qmix_cfg, info)
    mappo = MAPPOLearner(compose_cfg("algo=mappo_gip", "env=smac/3m"), info)
    assert qmix_cfg["variant"]["distill"]["student_noise"] is None  # the default: as the teacher acts
    assert qmix.acts_on_sampled_z and not mappo.acts_on_sampled_z
    assert execution_noise(None, qmix, 0.01) == 0.01 and execution_noise(None, mappo, 0.01) == 0.0
    assert execution_noise(False, qmix, 0.01) == 0.0 and execution_noise(True, mappo, 0.01) == 0.01
    # the noise is what the saved student acts with
    policy = qmix.decentralized_policy(StudentModule(qmix.q_net.input_dim, 64, 64), execution_noise(None, qmix, 0.01))
    x = torch.randn(2, 1, 3, qmix.q_net.input_dim)
    q1, _ = policy.act(x, None)
    q2, _ = policy.act(x, None)
    assert policy.noise_var == 0.01 and not torch.equal(q1, q2)


def test_distillation_cuts_validation_mse_tenfold_on_a_real_teacher_dataset(tmp_path):
    torch.manual_seed(0)
    cfg = compose_cfg("algo=qmix_gip", "env=smac/3m", "trainer.test_episodes=8")
    train_env, _, info = build_envs(cfg, seed=0)
    teacher = ValueDecompositionLearner(cfg, info.__dict__)
    data = collect_teacher_dataset(teacher, train_env, episodes=48, epsilon=0.05, seed=0)
    assert data.inputs.shape[1] == teacher.q_net.input_dim and data.mu.shape[1] == 64
    assert len(data) > 48 * 3  # one row per real agent step
    data.save(tmp_path / "teacher.pt")
    data = TeacherDataset.load(tmp_path / "teacher.pt")
    dcfg = dict(cfg["variant"]["distill"], max_steps=1500, val_interval=100, lr=1e-3, batch_size=256, patience=5)
    student, stats = distill(data, 64, dcfg, seed=0, progress=False, run_logger=RunLogger([], tmp_path))
    assert stats["distill/val_mse"] * 10 <= stats["distill/initial_val_mse"], stats
    assert (tmp_path / "distill" / "metrics.csv").exists()


def test_teacher_data_is_the_same_whatever_the_global_rng_held_before():
    cfg = compose_cfg("algo=qmix_gip", "env=smac/3m", "env.batch_size_run=4")
    teacher = None
    datasets = []
    for rng_before in (1, 2):
        train_env, _, info = build_envs(cfg, seed=0)
        torch.manual_seed(0)
        teacher = teacher or ValueDecompositionLearner(cfg, info.__dict__)
        torch.manual_seed(rng_before)  # what stage 1 (or a resumed run) left in the global RNG
        datasets.append(collect_teacher_dataset(teacher, train_env, episodes=4, epsilon=0.05, seed=7))
        after = torch.rand(1)
        torch.manual_seed(rng_before)
        assert torch.equal(after, torch.rand(1))  # the caller's global RNG is left as it was
    assert len(datasets[0]) > 4 * 3
    assert torch.equal(datasets[0].inputs, datasets[1].inputs) and torch.equal(datasets[0].mu, datasets[1].mu)


def test_teacher_without_global_information_is_refused():
    cfg = compose_cfg("algo=qmix", "env=smac/3m", "env.batch_size_run=2")
    train_env, _, info = build_envs(cfg, seed=0)
    with pytest.raises(ValueError, match="variant none"):
        collect_teacher_dataset(ValueDecompositionLearner(cfg, info.__dict__), train_env, 2, 0.05)


def test_prr_arithmetic():
    assert performance_retention_ratio(0.69, 0.806) == pytest.approx(0.856, abs=1e-3)
    assert performance_retention_ratio(0.5, 0.5) == 1.0
    assert math.isnan(performance_retention_ratio(0.3, 0.0))


def test_tiny_stage_all_run_writes_every_eval_key(tmp_path, tiny_overrides):
    run_dir = tmp_path / "gip"
    args = [
        *tiny_overrides,
        "algo=qmix_gip",
        "variant.distill.teacher_episodes=24",
        "variant.distill.max_steps=200",
        "variant.distill.val_interval=50",
        f"hydra.run.dir={run_dir}",
    ]
    proc = run_module("ptde.train", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads((run_dir / "results.json").read_text())
    assert r["status"] == "finished" and r["algo"] == "qmix_gip" and r["algo_kd"] == "qmix_kd"
    for key in (
        "test/win_rate",
        "eval/centralized_win_rate",
        "eval/decentralized_win_rate",
        "eval/prr",
        "distill/train_mse",
        "distill/val_mse",
    ):
        assert key in r, key
    c, d = r["eval/centralized_win_rate"], r["eval/decentralized_win_rate"]
    if c > 0:
        assert r["eval/prr"] == pytest.approx(d / c) and "eval/prr_undefined" not in r
    else:  # undefined: null in strict JSON, with the reason beside it
        assert r["eval/prr"] is None and r["eval/prr_undefined"].startswith("teacher scored 0")
    assert (run_dir / "teacher_dataset.pt").exists() and (run_dir / "checkpoints" / "student.pt").exists()

    # the parts on their own: decentralized evaluation of this run, and refusals
    ev = run_module("ptde.evaluate", f"checkpoint={run_dir}", "mode=decentralized", "episodes=4", "batch_size=4")
    assert ev.returncode == 0, ev.stderr[-2000:]
    assert json.loads((run_dir / "eval_decentralized.json").read_text())["mode"] == "decentralized"
    for path in run_dir.rglob("*.json"):  # every JSON file of the run is strict (no NaN or Infinity)
        json.loads(path.read_text(), parse_constant=lambda name: pytest.fail(f"{name} is not JSON"))
    # the teacher on z = μ instead of its sampled z: deterministic given the seed, with the win rate's SE
    from ptde.evaluate import evaluate

    on_mu = [evaluate(run_dir, episodes=4, mode="centralized", seed=7, batch_size=4, z="mean") for _ in range(2)]
    assert on_mu[0]["z"] == "mean" and on_mu[0]["eval/return"] == on_mu[1]["eval/return"]
    p = on_mu[0]["eval/win_rate"]
    assert on_mu[0]["eval/win_rate_se"] == pytest.approx(math.sqrt(p * (1 - p) / 4))
    assert evaluate(run_dir, episodes=4, mode="centralized", seed=7, batch_size=4)["z"] == "sampled"
    wrong_env = run_module(
        "ptde.train", "algo=qmix_gip", "env=smac/5m_vs_6m", "stage=2", f"teacher={run_dir}",
        f"hydra.run.dir={tmp_path / 'bad'}", "logger=csv",
    )  # fmt: skip
    assert wrong_env.returncode == 2 and "env: teacher has '3m', this run asks for '5m_vs_6m'" in wrong_env.stderr
    assert not (tmp_path / "bad").exists()


def test_stage2_against_a_plain_run_fails_clearly(tmp_path, tiny_overrides):
    run_dir = tmp_path / "plain"
    proc = run_module("ptde.train", *tiny_overrides, "trainer.max_env_steps=500", f"hydra.run.dir={run_dir}")
    assert proc.returncode == 0, proc.stderr[-2000:]
    bad = run_module("ptde.distill", f"teacher={run_dir}", f"hydra.run.dir={tmp_path / 'd'}")
    assert bad.returncode == 2
    assert "variant=none" in bad.stderr and "variant=gip" in bad.stderr
    ev = run_module("ptde.evaluate", f"checkpoint={run_dir}", "mode=decentralized", "episodes=2")
    assert ev.returncode == 2 and "no distilled student" in ev.stderr
    ev = run_module("ptde.evaluate", f"checkpoint={run_dir}", "z=mean", "episodes=2")
    assert ev.returncode == 2 and "z=mean needs a GIU or GIP teacher" in ev.stderr
