"""Sample efficiency from the test curves in metrics.csv, for maps where the final score saturates.

Per run, from its greedy test curve (`test/<metric>` against env steps):
- `steps_to_threshold`: the env step of the first test at or above the threshold (NaN if never);
- `auc`: the area under the test curve divided by its env-step span (trapezoids over the logged
  tests), i.e. the curve's mean level in [0, 1]; a run that learns early scores higher;
- `peak` and `final`: the best and the last test, so a collapse after a peak is visible;
- `final_se`: the standard error of the final test, std / sqrt(episodes) of the metric over its
  `test/episodes` episodes (`test/<metric>_std`), the noise of one test around the policy's true
  score; a run that predates that key gets the binomial sqrt(p(1-p)/episodes), the same for a 0/1
  metric (win rate) and only an upper bound for a graded one (ndcg@k), so `se_is_bound` marks it.

Per (family, env, algo) the table gives how many seeds reached the threshold, the mean ± std
(ddof=0) of the steps over the seeds that did, and mean ± std of auc, peak and final.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ptde.report.runs import RunRecord, metric_curve
from ptde.report.tables import row_order

BINARY_METRICS = {"win_rate"}  # a 0/1 outcome per episode (football's goals too): the binomial SE is exact


def curve_efficiency(steps: np.ndarray, score: np.ndarray, threshold: float) -> dict[str, float]:
    """steps [T] ascending, score [T] -> steps_to_threshold, auc, peak, final."""
    hit = np.flatnonzero(score >= threshold)
    span = steps[-1] - steps[0]
    auc = float(np.trapezoid(score, steps) / span) if span > 0 else float(score[0])
    return {
        "steps_to_threshold": float(steps[hit[0]]) if len(hit) else float("nan"),
        "auc": auc,
        "peak": float(score.max()),
        "final": float(score[-1]),
    }


def final_standard_error(results: dict, metric: str, final: float) -> dict[str, float | bool]:
    """final_se and se_is_bound of a run's final test (see the module's docstring)."""
    episodes = float(results.get("test/episodes", float("nan")))
    std = results.get(f"test/{metric}_std")
    if std is not None and np.isfinite(std):
        return {"final_se": float(std / np.sqrt(episodes)), "se_is_bound": False}
    se = float(np.sqrt(final * (1 - final) / episodes)) if final <= 1 else float("nan")
    return {"final_se": se, "se_is_bound": metric not in BINARY_METRICS}


def run_efficiency(records: list[RunRecord], threshold: float) -> pd.DataFrame:
    """One row per run with a test curve: family, env, algo, seed and the curve_efficiency values."""
    rows = []
    for r in records:
        curve = metric_curve(r.curves, "env_steps", f"test/{r.metric}")
        if curve is not None:
            base = {"family": r.family, "env": r.env, "algo": r.algo, "seed": r.seed, "metric": r.metric}
            eff = curve_efficiency(*curve, threshold)
            rows.append(base | eff | final_standard_error(r.results, r.metric, eff["final"]))
    cols = ["family", "env", "algo", "seed", "metric", "steps_to_threshold", "auc", "peak", "final"]
    cols += ["final_se", "se_is_bound"]
    return pd.DataFrame(rows, columns=cols)


def efficiency_table(per_run: pd.DataFrame, family: str, threshold: float) -> pd.DataFrame:
    """The family's sample-efficiency table as strings: one row per (env, algo)."""

    def ms(v: pd.Series, fmt: str) -> str:
        v = v.dropna()
        return "–" if v.empty else f"{format(v.mean(), fmt)} ± {format(float(np.std(v, ddof=0)), fmt)}"

    f = per_run[per_run["family"] == family]
    metric = f["metric"].iloc[0] if len(f) else "score"
    rows = {}
    for env in sorted(f["env"].unique()):
        e = f[f["env"] == env]
        for algo in row_order(list(e["algo"].unique())):
            a = e[e["algo"] == algo]
            reached = a["steps_to_threshold"].notna()
            rows[(env, algo)] = {
                f"seeds reaching {metric} ≥ {threshold:g}": f"{int(reached.sum())}/{len(a)}",
                "env steps to first ≥ threshold": ms(a["steps_to_threshold"] / 1e3, ".0f").replace(" ±", "k ±") + "k"
                if reached.any()
                else "never",
                "AUC (mean test score)": ms(a["auc"], ".3f"),
                "peak test": ms(a["peak"], ".3f"),
                "final test": ms(a["final"], ".3f"),
                "SE of one final test": ("≤ " if a["se_is_bound"].any() else "") + f"{a['final_se'].mean():.3f}"
                if a["final_se"].notna().any()
                else "–",
            }
    table = pd.DataFrame.from_dict(rows, orient="index")
    if len(table):
        table.index = [f"{env} / {algo}" for env, algo in table.index]
    return table.rename_axis("map / algorithm")
