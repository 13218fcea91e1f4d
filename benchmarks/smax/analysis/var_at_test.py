"""sigma^2 of the GIP teachers along their own greedy test episodes (issue 14, item 4: var_floor).

Run from the repo root: python benchmarks/smax/analysis/var_at_test.py benchmarks/smax/analysis/var_at_test_3m.json"""
import json, sys, torch
from ptde.config.resolved import ConfigView
from ptde.envs import make_env
from ptde.learners import load_learner
from ptde.rollout import test_policy
out = {}
for s in (0, 1, 2):
    run = f"outputs/benchmarks/smax/qmix_gip_3m_seed{s}"
    learner = load_learner(run)
    net = learner.acting_net
    seen = []
    orig = net.global_distribution
    def rec(*a, **k):
        mu, var = orig(*a, **k)
        seen.append((mu.detach().reshape(-1, mu.shape[-1]), var.detach().reshape(-1, var.shape[-1])))
        return mu, var
    net.global_distribution = rec
    env = make_env(ConfigView(learner.hparams["cfg"]["env"]), batch_size=32, seed=99, split="test")
    test_policy(env, learner, learner.info.n_actions, 32)
    env.close()
    mu = torch.cat([m for m, _ in seen]); var = torch.cat([v for _, v in seen])
    floor = learner.hparams["cfg"]["variant"]["var_floor"]
    out[f"seed{s}"] = {
        "var_floor": floor,
        "var_median": var.median().item(), "var_mean": var.mean().item(),
        "share_at_floor": (var <= floor * 1.0001).float().mean().item(),
        "sigma_mean": var.sqrt().mean().item(), "abs_mu_mean": mu.abs().mean().item(),
        "mu_std_over_steps": mu.std(0).mean().item(),
        "rows": mu.shape[0],
    }
    print(s, json.dumps(out[f"seed{s}"]))
json.dump(out, open(sys.argv[1], "w"), indent=2)
