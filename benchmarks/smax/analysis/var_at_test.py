"""σ² of the GIP teachers along their own greedy test episodes (issue 14, item 4: var_floor).

Run from the repo root: python benchmarks/smax/analysis/var_at_test.py <out.json> [run pattern]
(the pattern defaults to qmix_gip_3m_*, e.g. qmix_gip_5m_vs_6m_* for one map). Resumable: runs
already in <out.json> are kept, the campaign's newly finished ones are added.
"""

import json
import sys
from pathlib import Path

import torch

from ptde.envs import make_env
from ptde.learners import load_learner
from ptde.nested import ConfigView
from ptde.rollout import test_policy


def recording(distribution, seen: list):
    """The acting network's global_distribution, keeping every (μ, σ²) it returns."""

    def rec(*args, **kwargs):
        mu, var = distribution(*args, **kwargs)
        seen.append((mu.detach().reshape(-1, mu.shape[-1]), var.detach().reshape(-1, var.shape[-1])))
        return mu, var

    return rec


dest = Path(sys.argv[1])
out = json.loads(dest.read_text()) if dest.exists() else {}
for run in sorted(Path("outputs/benchmarks/smax").glob(sys.argv[2] if len(sys.argv) > 2 else "qmix_gip_3m_*")):
    if run.name in out or '"status": "finished"' not in (run / "results.json").read_text():
        continue
    learner = load_learner(run)
    net = learner.acting_net
    seen: list = []
    net.global_distribution = recording(net.global_distribution, seen)
    env = make_env(ConfigView(learner.hparams["cfg"]["env"]), batch_size=32, seed=99, split="test")
    test_policy(env, learner, learner.info.n_actions, 32)
    env.close()
    mu = torch.cat([m for m, _ in seen])  # [rows, z]
    var = torch.cat([v for _, v in seen])
    floor = learner.hparams["cfg"]["variant"]["var_floor"]
    out[run.name] = {
        "var_floor": floor,
        "var_median": var.median().item(),
        "var_mean": var.mean().item(),
        "share_at_floor": (var <= floor * 1.0001).float().mean().item(),
        "sigma_mean": var.sqrt().mean().item(),
        "abs_mu_mean": mu.abs().mean().item(),
        "mu_std_over_steps": mu.std(0).mean().item(),
        "rows": mu.shape[0],
    }
    print(run.name, json.dumps(out[run.name]), flush=True)
    dest.write_text(json.dumps(out, indent=2))
