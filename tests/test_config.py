"""Config composition of every algo x env pair, and clear start-up errors for bad choices."""

import itertools
from pathlib import Path

import pytest
from conftest import CONF, compose_cfg, run_module

from ptde.errors import ConfigError

ALGOS = sorted(p.stem for p in (CONF / "algo").glob("*.yaml"))
SMAC_MAPS = sorted(p.stem for p in (CONF / "env" / "smac").glob("*.yaml"))
ENVS = sorted(str(p.relative_to(CONF / "env").with_suffix("")) for p in (CONF / "env").rglob("*.yaml"))
SMAC_LIMITS = {
    "3m": 60, "2s3z": 120, "3s_vs_5z": 250, "5m_vs_6m": 70,
    "3s5z_vs_3s6z": 170, "6h_vs_8z": 150, "3s_vs_8z": 250, "3s5z_vs_3s7z": 170,
}  # fmt: skip


def test_the_issue_s_groups_exist():
    assert {"qmix", "vdn", "qmix_giu", "qmix_gip", "vdn_giu", "vdn_gip"} <= set(ALGOS)
    assert {"qplex", "mappo", "mappo_giu", "mappo_gip"} <= set(ALGOS)
    assert set(SMAC_LIMITS) <= set(SMAC_MAPS)


@pytest.mark.parametrize("algo,env", list(itertools.product(ALGOS, ENVS)))
def test_every_algo_env_pair_composes(algo, env):
    cfg = compose_cfg(f"algo={algo}", f"env={env}")
    assert cfg["algo"]["name"] == algo.split("_")[0]
    assert cfg["variant"]["name"] == (algo.split("_")[1] if "_" in algo else "none")
    family, name = env.split("/")
    assert cfg["env"]["family"] == family and cfg["env"]["name"] == name
    if family == "smac":
        assert cfg["env"]["episode_limit"] == SMAC_LIMITS[name]
    elif family == "ltr":
        assert cfg["env"]["episode_limit"] == 1  # one query, one joint action
    a = cfg["algo"]
    if a["learner"] == "mappo":
        # on-policy's rollout: 400 steps of each parallel env (8 off the ranking family)
        assert a["rollout_steps"] == 400 and a["rollout_steps"] % a["data_chunk_length"] == 0
        assert cfg["env"]["batch_size_run"] == (32 if family == "ltr" else 8)
        return
    # the paper's Table 7 values are the defaults of the value-decomposition learners
    assert (a["lr"], a["td_lambda"], a["batch_size"], a["buffer_size"]) == (1e-3, 0.6, 128, 5000)
    assert (a["target_update_interval"], a["epsilon_anneal_time"], a["epsilon_finish"]) == (200, 100_000, 0.05)
    assert cfg["env"]["batch_size_run"] == (32 if family == "ltr" else 8) and cfg["trainer"]["test_episodes"] == 32


def test_all_benchmark_families_are_configured():
    assert {e.split("/")[0] for e in ENVS} == {"smac", "grf", "ltr"}
    assert len([e for e in ENVS if e.startswith("grf/")]) == 5


def test_mixers_follow_the_algo():
    assert compose_cfg("algo=qmix")["algo"]["mixer"] == "qmix"
    assert compose_cfg("algo=vdn")["algo"]["mixer"] == "vdn"
    assert compose_cfg("algo=qplex")["algo"]["mixer"] == "qplex"


def _no_run_folder(tmp_path: Path) -> bool:
    return not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    "override,expect",
    [
        ("algo=qmx", ["Available options in 'algo'", "qmix", "vdn"]),
        ("env=smac/3s_vs_9z", ["Valid choices of 'env'", "smac/3s_vs_5z", "smac/5m_vs_6m"]),
        ("trainer.lr=abc", ["'trainer' has no key 'lr'", "max_env_steps", "test_interval"]),
        ("trainer.max_env_steps=abc", ["could not be converted to Integer", "trainer.max_env_steps"]),
        ("algo.mixer=qmx", ["Invalid value 'qmx'", "vdn, qmix"]),
        ("stage=3", ["stage=3", "valid choices: 1, 2, all"]),
        # data files and checkpoint paths: the bad path named, nothing written
        ("env=ltr/mslr env.data_dir=/no/mslr", ["MSLR file not found: /no/mslr"]),
        ("stage=2 algo=qmix_gip teacher=/no/run", ["no checkpoint at '/no/run'"]),
        ("resume=/no/run", ["resume='/no/run': no run folder or .ckpt file there"]),
    ],
)
def test_bad_choice_fails_at_start_up_naming_valid_choices(tmp_path, override, expect):
    args = override.split()
    proc = run_module("ptde.train", *args, f"hydra.run.dir={tmp_path / 'run'}", "logger=csv", timeout=300)
    assert proc.returncode != 0
    for text in expect:
        assert text in proc.stderr + proc.stdout, (text, proc.stderr[-2000:])
    assert _no_run_folder(tmp_path)


def test_algo_gip_equals_algo_plus_variant_gip():
    assert compose_cfg("algo=qmix_gip") == compose_cfg("algo=qmix", "variant=gip")
    assert compose_cfg("algo=vdn_giu") == compose_cfg("algo=vdn", "variant=giu")
    assert compose_cfg("algo=qmix_gip", "variant=none") == compose_cfg("algo=qmix")


def test_each_env_family_checks_its_own_config_naming_the_valid_choices(tmp_path):
    from ptde.envs import check_env_config

    smax = compose_cfg("env=smac/3m")["env"]
    check_env_config(smax)
    check_env_config(compose_cfg("env=grf/counterattack_hard")["env"])
    check_env_config(compose_cfg("env=ltr/synthetic")["env"])
    cases = [
        (dict(smax, name="9m"), ["env.name='9m' is not a SMAX map; valid maps:", "5m_vs_6m"]),
        (dict(smax, family="go"), ["env.family='go' is not valid; valid choices:", "grf", "ltr", "smac/smax"]),
        (dict(compose_cfg("env=grf/counterattack_hard")["env"], name="nope"), ["env.name='nope'"]),
        (compose_cfg("env=ltr/mslr", f"env.data_dir={tmp_path / 'none'}")["env"], ["MSLR file not found"]),
    ]
    for env, expect in cases:
        with pytest.raises(ConfigError) as err:
            check_env_config(env)
        assert all(text in str(err.value) for text in expect), (expect, str(err.value))
