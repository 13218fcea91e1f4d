"""A researcher's loop, run for real at tiny budgets: Hydra's flags anywhere on the command line,
sweeps over any key with one folder per job (re-run: nothing re-trained), `ptde.distill` sweeps,
one offline wandb run holding both PTDE stages (read back from its own log), the wandb report's
spec built from a real multirun, and the clean start-up errors."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import compose_cfg, run_module

from ptde.cli import hydra_argv
from ptde.loggers.wandb_run import wandb_group, wandb_job_type, wandb_tags
from ptde.machine import cpu_description, cpu_has_bf16
from ptde.report.build import build_report
from ptde.report.runs import load_source
from ptde.report.wandb_offline import read_offline_run

pytest.importorskip("jaxmarl")

TINY = [
    "env=smac/3m",
    "trainer.max_env_steps=300",
    "trainer.test_interval=300",
    "trainer.log_interval=300",
    "trainer.checkpoint_interval=300",
    "trainer.test_episodes=4",
    "trainer.torch_threads=1",
    "trainer.progress_bar=false",
    "algo.batch_size=8",
    "algo.buffer_size=64",
]
TINY_DISTILL = ["variant.distill.teacher_episodes=8", "variant.distill.max_steps=50", "variant.distill.val_interval=25"]


def finished(run_dir: Path) -> dict:
    results = json.loads((run_dir / "results.json").read_text())
    assert results["status"] == "finished", results
    return results


def job_folders(sweep: Path) -> list[str]:
    return sorted(p.name for p in sweep.iterdir() if (p / "results.json").exists())


def saved(run_dir: Path) -> dict:
    return yaml.safe_load((run_dir / "config.yaml").read_text())


# ------------------------------------------------------------------------------ the command line
def test_hydra_flags_move_before_the_overrides_where_hydra_parses_them():
    from hydra._internal.utils import get_args_parser

    headline = ["ptde.train", "algo=qmix_gip", "env=grf/counterattack_hard", "-m", "seed=0,1,2"]
    with pytest.raises(SystemExit):  # Hydra's parser alone refuses the headline command
        get_args_parser().parse_args(headline[1:])
    args = get_args_parser().parse_args(hydra_argv(headline, "config")[1:])
    assert args.multirun and args.overrides[:3] == ["algo=qmix_gip", "env=grf/counterattack_hard", "seed=0,1,2"]
    # a sweep over seeds only: the folder name needs no suffix, every key on the line is excluded
    assert args.overrides[3] == "hydra.job.config.override_dirname.exclude_keys=['algo','variant','env','seed']"
    args = get_args_parser().parse_args(hydra_argv(["x", "seed=1", "--cfg", "job", "-i"], "config")[1:])
    assert (args.cfg, args.info, args.overrides, args.multirun) == ("job", "all", ["seed=1"], False)
    # a sweep over a learning rate: the shared overrides are excluded, the swept one names the folder
    argv = hydra_argv(["x", "algo.lr=0.1,0.2", "logger=csv", "hydra/launcher=joblib", "--multirun"], "config")
    assert argv[-1].endswith("['algo','variant','env','seed','logger']")
    assert hydra_argv(["x", "teacher=t", "-m", "distill.lr=1,2"], "distill")[-1].endswith("['teacher','seed']")


def test_flags_after_the_overrides_work_on_the_command_line():
    proc = run_module("ptde.train", "algo=qmix_gip", "env=smac/3m", "seed=3", "--cfg", "job")
    assert proc.returncode == 0, proc.stderr[-2000:]
    printed = yaml.safe_load(proc.stdout[proc.stdout.index("algo:") :])  # Hydra printed the job's config
    assert printed["seed"] == 3 and printed["variant"]["name"] == "gip"


def test_the_wandb_group_is_the_config_without_the_seed():
    base = ["algo=qmix_gip", "env=smac/3m"]
    assert wandb_group(compose_cfg(*base, "seed=0")) == wandb_group(compose_cfg(*base, "seed=1", "logger=csv"))
    assert wandb_group(compose_cfg(*base)) != wandb_group(compose_cfg(*base, "algo.lr=0.0005"))
    assert wandb_group(compose_cfg(*base)).startswith("qmix_gip_3m_")
    assert wandb_job_type(compose_cfg(*base)) == "stage1+2" and wandb_job_type(compose_cfg("stage=1")) == "stage1"
    assert wandb_tags(compose_cfg(*base)) == ["algo:qmix", "env:smac/3m", "variant:gip"]


def test_an_unknown_map_exits_2_naming_the_maps_and_leaves_no_folder(tmp_path):
    proc = run_module("ptde.train", "env=smac/3m", "env.name=9m", "logger=csv", f"hydra.run.dir={tmp_path / 'run'}")
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "env.name='9m' is not a SMAX map; valid maps: " in proc.stderr and "5m_vs_6m" in proc.stderr
    assert "Traceback" not in proc.stderr and not (tmp_path / "run").exists()


# ------------------------------------------------------------------------------ sweeps over any key
@pytest.fixture(scope="module")
def lr_sweep(tmp_path_factory) -> tuple[Path, list[str]]:
    """`-m` after the overrides, sweeping a key the folder name has no field for."""
    sweep = tmp_path_factory.mktemp("lr")
    command = ["algo=qmix", "algo.lr=0.001,0.0005", *TINY, "logger=csv", "-m", f"hydra.sweep.dir={sweep}"]
    proc = run_module("ptde.train", *command)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep, command


def test_a_learning_rate_sweep_gives_one_finished_folder_per_value(lr_sweep):
    sweep, command = lr_sweep
    assert job_folders(sweep) == ["qmix_none_3m_seed0_algo.lr-0.0005", "qmix_none_3m_seed0_algo.lr-0.001"]
    for name, lr in (("qmix_none_3m_seed0_algo.lr-0.0005", 0.0005), ("qmix_none_3m_seed0_algo.lr-0.001", 0.001)):
        assert finished(sweep / name)["env_steps"] >= 300
        assert finished(sweep / name)["cpu"] == cpu_description()  # which kind of CPU's rounding it trained on
        assert saved(sweep / name)["algo"]["lr"] == lr
    ckpts = {n: (sweep / n / "checkpoints" / "last.ckpt").stat().st_mtime_ns for n in job_folders(sweep)}
    again = run_module("ptde.train", *command)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("has already finished; nothing to resume") == 2
    assert {n: (sweep / n / "checkpoints" / "last.ckpt").stat().st_mtime_ns for n in job_folders(sweep)} == ckpts


def test_resume_true_continues_the_folder_that_hydra_run_dir_names(lr_sweep, tmp_path):
    run_dir = tmp_path / "killed"
    shutil.copytree(lr_sweep[0] / "qmix_none_3m_seed0_algo.lr-0.001", run_dir)
    results = json.loads((run_dir / "results.json").read_text())
    killed = {k: results[k] for k in ("algo", "env", "env_family", "seed", "stage")}  # killed after last.ckpt
    (run_dir / "results.json").write_text(json.dumps({**killed, "status": "running", "stages_done": []}))
    args = ["algo=qmix", "algo.lr=0.001", *TINY, "logger=csv", "resume=true", f"hydra.run.dir={run_dir}"]
    proc = run_module("ptde.train", *args)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"resuming {run_dir} from {run_dir}/checkpoints/last.ckpt" in proc.stderr
    assert finished(run_dir)["resumed_from_env_steps"] == [results["env_steps"]]
    assert finished(run_dir)["resumed_cpus"] == [cpu_description()]
    assert len(finished(run_dir)["resumed_git_commits"]) == 1
    empty = run_module("ptde.train", "resume=true", f"hydra.run.dir={tmp_path / 'none'}")
    assert empty.returncode == 2 and "holds no run to resume" in empty.stderr and not (tmp_path / "none").exists()


@pytest.fixture(scope="module")
def gip_sweep(tmp_path_factory) -> Path:
    """Two PTDE runs (stage 1 + stage 2) in parallel with joblib, logged to offline wandb."""
    sweep = tmp_path_factory.mktemp("zdim")
    command = ["-m", "algo=qmix_gip", "variant.z_dim=8,16", *TINY, *TINY_DISTILL, "logger=wandb", "logger.mode=offline"]
    proc = run_module("ptde.train", *command, "hydra/launcher=joblib", f"hydra.sweep.dir={sweep}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return sweep


def test_the_cpu_a_run_names_says_its_vector_unit_and_bf16():
    name, isa, bf16 = cpu_description().split("; ")
    assert name and re.fullmatch(r"(avx512|avx2|avx|sse4_2|other)(\+amx)?", isa), cpu_description()
    assert bf16 == ("native bf16" if cpu_has_bf16() else "no native bf16")


def test_a_joblib_sweep_over_z_dim_gives_one_finished_folder_per_value(gip_sweep):
    sweep = gip_sweep
    names = ["qmix_gip_3m_seed0_variant.z_dim-16", "qmix_gip_3m_seed0_variant.z_dim-8"]
    assert job_folders(sweep) == names
    for name, z in zip(names, (16, 8), strict=True):
        results = finished(sweep / name)
        assert results["stages_done"] == ["1", "2"] and "eval/prr" in results
        assert saved(sweep / name)["variant"]["z_dim"] == z
        assert (sweep / name / "checkpoints" / "student.pt").exists()


def test_one_offline_wandb_run_holds_both_stages(gip_sweep, tmp_path):
    run_dir = gip_sweep / "qmix_gip_3m_seed0_variant.z_dim-8"
    results = finished(run_dir)
    (offline,) = (run_dir / "wandb").glob("offline-run-*")  # one run for both stages
    run = read_offline_run(offline)
    assert run["exit_code"] == 0 and run["id"] == results["wandb_run_id"]
    assert run["group"] == wandb_group(saved(run_dir)) and run["job_type"] == "stage1+2"
    assert {"algo:qmix", "env:smac/3m", "variant:gip"} <= set(run["tags"])
    history = run["history"]
    assert history["test/win_rate"].notna().sum() >= 1  # stage 1
    curve = history.dropna(subset=["distill/val_mse"])  # stage 2, against distillation steps
    assert len(curve) >= 2 and curve["distill/step"].is_monotonic_increasing and curve["distill/step"].max() >= 24
    assert history["distill/rows"].dropna().iloc[0] == results["distill/rows"]  # the teacher-data size
    evals = history.dropna(subset=["eval/decentralized_win_rate"])
    assert len(evals) == 1
    assert evals["eval/centralized_win_rate"].iloc[0] == pytest.approx(results["eval/centralized_win_rate"])
    summary = run["summary"]
    for key in ("test/win_rate", "distill/val_mse", "eval/centralized_win_rate", "eval/decentralized_win_rate"):
        assert summary[key] == pytest.approx(results[key]), key
    assert summary["status"] == "finished" and summary["algo_kd"] == "qmix_kd"
    assert "eval/prr" in summary
    # the offline run alone (no results.json anywhere) gives the KD and PRR rows
    shutil.copytree(offline, tmp_path / "wandb_only" / offline.name)
    records, issues = load_source(tmp_path / "wandb_only")
    assert issues == [] and len(records) == 1
    build_report((records, issues), tmp_path / "report", bootstrap_reps=50)
    table = pd.read_csv(tmp_path / "report" / "table_smac.csv", index_col=0)
    assert list(table.index) == ["qmix_gip", "qmix_kd", "PRR"]
    (r,) = records
    assert r.group == run["group"]
    prr, read = results["eval/prr"], r.results.get("eval/prr")
    if prr is None:  # a teacher that never won: null in results.json (the reason beside it), NaN or null in wandb
        assert (read is None or math.isnan(read)) and r.results["eval/prr_undefined"] == results["eval/prr_undefined"]
    else:
        assert read == pytest.approx(prr)
    assert r.results["eval/decentralized_win_rate"] == pytest.approx(results["eval/decentralized_win_rate"])
    assert r.distill is not None and list(r.distill.columns) == ["step", "distill/train_mse", "distill/val_mse"]


def test_the_wandb_report_spec_of_a_real_multirun(gip_sweep):
    sweep = gip_sweep
    proc = run_module("ptde.report", f"source={sweep}", "bootstrap_reps=50", "wandb_report=true", "entity=me")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "wandb report not uploaded (offline" in proc.stdout
    # the table has one cell per algorithm and map: the second z_dim is named as another config
    assert "another config (wandb group" in (sweep / "report" / "issues.txt").read_text()
    spec = json.loads((sweep / "report" / "wandb_report.json").read_text())
    assert spec["project"] == {"name": "ptde", "entityName": "me"}
    grids = [b["metadata"] for b in spec["spec"]["blocks"] if b["type"] == "panel-grid"]
    groups = sorted(wandb_group(saved(sweep / n)) for n in job_folders(sweep))
    assert len(set(groups)) == 2
    smac_3m, runs_table = grids  # one grid per map, then the runs table
    for grid in grids:
        (filt,) = grid["runSets"][0]["filters"]["filters"]
        assert filt["key"] == {"section": "run", "name": "group"} and sorted(filt["value"]) == groups
    panels = {p["viewType"]: [] for p in smac_3m["panelBankSectionConfig"]["panels"]}
    for p in smac_3m["panelBankSectionConfig"]["panels"]:
        panels[p["viewType"]].append(p["config"])
    (curve,) = panels["Run History Line Plot"]
    assert curve["metrics"] == ["test/win_rate"] and curve["xAxis"] == "env_steps" and curve["groupAgg"] == "mean"
    bars = {tuple(c["metrics"]) for c in panels["Bar Chart"]}
    assert ("eval/prr",) in bars and ("eval/centralized_win_rate", "eval/decentralized_win_rate") in bars
    assert smac_3m["runSets"][0]["grouping"] == [{"section": "run", "name": "group"}]
    assert runs_table["panelBankSectionConfig"]["panels"] == []


def test_a_distill_sweep_gives_one_folder_per_value_and_a_config_error_deletes_none(gip_sweep, tmp_path):
    teacher = gip_sweep / "qmix_gip_3m_seed0_variant.z_dim-8"
    command = [f"teacher={teacher}", "distill.lr=0.001,0.0003", "distill.teacher_episodes=8", "distill.max_steps=50"]
    command += ["distill.val_interval=25", "test_episodes=4", "progress_bar=false", "-m", f"hydra.sweep.dir={tmp_path}"]
    proc = run_module("ptde.distill", *command)
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = [f"{teacher.name}_distill_seed0_distill.lr-0.0003", f"{teacher.name}_distill_seed0_distill.lr-0.001"]
    assert job_folders(tmp_path) == names
    for name, lr in zip(names, (0.0003, 0.001), strict=True):
        results = finished(tmp_path / name)
        assert results["stages_done"] == ["2"] and "eval/prr" in results
        assert saved(tmp_path / name)["variant"]["distill"]["lr"] == lr
    again = run_module("ptde.distill", *command)
    assert again.returncode == 0 and again.stderr.count("has already finished") == 2, again.stderr[-3000:]
    changed = run_module("ptde.distill", *command, "distill.patience=3")  # not swept: same folders, other config
    assert changed.returncode == 2 and "variant.distill.patience: 10 -> 3" in changed.stderr
    assert job_folders(tmp_path) == names and all(finished(tmp_path / n) for n in names)
