"""The SMAX adapter against SMAX's own state: shapes, masks, won flag, time-outs, freezing."""

import logging

import pytest
import torch

from ptde.envs.smac import SMACEnvConfig
from ptde.envs.smax import SMAXEnv


@pytest.fixture(scope="module")
def env3m():
    return SMAXEnv(SMACEnvConfig(name="3m", episode_limit=60), batch_size=4, seed=0)


def random_actions(avail: torch.Tensor, g: torch.Generator) -> torch.Tensor:
    B, n, A = avail.shape
    return torch.multinomial(avail.float().view(-1, A), 1, generator=g).view(B, n)


def test_shapes_and_dims(env3m):
    info = env3m.get_env_info()
    assert (info.n_agents, info.n_actions, info.episode_limit) == (3, 8, 60)
    s = env3m.reset(seed=1)
    assert s.obs.shape == (4, 3, info.obs_dim) and s.obs.dtype == torch.float32
    assert s.state.shape == (4, info.state_dim)
    assert s.avail_actions.shape == (4, 3, 8) and s.avail_actions.dtype == torch.bool
    # 6 units x (health, x, y, cooldown) (one unit type: no type bits) + 3 allies x 8 last actions
    assert info.state_dim == 6 * 4 + 3 * 8
    assert s.state.abs().max() <= 1.0 + 1e-6


def test_won_flag_and_masks_match_smax_unit_alive(env3m):
    """Play random episodes; at every step our flags must agree with SMAX's unit_alive."""
    g = torch.Generator().manual_seed(0)
    s = env3m.reset(seed=3)
    done = torch.zeros(4, dtype=torch.bool)
    for _ in range(60):
        a = random_actions(s.avail_actions, g)
        s = env3m.step(a)
        alive = env3m.unit_alive  # [B, 6]: 3 allies then 3 enemies
        allies, enemies = alive[:, :3].any(1), alive[:, 3:].any(1)
        newly = ~done
        expect_term = ~allies | ~enemies
        assert torch.equal(s.terminated[newly], expect_term[newly])
        assert torch.equal(s.won[newly], (~enemies & allies)[newly])
        # a dead ally may only stop (action 4); attacks need a living enemy
        dead = ~alive[:, :3]
        assert not s.avail_actions[dead][:, [0, 1, 2, 3, 5, 6, 7]].any()
        assert s.avail_actions[dead][:, 4].all()
        no_enemy = ~alive[:, 3:]  # [B, 3] enemy j dead -> attack j+5 unavailable for all allies
        assert not (s.avail_actions[:, :, 5:] & no_enemy[:, None, :]).any()
        done |= s.done
        if done.all():
            break
    assert done.all()


def test_time_out_is_truncation_not_termination():
    env = SMAXEnv(SMACEnvConfig(name="3m", episode_limit=5), batch_size=2, seed=0)
    s = env.reset()
    stop = torch.full((2, 3), 4)
    for t in range(5):
        s = env.step(stop)
        if t < 4:
            assert not s.done.any()
    assert s.truncated.all() and not s.terminated.any() and not s.won.any()
    # finished envs are frozen: further steps give zero reward and no new flags
    frozen = env.step(stop)
    assert (frozen.reward == 0).all() and not frozen.done.any()
    assert torch.equal(frozen.obs, s.obs)


def test_agents_that_stand_still_lose_and_won_is_never_set():
    """Allies that only stop are shot down by the heuristic enemy: terminated, not won."""
    env = SMAXEnv(SMACEnvConfig(name="3m", episode_limit=200), batch_size=2, seed=0)
    env.reset()
    stop = torch.full((2, 3), 4)
    ended = torch.zeros(2, dtype=torch.bool)
    for _ in range(200):
        s = env.step(stop)
        assert not s.won.any()
        ended |= s.terminated
        if ended.all():
            break
    assert ended.all()
    assert not env.unit_alive[:, :3].any()


def test_step_compiles_once_across_resets(caplog):
    """One compile of the reset and one of the step across seeded and unseeded resets: SMAX's weakly
    typed fields, or an eagerly made PRNG key (uncommitted, where the key the step returns is
    committed), would each compile them again."""
    import jax

    env = SMAXEnv(SMACEnvConfig(name="3m", episode_limit=60), batch_size=5, seed=0)
    with jax.log_compiles(True), caplog.at_level(logging.WARNING):
        for seed in (1, None, 2, None):
            env.reset(seed=seed)
            env.step(torch.full((5, 3), 4))
    compiles = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Compiling jit(call)")]
    assert len(compiles) == 2, compiles  # the reset and the step, once each
    for program in (env._reset_fn, env._step_fn):
        assert not program._use_jitted and program.jitted._cache_size() == 0  # the exported program ran


@pytest.mark.parametrize("name,n_agents,n_enemies", [("3s_vs_8z", 3, 8), ("3s5z_vs_3s7z", 8, 10)])
def test_custom_maps_are_registered(name, n_agents, n_enemies):
    env = SMAXEnv(SMACEnvConfig(name=name, episode_limit=10), batch_size=1)
    info = env.get_env_info()
    assert info.n_agents == n_agents and info.n_actions == 5 + n_enemies


def test_unknown_map_names_valid_maps():
    with pytest.raises(ValueError, match="valid maps:.*3m"):
        SMAXEnv(SMACEnvConfig(name="3s_vs_9z", episode_limit=10), batch_size=1)


def test_an_unavailable_action_is_reported_with_the_map_env_and_agent(env3m):
    step = env3m.reset(seed=0)
    actions = torch.zeros(env3m.batch_size, 3, dtype=torch.long)  # no-op: unavailable to living agents
    actions[:] = step.avail_actions.float().argmax(-1)
    good = actions.clone()
    unavailable = (~step.avail_actions[2, 1]).nonzero()[0, 0]
    actions[2, 1] = unavailable
    with pytest.raises(ValueError, match=rf"SMAX map 3m: env 2 of {env3m.batch_size}, agent 1 chose action"):
        env3m.step(actions)
    env3m.step(good)  # nothing was stepped by the refused call


def test_the_rng_state_round_trips_so_a_resumed_env_replays_the_same_episodes(env3m):
    env3m.reset(seed=5)
    key = env3m.rng_state()
    first = env3m.reset().obs
    env3m.set_rng_state(key)
    assert torch.equal(env3m.reset().obs, first)


def test_smax_loads_without_jaxmarls_other_envs_and_jaxmarl_still_works_after():
    """A run imports SMAX alone (jaxmarl's __init__s import every env it ships: seconds per run);
    a later `import jaxmarl` must still give the whole package and the same SMAX classes."""
    import subprocess
    import sys

    code = (
        "import sys; import ptde.envs.smax as m\n"
        "others = sorted(k for k in sys.modules if k.startswith(('jaxmarl.environments.storm', "
        "'jaxmarl.environments.overcooked', 'jaxmarl.environments.mpe', 'matplotlib')))\n"
        "print('others', others)\n"
        "import jaxmarl; from jaxmarl.environments import SMAX; from jaxmarl.environments.smax import SMAX as S2\n"
        "print('same', SMAX is S2 is m._smax.SMAX, jaxmarl.environments.smax is m._smax)\n"
        "print('make', type(jaxmarl.make('MPE_simple_spread_v3')).__name__)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "others []" in proc.stdout
    assert "same True True" in proc.stdout
    assert "make SimpleSpreadMPE" in proc.stdout
