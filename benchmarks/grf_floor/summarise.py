"""The grf_floor probes beside the football grid's runs on the same scenario and seed: per 100k env
steps, the training episodes' score rate and return (ε-greedy), the greedy tests' mean score rate and
their episode length, from the committed metrics.csv files -> summary.md.

Why windows of 100k: a 32-episode test alone has an SE up to 0.09, and the training score rate is
logged every 10k env steps from ~100 episodes; a window averages ten of each. The windows are
ptde.report.windows' (`python -m ptde.report.windows` gives the same cells for any run folder); here
only the whole windows that every run has reached are kept, so the columns compare like with like.

The probes' conditions are the groups of conf/campaign/grf_floor.yaml; the references are the grid's
runs (benchmarks/grf/runs/) of the same scenario and seed, trained with the defaults.

Run from the repo root: python benchmarks/grf_floor/summarise.py
"""

from pathlib import Path

import yaml

from ptde.report.windows import read_metrics, window_means

HERE = Path(__file__).parent
GRID = HERE.parent / "grf" / "runs"
GROUPS = yaml.safe_load((HERE.parents[1] / "conf" / "campaign" / "grf_floor.yaml").read_text())["groups"]
WINDOW = 100_000
COLUMNS = ("train/win_rate", "train/return", "test/win_rate", "test/ep_length")
RUNS = {
    "QMIX (grid, ε over 100k)": GRID / "qmix_3_vs_1_with_keeper_seed0",
    "QMIX_GIU (grid)": GRID / "qmix_giu_3_vs_1_with_keeper_seed0",
    "QMIX_GIP (grid)": GRID / "qmix_gip_3_vs_1_with_keeper_seed0",
    **{f"QMIX, {g['name']} (probe)": HERE / g["name"] / "runs" / "qmix_3_vs_1_with_keeper_seed0" for g in GROUPS},
}

found = {}
for name, run in RUNS.items():
    if (run / "metrics.csv").exists():
        curves = read_metrics(run)
        # whole windows only: a run's last test, a few steps past its budget, opens no window of its own
        whole = int(curves["env_steps"].max()) // WINDOW * WINDOW
        found[name] = window_means(curves[curves["env_steps"] < whole], WINDOW, COLUMNS)
last = min(int(means.index.max()) for means in found.values())  # the windows every run has reached
lines = [
    "Per 100k env steps of 3_vs_1_with_keeper, seed 0: training score rate (ε-greedy) / training return /"
    " greedy test score rate / greedy test episode length (means of the rows logged in the window).",
    "",
    "| env steps | " + " | ".join(found) + " |",
    "|---|" + "---|" * len(found),
]
for start in range(0, last + 1, WINDOW):
    cells = []
    for means in found.values():
        row = means.loc[start]
        cells.append(" / ".join(f"{row[c]:.3f}" for c in COLUMNS[:3]) + f" / {row[COLUMNS[3]]:.0f}")
    lines.append(f"| {start // 1000}–{(start + WINDOW) // 1000}k | " + " | ".join(cells) + " |")
(HERE / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
