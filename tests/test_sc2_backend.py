"""The real-StarCraft II adapter against a stand-in of SMAC's documented API, and the start-up
error for users without SMAC."""

import functools

import pytest
import torch
from conftest import run_module
from sc2_standin import StandInStarCraft2Env

from ptde.envs.sc2 import SC2Env
from ptde.envs.smac import SMACEnvConfig


def make(batch_size: int, **kw) -> SC2Env:
    cfg = SMACEnvConfig(name="3m", episode_limit=6, backend="sc2")
    wins = kw.pop("wins", [None] * batch_size)
    factories = iter(functools.partial(StandInStarCraft2Env, win_at=w, **kw) for w in wins)
    return SC2Env(cfg, batch_size, seed=0, env_factory=lambda **a: next(factories)(**a))


def test_shapes_and_env_info_come_from_smac():
    env = make(2)
    info = env.get_env_info()
    assert (info.n_agents, info.obs_dim, info.state_dim, info.n_actions, info.episode_limit) == (3, 5, 7, 9, 6)
    s = env.reset()
    assert s.obs.shape == (2, 3, 5) and s.state.shape == (2, 7) and s.avail_actions.shape == (2, 3, 9)
    assert s.avail_actions.dtype == torch.bool and s.avail_actions.all()


def test_win_termination_and_time_limit_truncation():
    env = make(2, wins=[2, None])
    env.reset()
    a = torch.zeros(2, 3, dtype=torch.long)
    s1 = env.step(a)
    assert not s1.done.any() and s1.reward.tolist() == [1.0, 1.0]
    s2 = env.step(a)  # env 0 wins at t=2
    assert s2.won.tolist() == [True, False] and s2.terminated.tolist() == [True, False]
    assert s2.reward[0].item() == 20.0
    for _ in range(3):
        s = env.step(a)
        assert s.reward[0].item() == 0.0  # frozen after its end
        assert torch.equal(s.obs[0], s2.obs[0])
    s6 = env.step(a)  # env 1 reaches SMAC's episode limit: a time-out, not a termination
    assert s6.truncated.tolist() == [False, True] and not s6.terminated.any() and not s6.won.any()
    env.close()
    assert all(e.closed for e in env.envs)


def test_auto_reset_restarts_a_finished_game_within_the_step():
    cfg = SMACEnvConfig(name="3m", episode_limit=6, backend="sc2")
    factories = iter(functools.partial(StandInStarCraft2Env, win_at=w) for w in (2, None))
    env = SC2Env(cfg, 2, seed=0, env_factory=lambda **a: next(factories)(**a), auto_reset=True)
    start = env.reset()
    a = torch.zeros(2, 3, dtype=torch.long)
    env.step(a)
    s2 = env.step(a)  # env 0 wins at t=2 and starts its next game at once
    assert s2.terminated.tolist() == [True, False] and s2.won.tolist() == [True, False]
    assert torch.equal(s2.obs[0], start.obs[0]) and s2.final_obs[0, 0, 0].item() == 2.0  # fresh; where it ended
    assert torch.equal(s2.final_obs[1], s2.obs[1])
    s3 = env.step(a)  # not frozen: env 0's new game moves on
    assert s3.reward.tolist() == [1.0, 1.0] and s3.obs[0, 0, 0].item() == 1.0


def test_sc2_backend_without_smac_fails_at_start_up(tmp_path):
    pytest.importorskip("jaxmarl")
    try:
        import smac  # noqa: F401

        pytest.skip("SMAC is installed here")
    except ImportError:
        pass
    proc = run_module("ptde.train", "env.backend=sc2", "logger=csv", f"hydra.run.dir={tmp_path / 'r'}")
    assert proc.returncode == 2
    assert "oxwhirl/smac" in proc.stderr and "env.backend=smax" in proc.stderr and "needs neither" in proc.stderr
    assert not (tmp_path / "r").exists()


def make_faulty(batch_size: int, faults: list[dict], timeout: float = 0.5) -> SC2Env:
    """Games whose first instance crashes or hangs as given; restarted games behave."""
    cfg = SMACEnvConfig(name="3m", episode_limit=6, backend="sc2", step_timeout_s=timeout)
    made = []

    def factory(**kw):
        fault = faults[len(made)] if len(made) < len(faults) else {}
        made.append(StandInStarCraft2Env(**kw, **fault))
        return made[-1]

    return SC2Env(cfg, batch_size, seed=0, env_factory=factory)


def test_a_crashed_game_is_restarted_and_its_episode_dropped():
    env = make_faulty(2, [{}, {"crash_at": 2}])
    env.reset()
    a = torch.zeros(2, 3, dtype=torch.long)
    assert not env.step(a).info["dropped"].any()
    s = env.step(a)  # game 1 dies on its 2nd step
    assert env.restarts == 1 and s.info["dropped"].tolist() == [False, True]
    assert s.truncated.tolist() == [False, True] and s.reward[1] == 0.0
    assert env.envs[1].crash_at is None and not env.envs[1].closed  # a fresh game took its place
    s = env.step(a)
    assert s.reward.tolist() == [1.0, 0.0]  # game 0 goes on; the dropped episode stays frozen
    s = env.reset()
    assert not s.info["dropped"].any()


def test_a_hung_game_is_restarted_after_the_step_timeout():
    env = make_faulty(2, [{"hang_at": 1}, {}], timeout=0.5)
    env.reset()
    s = env.step(torch.zeros(2, 3, dtype=torch.long))
    assert env.restarts == 1 and s.info["dropped"].tolist() == [True, False] and s.truncated[0]


def test_dropped_episodes_are_counted_and_neither_learned_from_nor_tested(tmp_path):
    from ptde.rollout import run_episodes, test_policy

    class RandomPolicy:
        uses_state = False

        def act(self, inputs, hidden):
            return torch.zeros(*inputs.shape[:3], 9), hidden

    env = make_faulty(4, [{}, {"crash_at": 3}, {}, {}])
    batch = run_episodes(env, RandomPolicy(), 9, epsilon=1.0, generator=torch.Generator().manual_seed(0))
    assert batch.dropped.tolist() == [False, True, False, False]
    kept = batch.subset(~batch.dropped)
    assert kept.batch_size == 3 and kept.episode_return.tolist() == [6.0, 6.0, 6.0]
    assert kept.obs.shape[1] == kept.actions.shape[1] + 1 == 7
    env = make_faulty(4, [{}, {}, {"crash_at": 2}, {}])
    out = test_policy(env, RandomPolicy(), 9, episodes=4)
    assert out["test/episodes"] == 3.0 and out["test/dropped_episodes"] == 1.0 and out["test/return"] == 6.0
