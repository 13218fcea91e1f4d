"""`make paper-*` / `ptde.sweep`: a paper grid, shrunk to a smoke budget on one map, trains for real,
lands in one sweep folder and is reported; episodes of its checkpoints render as GIFs."""

import json
import subprocess
from pathlib import Path

import pandas as pd
import pytest
from conftest import REPO, compose_cfg, run_module
from PIL import Image

from ptde.cli import group_options

GRIDS = ["paper_smac", "paper_grf", "paper_ltr", "paper_universality", "paper_two_stage"]

SMOKE = compose_cfg("trainer=smoke")
SMOKE_STEPS = SMOKE["trainer"]["max_env_steps"]
SMOKE_DISTILL_STEPS = SMOKE["variant"]["distill"]["max_steps"]


@pytest.fixture(scope="module")
def smoke_sweep(tmp_path_factory) -> Path:
    """paper_smac with the smoke budget, restricted to 2 algorithms x 1 map x 1 seed."""
    out = tmp_path_factory.mktemp("sweep") / "paper_smac"
    proc = run_module(
        "ptde.sweep", "grid=paper_smac", "budget=smoke", "envs=[smac/3m]", "algos=[qmix,qmix_gip]", "seeds=[0]",
        'extra=["logger=csv","trainer.torch_threads=1","trainer.progress_bar=false"]', f"out={out}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    return out


def test_smoke_sweep_runs_the_grid_and_reports_it(smoke_sweep: Path):
    runs = sorted(p.name for p in smoke_sweep.iterdir() if (p / "results.json").exists())
    assert runs == ["qmix_gip_3m_seed0", "qmix_none_3m_seed0"]
    for name in runs:
        results = json.loads((smoke_sweep / name / "results.json").read_text())
        assert results["status"] == "finished" and results["env_steps"] >= SMOKE_STEPS  # conf/trainer/smoke.yaml
        assert results["success_metric"] == "win_rate"
    gip = json.loads((smoke_sweep / "qmix_gip_3m_seed0" / "results.json").read_text())
    assert gip["distill/steps"] <= SMOKE_DISTILL_STEPS and "eval/prr" in gip  # the smoke stage 2 ran
    report = smoke_sweep / "report"
    table = pd.read_csv(report / "table_smac.csv", index_col=0)
    assert list(table.index) == ["qmix_gip", "qmix_kd", "qmix", "PRR"]
    qmix_win = json.loads((smoke_sweep / "qmix_none_3m_seed0" / "results.json").read_text())["test/win_rate"]
    assert table.loc["qmix", "3m"] == f"{qmix_win:.3f} (n=1)"  # one seed: no std to show
    assert (report / "curves_smac_3m.png").exists() and (report / "distill_smac_3m.png").exists()
    assert (report / "issues.txt").read_text() == ""


def test_render_saves_one_frame_per_step_plus_the_first(smoke_sweep: Path, tmp_path: Path):
    from ptde.evaluate import render_episode

    run = smoke_sweep / "qmix_gip_3m_seed0"
    for mode in ("decentralized",):  # the CLI test below renders a centralized policy
        gif = tmp_path / f"{mode}.gif"
        out = render_episode(run, mode, seed=5, path=gif, fps=8)
        assert out["render_frames"] == out["render_episode_length"] + 1
        with Image.open(gif) as im:
            assert im.n_frames == out["render_frames"]
            assert im.size[0] > 200


def test_render_cli_writes_the_gif_into_the_run_folder(smoke_sweep: Path):
    run = smoke_sweep / "qmix_none_3m_seed0"
    proc = run_module("ptde.evaluate", f"checkpoint={run}", "episodes=4", "render=true")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads((run / "eval_centralized.json").read_text())
    with Image.open(run / "render_centralized.gif") as im:
        assert im.n_frames == result["render_frames"] == result["render_episode_length"] + 1


def test_grf_episode_renders_as_a_pitch_plot(tmp_path: Path):
    pytest.importorskip("gfootball.env", reason="gfootball not installed (ptde/envs/install_grf.sh)")
    import torch

    from ptde.envs.football import GRFEnv, grf_config
    from ptde.report.render import record_episode, write_gif

    class Idle:  # every agent idles (action 0): the AI teammates and opponents still move
        uses_state = False

        def act(self, inputs: torch.Tensor, hidden: torch.Tensor | None) -> tuple[torch.Tensor, None]:
            return torch.zeros(*inputs.shape[:3], 19), None  # [B, 1, n, A]

    env = GRFEnv(grf_config("3_vs_1_with_keeper", episode_limit=6), batch_size=1, seed=0)
    try:
        frames, batch = record_episode(env, Idle(), 19)
    finally:
        env.close()
    assert len(frames) == int(batch.length[0]) + 1
    first = frames[0]
    assert first.left.shape == (4, 2) and first.right.shape == (2, 2) and first.agents == [1, 2, 3]
    assert first.ball[0] == pytest.approx(0.62, abs=0.05)  # the scenario puts the ball at x = 0.62
    n = write_gif(frames, tmp_path / "grf.gif", "3_vs_1_with_keeper")
    with Image.open(tmp_path / "grf.gif") as im:
        assert im.n_frames == n == len(frames)


@pytest.mark.parametrize("grid", GRIDS)
def test_grids_name_existing_maps_and_compose(grid: str):
    from hydra import compose, initialize_config_dir

    from ptde.config import register_configs, register_entry_configs
    from ptde.config.resolved import to_container

    register_configs()
    register_entry_configs()
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        cfg = to_container(compose("sweep", overrides=[f"grid={grid}"]))
    envs = [e for g in cfg["grid"]["groups"] for e in g["envs"]]
    assert set(envs) <= set(group_options("env")), envs
    assert cfg["grid"]["seeds"] == [0, 1, 2] and all(g["max_env_steps"] >= 2_000_000 for g in cfg["grid"]["groups"])
    compose_cfg(f"env={envs[0]}")  # a map of the grid composes as a ptde.train config


def test_make_target_calls_the_sweep_with_the_grid():
    proc = subprocess.run(
        ["make", "--no-print-directory", "-n", "paper-two-stage", "BUDGET=smoke", "MAPS=smac/5m_vs_6m", "SEEDS=0,1"],
        cwd=REPO, capture_output=True, text=True,
    )  # fmt: skip
    # under `make test` this make is a sub-make: its output may carry make's own lines as well
    (line,) = [ln for ln in proc.stdout.splitlines() if "ptde.sweep" in ln]
    assert "-m ptde.sweep grid=paper_two_stage budget=smoke" in line
    assert "'envs=[smac/5m_vs_6m]'" in line and "'seeds=[0,1]'" in line


def test_unknown_algo_of_a_grid_is_named_before_anything_runs(tmp_path: Path):
    proc = run_module("ptde.sweep", "grid=paper_smac", "algos=[qmix,qmx]", f"out={tmp_path / 'x'}")
    assert proc.returncode == 2
    assert "qmx" in proc.stderr and "available: " in proc.stderr
    assert not (tmp_path / "x").exists()


def test_smax_frame_is_the_battle_state():
    import torch

    from ptde.envs import make_env
    from ptde.nested import ConfigView

    cfg = compose_cfg("env=smac/3m")
    env = make_env(ConfigView(cfg["env"]), batch_size=2, seed=0)
    step = env.reset(seed=0)
    g = torch.Generator().manual_seed(0)
    for _ in range(12):  # random available actions, attacks preferred so that units die
        weights = step.avail_actions.float() * torch.tensor([1.0] * 5 + [20.0] * (env.n_actions - 5))
        actions = torch.multinomial(weights.view(-1, env.n_actions), 1, generator=g).view(2, 3)
        step = env.step(actions)
    frame = env.frame(1)
    assert frame.n_allies == 3 and frame.unit_types == ["marine"] * 6
    assert frame.positions.shape == (6, 2) and frame.t == 12
    assert frame.alive.tolist() == env.unit_alive[1].tolist()
    assert ((frame.health >= 0) & (frame.health <= 1)).all()
    assert (frame.health[~frame.alive] <= 0).all() and (frame.health[frame.alive] > 0).all()
