"""`python -m ptde.tools.ltr_baselines --name synthetic`: the reference rankers (random scores and
LambdaMART, `ptde.envs.ltr_baselines`) on a learning-to-rank config's test split, as JSON; the same
numbers a ranking run writes to its results.json as `reference/*`."""

from __future__ import annotations

import argparse
from typing import Any

from ptde.envs.ltr_baselines import lambdamart_baseline, random_baseline
from ptde.envs.ranking import LTREnvConfig, prepare_ltr_data
from ptde.files import dumps_strict


def ltr_baselines(cfg: Any, seed: int = 0, **lgbm_params: Any) -> dict[str, dict[str, float]]:
    """{"random": {...}, "lambdamart": {...}} on the test split of the env config `cfg`."""
    data = prepare_ltr_data(cfg)
    return {
        "random": random_baseline(data.test.relevance, seed=seed),
        "lambdamart": lambdamart_baseline(data.train, data.test, seed=seed, **lgbm_params),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", default="synthetic", choices=["synthetic", "mslr"])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--fold", default="Fold1")
    parser.add_argument("--n-queries", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    cfg = LTREnvConfig(name=args.name, data_dir=args.data_dir, fold=args.fold, seed=args.seed)
    if args.n_queries is not None:
        cfg.n_queries = args.n_queries
    elif args.name == "synthetic":
        cfg.n_queries = cfg.synthetic_queries
    print(dumps_strict(ltr_baselines(cfg, seed=args.seed)))


if __name__ == "__main__":
    main()
