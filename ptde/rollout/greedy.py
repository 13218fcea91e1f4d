"""Testing a policy: greedy episodes and the means of what they scored (the success metric, return,
length), as training's periodic tests, stage 2's comparison and `ptde.evaluate` report them."""

from __future__ import annotations

import torch

from ptde.envs.base import MultiAgentEnv
from ptde.rollout.episodes import Actor, run_episodes


def test_policy(env: MultiAgentEnv, policy: Actor, n_actions: int, episodes: int, prefix: str = "test") -> dict:
    """Greedy episodes; returns the mean success metric (and its per-episode std), return and length.

    Episodes an env broke off (`dropped`: a restarted engine worker) are left out and counted.
    An env with `sweep_batches` (ranking: every test query once) is swept whole and `episodes`
    is ignored; entries it marks invalid (padding of the last batch) are left out. The success
    metric is the env's own per-episode info value when it reports one (e.g. ndcg@10), else the
    won flag.
    """
    n_batches = getattr(env, "sweep_batches", None)
    batches = []
    while (len(batches) < n_batches) if n_batches else (sum(b.batch_size for b in batches) < episodes):
        batches.append(run_episodes(env, policy, n_actions, epsilon=0.0))
    keep = torch.cat([b.valid if b.valid is not None else torch.ones(b.batch_size, dtype=torch.bool) for b in batches])
    dropped = torch.cat([b.dropped if b.dropped is not None else torch.zeros_like(b.won) for b in batches])
    if not n_batches:
        keep[episodes:] = False
    dropped &= keep
    keep &= ~dropped  # an episode broken off by a restarted engine is no test of the policy

    def kept(values: list[torch.Tensor]) -> torch.Tensor:
        return torch.cat(values).float()[keep]  # [episodes kept]

    metric = env.get_env_info().success_metric
    out = {}
    per_key = {key: kept([b.info[key] for b in batches]) for key in sorted(batches[0].info or {})}
    for key, values in per_key.items():
        out[f"{prefix}/{key}"] = values.mean().item()
    if metric in per_key:  # the env's own per-episode value (ndcg@10), already in out
        per_episode = per_key[metric]  # [episodes kept]
    else:
        per_episode = kept([b.won for b in batches])
        out[f"{prefix}/{metric}"] = per_episode.mean().item()
    # the metric's spread over the episodes: std / sqrt(episodes) is the test's standard error, for a
    # graded metric (ndcg@k) well below the binomial sqrt(p(1-p)/episodes), which only bounds it
    out[f"{prefix}/{metric}_std"] = per_episode.std(unbiased=False).item()
    returns = torch.cat([b.episode_return for b in batches])[keep]
    out[f"{prefix}/return"] = returns.mean().item()
    out[f"{prefix}/return_std"] = returns.std(unbiased=False).item()
    out[f"{prefix}/ep_length"] = kept([b.length for b in batches]).mean().item()
    out[f"{prefix}/episodes"] = float(keep.sum())
    if dropped.any():
        out[f"{prefix}/dropped_episodes"] = float(dropped.sum())
    return out
