"""SMAX's programs kept on disk as exported StableHLO (ptde/envs/jax_programs.py): a process that
loads them plays the same battles as one that traces them, and anything unexpected falls back."""

import logging

import jax
import jax.numpy as jnp
import pytest
import torch

from ptde.envs.jax_programs import ExportedProgram
from ptde.envs.smac import SMACEnvConfig
from ptde.envs.smax import SMAXEnv

CFG = SMACEnvConfig(name="3m", episode_limit=60)


def play(env: SMAXEnv, steps: int = 40) -> list[torch.Tensor]:
    """Obs, state, reward and done flags of `steps` steps of seeded random play."""
    g = torch.Generator().manual_seed(0)
    s = env.reset(seed=5)
    out = []
    for _ in range(steps):
        B, n, A = s.avail_actions.shape
        a = torch.multinomial(s.avail_actions.float().view(-1, A), 1, generator=g).view(B, n)
        s = env.step(a)
        out += [s.obs.clone(), s.state.clone(), s.reward.clone(), s.terminated.clone(), s.truncated.clone()]
    return out


def programs(env: SMAXEnv) -> list[ExportedProgram]:
    return [env._reset_fn, env._step_fn, env._auto_reset_fn, env._auto_step_fn]


@pytest.mark.parametrize("auto_reset", [False, True])
def test_loaded_programs_play_as_the_jitted_functions(tmp_path, monkeypatch, auto_reset) -> None:
    monkeypatch.setenv("PTDE_JAX_PROGRAMS", str(tmp_path))
    exported = play(SMAXEnv(CFG, batch_size=3, seed=0, auto_reset=auto_reset))  # exports, writes the files
    names = sorted(p.name.rsplit("-", 1)[0] for p in tmp_path.glob("*.bin"))
    assert names == (["smax-auto_reset", "smax-auto_step"] if auto_reset else ["smax-reset", "smax-step"])
    loaded_env = SMAXEnv(CFG, batch_size=3, seed=0, auto_reset=auto_reset)
    loaded = play(loaded_env)  # loads them
    used = [p for p in programs(loaded_env) if p._call is not None]
    assert len(used) == 2 and all(p.jitted._cache_size() == 0 for p in used)  # nothing traced
    jitted_env = SMAXEnv(CFG, batch_size=3, seed=0, auto_reset=auto_reset)
    for p in programs(jitted_env):
        p._use_jitted = True  # the plain jit path, as before programs were kept
    jitted = play(jitted_env)
    assert len(exported) == len(loaded) == len(jitted) == 200
    for a, b, c in zip(exported, loaded, jitted, strict=True):
        assert torch.equal(a, c) and torch.equal(b, c)


def test_batch_size_and_settings_name_their_own_file(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PTDE_JAX_PROGRAMS", str(tmp_path))
    for cfg, B in ((CFG, 2), (CFG, 3), (SMACEnvConfig(name="3m", episode_limit=61), 2)):
        SMAXEnv(cfg, batch_size=B, seed=0).reset()
    assert len(list(tmp_path.glob("smax-reset-*.bin"))) == 3


def test_a_broken_file_is_exported_again(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("PTDE_JAX_PROGRAMS", str(tmp_path))
    reference = SMAXEnv(CFG, batch_size=2, seed=0).reset(seed=1).obs
    (path,) = tmp_path.glob("smax-reset-*.bin")
    path.write_bytes(b"not a program")
    env = SMAXEnv(CFG, batch_size=2, seed=0)
    assert torch.equal(env.reset(seed=1).obs, reference)
    assert env._reset_fn._call is not None and path.stat().st_size > 1000  # exported and written again


def test_an_unwritable_cache_still_runs(tmp_path, monkeypatch) -> None:
    (tmp_path / "file").write_text("a file where the cache folder would go")
    monkeypatch.setenv("PTDE_JAX_PROGRAMS", str(tmp_path / "file" / "cache"))
    env = SMAXEnv(CFG, batch_size=2, seed=0)
    assert env.reset(seed=1).obs.shape == (2, 3, env.obs_dim)
    assert env._reset_fn._call is not None  # exported, just not kept


def test_other_arguments_fall_back_to_the_jitted_function(tmp_path, monkeypatch, caplog) -> None:
    monkeypatch.setenv("PTDE_JAX_PROGRAMS", str(tmp_path))
    program = ExportedProgram(lambda x: {"twice": x * 2}, "double-test")
    assert float(program(jnp.float32(3.0))["twice"]) == 6.0
    with caplog.at_level(logging.DEBUG, logger="ptde.envs.jax_programs"):
        assert program(jnp.ones(4, jnp.int32))["twice"].tolist() == [2, 2, 2, 2]  # another shape and dtype
    assert program._use_jitted and "other arguments" in caplog.text
    assert isinstance(program(jax.numpy.zeros(2))["twice"], jax.Array)
