"""NDCG@k, the ranking environment's reward and every ranker's score (the MARL agents', LambdaMART's,
random scores'), in one place so they are scored alike.

Conventions (chosen to equal LightGBM's `ndcg` metric, which the tests check):
- gain 2^rel - 1, discount 1 / log2(rank + 1) with rank 1-based, IDCG from the true grades;
- ties: a stable sort by score descending, i.e. tied documents keep their slate order (agent
  index). Slates are shuffled when sampled, so this order carries no relevance information;
- a query whose slate has no relevant document has NDCG 1 (LightGBM's convention; sklearn's
  `ndcg_score` gives 0 and also averages over tied orderings, so it differs on those cases).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch


def ndcg_at_k(scores: Any, relevance: Any, k: int) -> Any:
    """NDCG@k of the rankings induced by `scores` ([..., D]); conventions in the module docstring.

    Accepts torch tensors (returns a float32 tensor [...]) or array-likes (returns float64 numpy).
    """
    as_numpy = not isinstance(scores, torch.Tensor)
    s = torch.as_tensor(np.asarray(scores) if as_numpy else scores).to(torch.float64)  # [..., D]
    r = torch.as_tensor(np.asarray(relevance) if as_numpy else relevance).to(device=s.device, dtype=torch.float64)
    if s.shape != r.shape:
        raise ValueError(f"scores {tuple(s.shape)} and relevance {tuple(r.shape)} differ in shape")
    kk = min(int(k), s.shape[-1])
    if kk < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    discount = 1.0 / torch.log2(torch.arange(2, kk + 2, dtype=torch.float64, device=s.device))  # [kk]
    order = torch.sort(s, dim=-1, descending=True, stable=True).indices  # [..., D]
    dcg = ((2.0 ** r.gather(-1, order)[..., :kk] - 1.0) * discount).sum(-1)  # [...]
    ideal = torch.sort(r, dim=-1, descending=True).values[..., :kk]  # [..., kk]
    idcg = ((2.0**ideal - 1.0) * discount).sum(-1)  # [...]
    ndcg = torch.where(idcg > 0, dcg / idcg.clamp_min(1e-300), torch.ones_like(dcg))
    return ndcg.numpy() if as_numpy else ndcg.float()


def ranking_metrics(scores: Any, relevance: Any, ks: tuple[int, ...] = (1, 5, 10)) -> dict[str, float]:
    """Mean NDCG@k over queries, {"ndcg@1": ..., "ndcg@5": ..., "ndcg@10": ...}."""
    return {f"ndcg@{k}": float(np.mean(np.asarray(ndcg_at_k(scores, relevance, k)))) for k in ks}
