"""Learning curves (mean with a std band over seeds, x = env steps) and the distillation loss
curve (paper Figure 7), one PNG per map, with matplotlib."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from ptde.report.runs import RunRecord, metric_curve  # noqa: E402
from ptde.report.tables import kd_label, row_order  # noqa: E402

SCORE_RANGE = (-0.03, 1.03)  # win rate and NDCG@10 lie in [0, 1]


def seed_band(series: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and std (ddof=0) over seeds of curves logged at possibly different x: each seed is
    interpolated onto the union of the x values up to the shortest seed's last x."""
    end = min(x[-1] for x, _ in series)
    grid = np.unique(np.concatenate([x[x <= end] for x, _ in series]))
    ys = np.stack([np.interp(grid, x, y) for x, y in series])  # [seeds, len(grid)]
    return grid, ys.mean(0), ys.std(0)


def colors(labels: list[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {label: cmap(i % 10) for i, label in enumerate(row_order(labels))}


def plot_learning_curves(records: list[RunRecord], path: Path, title: str) -> bool:
    """Test success metric against env steps per algorithm; the KD students' final score as a point."""
    metric = records[0].metric
    by_algo: dict[str, list[RunRecord]] = {}
    for r in records:
        by_algo.setdefault(r.algo, []).append(r)
    labels = list(by_algo) + sorted({kd_label(r) for r in records if f"eval/decentralized_{metric}" in r.results})
    color = colors(labels)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    drawn = False
    for algo in row_order(list(by_algo)):
        series = [c for r in by_algo[algo] if (c := metric_curve(r.curves, "env_steps", f"test/{metric}")) is not None]
        if not series:
            continue
        x, mean, std = seed_band(series)
        ax.plot(x, mean, color=color[algo], label=f"{algo} (n={len(series)})")
        ax.fill_between(x, mean - std, mean + std, color=color[algo], alpha=0.2, linewidth=0)
        drawn = True
        key = f"eval/decentralized_{metric}"
        kd = [r.results[key] for r in by_algo[algo] if key in r.results]
        if kd:
            label = kd_label(by_algo[algo][0])
            ax.errorbar(
                [x[-1]], [np.mean(kd)], yerr=[np.std(kd)], fmt="D", color=color[label], capsize=4,
                label=f"{label} after stage 2 (n={len(kd)})",
            )  # fmt: skip
    if not drawn:
        plt.close(fig)
        return False
    ax.set_xlabel("env steps")
    ax.set_ylim(*SCORE_RANGE)
    ax.set_ylabel(f"test {metric}")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def plot_distillation(records: list[RunRecord], path: Path, title: str) -> bool:
    """Figure 7: distillation train/validation MSE against distillation steps (mean ± std over seeds),
    and the teacher's (centralized) and student's (decentralized) final test score per teacher.

    The paper's right panel follows the student's win rate during distillation; stage 2 here
    evaluates the student once, after distillation, so the right panel shows those end points.
    """
    with_distill = [r for r in records if r.distill is not None]
    if not with_distill:
        return False
    metric = with_distill[0].metric
    teachers = row_order(sorted({r.algo for r in with_distill}))
    color = colors(teachers)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4), gridspec_kw={"width_ratios": [2, 1]})
    for teacher in teachers:
        runs = [r for r in with_distill if r.algo == teacher]
        for column, style in (("distill/train_mse", "-"), ("distill/val_mse", "--")):
            series = [c for r in runs if (c := metric_curve(r.distill, "step", column)) is not None]
            if not series:
                continue
            x, mean, std = seed_band(series)
            ax.plot(x, mean, style, color=color[teacher], label=f"{teacher} {column.split('/')[1]} (n={len(series)})")
            ax.fill_between(x, mean - std, mean + std, color=color[teacher], alpha=0.15, linewidth=0)
    ax.set_yscale("log")
    ax.set_xlabel("distillation steps (batches of the teacher data)")
    ax.set_ylabel("squared error of the student's z")
    ax.set_title(f"{title}: distillation loss")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    for i, teacher in enumerate(teachers):
        runs = [r for r in with_distill if r.algo == teacher and f"eval/centralized_{metric}" in r.results]
        for j, (kind, hatch) in enumerate((("centralized", ""), ("decentralized", "//"))):
            values = [r.results[f"eval/{kind}_{metric}"] for r in runs]
            if values:
                pos = i * 3 + j
                bx.bar(pos, np.mean(values), yerr=np.std(values), color=color[teacher], hatch=hatch, capsize=4)
                bx.scatter([pos] * len(values), values, color="black", s=10, zorder=3)
    bx.set_xticks(
        [i * 3 + j for i in range(len(teachers)) for j in range(2)],
        [f"{t}\n{k}" for t in teachers for k in ("teacher", "student")],
        fontsize=7,
    )
    bx.set_ylim(*SCORE_RANGE)
    bx.set_ylabel(f"test {metric} (same episodes)")
    bx.set_title("after distillation")
    bx.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
