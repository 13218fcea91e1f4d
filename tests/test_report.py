"""`ptde.report`: the tables hold the seeds' mean and std, the KD and PRR rows come from stage 2,
unusable runs are named and left out, and an offline wandb run is read from its own log."""

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REPO, run_module

from ptde.loggers.csv_metrics import CSVMetricsLogger
from ptde.report.build import build_report
from ptde.report.runs import load_source
from ptde.report.tables import mean_std_cell
from ptde.report.wandb_offline import read_offline_run
from ptde.report.windows import run_labels, window_means, windows_table

# final test win rates per (algo, map, seed); qmix_gip runs also carry stage-2 results
WIN = {
    ("qmix", "3m"): [0.25, 0.5, 0.75],
    ("qmix", "2s3z"): [0.0, 0.125, 0.5],
    ("qmix_gip", "3m"): [0.5, 0.75, 1.0],
    ("qmix_gip", "2s3z"): [0.375, 0.625, 0.875],
}
CENTRAL = {"3m": [0.5, 0.625, 1.0], "2s3z": [0.25, 0.5, 0.75]}
DECENTRAL = {"3m": [0.25, 0.5, 0.875], "2s3z": [0.125, 0.25, 0.5]}


def write_run(root: Path, algo: str, env: str, seed: int, **extra) -> Path:
    run = root / f"{algo}_{env}_seed{seed}"
    run.mkdir(parents=True)
    win = WIN[(algo, env)][seed]
    results = {
        "status": "finished", "algo": algo, "env": env, "env_family": "smac", "seed": seed,
        "success_metric": "win_rate", "test/win_rate": win, "env_steps": 1000,
    }  # fmt: skip
    if algo == "qmix_gip":
        results |= {
            "algo_kd": "qmix_kd",
            "eval/centralized_win_rate": CENTRAL[env][seed],
            "eval/decentralized_win_rate": DECENTRAL[env][seed],
            "eval/prr": DECENTRAL[env][seed] / CENTRAL[env][seed],
        }
        (run / "distill").mkdir()
        rows = [{"distill/train_mse": 10.0 / (s + 1), "distill/val_mse": "", "epoch": 0, "step": s} for s in range(5)]
        rows += [{"distill/train_mse": "", "distill/val_mse": 12.0 / (s + 1), "epoch": 0, "step": s} for s in range(5)]
        pd.DataFrame(rows).to_csv(run / "distill" / "metrics.csv", index=False)
    results |= extra
    (run / "results.json").write_text(json.dumps(results))
    steps = [0, 500, 1000]
    curve = pd.DataFrame({"env_steps": steps, "test/win_rate": [0.0, win / 2, win]})
    curve.to_csv(run / "metrics.csv", index=False)
    return run


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    root = tmp_path / "multirun"
    for algo, env in WIN:
        for seed in range(3):
            write_run(root, algo, env, seed)
    return root


def read_values(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "table_smac_values.csv").set_index(["env", "row"])


def test_table_cells_are_mean_and_std_of_the_seeds(sweep: Path, tmp_path: Path):
    out = tmp_path / "report"
    build_report(sweep, out, bootstrap_reps=200)
    values = read_values(out)
    for (algo, env), wins in WIN.items():
        assert values.loc[(env, algo), "mean"] == pytest.approx(np.mean(wins))
        assert values.loc[(env, algo), "std"] == pytest.approx(np.std(wins))
        assert values.loc[(env, algo), "n"] == 3
    for env, dec in DECENTRAL.items():  # the KD row is the students' decentralized win rate
        assert values.loc[(env, "qmix_kd"), "mean"] == pytest.approx(np.mean(dec))
        assert values.loc[(env, "qmix_kd"), "std"] == pytest.approx(np.std(dec))
    table = pd.read_csv(out / "table_smac.csv", index_col=0)
    assert list(table.index) == ["qmix_gip", "qmix_kd", "qmix", "PRR"]
    assert list(table.columns) == ["2s3z", "3m"]
    assert table.loc["qmix", "3m"] == f"{np.mean(WIN[('qmix', '3m')]):.3f} ± {np.std(WIN[('qmix', '3m')]):.3f}"
    md = (out / "table_smac.md").read_text()
    assert "| qmix_kd |" in md and "| PRR |" in md
    index = (out / "index.md").read_text()
    assert "table_smac.csv" in index and "curves_smac_3m.png" in index and "distill_smac_2s3z.png" in index
    for png in ("curves_smac_3m.png", "curves_smac_2s3z.png", "distill_smac_3m.png"):
        assert (out / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_prr_row_is_mean_student_over_mean_teacher(sweep: Path, tmp_path: Path):
    out = tmp_path / "report"
    build_report(sweep, out, bootstrap_reps=200)
    prr = pd.read_csv(out / "prr_smac.csv").set_index("env")
    table = pd.read_csv(out / "table_smac.csv", index_col=0)
    for env in CENTRAL:
        expected = np.mean(DECENTRAL[env]) / np.mean(CENTRAL[env])
        assert prr.loc[env, "prr"] == pytest.approx(expected)
        assert table.loc["PRR", env] == f"{expected:.1%}"


def test_teacher_scoring_zero_gives_no_prr(tmp_path: Path):
    root = tmp_path / "runs"
    for seed in range(3):
        write_run(root, "qmix_gip", "3m", seed, **{"eval/centralized_win_rate": 0.0})
    out = tmp_path / "report"
    build_report(root, out, bootstrap_reps=100)
    assert pd.read_csv(out / "table_smac.csv", index_col=0).loc["PRR", "3m"] == "– (teacher 0)"


def test_the_papers_cells_stand_beside_the_table_for_the_same_rows_and_maps(sweep: Path, tmp_path: Path, monkeypatch):
    """Table 2's cells for a SMAC map's rows (budget in brackets, its PRR row), nothing for a map or row
    the paper does not print, no file at all for maps it never ran, and paper=False leaves it out."""
    monkeypatch.setitem(WIN, ("qmix", "3s_vs_5z"), [0.25, 0.5, 0.75])
    monkeypatch.setitem(WIN, ("qmix_gip", "3s_vs_5z"), [0.5, 0.75, 1.0])
    monkeypatch.setitem(CENTRAL, "3s_vs_5z", [0.5, 0.625, 1.0])
    monkeypatch.setitem(DECENTRAL, "3s_vs_5z", [0.25, 0.5, 0.875])
    for algo in ("qmix", "qmix_gip"):
        for seed in range(3):
            write_run(sweep, algo, "3s_vs_5z", seed)
    out = tmp_path / "report"
    build_report(sweep, out, bootstrap_reps=100)
    ref = pd.read_csv(out / "paper_smac.csv", index_col=0)
    assert list(ref.index) == ["qmix_gip", "qmix_kd", "qmix", "PRR"]  # the report table's rows
    assert list(ref.columns) == ["2s3z", "3m", "3s_vs_5z"]
    assert ref.loc["qmix_gip", "3s_vs_5z"] == "0.992 ± 0.006 (2M)"
    assert ref.loc["qmix_kd", "3s_vs_5z"] == "0.887 ± 0.027 (2M)"
    assert ref.loc["qmix", "3s_vs_5z"] == "0.128 ± 0.165 (2M)"
    assert ref.loc["PRR", "3s_vs_5z"] == "89.4%"
    assert (ref[["2s3z", "3m"]] == "–").all().all()  # maps the paper did not run
    index = (out / "index.md").read_text()
    assert "the paper's cells for the same rows and maps" in index and "Table 2" in index and "SMAX" in index
    plain = tmp_path / "plain"
    build_report(sweep, plain, bootstrap_reps=100, paper=False)
    assert not (plain / "paper_smac.csv").exists() and "paper's cells" not in (plain / "index.md").read_text()
    only_ours = tmp_path / "only_ours"  # 3m and 2s3z alone: the paper prints none of their cells
    for run in sweep.glob("*_3s_vs_5z_seed*"):
        shutil.rmtree(run)
    build_report(sweep, only_ours, bootstrap_reps=100)
    assert not (only_ours / "paper_smac.csv").exists()


def test_the_papers_football_cells_and_a_universality_table():
    """Table 3 at 10M for football; Tables 4-5 print no std, and their 3s_vs_5z budget (5M) is not Table 2's."""
    from ptde.report.paper_cells import paper_reference

    table = pd.DataFrame(index=pd.Index(["qmix_giu", "qmix_gip", "qmix_kd", "qmix", "PRR"]),
                         columns=["3_vs_1_with_keeper", "academy_corner"])  # fmt: skip
    ref = paper_reference(table, "grf", {"PRR": "qmix_gip"})
    assert list(ref["3_vs_1_with_keeper"]) == [
        "0.662 ± 0.256 (10M)", "0.858 ± 0.032 (10M)", "0.818 ± 0.056 (10M)", "0.609 ± 0.250 (10M)", "95.3%",
    ]  # fmt: skip
    assert (ref["academy_corner"] == "–").all()
    uni = pd.DataFrame(index=pd.Index(["vdn_gip", "mappo", "qmix_gip"]), columns=["3s_vs_5z"])
    ref = paper_reference(uni, "smac", {})
    assert list(ref["3s_vs_5z"]) == ["0.990 (5M)", "0.767 (5M)", "0.992 ± 0.006 (2M)"]
    assert paper_reference(uni, "ltr", {}) is None  # learning to rank: a figure, no table


def test_the_wandb_report_spec_is_the_same_file_for_the_same_runs(sweep: Path, tmp_path: Path):
    """Rebuilding a committed report rewrites its wandb spec byte for byte (its ids are seeded), in this
    process or a fresh one, and the caller's `random` stream is left where it was."""
    import dataclasses
    import random
    import subprocess
    import sys

    from ptde.report.wandb_report import write_report_spec

    def grouped(records):  # wandb groups, so that the spec has panel grids and run sets (with ids)
        return [dataclasses.replace(r, group=f"{r.algo}-{r.env}") for r in records]

    out = tmp_path / "report"
    build_report(sweep, out, bootstrap_reps=50)
    first = write_report_spec(grouped(load_source(sweep)[0]), out, "t").read_bytes()
    assert b'"Run History Line Plot"' in first
    random.seed(123)
    expected = random.random()
    random.seed(123)
    assert write_report_spec(grouped(load_source(sweep)[0]), out, "t").read_bytes() == first
    assert random.random() == expected  # the spec drew nothing from the caller's stream
    fresh = (
        "import dataclasses, sys; from pathlib import Path\n"
        "from ptde.report.runs import load_source\n"
        "from ptde.report.wandb_report import write_report_spec\n"
        "records = [dataclasses.replace(r, group=f'{r.algo}-{r.env}') for r in load_source(Path(sys.argv[1]))[0]]\n"
        "write_report_spec(records, Path(sys.argv[2]), 't')\n"
    )
    subprocess.run([sys.executable, "-c", fresh, str(sweep), str(out)], check=True, cwd=Path(__file__).parents[1])
    assert (out / "wandb_report.json").read_bytes() == first


def test_missing_corrupt_and_failed_runs_are_named_and_skipped(sweep: Path, tmp_path: Path):
    # a run with no results.json, one with a torn results.json, one that failed with a high score
    missing = sweep / "qmix_3m_seed7"
    missing.mkdir()
    (missing / "config.yaml").write_text("seed: 7\n")
    torn = write_run(sweep / "extra", "qmix", "3m", 1)
    (torn / "results.json").write_text('{"status": "finished", "algo": "qmix", "test/win')
    failed = write_run(sweep / "extra2", "qmix", "3m", 2, status="failed", reason="SIGTERM")
    failed_results = json.loads((failed / "results.json").read_text())
    failed_results["test/win_rate"] = 1.0
    (failed / "results.json").write_text(json.dumps(failed_results))
    proc = run_module("ptde.report", f"source={sweep}", "bootstrap_reps=100")
    assert proc.returncode == 0, proc.stderr[-2000:]
    issues = (sweep / "report" / "issues.txt").read_text().splitlines()
    assert any(i.startswith("qmix_3m_seed7: skipped, no results.json") for i in issues), issues
    assert any(i.startswith("extra/qmix_3m_seed1: skipped, results.json is corrupt") for i in issues), issues
    assert any(i.startswith("extra2/qmix_3m_seed2: skipped, status 'failed': SIGTERM") for i in issues), issues
    assert "qmix_3m_seed7" in proc.stderr and "extra/qmix_3m_seed1" in proc.stderr
    # nothing of them reaches the table: the 3m qmix cell is still the three good seeds
    values = read_values(sweep / "report")
    assert values.loc[("3m", "qmix"), "mean"] == pytest.approx(np.mean(WIN[("qmix", "3m")]))
    assert values.loc[("3m", "qmix"), "n"] == 3
    assert "## Issues" in (sweep / "report" / "index.md").read_text()


def test_duplicate_seed_is_not_averaged_twice(sweep: Path):
    write_run(sweep / "again", "qmix", "3m", 0, **{"test/win_rate": 1.0})
    records, issues = load_source(sweep)
    assert len(records) == 12
    assert any("duplicate" in i and "qmix on 3m, seed 0" in i for i in issues)


def test_only_reports_one_groups_qmix_against_another_groups_qmix_gip(tmp_path: Path):
    # a campaign with two groups (lr_a, lr_b) of the same algos and seeds: without `only` the
    # duplicates of lr_b are dropped; with it, lr_a's qmix and lr_b's qmix_gip make the table
    root = tmp_path / "campaign"
    for group, bonus in (("lr_a", 0.0), ("lr_b", 0.125)):
        for algo in ("qmix", "qmix_gip"):
            for seed in range(3):
                write_run(root / group / "runs", algo, "3m", seed, **{"test/win_rate": WIN[(algo, "3m")][seed] - bonus})
    out = tmp_path / "report"
    proc = run_module(
        "ptde.report", f"source={root}", "only=[lr_a/runs/qmix_3m_*,lr_b/runs/qmix_gip_*]", f"out={out}",
        "bootstrap_reps=100",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    values = read_values(out)
    assert values.loc[("3m", "qmix"), "mean"] == pytest.approx(np.mean(WIN[("qmix", "3m")]))
    assert values.loc[("3m", "qmix_gip"), "mean"] == pytest.approx(np.mean(WIN[("qmix_gip", "3m")]) - 0.125)
    assert values.loc[("3m", "qmix"), "n"] == 3 and values.loc[("3m", "qmix_gip"), "n"] == 3
    assert "duplicate" not in (out / "issues.txt").read_text()  # the other group's runs were never read
    # one group alone, every algo of it
    records, _ = load_source(root, only=["lr_b/runs/*"])
    assert sorted(r.name for r in records) == sorted(f"{a}_3m_seed{s}" for a in ("qmix", "qmix_gip") for s in range(3))
    # a pattern that matches nothing names the runs there are
    with pytest.raises(FileNotFoundError, match=r"'lr_c/\*' matches no run under .*\n  lr_a/runs/qmix_3m_seed0"):
        load_source(root, only=["lr_c/*"])
    with pytest.raises(FileNotFoundError, match=r"'LR_B/runs/\*' matches no run"):  # case counts, as in the campaign's
        load_source(root, only=["LR_B/runs/*"])
    proc = run_module("ptde.report", f"source={root}", "only=[lr_c/*]", f"out={out}")
    assert proc.returncode == 2 and "lr_b/runs/qmix_gip_3m_seed2" in proc.stderr


def test_a_one_seed_cell_shows_no_std():
    assert mean_std_cell(0.71875, 0.0, 1, 1) == "0.719 (n=1)"  # a table of single seeds still says so
    assert mean_std_cell(0.71875, 0.0, 1, 3) == "0.719 (n=1)"
    assert mean_std_cell(0.5, 0.25, 2, 3) == "0.500 ± 0.250 (n=2)"
    assert mean_std_cell(0.5, 0.0, 3, 3) == "0.500 ± 0.000"  # three seeds that agree keep their std


def test_fewer_seeds_are_marked_and_aggregate_uses_rliable_iqm(sweep: Path, tmp_path: Path):
    shutil.rmtree(sweep / "qmix_2s3z_seed2")
    out = tmp_path / "report"
    build_report(sweep, out, bootstrap_reps=500)
    table = pd.read_csv(out / "table_smac.csv", index_col=0)
    assert table.loc["qmix", "2s3z"].endswith("(n=2)")
    agg = pd.read_csv(out / "aggregate_smac.csv", index_col=0)
    # qmix_gip: 3 seeds x 2 maps; the IQM of 6 scores is the mean of the middle half
    scores = np.sort(WIN[("qmix_gip", "3m")] + WIN[("qmix_gip", "2s3z")])
    from scipy.stats import trim_mean

    assert agg.loc["qmix_gip", "IQM"] == pytest.approx(trim_mean(scores, 0.25))
    low, high = (float(v) for v in agg.loc["qmix_gip", "IQM 95% CI"].strip("[]").split(","))
    assert low <= agg.loc["qmix_gip", "IQM"] <= high
    assert agg.loc["qmix", "seeds x maps"] == "2 x 2"  # cut to the smallest seed count


def test_offline_wandb_run_is_read_from_its_log(tmp_path, monkeypatch):
    """A real offline wandb run (logger=wandb, no API key): the report reads it on its own."""
    run_dir = tmp_path / "wb"
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    proc = run_module(
        "ptde.train", "logger=wandb", "trainer.max_env_steps=600", "trainer.test_episodes=4",
        "trainer.test_interval=300", "algo.batch_size=8", "trainer.progress_bar=false", "seed=3",
        f"hydra.run.dir={run_dir}",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    (offline,) = (run_dir / "wandb").glob("offline-run-*")
    run = read_offline_run(offline)
    assert run["exit_code"] == 0 and run["config"]["env"]["name"] == "3m"
    csv_rows = [r for r in csv.DictReader((run_dir / "metrics.csv").open()) if r.get("test/win_rate")]
    history = run["history"].dropna(subset=["test/win_rate"])
    assert [float(r["env_steps"]) for r in csv_rows] == history["env_steps"].astype(float).tolist()
    assert [float(r["test/return"]) for r in csv_rows] == pytest.approx(history["test/return"].tolist())
    # the offline run alone, moved out of its run folder, is a report source
    alone = tmp_path / "wandb_only"
    shutil.copytree(offline, alone / offline.name)
    records, issues = load_source(alone)
    assert issues == [] and len(records) == 1
    (r,) = records
    results = json.loads((run_dir / "results.json").read_text())
    assert (r.algo, r.env, r.seed) == ("qmix", "3m", 3)
    assert r.results["test/win_rate"] == pytest.approx(results["test/win_rate"])
    assert r.results["test/return"] == pytest.approx(results["test/return"])


def test_wandb_source_offline_fails_with_a_clear_message(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    proc = run_module("ptde.report", "source=wandb", "project=ptde", cwd=tmp_path)
    assert proc.returncode == 2
    assert "no API key" in proc.stderr and "offline" in proc.stderr


def test_window_means_of_a_run_still_training_as_its_csv_logger_wrote_it(tmp_path):
    log = CSVMetricsLogger(tmp_path / "run")
    for steps, metrics in [
        (0, {"test/win_rate": 0.0, "test/ep_length": 60.0}),
        (40_000, {"train/win_rate": 0.1}),
        (50_000, {"test/win_rate": 0.5, "test/ep_length": 40.0}),
        (80_000, {"train/win_rate": 0.3}),
        (120_000, {"train/win_rate": 0.05}),
        (200_000, {"test/win_rate": 1.0, "test/ep_length": 30.0}),
    ]:
        log.log_metrics({**metrics, "env_steps": steps}, step=steps)
        log.save()
    curves = pd.read_csv(tmp_path / "run" / "metrics.csv")
    means = window_means(curves, 100_000)
    assert list(means.index) == [0, 100_000, 200_000]
    assert means.loc[0].tolist() == pytest.approx([0.2, 0.25, 50.0])  # each metric over the rows that logged it
    assert means.loc[100_000, "train/win_rate"] == pytest.approx(0.05) and means.loc[100_000].isna().sum() == 2
    table = windows_table({"run": curves}, 100_000)
    assert "| 0–100k | 0.200 / 0.250 / 50 |" in table
    assert "| 100k–200k | 0.050 /  /  |" in table and "| 200k |  / 1.000 / 30 |" in table
    with pytest.raises(KeyError, match="no column test/nope.*it has: .*test/win_rate"):
        window_means(curves, 100_000, ["test/nope"])


def test_runs_of_the_same_name_from_two_campaigns_keep_a_column_each(tmp_path):
    grid, probe = tmp_path / "grf" / "runs" / "qmix_seed0", tmp_path / "grf_floor" / "eps" / "runs" / "qmix_seed0"
    other = tmp_path / "grf" / "runs" / "qmix_gip_seed0"
    for run in (grid, probe, other):
        run.mkdir(parents=True)
    assert run_labels([grid, probe, other]) == ["grf/runs/qmix_seed0", "eps/runs/qmix_seed0", "qmix_gip_seed0"]
    assert run_labels([grid / "metrics.csv"]) == ["qmix_seed0"]
    with pytest.raises(ValueError, match="the same run given more than once"):
        run_labels([grid, grid / "metrics.csv"])
    for run, win in ((grid, 0.0), (probe, 0.5)):
        (run / "metrics.csv").write_text(
            f"env_steps,train/win_rate,test/win_rate,test/ep_length\n1000,{win},{win},60\n"
        )
    proc = run_module("ptde.report.windows", str(grid), str(probe))
    assert proc.returncode == 0, proc.stderr
    assert "| env steps | grf/runs/qmix_seed0 | eps/runs/qmix_seed0 |" in proc.stdout
    assert "| 0–1k | 0.000 / 0.000 / 60 | 0.500 / 0.500 / 60 |" in proc.stdout  # the probe is not the grid
    twice = run_module("ptde.report.windows", str(grid), str(grid))
    assert twice.returncode == 2 and "the same run given more than once" in twice.stderr


def test_the_windows_command_gives_the_pilots_per_100k_figures_of_the_grf_readme(tmp_path):
    pilot = REPO / "benchmarks" / "grf" / "runs" / "qmix_gip_3_vs_1_with_keeper_seed0"
    proc = run_module("ptde.report.windows", str(pilot))
    assert proc.returncode == 0, proc.stderr
    assert "| 600k–700k | 0.175 / 0.222 / 46 |" in proc.stdout and "| 900k–1M | 0.397 / 0.509 / 50 |" in proc.stdout
    readme = (REPO / "benchmarks" / "grf" / "README.md").read_text().splitlines()  # its table is this command's
    assert any(line.startswith("| 600k–700k |") and "| 0.175 / 0.222 / 46 |" in line for line in readme)
    wrong = run_module("ptde.report.windows", str(pilot), "--columns", "test/nope")
    assert wrong.returncode == 2 and "no column test/nope" in wrong.stderr and "test/win_rate" in wrong.stderr
    gone = run_module("ptde.report.windows", str(tmp_path / "none"))
    assert gone.returncode == 2 and "no such file" in gone.stderr
