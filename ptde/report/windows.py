"""`python -m ptde.report.windows RUN [RUN ...] [--every 100000] [--columns ...]`: runs' metrics per
window of env steps, for runs still training too.

A football run is followed for days before it finishes, and the question on the way is whether it is
leaving the random floor: the training score rate, the greedy tests and their episode length per
100k env steps tell it. `ptde.report` reads finished runs only; this reads any run folder's
metrics.csv (or the file itself). A cell is the mean of the rows of metrics.csv logged in the window
[k·every, (k+1)·every) of env steps, each metric over the rows that logged it; blank where none did.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

COLUMNS = ("train/win_rate", "test/win_rate", "test/ep_length")  # the campaign READMEs' per-100k cells


def window_means(curves: pd.DataFrame, every: int, columns: Sequence[str] = COLUMNS) -> pd.DataFrame:
    """One row per window that logged anything (index: its first env step), one column per metric;
    NaN where the window logged no row of that metric. Raises KeyError naming the columns there are."""
    missing = [c for c in ("env_steps", *columns) if c not in curves]
    if missing:
        raise KeyError(f"no column {', '.join(missing)} in metrics.csv; it has: {', '.join(curves.columns)}")
    values = curves[["env_steps", *columns]].apply(pd.to_numeric, errors="coerce").dropna(subset=["env_steps"])
    start = (values["env_steps"] // every * every).astype(int).rename("window")
    return values[list(columns)].groupby(start).mean()


def read_metrics(run: Path) -> pd.DataFrame:
    """A run folder's metrics.csv, or the file itself."""
    path = run / "metrics.csv" if run.is_dir() else run
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (a run folder holds metrics.csv once it has logged)")
    return pd.read_csv(path)


def run_labels(paths: Sequence[Path]) -> list[str]:
    """A column name per run: its folder's name, with as many parent folders as it takes to tell it
    from the others (two campaigns' `qmix_3_vs_1_with_keeper_seed0` -> `eps/runs/...`, `grf/runs/...`);
    a metrics.csv path is named by its folder. The same run given twice is refused."""
    folders = [(p if p.is_dir() else p.parent).resolve() for p in paths]
    if len(set(folders)) < len(folders):
        twice = sorted({str(f) for f in folders if folders.count(f) > 1})
        raise ValueError(f"the same run given more than once: {', '.join(twice)}")
    depth = [1] * len(folders)
    while True:
        labels = ["/".join(f.parts[-d:]) for f, d in zip(folders, depth, strict=True)]
        clash = {i for i, label in enumerate(labels) if labels.count(label) > 1}
        if not clash:
            return labels
        for i in clash:
            depth[i] += 1


def steps_label(n: int) -> str:
    """900000 -> 900k, 1000000 -> 1M, 1550000 -> 1.55M: as the READMEs write env steps."""
    return f"{n / 1e6:g}M" if n >= 1_000_000 else f"{n // 1000}k" if n else "0"


def _cell(value: float) -> str:
    return "" if pd.isna(value) else f"{value:.0f}" if abs(value) >= 10 else f"{value:.3f}"


def windows_table(runs: dict[str, pd.DataFrame], every: int, columns: Sequence[str] = COLUMNS) -> str:
    """A markdown table: a row per window, a column per run, each cell its metrics joined by ` / `.
    The last row ends at the last env step any of the runs logged (a window still being filled)."""
    means = {name: window_means(df, every, columns) for name, df in runs.items()}
    last = max(int(pd.to_numeric(df["env_steps"], errors="coerce").max()) for df in runs.values())
    starts = sorted({int(s) for m in means.values() for s in m.index})
    lines = [
        f"| env steps | {' | '.join(runs)} |",
        "|---" * (len(runs) + 1) + "|",
    ]
    for start in starts:
        end = min(start + every, last // 1000 * 1000)
        label = f"{steps_label(start)}–{steps_label(end)}" if end > start else steps_label(start)
        cells = [" / ".join(_cell(v) for v in m.loc[start]) if start in m.index else "" for m in means.values()]
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return "\n".join(lines) + f"\n\nEach cell: {' / '.join(columns)}, the mean of the rows logged in the window.\n"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m ptde.report.windows", description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run folders (or metrics.csv files)")
    parser.add_argument("--every", type=int, default=100_000, help="window width in env steps")
    parser.add_argument("--columns", nargs="+", default=list(COLUMNS), help="metrics.csv columns to average")
    args = parser.parse_args(argv)
    if args.every <= 0:
        parser.error(f"--every must be a positive number of env steps, not {args.every}")
    try:
        runs = {label: read_metrics(run) for label, run in zip(run_labels(args.runs), args.runs, strict=True)}
        print(windows_table(runs, args.every, args.columns))
    except (KeyError, FileNotFoundError, ValueError) as exc:
        print(f"ptde.report.windows: {exc.args[0]}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
