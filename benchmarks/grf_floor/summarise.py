"""The grf_floor probe beside the football grid's runs on the same scenario and seed: per 100k env
steps, the training episodes' score rate and return (ε-greedy) and the greedy tests' mean score rate,
from the committed metrics.csv files -> summary.md.

Why windows of 100k: a 32-episode test alone has an SE up to 0.09, and the training score rate is
logged every 10k env steps from ~100 episodes; a window averages ten of each.

The probe's conditions are the groups of conf/campaign/grf_floor.yaml; the references are the grid's
runs (benchmarks/grf/runs/) of the same scenario and seed, trained with the defaults.

Run from the repo root: python benchmarks/grf_floor/summarise.py
"""

import csv
from pathlib import Path

import yaml

HERE = Path(__file__).parent
GRID = HERE.parent / "grf" / "runs"
GROUPS = yaml.safe_load((HERE.parents[1] / "conf" / "campaign" / "grf_floor.yaml").read_text())["groups"]
WINDOW = 100_000
RUNS = {
    "QMIX (grid, ε over 100k)": GRID / "qmix_3_vs_1_with_keeper_seed0",
    "QMIX_GIU (grid)": GRID / "qmix_giu_3_vs_1_with_keeper_seed0",
    "QMIX_GIP (grid)": GRID / "qmix_gip_3_vs_1_with_keeper_seed0",
    **{f"QMIX, {g['name']} (probe)": HERE / g["name"] / "runs" / "qmix_3_vs_1_with_keeper_seed0" for g in GROUPS},
}


def windows(run: Path) -> dict[int, dict[str, float]]:
    """Window index -> means of the train score rate, train return and test score rate in it (whole
    windows only: a run's last test, a few steps past its budget, opens no window of its own)."""
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    whole = int(float(rows[-1]["env_steps"])) // WINDOW
    sums: dict[int, dict[str, list[float]]] = {}
    for row in rows:
        w = int(float(row["env_steps"])) // WINDOW
        if w >= whole:
            continue
        for key in ("train/win_rate", "train/return", "test/win_rate"):
            if row.get(key):
                sums.setdefault(w, {}).setdefault(key, []).append(float(row[key]))
    return {w: {k: sum(v) / len(v) for k, v in d.items()} for w, d in sums.items()}


found = {name: windows(run) for name, run in RUNS.items() if (run / "metrics.csv").exists()}
last = min(max(w) for w in found.values())  # the windows every run has reached
lines = [
    "Per 100k env steps of 3_vs_1_with_keeper, seed 0: training score rate (ε-greedy) / training return /"
    " greedy test score rate (means of the rows logged in the window).",
    "",
    "| env steps | " + " | ".join(found) + " |",
    "|---|" + "---|" * len(found),
]
for w in range(last + 1):
    cells = []
    for runs in found.values():
        d = runs.get(w, {})
        cells.append(
            " / ".join(f"{d[k]:.3f}" if k in d else "–" for k in ("train/win_rate", "train/return", "test/win_rate"))
        )
    lines.append(f"| {w * WINDOW // 1000}–{(w + 1) * WINDOW // 1000}k | " + " | ".join(cells) + " |")
(HERE / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
