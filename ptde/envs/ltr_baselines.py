"""Reference rankers on the ranking environment's own split: random scores and LambdaMART.

Both are scored with `ranking_metrics`, i.e. exactly as the environment rewards agents (same
NDCG conventions, same slates of `docs_per_query` documents, same normalised features), so the
MARL numbers sit between these two. LambdaMART is LightGBM's `lambdarank` objective (the
`lightgbm` package, an optional dependency) fitted on the training slates' document features.

On the command line: `python -m ptde.tools.ltr_baselines --name synthetic` (or `--name mslr --data-dir DIR`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ptde.envs.letor import QuerySet
from ptde.envs.ndcg import ranking_metrics

LAMBDAMART_DEFAULTS: dict[str, Any] = {
    "objective": "lambdarank",
    "num_iterations": 300,
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 20,
    "deterministic": True,
    "force_row_wise": True,
    # One thread: the slates are small (7,000 x 10 rows on MSLR), and OpenMP's spinning barriers
    # made 2 threads ~10x slower than 1 on a busy 2-core machine. Pass num_threads=N to override.
    "num_threads": 1,
    "verbose": -1,
}


def random_baseline(relevance: np.ndarray, seed: int = 0, n_draws: int = 10) -> dict[str, float]:
    """Expected NDCG of uniformly random rankings (mean over `n_draws` draws of continuous scores)."""
    rng = np.random.default_rng(seed)
    relevance = np.asarray(relevance)  # [Q, n]
    draws = [ranking_metrics(rng.random(relevance.shape), relevance) for _ in range(n_draws)]
    return {key: float(np.mean([d[key] for d in draws])) for key in draws[0]}


def lambdamart_baseline(train: QuerySet, test: QuerySet, seed: int = 0, **params: Any) -> dict[str, float]:
    """Fit LightGBM LambdaMART on `train`; its NDCG on `test`. `params`: LightGBM parameters over the defaults."""
    try:
        import lightgbm as lgb
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError("the LambdaMART baseline needs lightgbm: pip install 'ptde[ltr]'") from err
    q, n, f = train.features.shape
    # LightGBM's native API (its sklearn wrapper would pull in scikit-learn for nothing)
    dataset = lgb.Dataset(train.features.reshape(q * n, f), train.relevance.reshape(-1), group=np.full(q, n))
    booster = lgb.train({**LAMBDAMART_DEFAULTS, "seed": seed, **params}, dataset)
    tq, tn, _ = test.features.shape
    scores = booster.predict(test.features.reshape(tq * tn, f)).reshape(tq, tn)  # [Q_test, n]
    return ranking_metrics(scores, test.relevance)
