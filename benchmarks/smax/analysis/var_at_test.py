"""σ² of the GIP teachers along their own greedy test episodes (issue 14, item 4: var_floor).

Run from the repo root: python benchmarks/smax/analysis/var_at_test.py benchmarks/smax/analysis/var_at_test_3m.json
"""

import json
import sys
from pathlib import Path

import torch

from ptde.config.resolved import ConfigView
from ptde.envs import make_env
from ptde.learners import load_learner
from ptde.rollout import test_policy


def recording(distribution, seen: list):
    """The acting network's global_distribution, keeping every (μ, σ²) it returns."""

    def rec(*args, **kwargs):
        mu, var = distribution(*args, **kwargs)
        seen.append((mu.detach().reshape(-1, mu.shape[-1]), var.detach().reshape(-1, var.shape[-1])))
        return mu, var

    return rec


out = {}
for seed in (0, 1, 2):
    learner = load_learner(f"outputs/benchmarks/smax/qmix_gip_3m_seed{seed}")
    net = learner.acting_net
    seen: list = []
    net.global_distribution = recording(net.global_distribution, seen)
    env = make_env(ConfigView(learner.hparams["cfg"]["env"]), batch_size=32, seed=99, split="test")
    test_policy(env, learner, learner.info.n_actions, 32)
    env.close()
    mu = torch.cat([m for m, _ in seen])  # [rows, z]
    var = torch.cat([v for _, v in seen])
    floor = learner.hparams["cfg"]["variant"]["var_floor"]
    out[f"seed{seed}"] = {
        "var_floor": floor,
        "var_median": var.median().item(),
        "var_mean": var.mean().item(),
        "share_at_floor": (var <= floor * 1.0001).float().mean().item(),
        "sigma_mean": var.sqrt().mean().item(),
        "abs_mu_mean": mu.abs().mean().item(),
        "mu_std_over_steps": mu.std(0).mean().item(),
        "rows": mu.shape[0],
    }
    print(seed, json.dumps(out[f"seed{seed}"]), flush=True)
Path(sys.argv[1]).write_text(json.dumps(out, indent=2))
