"""Learning-to-rank environment: NDCG conventions, the LETOR loader and cache, subsampling, episodes."""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from ptde.envs.base import MultiAgentEnv
from ptde.envs.letor import (
    FeatureNormalizer,
    cache_dir,
    load_letor,
    parse_letor,
    split_queries,
    subsample_queries,
    write_synthetic_letor,
)
from ptde.envs.ndcg import ndcg_at_k, ranking_metrics
from ptde.envs.ranking import LTREnvConfig, RankingEnv, prepare_ltr_data

REPO = Path(__file__).resolve().parents[1]


def g(rel: int) -> float:
    return 2.0**rel - 1.0


def d(rank: int) -> float:
    return 1.0 / math.log2(rank + 1)


def tiny_cfg(tmp_path: Path, **kw) -> LTREnvConfig:
    base = dict(
        name="synthetic",
        data_dir=str(tmp_path),
        synthetic_queries=60,
        synthetic_docs_per_query=12,
        synthetic_features=8,
        n_queries=60,
    )
    return LTREnvConfig(**{**base, **kw})


# --------------------------------------------------------------------------- NDCG
def test_ndcg_hand_computed() -> None:
    rel = [3, 2, 0, 1]
    assert ndcg_at_k(np.array([4.0, 3, 1, 2]), np.array(rel), 4) == pytest.approx(1.0)
    # reversed: ranked grades 1, 0, 2, 3
    idcg = g(3) * d(1) + g(2) * d(2) + g(1) * d(3)
    dcg = g(1) * d(1) + g(2) * d(3) + g(3) * d(4)
    assert ndcg_at_k(np.array([1.0, 2, 3, 4]), np.array(rel), 4) == pytest.approx(dcg / idcg)
    assert dcg / idcg == pytest.approx(0.5871244, abs=1e-6)
    # @2 of the same ranking: only grade 1 then 0 count
    assert ndcg_at_k(np.array([1.0, 2, 3, 4]), np.array(rel), 2) == pytest.approx(g(1) / (g(3) + g(2) * d(2)))
    # k larger than the slate is the full list
    assert ndcg_at_k(np.array([1.0, 2, 3, 4]), np.array(rel), 50) == pytest.approx(dcg / idcg)


def test_ndcg_ties_keep_slate_order() -> None:
    # all tied: the order is the slate order -> grades 0 then 3
    assert ndcg_at_k(np.array([5.0, 5.0]), np.array([0, 3]), 2) == pytest.approx(g(3) * d(2) / g(3))
    assert ndcg_at_k(np.array([5.0, 5.0]), np.array([3, 0]), 2) == pytest.approx(1.0)
    # scores [1, 2, 2]: documents 1 and 2 tie on top, 1 first -> grades 0, 1, 2
    val = ndcg_at_k(np.array([1.0, 2, 2]), np.array([2, 0, 1]), 2)
    assert val == pytest.approx(g(1) * d(2) / (g(2) + g(1) * d(2)))


def test_ndcg_all_irrelevant_is_one_and_batched_types() -> None:
    scores = torch.tensor([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    rel = torch.tensor([[0, 0, 0], [0, 0, 1], [0, 0, 1]])
    out = ndcg_at_k(scores, rel, 3)
    assert isinstance(out, torch.Tensor) and out.dtype == torch.float32 and out.shape == (3,)
    assert out[0].item() == pytest.approx(1.0)
    assert out[1].item() == pytest.approx(d(3))
    assert out[2].item() == pytest.approx(d(3))
    np_out = ndcg_at_k(scores.numpy(), rel.numpy(), 3)
    assert isinstance(np_out, np.ndarray)
    np.testing.assert_allclose(np_out, out.numpy(), rtol=1e-6)
    m = ranking_metrics(scores, rel)
    assert set(m) == {"ndcg@1", "ndcg@5", "ndcg@10"}
    assert m["ndcg@1"] == pytest.approx(1.0 / 3.0)  # only the all-zero query has its best on top
    assert m["ndcg@10"] == pytest.approx((1.0 + 2 * d(3)) / 3.0)


def test_ndcg_equals_lightgbm_metric_with_ties_and_empty_queries() -> None:
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(0)
    q, n = 120, 8
    rel = rng.integers(0, 5, (q, n))
    rel[:15] = 0
    scores = rng.integers(0, 3, (q, n)).astype(np.float64)  # many ties
    ds = lgb.Dataset(rng.standard_normal((q * n, 2)), rel.ravel(), group=np.full(q, n), init_score=scores.ravel())
    res: dict = {}
    params = dict(
        objective="lambdarank",
        metric="ndcg",
        eval_at=[1, 3, 8],
        num_iterations=1,
        min_data_in_leaf=10**6,  # no split: predictions stay the init scores (plus a constant)
        min_sum_hessian_in_leaf=1e9,
        verbose=-1,
        num_threads=1,
    )
    lgb.train(params, ds, valid_sets=[ds], valid_names=["v"], callbacks=[lgb.record_evaluation(res)])
    for k in (1, 3, 8):
        assert ndcg_at_k(scores, rel, k).mean() == pytest.approx(res["v"][f"ndcg@{k}"][0], abs=1e-9)


# --------------------------------------------------------------------------- loader
def _reference_parse(path: Path) -> tuple[list[int], list[int], list[dict[int, float]]]:
    rels, qids, feats = [], [], []
    for line in path.read_text().splitlines():
        body = line.split("#")[0].split()
        rels.append(int(body[0]))
        qids.append(int(body[1].split(":")[1]))
        feats.append({int(t.split(":")[0]): float(t.split(":")[1]) for t in body[2:]})
    return rels, qids, feats


def test_loader_round_trip_and_cache(tmp_path: Path) -> None:
    path = write_synthetic_letor(tmp_path / "Fold1" / "train.txt", 9, (3, 7), n_features=7, seed=3)
    rels, qids, feats = _reference_parse(path)
    data = load_letor(path)
    assert data.features.shape == (len(rels), 7) and data.features.dtype == np.float32
    np.testing.assert_array_equal(data.relevance, rels)
    np.testing.assert_array_equal(data.qids, qids)
    expected = np.array([[f[j] for j in range(1, 8)] for f in feats], np.float32)
    np.testing.assert_array_equal(data.features, expected)
    assert set(np.unique(data.relevance)) <= {0, 1, 2, 3, 4}
    assert [len(r) for r in data.query_rows()] == [qids.count(q) for q in dict.fromkeys(qids)]
    assert (cache_dir(path) / "meta.json").is_file()
    again = load_letor(path)
    assert isinstance(again.features, np.memmap)  # served from the cache
    np.testing.assert_array_equal(again.features, expected)
    np.testing.assert_array_equal(again.relevance, rels)


def test_sparse_lines_comments_and_interleaved_qids(tmp_path: Path) -> None:
    path = tmp_path / "sparse.txt"
    path.write_text("# a header comment\n2 qid:7 1:0.5 3:-1.25 # docid = a\n\n0 qid:9 2:4\n1 qid:7 4:1e3\n")
    data = parse_letor(path)
    np.testing.assert_array_equal(data.features, [[0.5, 0, -1.25, 0], [0, 4, 0, 0], [0, 0, 0, 1000]])
    np.testing.assert_array_equal(data.relevance, [2, 0, 1])
    np.testing.assert_array_equal(data.qids, [7, 9, 7])
    assert [r.tolist() for r in data.query_rows()] == [[0, 2], [1]]


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        ("2 qid:1 1:0.5 2:abc", "not '<index>:<value>'"),
        ("2 qid:1 1:0.5 2 0.1", "not '<index>:<value>'"),  # numbers line up, a ':' is missing
        ("2 qid:1 2:0.5 1:0.1", "not increasing"),
        ("7 qid:1 1:0.5 2:0.1", "outside 0..4"),
        ("2 1:0.5 2:0.1 3:0.2", "not 'qid:<id>'"),
        ("x qid:1 1:0.5 2:0.1", "not an integer"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path: Path, bad: str, reason: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_text("1 qid:1 1:0.5 2:0.1\n0 qid:1 1:0.2 2:0.3\n" + bad + "\n0 qid:2 1:0.1 2:0.2\n")
    with pytest.raises(ValueError, match=rf"bad\.txt:3: .*{reason}") as err:
        load_letor(path)
    assert str(path) in str(err.value)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_letor(tmp_path / "nope.txt")
    with pytest.raises(FileNotFoundError, match="Fold1"):
        prepare_ltr_data(LTREnvConfig(name="mslr", data_dir=str(tmp_path)))


def test_cache_invalidated_when_file_changes(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text("1 qid:1 1:0.5\n0 qid:1 1:0.25\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert load_letor(path).relevance.tolist() == [1, 0]
    # same size, same mtime: the (stale) cache is trusted -- the key really is size + mtime
    path.write_text("3 qid:1 1:0.5\n0 qid:1 1:0.25\n")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    assert load_letor(path).relevance.tolist() == [1, 0]
    # a new mtime re-parses
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    assert load_letor(path).relevance.tolist() == [3, 0]
    # a new size re-parses
    path.write_text("3 qid:1 1:0.5\n0 qid:1 1:0.25\n4 qid:2 1:9\n")
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    data = load_letor(path)
    assert data.relevance.tolist() == [3, 0, 4] and data.features[:, 0].tolist() == [0.5, 0.25, 9.0]


# --------------------------------------------------------------------------- subsampling
def _pool_file(path: Path, rng: np.random.Generator) -> dict[int, dict[int, int]]:
    """Queries of varied size and relevance; feature 1 is a unique document id."""
    truth: dict[int, dict[int, int]] = {}
    lines, doc = [], 0
    for q in range(1, 161):
        size = [6, 9, 10, 25][q % 4]
        n_rel = [0, 1, 3, 12][(q // 4) % 4]
        grades = np.zeros(size, int)
        grades[: min(n_rel, size)] = rng.integers(1, 5, min(n_rel, size))
        truth[q] = {}
        for gr in rng.permutation(grades):
            doc += 1
            truth[q][doc] = int(gr)
            lines.append(f"{gr} qid:{q} 1:{doc} 2:{rng.normal():.4f}")
    path.write_text("\n".join(lines) + "\n")
    return truth


def test_subsampling_slates_and_split(tmp_path: Path) -> None:
    truth = _pool_file(tmp_path / "pool.txt", np.random.default_rng(1))
    data = load_letor(tmp_path / "pool.txt")
    qs = subsample_queries(data, n_queries=60, docs_per_query=10, max_relevant=5, seed=4)
    assert qs.features.shape == (60, 10, 2) and qs.relevance.shape == (60, 10)
    assert len(set(qs.qids.tolist())) == 60
    for q, feats, rel in zip(qs.qids.tolist(), qs.features, qs.relevance, strict=True):
        docs = feats[:, 0].astype(int).tolist()
        assert len(truth[q]) >= 10  # only queries with >= 10 documents
        assert len(set(docs)) == 10 and set(docs) <= set(truth[q])  # distinct docs of that query
        assert rel.tolist() == [truth[q][x] for x in docs]
        n_rel_query = sum(v > 0 for v in truth[q].values())
        assert (rel > 0).sum() >= min(n_rel_query, 5)  # relevant documents kept when there are some
    again = subsample_queries(data, n_queries=60, docs_per_query=10, seed=4)
    np.testing.assert_array_equal(again.features, qs.features)
    other = subsample_queries(data, n_queries=60, docs_per_query=10, seed=5)
    assert not np.array_equal(other.qids, qs.qids)
    with pytest.warns(UserWarning, match="only 80"):
        assert len(subsample_queries(data, n_queries=500, docs_per_query=10, seed=0)) == 80
    train, test = split_queries(qs, 0.7, seed=4)
    assert (len(train), len(test)) == (42, 18)
    assert set(train.qids.tolist()).isdisjoint(test.qids.tolist())
    assert set(train.qids.tolist()) | set(test.qids.tolist()) == set(qs.qids.tolist())


def test_normalisation_fitted_on_train_only(tmp_path: Path) -> None:
    data = prepare_ltr_data(tiny_cfg(tmp_path))
    assert (len(data.train), len(data.test)) == (42, 18)
    flat = data.train.features.reshape(-1, data.train.features.shape[-1])
    np.testing.assert_allclose(flat.mean(0), 0.0, atol=1e-5)
    np.testing.assert_allclose(flat.std(0), 1.0, atol=1e-4)
    test_flat = data.test.features.reshape(-1, flat.shape[1])
    assert np.abs(test_flat.mean(0)).max() > 1e-3  # the test split was not standardised on its own
    mm = FeatureNormalizer("minmax").fit(np.array([[0.0, 5.0], [10.0, 5.0]]))
    np.testing.assert_allclose(mm.transform(np.array([[5.0, 5.0], [20.0, 1.0]])), [[0.5, 0.0], [2.0, -4.0]])


# --------------------------------------------------------------------------- environment
def test_env_episode(tmp_path: Path) -> None:
    env = RankingEnv(tiny_cfg(tmp_path), batch_size=4, seed=0)
    assert isinstance(env, MultiAgentEnv)
    info = env.get_env_info()
    assert (info.n_agents, info.obs_dim, info.state_dim, info.n_actions) == (10, 16, 88, 10)
    assert info.episode_limit == 1 and info.success_metric == "ndcg@10"
    step = env.reset()
    assert step.obs.shape == (4, 10, 16) and step.obs.dtype == torch.float32
    assert step.state.shape == (4, 88) and step.state.dtype == torch.float32
    assert step.avail_actions.shape == (4, 10, 10) and step.avail_actions.dtype == torch.bool
    assert step.avail_actions.all() and not step.done.any()
    # obs = [query mean ⊕ doc]; state = [query mean ⊕ all docs]
    torch.testing.assert_close(step.obs[:, :, :8], step.obs[:, :, 8:].mean(1, keepdim=True).expand(-1, 10, -1))
    torch.testing.assert_close(step.state[:, 8:].reshape(4, 10, 8), step.obs[:, :, 8:])
    rel = env.relevance
    actions = torch.randint(0, 10, (4, 10))
    out = env.step(actions)
    for t in (out.reward, out.terminated, out.truncated, out.won):
        assert t.shape == (4,)
    assert out.terminated.all() and not out.truncated.any()
    torch.testing.assert_close(out.reward, ndcg_at_k(actions.float(), rel, 10))
    torch.testing.assert_close(out.info["ndcg@10"], out.reward)
    assert torch.equal(out.won, out.reward >= 1.0 - 1e-6)
    frozen = env.step(actions)  # already done: no reward, no new termination
    assert (frozen.reward == 0).all() and not frozen.done.any()
    env.reset()
    perfect = env.step(env.relevance * 2)  # scores follow the grades
    assert torch.allclose(perfect.reward, torch.ones(4)) and perfect.won.all()


def test_auto_reset_scores_the_queries_and_serves_the_next_at_once(tmp_path: Path) -> None:
    env = RankingEnv(tiny_cfg(tmp_path), batch_size=4, seed=0, auto_reset=True)
    first = env.reset()
    rel = env.relevance
    actions = torch.randint(0, 10, (4, 10), generator=torch.Generator().manual_seed(0))
    out = env.step(actions)
    assert out.terminated.all() and not out.truncated.any()  # every step is one whole episode
    torch.testing.assert_close(out.reward, ndcg_at_k(actions.float(), rel, 10))
    assert torch.equal(out.final_obs, first.obs) and torch.equal(out.final_state, first.state)
    assert not torch.equal(out.obs, first.obs)  # the next queries' episodes have begun
    served = env.relevance  # the grades of the queries now on the table
    again = env.step(actions)  # never frozen: the next step is scored too
    torch.testing.assert_close(again.reward, ndcg_at_k(actions.float(), served, 10))
    assert torch.equal(again.final_obs, out.obs)


def test_test_split_sweeps_every_query_once(tmp_path: Path) -> None:
    env = RankingEnv(tiny_cfg(tmp_path), batch_size=5, seed=0, split="test")
    assert env.n_queries == 18 and env.sweep_batches == 4
    seen = []
    for _ in range(env.sweep_batches):
        step = env.reset()
        seen += step.info["query_index"][step.info["valid"]].tolist()
    assert seen == list(range(18))
    assert env.reset().info["query_index"].tolist() == [0, 1, 2, 3, 4]  # next sweep starts over
    env.reset()
    assert env.reset(seed=0).info["query_index"].tolist() == [0, 1, 2, 3, 4]  # seed restarts the sweep
    train = RankingEnv(tiny_cfg(tmp_path), batch_size=6, seed=3)
    epoch = sorted(sum((train.reset().info["query_index"].tolist() for _ in range(7)), []))
    assert epoch == list(range(42))  # one epoch serves every training query once


def test_a_test_reports_the_mean_ndcg_and_its_spread_over_every_test_query(tmp_path: Path) -> None:
    """The report's standard error of a test is test/ndcg@10_std / sqrt(episodes): the spread of the
    graded metric over the queries, which the binomial sqrt(p(1-p)/n) only bounds."""
    from ptde.rollout import test_policy

    class Flat:  # every document the same score: each query ranked in slate order
        uses_state = False

        def act(self, inputs, hidden):
            return torch.zeros(*inputs.shape[:3], 10), hidden

    env = RankingEnv(tiny_cfg(tmp_path), batch_size=5, seed=0, split="test")
    per_query = []
    for _ in range(env.sweep_batches):
        valid = env.reset().info["valid"]
        per_query.append(env.step(torch.zeros(5, 10, dtype=torch.long)).reward[valid])
    per_query = torch.cat(per_query)  # [18]: every test query once, the last batch's padding left out
    out = test_policy(env, Flat(), 10, episodes=32)
    assert out["test/episodes"] == 18.0
    assert out["test/ndcg@10"] == pytest.approx(per_query.mean().item())
    assert out["test/ndcg@10_std"] == pytest.approx(per_query.std(unbiased=False).item())
    p = out["test/ndcg@10"]
    assert 0 < out["test/ndcg@10_std"] ** 2 < p * (1 - p)  # a graded score: below the binomial bound


def test_the_query_stream_round_trips_through_a_checkpoint_so_a_resumed_env_serves_the_same_queries(
    tmp_path: Path,
) -> None:
    """A resumed run rebuilds its env from the seed; the saved state must put it where the killed one
    was, mid-epoch (11 batches of 5 cross the 42-query epoch), not back at the first epoch."""
    import io

    env = RankingEnv(tiny_cfg(tmp_path), batch_size=5, seed=3)
    for _ in range(11):
        env.reset()
    buf = io.BytesIO()
    torch.save(env.rng_state(), buf)  # as checkpoints hold it, loaded weights_only
    ahead = [env.reset().info["query_index"].tolist() for _ in range(12)]
    fresh = RankingEnv(tiny_cfg(tmp_path), batch_size=5, seed=3)
    assert [fresh.reset().info["query_index"].tolist() for _ in range(12)] != ahead  # from the seed alone: not it
    resumed = RankingEnv(tiny_cfg(tmp_path), batch_size=5, seed=3)
    buf.seek(0)
    resumed.set_rng_state(torch.load(buf, weights_only=True))
    assert [resumed.reset().info["query_index"].tolist() for _ in range(12)] == ahead


def test_lambdamart_beats_random(tmp_path: Path) -> None:
    pytest.importorskip("lightgbm")
    from ptde.envs.ltr_baselines import lambdamart_baseline, random_baseline
    from ptde.tools.ltr_baselines import ltr_baselines

    cfg = tiny_cfg(tmp_path, synthetic_queries=300, synthetic_docs_per_query=15, synthetic_features=20, n_queries=300)
    res = ltr_baselines(cfg, num_iterations=40)
    assert set(res["random"]) == set(res["lambdamart"]) == {"ndcg@1", "ndcg@5", "ndcg@10"}
    assert res["lambdamart"]["ndcg@10"] > res["random"]["ndcg@10"] + 0.1
    assert res["lambdamart"]["ndcg@1"] > res["random"]["ndcg@1"] + 0.2
    data = prepare_ltr_data(cfg)
    assert random_baseline(data.test.relevance, seed=0) == res["random"]
    assert lambdamart_baseline(data.train, data.test, num_iterations=40) == res["lambdamart"]


def test_hydra_options_compose(tmp_path: Path) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    ConfigStore.instance().store(group="schema/env", name="ltr", node=LTREnvConfig)
    with initialize_config_dir(config_dir=str(REPO / "conf"), version_base="1.3"):
        syn = compose(overrides=["+env=ltr/synthetic", "env.synthetic_queries=500"]).env
        mslr = compose(overrides=["+env=ltr/mslr"]).env
    assert syn.name == "synthetic" and syn.n_queries == 500 and syn.k == 10 and syn.n_scores == 10
    assert OmegaConf.get_type(syn) is LTREnvConfig
    assert mslr.name == "mslr" and mslr.n_queries == 10_000 and mslr.train_fraction == 0.7
    assert mslr.data_dir == os.environ.get("PTDE_MSLR_DIR")
