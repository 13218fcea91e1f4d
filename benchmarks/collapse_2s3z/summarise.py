"""Per run of the collapse campaigns: the peak test win rate and where, the lowest test after
the peak, and the last test at or before 200k env steps, from the committed metrics.csv -> summary.md.
Runs longer than 200k (the `long` and `lr_1e-4` groups, MAPPO's 300k) also get their whole run:
its budget, its peak, and the mean of its last ten tests (a 32-episode test alone has an SE up to 0.09).

MAPPO's 2s3z runs of issue 15 (benchmarks/mappo/{before,after}, 300k env steps, same SMAX map and
heuristic enemy) are read the same way, cut at 200k: they tell the env from the learner.

The conditions are the groups of conf/campaign/collapse_2s3z.yaml, in its order.

Run from the repo root: python benchmarks/collapse_2s3z/summarise.py
"""

import csv
from pathlib import Path

import yaml

HERE = Path(__file__).parent
BUDGET = 200_000
GROUPS = yaml.safe_load((HERE.parents[1] / "conf" / "campaign" / "collapse_2s3z.yaml").read_text())["groups"]
CONDITIONS = {
    **{g["name"]: sorted((HERE / g["name"] / "runs").glob("*")) for g in GROUPS},
    "mappo, before (#15)": sorted((HERE.parent / "mappo" / "before" / "runs").glob("mappo_2s3z_*")),
    "mappo, after (#15)": sorted((HERE.parent / "mappo" / "after" / "runs").glob("mappo_2s3z_*")),
}
lines = [
    "| condition | run | peak ≤ 200k (env steps) | lowest after the peak | last test ≤ 200k "
    "| whole run: env steps, peak (env steps), mean of the last 10 tests |",
    "|---|---|---|---|---|---|",
]


def peak(tests: list[tuple[int, float]]) -> int:
    """Index of the first highest test."""
    return max(range(len(tests)), key=lambda k: tests[k][1])


for cond, runs in CONDITIONS.items():
    for run in runs:
        rows = list(csv.DictReader((run / "metrics.csv").open()))
        every = [(int(float(r["env_steps"])), float(r["test/win_rate"])) for r in rows if r.get("test/win_rate")]
        tests = [t for t in every if t[0] <= BUDGET + 1000]  # a run's last test lands a few steps past it
        i = peak(tests)
        low = min(w for _, w in tests[i:])
        whole = "–"
        if every[-1][0] > BUDGET + 1000:
            j, last10 = peak(every), every[-10:]
            whole = (
                f"{every[-1][0] // 1000}k, {every[j][1]:.3f} ({every[j][0] // 1000}k), "
                f"{sum(w for _, w in last10) / len(last10):.3f}"
            )
        lines.append(
            f"| {cond} | {run.name} | {tests[i][1]:.3f} ({tests[i][0] // 1000}k) | {low:.3f} | {tests[-1][1]:.3f} "
            f"| {whole} |"
        )
(HERE / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
