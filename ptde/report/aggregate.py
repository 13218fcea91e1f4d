"""Aggregates across maps for the universality claim: interquartile mean (IQM) and mean of the final
success metric over all (seed, map) scores of an algorithm, with stratified-bootstrap 95%
confidence intervals (Agarwal et al., 2021).

The aggregate functions are `rliable.metrics`' own. rliable's bootstrap (`rliable.library`) is not
used: it imports `arch` 7.2.0, which fails to import under the installed pandas 3.1 (a
`deprecate_kwarg` signature change), so the stratified bootstrap, rliable's default percentile
method, is done here with numpy: each replicate resamples the seeds of every map with replacement.

The scores are used as they are: win rate and NDCG@10 already lie in [0, 1], so no per-map
normalisation is applied. rliable needs the same number of seeds on every map: an algorithm
with fewer seeds on some map is cut to its smallest seed count (noted in the table), and an
algorithm missing a map is left out of that family's aggregate (noted as an issue).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from rliable import metrics

from ptde.report.tables import row_order


def score_matrices(scores: pd.DataFrame, issues: list[str], label: str) -> dict[str, np.ndarray]:
    """{row: [n_seeds, n_maps]} of the shown rows (test and kd) of one group of maps."""
    shown = scores[scores["kind"] != "centralized"]
    envs = sorted(shown["env"].unique())
    out = {}
    for row in row_order(list(shown["row"].unique())):
        per_env = [shown[(shown["row"] == row) & (shown["env"] == env)].sort_values("seed")["value"] for env in envs]
        if any(v.empty for v in per_env):
            missing = [env for env, v in zip(envs, per_env, strict=True) if v.empty]
            issues.append(f"aggregate {label}: {row} left out, it has no run on {', '.join(missing)}")
            continue
        n = min(len(v) for v in per_env)
        out[row] = np.stack([v.to_numpy()[:n] for v in per_env], axis=1)  # [n_seeds, n_maps]
    return out


def stratified_bootstrap_ci(
    scores: np.ndarray, func, reps: int, rng: np.random.Generator, size: float = 0.95
) -> np.ndarray:
    """Percentile CI of func(scores) with the runs of each task resampled with replacement.

    scores [n_runs, n_tasks]; returns [2 (low, high), len(func(scores))].
    """
    n_runs, n_tasks = scores.shape
    idx = rng.integers(0, n_runs, size=(reps, n_runs, n_tasks))  # [reps, n_runs, n_tasks]
    samples = np.take_along_axis(scores[None], idx, axis=1)  # [reps, n_runs, n_tasks]
    stats = np.stack([func(s) for s in samples])  # [reps, k]
    tail = (1 - size) / 2 * 100
    return np.percentile(stats, [tail, 100 - tail], axis=0)


def iqm_table(scores: pd.DataFrame, issues: list[str], label: str, reps: int, seed: int) -> pd.DataFrame:
    """IQM and mean with 95% stratified-bootstrap CIs, one row per algorithm."""
    matrices = score_matrices(scores, issues, label)
    if not matrices:
        return pd.DataFrame()

    def aggregates(x: np.ndarray) -> np.ndarray:
        return np.array([metrics.aggregate_iqm(x), metrics.aggregate_mean(x)])

    rng = np.random.default_rng(seed)
    rows = []
    for row, m in matrices.items():
        iqm, mean = aggregates(m)
        ci = stratified_bootstrap_ci(m, aggregates, reps, rng)  # [2 (low, high), 2 (iqm, mean)]
        rows.append(
            {
                "algorithm": row,
                "IQM": iqm,
                "IQM 95% CI": f"[{ci[0, 0]:.3f}, {ci[1, 0]:.3f}]",
                "mean": mean,
                "mean 95% CI": f"[{ci[0, 1]:.3f}, {ci[1, 1]:.3f}]",
                "seeds x maps": f"{m.shape[0]} x {m.shape[1]}",
            }
        )
    return pd.DataFrame(rows).set_index("algorithm")
