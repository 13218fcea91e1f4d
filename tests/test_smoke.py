"""`trainer=smoke`, the one smoke switch: it shrinks both stages, and the `budget=smoke` of campaigns and
sweeps is the same switch, so a user's try and a smoke campaign cannot drift apart again."""

from pathlib import Path

import pytest
from conftest import CONF, compose_cfg

from ptde.data.datamodule import replay_batch_size

# what makes a run small: stage 1's env steps, stage 2's teacher data and distillation steps
SMALL = {
    "max_env_steps": ("trainer", "max_env_steps"),
    "teacher_episodes": ("variant", "distill", "teacher_episodes"),
    "distill_steps": ("variant", "distill", "max_steps"),
    "val_interval": ("variant", "distill", "val_interval"),
}


def budget(cfg: dict) -> dict[str, int]:
    out = {}
    for name, path in SMALL.items():
        value = cfg
        for key in path:
            value = value[key]
        out[name] = value
    return out


def compose_entry(config_name: str, *overrides: str) -> dict:
    from hydra import compose, initialize_config_dir

    from ptde.config import register_entry_configs
    from ptde.config.resolved import to_container

    register_entry_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        return to_container(compose(config_name, overrides=list(overrides)))


def test_the_smoke_switch_shrinks_stage_2_too():
    # the card's command; algo=qmix_gip chooses variant=gip, whose defaults the smoke values must beat
    smoke_cfg = compose_cfg("algo=qmix_gip", "env=grf/counterattack_hard", "trainer=smoke")
    smoke = budget(smoke_cfg)
    full = budget(compose_cfg("algo=qmix_gip", "env=grf/counterattack_hard"))
    assert smoke["max_env_steps"] <= 2000 and smoke["teacher_episodes"] <= 8 and smoke["distill_steps"] <= 200
    assert all(smoke[k] < full[k] for k in SMALL), (smoke, full)
    # the variant named on its own, or listed after the switch, changes nothing
    assert budget(compose_cfg("trainer=smoke", "algo=qmix", "variant=gip")) == smoke
    # and the command line still wins over the switch
    tuned = compose_cfg("algo=qmix_gip", "trainer=smoke", "variant.distill.max_steps=1000", "trainer.max_env_steps=7")
    assert budget(tuned) == {**smoke, "distill_steps": 1000, "max_env_steps": 7}
    # an off-policy learner's first update waits for 8 episodes, not 128 (the football warm-up)
    assert replay_batch_size(smoke_cfg["algo"], smoke_cfg["trainer"]) == 8
    full_cfg = compose_cfg("algo=qmix_gip", "env=grf/counterattack_hard")
    assert replay_batch_size(full_cfg["algo"], full_cfg["trainer"]) == full_cfg["algo"]["batch_size"] == 128


def test_campaign_and_sweep_smoke_budgets_are_the_smoke_switch(tmp_path: Path):
    from ptde.sweep import multirun_commands
    from ptde.tools.campaign import campaign_runs, train_command

    user = budget(compose_cfg("algo=qmix_gip", "env=grf/counterattack_hard", "trainer=smoke"))
    bench = compose_entry("benchmark", "campaign=grf", "budget=smoke", "only=[qmix_gip_counterattack_hard_seed0]")
    (run,) = campaign_runs(bench)
    cmd = train_command(bench, run, tmp_path / run.name)
    campaign = budget(compose_cfg(*cmd[cmd.index("ptde.train") + 1 : -1]))  # all but hydra.run.dir
    assert campaign == user

    sweep = compose_entry("sweep", "grid=paper_grf", "budget=smoke", "envs=[grf/counterattack_hard]", "algos=[qmix_gip]", "seeds=[0]")  # fmt: skip
    (cmd,) = multirun_commands(sweep, tmp_path / "sweep")
    start = cmd.index("ptde.train") + 1
    assert cmd[start] == "-m"
    assert budget(compose_cfg(*cmd[start + 1 : -1])) == user  # all but hydra.sweep.dir


@pytest.mark.parametrize("algo", ["qmix", "mappo_gip", "vdn_giu"])
def test_every_algo_gets_the_same_smoke_budget(algo: str):
    assert budget(compose_cfg(f"algo={algo}", "trainer=smoke")) == budget(compose_cfg("algo=qmix_gip", "trainer=smoke"))
