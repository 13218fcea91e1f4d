"""Learning to rank as a one-step cooperative game (PTDE Section 4.3).

Each document of a query is an agent. Agent i observes [query features ⊕ its document's
features]; the state is [query features ⊕ every document's features]. MSLR's 136 features are
already query-document features, so the query features here are the mean of the slate's
(normalised) document features. Every agent picks a score 0..n_scores-1 at once, the documents
are sorted by score and the shared reward is NDCG@k of that ranking; the episode then terminates
(one step, `episode_limit=1`).

The reward is NDCG@k as `ptde.envs.ndcg` computes it (LightGBM's conventions, ties kept in slate order);
- `won` is a perfect ranking (NDCG@k = 1), so an all-irrelevant slate is always won.

Test split: `reset()` walks through all test queries in order, `batch_size` at a time; a sweep
takes `sweep_batches` resets, and the last batch is padded with queries from the start of the
split that `info["valid"]` marks False (average metrics over valid entries only). `reset(seed=...)`
restarts the sweep at query 0. Training split: queries are drawn in a fresh random order per
epoch from a generator seeded with `seed`. With `auto_reset=True` every `step` scores the current
queries and serves the next batch at once (each step is then one whole episode per env). The data and the train/test split depend only on the
config (`cfg.seed`), never on the run seed, so every run of a sweep sees the same test set.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import MISSING

from ptde.envs.base import EnvAdapter, Step
from ptde.envs.letor import (
    FeatureNormalizer,
    QuerySet,
    load_letor,
    split_queries,
    subsample_queries,
    write_synthetic_letor,
)
from ptde.envs.ltr_baselines import lambdamart_baseline, random_baseline
from ptde.envs.ndcg import ndcg_at_k
from ptde.errors import ConfigError
from ptde.nested import ConfigView

DATASETS = ("mslr", "synthetic")
MSLR_URL = "https://www.microsoft.com/en-us/research/project/mslr/"


class FeatureNorm(str, Enum):
    log1p_zscore = "log1p_zscore"
    zscore = "zscore"
    minmax = "minmax"
    none = "none"


@dataclass
class LTREnvConfig:
    """Learning to rank on MSLR-WEB30K (or synthetic data of the same shape)."""

    family: str = "ltr"
    name: str = MISSING  # mslr | synthetic (a str, not an Enum: it is interpolated into run folders)
    # mslr: the folder holding Fold1..Fold5 (or one fold's {train,vali,test}.txt). synthetic: where
    # the generated file goes; None -> $PTDE_DATA_DIR/ltr, default ~/.cache/ptde/ltr.
    data_dir: str | None = None
    fold: str = "Fold1"
    pool_files: list[str] = field(default_factory=lambda: ["train"])  # files of the fold to sample from
    n_queries: int = 10_000  # queries sampled (paper: 10,000)
    docs_per_query: int = 10  # documents (= agents) per query
    max_relevant: int = 5  # relevant documents drawn first into each slate
    train_fraction: float = 0.7  # paper: 7:3
    normalization: FeatureNorm = FeatureNorm.log1p_zscore  # fitted on the training split
    k: int = 10  # reward = NDCG@k
    n_scores: int = 10  # actions: scores 0..n_scores-1
    batch_size_run: int = 8
    episode_limit: int = 1
    synthetic_queries: int = 2000  # size of the generated set (name=synthetic)
    synthetic_docs_per_query: int = 20
    synthetic_features: int = 136
    seed: int = 0  # synthetic generation, subsampling and split


# --------------------------------------------------------------------------- data
@dataclass
class LTRData:
    """The normalised train and test slates of one config."""

    train: QuerySet
    test: QuerySet
    normalizer: FeatureNormalizer
    files: list[Path]


def _value(x: Any) -> Any:
    return getattr(x, "value", x)


def default_data_dir() -> Path:
    return Path(os.environ.get("PTDE_DATA_DIR", "~/.cache/ptde")).expanduser() / "ltr"


def resolve_data_files(cfg: Any) -> list[Path]:
    """The LETOR files the query pool comes from; generates the synthetic file when absent."""
    name = _value(cfg.name)
    if name == "synthetic":
        root = Path(cfg.data_dir).expanduser() if cfg.data_dir else default_data_dir()
        tag = f"synthetic-q{cfg.synthetic_queries}-d{cfg.synthetic_docs_per_query}"
        path = root / f"{tag}-f{cfg.synthetic_features}-seed{cfg.seed}" / cfg.fold / "train.txt"
        if not path.is_file():
            write_synthetic_letor(
                path, cfg.synthetic_queries, cfg.synthetic_docs_per_query, cfg.synthetic_features, cfg.seed
            )
        return [path]
    if name != "mslr":
        raise ValueError(f"unknown learning-to-rank dataset {name!r}; valid: {', '.join(DATASETS)}")
    if not cfg.data_dir:
        raise FileNotFoundError(
            "env.data_dir is not set: point it (or $PTDE_MSLR_DIR) at the MSLR-WEB30K folder holding "
            f"Fold1..Fold5, downloaded from {MSLR_URL}"
        )
    root = Path(cfg.data_dir).expanduser()
    folder = root / cfg.fold if (root / cfg.fold).is_dir() else root
    files = [folder / f"{f}.txt" for f in cfg.pool_files]
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"MSLR file not found: {f} (expected {root}/{cfg.fold}/<split>.txt)")
    return files


def check_config(env: dict[str, Any]) -> None:
    """A missing MSLR file fails before any run folder is written (synthetic data is made on first use)."""
    if env["name"] == "synthetic":
        return
    try:
        resolve_data_files(ConfigView(env))
    except (FileNotFoundError, ValueError) as exc:
        raise ConfigError(str(exc)) from None


_DATA_CACHE: dict[tuple, LTRData] = {}


def prepare_ltr_data(cfg: Any) -> LTRData:
    """Load, subsample, split and normalise; memoised per process (train env, test env, baselines)."""
    files = resolve_data_files(cfg)
    stats = tuple((str(f.resolve()), f.stat().st_size, f.stat().st_mtime_ns) for f in files)
    norm = _value(cfg.normalization)
    key = (stats, cfg.n_queries, cfg.docs_per_query, cfg.max_relevant, cfg.train_fraction, norm, cfg.seed)
    if key not in _DATA_CACHE:
        sources = [load_letor(f) for f in files]
        queries = subsample_queries(sources, cfg.n_queries, cfg.docs_per_query, cfg.max_relevant, cfg.seed)
        train, test = split_queries(queries, cfg.train_fraction, cfg.seed)
        normalizer = FeatureNormalizer(norm).fit(train.features)
        train.features = normalizer.transform(train.features)
        test.features = normalizer.transform(test.features)
        if len(_DATA_CACHE) >= 4:
            _DATA_CACHE.pop(next(iter(_DATA_CACHE)))
        _DATA_CACHE[key] = LTRData(train, test, normalizer, files)
    return _DATA_CACHE[key]


# --------------------------------------------------------------------------- environment
class RankingEnv(EnvAdapter):
    """B ranking episodes (one query each) stepped together; see the module docstring."""

    def __init__(
        self, cfg: Any, batch_size: int, seed: int = 0, split: str = "train", auto_reset: bool = False
    ) -> None:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if cfg.episode_limit != 1:
            raise ValueError(f"learning to rank is a one-step game; episode_limit must be 1, got {cfg.episode_limit}")
        self.cfg = cfg
        self.batch_size = batch_size
        self.split = split
        self.auto_reset = auto_reset
        data = prepare_ltr_data(cfg)
        queries = data.train if split == "train" else data.test
        if len(queries) == 0:
            raise ValueError(f"the {split} split is empty; raise n_queries or change train_fraction")
        self._docs = torch.from_numpy(queries.features)  # [Q, n, F]
        self._query = self._docs.mean(dim=1)  # [Q, F]
        self._relevance = torch.from_numpy(queries.relevance)  # [Q, n]
        self.query_ids = torch.from_numpy(queries.qids)  # [Q]
        self.n_queries = len(queries)
        self.n_agents = int(self._docs.shape[1])
        self.n_features = int(self._docs.shape[2])
        self.n_actions = int(cfg.n_scores)
        self.obs_dim = 2 * self.n_features
        self.state_dim = self.n_features * (1 + self.n_agents)
        self.k = int(cfg.k)
        self.episode_limit = 1
        self.success_metric = f"ndcg@{self.k}"
        self.sweep_batches = -(-self.n_queries // batch_size)  # test resets per full sweep
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._order = np.zeros(0, np.int64)  # training epoch order still to serve
        self._cursor = 0  # position in the test sweep
        self._index: torch.Tensor | None = None
        self._last: Step | None = None
        self._done = False

    def _next_queries(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Query indices [B] of the next batch and whether each is a real (not padding) entry."""
        b = self.batch_size
        if self.split == "test":
            pos = self._cursor + np.arange(b)
            self._cursor = 0 if self._cursor + b >= self.n_queries else self._cursor + b
            return torch.from_numpy(pos % self.n_queries), torch.from_numpy(pos < self.n_queries)
        while self._order.size < b:
            self._order = np.concatenate([self._order, self._rng.permutation(self.n_queries)])
        idx, self._order = self._order[:b], self._order[b:]
        return torch.from_numpy(idx), torch.ones(b, dtype=torch.bool)

    def reset(self, seed: int | None = None) -> Step:
        if seed is not None:
            self._rng = np.random.default_rng(seed)
            self._order = np.zeros(0, np.int64)
            self._cursor = 0
        idx, valid = self._next_queries()
        self._index = idx
        docs = self._docs[idx]  # [B, n, F]
        query = self._query[idx]  # [B, F]
        b, n = docs.shape[:2]
        obs = torch.cat([query.unsqueeze(1).expand(b, n, -1), docs], dim=-1)  # [B, n, 2F]
        state = torch.cat([query, docs.reshape(b, -1)], dim=-1)  # [B, F + n F]
        false = torch.zeros(b, dtype=torch.bool)
        self._last = Step(
            obs=obs,
            state=state,
            avail_actions=torch.ones(b, n, self.n_actions, dtype=torch.bool),  # [B, n, A]
            reward=torch.zeros(b),
            terminated=false,
            truncated=false.clone(),
            won=false.clone(),
            info={"query_index": idx, "valid": valid},
        )
        self._done = False
        return self._last

    def step(self, actions: torch.Tensor) -> Step:
        """Score the documents with `actions` [B, n] and end every episode."""
        if self._last is None or self._index is None:
            raise RuntimeError("call reset() before step()")
        last = self._last
        b = self.batch_size
        false = torch.zeros(b, dtype=torch.bool)
        if self._done:  # frozen: outputs repeat, no reward, no new termination
            info = {key: torch.zeros_like(v) if key.startswith("ndcg") else v for key, v in last.info.items()}
            return Step(
                last.obs,
                last.state,
                last.avail_actions,
                torch.zeros(b),
                false,
                false.clone(),
                false.clone(),
                info,
            )
        actions = torch.as_tensor(actions).reshape(b, self.n_agents)
        if actions.min() < 0 or actions.max() >= self.n_actions:
            raise ValueError(f"actions must be scores in 0..{self.n_actions - 1}")
        rel = self._relevance[self._index]  # [B, n]
        scores = actions.to(torch.float64)
        reward = ndcg_at_k(scores, rel, self.k)  # [B]
        info = dict(last.info)
        for k in (1, 5, 10):
            info[f"ndcg@{k}"] = ndcg_at_k(scores, rel, k)  # [B]
        self._done = True
        self._last = Step(
            obs=last.obs,
            state=last.state,
            avail_actions=last.avail_actions,
            reward=reward,
            terminated=torch.ones(b, dtype=torch.bool),
            truncated=false,
            won=reward >= 1.0 - 1e-6,
            info=info,
        )
        if self.auto_reset:  # the next queries' episodes start now
            scored = self._last
            fresh = self.reset()
            return Step(
                fresh.obs, fresh.state, fresh.avail_actions, scored.reward, scored.terminated, scored.truncated,
                scored.won, scored.info, final_obs=scored.obs, final_state=scored.state,
            )  # fmt: skip
        return self._last

    def rng_state(self) -> dict[str, Any]:
        """Where the query stream stands (the epoch generator, the rest of the current epoch's order,
        the test sweep's position), saved in checkpoints so a resumed run is served the queries the
        uninterrupted one would have been (plain values and tensors: checkpoints load weights_only)."""
        return {
            "generator": self._rng.bit_generator.state,
            "order": torch.from_numpy(self._order.copy()),
            "cursor": self._cursor,
        }

    def set_rng_state(self, state: dict[str, Any]) -> None:
        self._rng = np.random.default_rng()
        self._rng.bit_generator.state = state["generator"]
        self._order = state["order"].numpy().astype(np.int64)
        self._cursor = int(state["cursor"])

    @property
    def relevance(self) -> torch.Tensor:
        """True grades [B, n] of the current batch (for checks and oracle baselines)."""
        if self._index is None:
            raise RuntimeError("call reset() first")
        return self._relevance[self._index]

    def reference_metrics(self, seed: int) -> dict[str, float]:
        """NDCG of random scores and of LightGBM's LambdaMART on the same test split, so a ranking
        run's table shows where the MARL rankers stand (LambdaMART needs the `ltr` extra)."""
        data = prepare_ltr_data(self.cfg)
        out = {f"reference/random/{k}": v for k, v in random_baseline(data.test.relevance, seed=seed).items()}
        try:
            out |= {
                f"reference/lambdamart/{k}": v for k, v in lambdamart_baseline(data.train, data.test, seed=seed).items()
            }
        except ImportError:
            pass  # lightgbm not installed: the random reference alone
        return out

    def close(self) -> None:
        self._last = None
        self._index = None
