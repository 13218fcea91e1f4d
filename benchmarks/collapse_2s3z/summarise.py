"""Per run of the collapse campaigns: the peak test win rate and where, the lowest test after
the peak, and the final test, from the committed metrics.csv files -> summary.md.

Run from the repo root: python benchmarks/collapse_2s3z/summarise.py
"""

import csv
from pathlib import Path

HERE = Path(__file__).parent
lines = [
    "| condition | run | peak (env steps) | lowest after the peak | final (200k) |",
    "|---|---|---|---|---|",
]
for cond in ("default", "lr", "target"):
    for run in sorted((HERE / cond / "runs").glob("*")):
        rows = list(csv.DictReader((run / "metrics.csv").open()))
        tests = [(int(float(r["env_steps"])), float(r["test/win_rate"])) for r in rows if r.get("test/win_rate")]
        i = max(range(len(tests)), key=lambda k: tests[k][1])
        low = min(w for _, w in tests[i:])
        lines.append(
            f"| {cond} | {run.name} | {tests[i][1]:.3f} ({tests[i][0] // 1000}k) | {low:.3f} | {tests[-1][1]:.3f} |"
        )
(HERE / "summary.md").write_text("\n".join(lines) + "\n")
print("\n".join(lines))
